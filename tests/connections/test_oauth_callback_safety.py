"""The OAuth callback under misuse: racing callbacks, a replayed state, another account."""

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from sandbox.server import SandboxServer
from stripe_warehouse.oauth import authorize_url
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import small_company
from tests.connections.test_oauth_flow import (
    authorize_through_sandbox,
    connect_then_disconnect,
    redirect_of,
)

pytestmark = pytest.mark.e2e

ALREADY = ("project shop is already connected: nothing was stored; to connect another "
           "account, first run `stripe-warehouse disconnect shop`")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def slow_token_exchange(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe answers the code exchange after 0.5 s: long enough for two callbacks to overlap."""
    exchange = sandbox.oauth.token

    def slow(params: dict[str, str]) -> Any:
        time.sleep(0.5)
        return exchange(params)

    monkeypatch.setattr(sandbox.oauth, "token", slow)


def test_two_racing_callbacks_for_one_project_connect_it_once(
    service: str, home: Path, oauth_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    callbacks = [authorize_through_sandbox(service, "shop", "pro") for _ in range(2)]
    assert query_of(callbacks[0])["state"] != query_of(callbacks[1])["state"]
    slow_token_exchange(oauth_env, monkeypatch)
    start = threading.Barrier(len(callbacks))
    answers: list[requests.Response] = []

    def call(url: str) -> None:
        start.wait()
        answers.append(requests.get(url, timeout=30))

    threads = [threading.Thread(target=call, args=(url,)) for url in callbacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json() == {"error": ALREADY}
    # The loser never exchanged its code: no second grant stays authorised on Stripe.
    assert oauth_env.counts().get("/oauth/token", 0) == 1
    [token] = oauth_env.oauth.tokens
    assert ConnectionStore(home).api_key("shop") == token


def test_a_used_state_cannot_be_replayed_with_a_fresh_code(
    service: str, home: Path, oauth_env: SandboxServer
) -> None:
    callback = connect_then_disconnect(service, home)
    # Someone who saw the callback URL gets a code of their own and presents the old state.
    fresh_code = query_of(redirect_of(authorize_url("shop", "pro")))["code"]
    replay = f"{service}/oauth/callback?" + urlencode(
        {"state": query_of(callback)["state"], "code": fresh_code})
    answer = requests.get(replay, timeout=30)
    assert answer.status_code == 400
    assert answer.json() == {"error": "this OAuth link for project shop was already used: "
                             "nothing was stored; start again with "
                             "`stripe-warehouse connect shop --oauth`"}
    assert ConnectionStore(home).get("shop").status == "disconnected"
    assert oauth_env.counts().get("/oauth/token", 0) == 1
    used = home / "oauth" / "used_states.json"
    assert used.stat().st_mode & 0o777 == 0o600


def test_oauth_cannot_attach_another_account_to_a_disconnected_project(
    service: str, home: Path, oauth_env: SandboxServer, connected_company
) -> None:
    first = connected_company.account_id
    connect_then_disconnect(service, home)
    intruder = small_company(seed=9)
    oauth_env.oauth.config.company = intruder  # the sandbox's test user now owns another account
    answer = requests.get(authorize_through_sandbox(service, "shop", "pro"), timeout=30)
    assert answer.status_code == 409
    assert answer.json() == {"error": (
        f"project shop holds data of Stripe account {first}, not {intruder.account_id}: "
        f"nothing was stored; connect {intruder.account_id} under a new project id, or delete "
        "shop's data first with `stripe-warehouse purge shop`")}
    shop = ConnectionStore(home).get("shop")
    assert (shop.status, shop.account_id) == ("disconnected", first)
    assert oauth_env.oauth.deauthorized == [intruder.account_id]  # its grant was revoked

    oauth_env.oauth.config.company = connected_company  # the owner reconnects: that works
    answer = requests.get(authorize_through_sandbox(service, "shop", "pro"), timeout=30)
    assert answer.status_code == 200, answer.text
    assert ConnectionStore(home).get("shop").status == "active"
