"""`connect` never writes a secret under a key that cannot open the secrets already stored."""

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.cli import main
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key, key_id, load_key
from stripe_warehouse.registry import ConnectionStore, KeyMismatch
from tests.connections.conftest import small_company

pytestmark = pytest.mark.e2e


@pytest.fixture
def keyed_sandbox(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(accounts={"rk_test_shop": small_company(seed=4),
                                 "rk_test_other": small_company(seed=5)}) as server:
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        monkeypatch.setenv("SHOP_KEY", "rk_test_shop")
        monkeypatch.setenv("OTHER_KEY", "rk_test_other")
        yield server


def test_connect_under_another_key_is_refused_naming_both_key_ids(
    home: Path, keyed_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY"]) == 0
    first_key = load_key()
    registry = (home / "connections.json").read_text()
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())  # e.g. another shell's key
    capsys.readouterr()

    assert main(["connect", "other", "--tier", "pro", "--api-key-env", "OTHER_KEY"]) == 2
    assert capsys.readouterr().err == (
        f"error: the stored secrets are encrypted with key id {key_id(first_key)}, but "
        f"STRIPE_WAREHOUSE_SECRET_KEY has key id {key_id(load_key())}: nothing was stored; "
        f"export the key with id {key_id(first_key)} as STRIPE_WAREHOUSE_SECRET_KEY (to "
        "change keys, run `stripe-warehouse rotate-key` with it)\n")
    assert (home / "connections.json").read_text() == registry
    assert keyed_sandbox.counts().get("/v1/account", 0) == 1  # refused before calling Stripe

    # The write itself checks too (the OAuth callback and library callers reach it directly).
    with pytest.raises(KeyMismatch):
        ConnectionStore(home).connect("other", "pro", "rk_test_other", account_id="acct_x")
    assert (home / "connections.json").read_text() == registry

    # With the right key the registry is whole: connect and rotate-key work.
    monkeypatch.setenv(SECRET_KEY_ENV, base64.b64encode(first_key).decode())
    assert main(["connect", "other", "--tier", "pro", "--api-key-env", "OTHER_KEY"]) == 0
    monkeypatch.setenv("STRIPE_WAREHOUSE_NEW_SECRET_KEY", generate_key())
    assert main(["rotate-key"]) == 0
    assert "re-encrypted 2 secrets" in capsys.readouterr().out
