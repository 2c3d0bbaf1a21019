"""Stripe Connect OAuth end to end: service -> sandbox authorize -> callback -> encrypted token."""

import re
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
import requests

from pipelines.revocation import sync_or_revoke
from sandbox.server import SandboxServer
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth import STATE_TTL_SECONDS, authorize_url, sign_state, verify_state
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import CLIENT_ID

pytestmark = pytest.mark.e2e


def redirect_of(url: str) -> str:
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def authorize_through_sandbox(service: str, project: str, tier: str) -> str:
    """Follow the service's authorize redirect to the sandbox; the callback URL it sends back."""
    return redirect_of(redirect_of(f"{service}/oauth/authorize/{project}?tier={tier}"))


def connect_then_disconnect(service: str, home: Path) -> str:
    """Connect ``shop`` through OAuth, then disconnect it; the callback URL that connected it."""
    callback = authorize_through_sandbox(service, "shop", "pro")
    assert requests.get(callback, timeout=30).status_code == 200
    ConnectionStore(home).disconnect("shop")
    return callback


def test_authorize_link_asks_for_read_only_access_with_a_signed_state(service: str) -> None:
    link = redirect_of(f"{service}/oauth/authorize/shop?tier=pro")
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/oauth/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == "read_only"
    assert query["redirect_uri"] == f"{service}/oauth/callback"
    request = verify_state(query["state"])
    assert (request.project_id, request.tier) == ("shop", "pro")


def test_oauth_connect_stores_the_token_encrypted_and_a_sync_works_with_it(
    service: str, home: Path, oauth_env: SandboxServer, connected_company
) -> None:
    callback = authorize_through_sandbox(service, "shop", "pro")
    answer = requests.get(callback, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"connected": "shop", "stripe_user_id": connected_company.account_id,
                             "mode": "test", "tier": "pro"}
    [token] = oauth_env.oauth.tokens  # the one access token the sandbox minted
    store = ConnectionStore(home)
    connection = store.get("shop")
    assert (connection.status, connection.scope, connection.livemode) == (
        "active", "read_only", False)
    assert store.api_key("shop") == token
    registry = home / "connections.json"
    assert token not in registry.read_text()
    # the refresh token is encrypted too (a word starting rt_; "alert_rules" is a key there)
    assert re.search(r"\brt_[A-Za-z0-9]", registry.read_text()) is None
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    result = sync_or_revoke(store, "shop", "backfill", api_base=oauth_env.url)
    assert result.rows_per_table["subscriptions"] == len(
        connected_company.objects["subscription"])
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        synced = con.execute("select count(*) from stripe_raw.customers "
                             "where project_id = 'shop'").fetchone()[0]
    assert synced > 0
    assert store.get("shop").last_sync_kind == "backfill"


def test_forged_state_is_refused_and_nothing_is_stored(
    service: str, home: Path, oauth_env: SandboxServer
) -> None:
    callback = authorize_through_sandbox(service, "shop", "pro")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    payload, signature = query["state"].split(".")
    # The attacker swaps the project inside the state, keeping the signature.
    forged_payload = sign_state("victim", "pro").split(".")[0]
    for state in (f"{forged_payload}.{signature}", "not-a-state", f"{payload}.AAAA"):
        answer = requests.get(f"{service}/oauth/callback",
                              params={"code": query["code"], "state": state}, timeout=10)
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("the OAuth state is missing, altered or signed")
    assert ConnectionStore(home).list() == []
    assert oauth_env.counts().get("/oauth/token", 0) == 0  # no code was ever exchanged


def test_expired_state_is_refused_and_nothing_is_stored(
    service: str, home: Path, oauth_env: SandboxServer
) -> None:
    import time

    stale = authorize_url("shop", "pro", now=time.time() - STATE_TTL_SECONDS - 5)
    callback = redirect_of(stale)
    answer = requests.get(callback, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "the OAuth link for project shop expired (links last 10 minutes): nothing was stored; "
        "start again with `stripe-warehouse connect shop --oauth`")
    assert ConnectionStore(home).list() == []
    assert oauth_env.counts().get("/oauth/token", 0) == 0


def test_state_signed_with_another_encryption_key_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stripe_warehouse.crypto import generate_key

    state = sign_state("shop", "pro")
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", generate_key())
    with pytest.raises(WarehouseError, match="altered or signed with another key"):
        verify_state(state)


def test_declined_authorization_answers_400_and_stores_nothing(service: str, home: Path) -> None:
    answer = requests.get(f"{service}/oauth/callback", params={
        "error": "access_denied", "error_description": "The user denied your request"},
        timeout=10)
    assert answer.status_code == 400
    assert "The user denied your request" in answer.json()["error"]
    assert ConnectionStore(home).list() == []


def test_oauth_cannot_replace_the_account_of_a_connected_project(
    service: str, home: Path, oauth_env: SandboxServer
) -> None:
    store = ConnectionStore(home)
    store.connect("shop", "pro", "rk_live_owner_key_0001")
    already = ("project shop is already connected: nothing was stored; to connect another "
               "account, first run `stripe-warehouse disconnect shop`")
    answer = requests.get(f"{service}/oauth/authorize/shop?tier=pro", allow_redirects=False,
                          timeout=10)
    assert (answer.status_code, answer.json()) == (409, {"error": already})
    # Even with a genuine state and a fresh code (an attacker's own account), nothing changes.
    callback = redirect_of(authorize_url("shop", "pro"))
    answer = requests.get(callback, timeout=10)
    assert (answer.status_code, answer.json()) == (409, {"error": already})
    assert store.api_key("shop") == "rk_live_owner_key_0001"
    assert oauth_env.counts().get("/oauth/token", 0) == 0


def test_reused_code_is_refused_by_stripe_with_a_one_line_error(
    service: str, home: Path, oauth_env: SandboxServer
) -> None:
    callback = connect_then_disconnect(service, home)
    # A fresh state (the used one is refused before Stripe is asked) with the used code.
    used_code = parse_qs(urlsplit(callback).query)["code"][0]
    again = requests.get(f"{service}/oauth/callback", timeout=30,
                         params={"state": sign_state("shop", "pro"), "code": used_code})
    assert again.status_code == 502
    assert again.json() == {"error": "Stripe refused to exchange the authorization code "
                                     "(invalid_grant): start again with "
                                     "`stripe-warehouse connect PROJECT --oauth`"}
    assert ConnectionStore(home).get("shop").status == "disconnected"
