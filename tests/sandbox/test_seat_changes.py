"""The generator's mid-period seat changes (issue 14 case 2) and the mutation behind them."""

from __future__ import annotations

from sandbox.company import Company, CompanyConfig, generate_company
from tests.sandbox.conftest import NOW


def current_period_seat_changes(co: Company) -> dict[str, dict]:
    """{subscription id: event} of the seat changes made in the subscription's current period."""
    changes = {}
    for event in co.objects["event"]:
        previous = event["data"].get("previous_attributes") or {}
        if event["type"] != "customer.subscription.updated" or "items" not in previous:
            continue
        sub = co.get("subscription", event["data"]["object"]["id"])
        after = {i["id"]: i["quantity"] for i in event["data"]["object"]["items"]["data"]}
        before = {i["id"]: i["quantity"] for i in previous["items"]["data"]}
        period_start = sub["items"]["data"][0]["current_period_start"]
        if event["created"] > period_start and any(
                before.get(item_id, quantity) != quantity for item_id, quantity in after.items()):
            changes[sub["id"]] = event
    return changes


def test_running_subscriptions_change_seats_mid_period_with_and_without_prorations():
    co = generate_company(CompanyConfig(customers=600, years=3, seed=42, now=NOW))
    # the subscriptions the history simulated (the VAT and pricing shapes added after it
    # never change seats mid-period)
    added_later = {"seatpack_usd_month", "seatpack_usd_year", "team_usd_month",
                   "platform_usd_month", "global_usd_month"}
    per_seat = [s for s in co.objects["subscription"] if s["status"] == "active"
                and s["items"]["data"][0]["quantity"] is not None
                and not s["items"]["data"][0]["price"]["lookup_key"].startswith("starter")
                and s["items"]["data"][0]["price"]["lookup_key"] not in added_later
                and not s.get("default_tax_rates")
                and not any(i.get("discounts") for i in s["items"]["data"])]
    changes = current_period_seat_changes(co)
    # a few % of running per-seat subscriptions per period
    assert 0.01 * len(per_seat) <= len(changes) <= 0.1 * len(per_seat), len(changes)
    prorated = set(changes) & set(co.pending_prorations)
    assert prorated and set(changes) - prorated
    for sub_id, event in changes.items():
        # the event's snapshot keeps the quantity of its time: the item now has the same
        item = co.get("subscription", sub_id)["items"]["data"][0]
        assert event["data"]["object"]["items"]["data"][0]["quantity"] == item["quantity"]


def test_a_quantity_change_keeps_earlier_snapshots_and_pends_its_prorations(
        fresh_company: Company):
    co = fresh_company
    sub = next(s for s in co.objects["subscription"] if s["status"] == "active"
               and s["items"]["data"][0]["quantity"] is not None)
    item = sub["items"]["data"][0]
    old = item["quantity"]
    start, end = item["current_period_start"], item["current_period_end"]
    at = (start + end) // 2
    events = co.change_item_quantity(sub["id"], item["id"], old + 5, at, prorate=True)
    assert [e["type"] for e in events] == ["customer.subscription.updated"]
    previous = events[0]["data"]["previous_attributes"]["items"]["data"]
    assert [i["quantity"] for i in previous if i["id"] == item["id"]] == [old]
    assert co.get("subscription_item", item["id"])["quantity"] == old + 5
    assert item["quantity"] == old  # replaced, not changed in place
    unused, remaining = co.pending_prorations[sub["id"]]
    assert unused.period == remaining.period == (at, end)
    assert unused.amount < 0 < remaining.amount
