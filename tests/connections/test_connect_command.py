"""`stripe-warehouse connect`: the OAuth link, and advice when a full-access key is used."""

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from commands.cli import main
from sandbox.server import SandboxServer
from stripe_warehouse.oauth import verify_state
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import small_company

SAFER_KEY_ADVICE = "a read-only restricted key (rk_live_..., read permission on every object type)"


@pytest.fixture
def keyed_sandbox(home, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    company = small_company(seed=4)
    with SandboxServer(accounts={"sk_test_full_access": company,
                                 "rk_test_read_only": company}) as server:
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        yield server


def test_connect_oauth_prints_the_link_and_where_the_callback_lands(
    home, oauth_env: SandboxServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STRIPE_CONNECT_REDIRECT_URI", "https://warehouse.example/oauth/callback")
    assert main(["connect", "shop", "--tier", "scale", "--oauth"]) == 0
    output = capsys.readouterr()
    link = urlsplit(output.out.strip())
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{oauth_env.url}/oauth/authorize"
    assert query["scope"] == "read_only"
    assert query["redirect_uri"] == "https://warehouse.example/oauth/callback"
    assert verify_state(query["state"]).project_id == "shop"
    assert "completes the connection at https://warehouse.example/oauth/callback" in output.err
    assert ConnectionStore(home).list() == []  # stored only when the callback arrives


def test_connect_oauth_without_a_client_id_is_a_one_line_error(
    home, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_CONNECT_CLIENT_ID", raising=False)
    assert main(["connect", "shop", "--tier", "pro", "--oauth"]) == 2
    assert capsys.readouterr().err == (
        "error: STRIPE_CONNECT_CLIENT_ID is unset or not a Connect client id: export the "
        "platform's ca_... id from the Stripe dashboard (Connect settings)\n")


def test_full_access_secret_key_is_accepted_with_advice_to_use_a_restricted_key(
    home, keyed_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FULL_KEY", "sk_test_full_access")
    assert main(["connect", "full", "--tier", "pro", "--api-key-env", "FULL_KEY"]) == 0
    assert SAFER_KEY_ADVICE in capsys.readouterr().err
    monkeypatch.setenv("READ_KEY", "rk_test_read_only")
    assert main(["connect", "limited", "--tier", "pro", "--api-key-env", "READ_KEY"]) == 0
    assert SAFER_KEY_ADVICE not in capsys.readouterr().err
    assert [c.status for c in ConnectionStore(home).list()] == ["active", "active"]
