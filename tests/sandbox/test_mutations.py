"""Mutations change the objects consistently, emit Stripe events, and show through the API."""

from __future__ import annotations

import stripe

from sandbox.company import Company
from sandbox.server import SandboxServer
from tests.sandbox.conftest import API_KEY, NOW


def _active_subscription(company: Company, product: str = "") -> dict:
    return next(s for s in company.objects["subscription"]
                if s["status"] == "active" and not s["cancel_at_period_end"]
                and s["items"]["data"][0]["price"]["lookup_key"].startswith(product))


def test_cancel_immediately_ends_the_subscription_and_emits_deleted(fresh_company: Company):
    sub = _active_subscription(fresh_company)
    with SandboxServer(accounts={API_KEY: fresh_company}) as srv:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": srv.url},
                                     max_network_retries=0)
        before = {s.id for s in client.v1.subscriptions.list(params={"limit": 100})
                  .auto_paging_iter()}
        events = fresh_company.cancel_subscription(sub["id"], at=NOW + 60)
        assert [e["type"] for e in events] == ["customer.subscription.deleted"]
        assert events[0]["data"]["object"]["status"] == "canceled"
        served = client.v1.subscriptions.retrieve(sub["id"])
        assert served.status == "canceled"
        assert served.canceled_at == served.ended_at == NOW + 60
        after = {s.id for s in client.v1.subscriptions.list(params={"limit": 100})
                 .auto_paging_iter()}
        assert before - after == {sub["id"]}
        listed = client.v1.events.list(params={"type": "customer.subscription.deleted"})
        assert listed.data[0].id == events[0]["id"]


def test_cancel_at_period_end_keeps_it_running_until_then(fresh_company: Company):
    sub = _active_subscription(fresh_company)
    end = sub["items"]["data"][0]["current_period_end"]
    events = fresh_company.cancel_subscription(sub["id"], at=NOW + 5, at_period_end=True)
    assert [e["type"] for e in events] == ["customer.subscription.updated"]
    assert events[0]["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert sub["status"] == "active" and sub["cancel_at_period_end"] is True
    assert sub["cancel_at"] == end and sub["canceled_at"] == NOW + 5 and sub["ended_at"] is None


def test_change_quantity_invoices_the_proration(fresh_company: Company):
    sub = _active_subscription(fresh_company, "pro")
    item = sub["items"]["data"][0]
    old = item["quantity"]
    at = (item["current_period_start"] + item["current_period_end"]) // 2
    events = fresh_company.change_quantity(sub["id"], old + 4, at=at)
    types = [e["type"] for e in events]
    assert types[0] == "customer.subscription.updated"
    assert {"invoice.created", "invoice.paid", "charge.succeeded"} <= set(types)
    assert events[0]["data"]["previous_attributes"]["items"]["data"][0]["quantity"] == old
    assert item["quantity"] == old + 4
    invoice = fresh_company.get("invoice", sub["latest_invoice"])
    assert invoice["billing_reason"] == "subscription_update"
    lines = invoice["lines"]["data"]
    assert [ln["parent"]["subscription_item_details"]["proration"] for ln in lines] == [True, True]
    assert lines[0]["amount"] < 0 < lines[1]["amount"]
    assert invoice["total"] == lines[0]["amount"] + lines[1]["amount"] > 0


def test_fail_payment_makes_the_subscription_past_due(fresh_company: Company):
    sub = _active_subscription(fresh_company)
    period_end = sub["items"]["data"][0]["current_period_end"]
    events = fresh_company.fail_payment(sub["id"], at=period_end)
    types = [e["type"] for e in events]
    assert {"invoice.payment_failed", "charge.failed",
            "customer.subscription.updated"} <= set(types)
    assert sub["status"] == "past_due"
    invoice = fresh_company.get("invoice", sub["latest_invoice"])
    assert invoice["status"] == "open" and invoice["attempt_count"] == 1
    assert invoice["next_payment_attempt"] == period_end + 3 * 86_400
    assert sub["items"]["data"][0]["current_period_start"] == period_end
    charge = fresh_company.get("charge", invoice["payments"]["data"][0]["payment"]["charge"])
    assert charge["status"] == "failed" and charge["failure_code"] == "card_declined"


def test_create_subscription_with_trial(fresh_company: Company):
    customer = next(c for c in fresh_company.objects["customer"] if not c.get("deleted"))
    price = fresh_company.price_by_key("starter_usd_month")
    events = fresh_company.create_subscription(customer["id"], price["id"], at=NOW + 10,
                                               trial_days=7)
    assert [e["type"] for e in events][:2] == ["customer.subscription.created", "invoice.created"]
    sub = fresh_company.get("subscription", events[0]["data"]["object"]["id"])
    assert sub["status"] == "trialing" and sub["trial_end"] == NOW + 10 + 7 * 86_400
    invoice = fresh_company.get("invoice", sub["latest_invoice"])
    assert invoice["amount_due"] == 0 and invoice["status"] == "paid"
    assert fresh_company.get("subscription_item", sub["items"]["data"][0]["id"]) is not None


def test_delete_customer_cancels_its_subscriptions_and_hides_it(fresh_company: Company):
    sub = _active_subscription(fresh_company)
    customer_id = sub["customer"]
    held = fresh_company.get("customer", customer_id)
    events = fresh_company.delete_customer(customer_id, at=NOW + 100)
    assert [e["type"] for e in events][-1] == "customer.deleted"
    assert "customer.subscription.deleted" in [e["type"] for e in events]
    assert events[-1]["data"]["object"]["name"].startswith("Planted Person")
    assert sub["status"] == "canceled"
    stub = {"id": customer_id, "object": "customer", "deleted": True}
    assert fresh_company.get("customer", customer_id) == stub
    assert stub in fresh_company.objects["customer"]
    assert held["created"] and held["name"]  # a reference taken before keeps the last state


def test_event_payloads_of_mutations_are_snapshots(fresh_company: Company):
    sub = _active_subscription(fresh_company, "pro")
    old = sub["items"]["data"][0]["quantity"]
    first = fresh_company.change_quantity(sub["id"], old + 1, at=NOW + 1)[0]
    fresh_company.change_quantity(sub["id"], old + 2, at=NOW + 2)
    assert first["data"]["object"]["items"]["data"][0]["quantity"] == old + 1
