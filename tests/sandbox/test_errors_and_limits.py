"""Errors, auth, permissions, rate limits, injected failures and latency of the sandbox."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from sandbox.catalog import PLANS, PRODUCTS
from sandbox.company import Company
from sandbox.server import SandboxServer
from tests.sandbox.conftest import API_KEY


def _get(url: str, key: str | None = API_KEY, method: str = "GET",
         auth: str | None = None) -> tuple[int, dict, dict]:
    """Raw HTTP call: status, JSON body, headers (errors included)."""
    request = urllib.request.Request(url, method=method, data=b"a=1" if method != "GET" else None)
    if auth or key:
        request.add_header("Authorization", auth or f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_unknown_key_is_refused_with_stripe_401(server: SandboxServer):
    status, body, headers = _get(f"{server.url}/v1/customers", key="sk_test_wrong_key_1234")
    assert status == 401
    assert body == {"error": {"type": "invalid_request_error",
                              "message": "Invalid API Key provided: sk_test_****1234"}}
    assert headers["Request-Id"].startswith("req_")
    client = stripe.StripeClient("sk_test_wrong", base_addresses={"api": server.url},
                                 max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.list()


def test_http_basic_auth_is_accepted(server: SandboxServer):
    token = base64.b64encode(f"{API_KEY}:".encode()).decode()
    status, body, _ = _get(f"{server.url}/v1/account", auth=f"Basic {token}")
    assert status == 200 and body["object"] == "account"


def test_unknown_id_is_404_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.retrieve("sub_does_not_exist")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


@pytest.mark.parametrize("limit", [0, 101, "ten"])
def test_limit_out_of_range_is_400(server: SandboxServer, limit):
    status, body, _ = _get(f"{server.url}/v1/charges?limit={limit}")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "limit"


def test_writes_are_refused_and_recorded(server: SandboxServer, client):
    before = len(server.refused_writes)
    with pytest.raises(stripe.StripeError) as caught:
        client.v1.customers.create(params={"email": "x@example.com"})
    assert caught.value.http_status == 405
    status, body, _ = _get(f"{server.url}/v1/subscriptions/sub_x", method="DELETE")
    assert status == 405 and body["error"]["type"] == "invalid_request_error"
    assert server.refused_writes[before:] == [("POST", "/v1/customers"),
                                              ("DELETE", "/v1/subscriptions/sub_x")]
    assert ("POST", "/v1/customers", 405) in server.request_log


def test_counts_group_requests_by_endpoint(company: Company):
    with SandboxServer(accounts={API_KEY: company}) as srv:
        sub_id = company.objects["subscription"][0]["id"]
        for _ in range(3):
            _get(f"{srv.url}/v1/customers")
        _get(f"{srv.url}/v1/subscriptions/{sub_id}")
        assert srv.counts() == {"/v1/customers": 3, "/v1/subscriptions/{id}": 1}
        assert srv.request_log[-1] == ("GET", f"/v1/subscriptions/{sub_id}", 200)


def test_rate_limit_answers_429_that_the_sdk_may_retry(company: Company):
    with SandboxServer(accounts={API_KEY: company}, rate_limit_global=5,
                       rate_limit_per_endpoint=3) as srv:
        statuses = [_get(f"{srv.url}/v1/prices")[0] for _ in range(6)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
        status, body, headers = _get(f"{srv.url}/v1/prices")
        assert status == 429 and body["error"]["code"] == "rate_limit"
        assert headers["Stripe-Should-Retry"] == "true"
        assert _get(f"{srv.url}/v1/coupons")[0] == 200  # another endpoint has its own bucket
        retrying = stripe.StripeClient(API_KEY, base_addresses={"api": srv.url},
                                       max_network_retries=5)
        assert len(retrying.v1.prices.list(params={"limit": 100}).data) == len(PLANS)


def test_injected_failures_are_500_and_deterministic_for_a_seed(company: Company):
    def run() -> list[int]:
        with SandboxServer(accounts={API_KEY: company}, failure_rate=0.3, seed=5) as srv:
            return [_get(f"{srv.url}/v1/products")[0] for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 500} and 5 < first.count(500) < 20
    with SandboxServer(accounts={API_KEY: company}, failure_rate=0.5, seed=1) as srv:
        status, body, headers = next(r for r in (_get(f"{srv.url}/v1/products")
                                                 for _ in range(20)) if r[0] == 500)
        assert body["error"]["type"] == "api_error"
        assert headers["Stripe-Should-Retry"] == "true"
        retrying = stripe.StripeClient(API_KEY, base_addresses={"api": srv.url},
                                       max_network_retries=8)
        assert len(retrying.v1.products.list(params={"limit": 100}).data) == len(PRODUCTS)


def test_latency_delays_each_response_but_concurrent_clients_overlap(company: Company):
    with SandboxServer(accounts={API_KEY: company}, latency_ms=50) as srv:
        started = time.perf_counter()
        _get(f"{srv.url}/v1/account")
        assert time.perf_counter() - started >= 0.05
        customer_ids = [c["id"] for c in company.objects["customer"] if not c.get("deleted")]
        urls = [f"{srv.url}/v1/customers/{customer_ids[i % len(customer_ids)]}"
                for i in range(300)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda u: _get(u)[0], urls))
        rate = len(urls) / (time.perf_counter() - started)
    assert statuses == [200] * 300
    assert rate > 100, f"only {rate:.0f} requests/s with 50 ms latency"


def test_restricted_key_is_refused_outside_its_permissions(company: Company):
    with SandboxServer(accounts={"rk_test_reader": company},
                       permissions={"rk_test_reader": {"customers", "subscriptions"}}) as srv:
        client = stripe.StripeClient("rk_test_reader", base_addresses={"api": srv.url},
                                     max_network_retries=0)
        assert client.v1.customers.list().object == "list"
        with pytest.raises(stripe.PermissionError) as caught:
            client.v1.invoices.list()
        assert caught.value.http_status == 403
        assert caught.value.json_body["error"]["code"] == "permission_denied"


def test_unknown_endpoint_is_404(server: SandboxServer):
    status, body, _ = _get(f"{server.url}/v1/payouts")
    assert status == 404 and "Unrecognized request URL" in body["error"]["message"]


def test_subscription_items_list_requires_the_subscription(server: SandboxServer):
    status, body, _ = _get(f"{server.url}/v1/subscription_items")
    assert status == 400 and body["error"]["param"] == "subscription"


def test_more_than_twenty_event_types_is_400_naming_types(server: SandboxServer):
    twenty_one = "&".join(f"types[]=invoice.t{i}" for i in range(21))
    status, body, _ = _get(f"{server.url}/v1/events?{twenty_one}")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "types" and "at most 20" in body["error"]["message"]
    twenty = "&".join(f"types[]=invoice.t{i}" for i in range(20))
    assert _get(f"{server.url}/v1/events?{twenty}")[0] == 200


def test_type_and_types_together_is_400(server: SandboxServer):
    status, body, _ = _get(f"{server.url}/v1/events?type=charge.*&types[]=invoice.paid")
    assert status == 400 and body["error"]["param"] == "types"
    assert "not both" in body["error"]["message"]
