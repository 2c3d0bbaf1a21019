"""Issue 14 case 2: a mid-period seat change is dated where it happened, not at the sync.

Sandbox -> real sync over HTTP -> real `dbt build` (and the real webhook applier), for three
subscriptions of a small company on the $10/seat/month price (module7), created 20 days ago
and paid for the month; on day D (5 days ago), in the middle of the period:
- `upgrade`: 10 -> 20 seats, `proration_behavior=none` (nothing invoiced until the renewal);
- `prorated`: 10 -> 20 seats with prorations: the two pending invoice items wait for the next
  invoice (in 10 days), so no invoice line dates the change yet;
- `downgrade`: 20 -> 10 seats, `proration_behavior=none`.
Each with Stripe's `customer.subscription.updated` event whose `previous_attributes.items`
holds the previous item list. By hand (METRICS-SPEC "Monthly amount": unit_amount x quantity):
- day D-1: upgrade 10 x $10 = $100, prorated $100, downgrade 20 x $10 = $200;
- day D (read at the end of the day, after the change) and every later day to today:
  upgrade 20 x $10 = $200, prorated $200, downgrade 10 x $10 = $100.
This must hold after a backfill run after D; after a backfill before D followed by refreshes
after D (each refresh re-reads and re-stamps every item: it must not move the change to its own
time); and after a backfill before D, the change's webhook applied from its payload, and a
refresh (the refresh must not undo the webhook's dating).
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal

import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from tests.dbt.change_scenarios import (
    ChangeScenario,
    Timeline,
    register,
    subscription_mrr,
)

API_KEY = "sk_test_seat_changes"
CHANGES = {"upgrade": (10, 20, False), "prorated": (10, 20, True), "downgrade": (20, 10, False)}
BEFORE = {"upgrade": Decimal("100"), "prorated": Decimal("100"), "downgrade": Decimal("200")}
AFTER = {"upgrade": Decimal("200"), "prorated": Decimal("200"), "downgrade": Decimal("100")}


def seat_subscriptions(company: Company, at: int) -> dict[str, tuple[str, str]]:
    """One $10/seat subscription per change, each on its own customer: {name: (sub, item)}."""
    customers = [c for c in company.objects["customer"] if not c.get("deleted")]
    price = company.price_by_key("module7_usd_month")
    assert price["unit_amount"] == 1000
    created = {}
    for customer, (name, (seats, _, _)) in zip(customers, CHANGES.items(), strict=False):
        company.create_subscription_with_items(customer["id"], [(price["id"], seats)], at)
        sub = company.objects["subscription"][-1]
        created[name] = (sub["id"], sub["items"]["data"][0]["id"])
    return created


def change_seats(company: Company, subs: dict[str, tuple[str, str]], at: int) -> list[dict]:
    events = []
    for name, (_, seats, prorate) in CHANGES.items():
        sub_id, item_id = subs[name]
        events += company.change_item_quantity(sub_id, item_id, seats, at, prorate=prorate)
    return events


def assert_changed_on_day_d(history: dict[str, dict[date, Decimal]], times: Timeline) -> None:
    change_day = times.day(times.removed)
    today = times.day(times.now + 60)
    for name, mrr in history.items():
        assert (name, mrr[change_day - dt.timedelta(days=1)]) == (name, BEFORE[name])
        assert (name, mrr[change_day]) == (name, AFTER[name])
        assert (name, mrr[today]) == (name, AFTER[name])
        assert {d: v for d, v in mrr.items() if d >= change_day} == dict.fromkeys(
            (d for d in mrr if d >= change_day), AFTER[name]), name


def new_company(times: Timeline) -> tuple[Company, dict[str, tuple[str, str]]]:
    company = generate_company(CompanyConfig(customers=6, years=1, seed=15, now=times.now))
    return company, seat_subscriptions(company, times.created)


SEAT_CHANGES = register(ChangeScenario(
    API_KEY, new_company, change=change_seats,
    read=lambda home, subs, project: {name: subscription_mrr(home, sub_id, project=project)
                                      for name, (sub_id, _) in subs.items()}))


@pytest.fixture(scope="module")
def seat_histories(change_histories, warehouse_kind):
    """{stage: {subscription name: {day: MRR}}}, from the session's shared warehouses.
    (`times.removed` is day D, the change's moment.)"""
    return change_histories(warehouse_kind, SEAT_CHANGES)


@pytest.mark.e2e
def test_a_mid_period_seat_change_is_dated_on_its_day_after_a_backfill(seat_histories):
    times, histories = seat_histories
    assert_changed_on_day_d(histories["backfill_after"], times)


@pytest.mark.e2e
def test_refreshes_after_the_change_keep_it_on_its_day(seat_histories):
    times, histories = seat_histories
    before = histories["refreshes_before_change"]
    assert before["upgrade"][times.day(times.early_backfill)] == Decimal("100")
    for refresh in ("refreshes_refresh_1", "refreshes_refresh_2"):
        assert_changed_on_day_d(histories[refresh], times)
        # the days before the change keep what the first backfill said
        for name, mrr in histories[refresh].items():
            assert {d: v for d, v in mrr.items() if d in before[name]} == before[name]
    assert histories["refreshes_refresh_2"] == histories["backfill_after"]


@pytest.mark.e2e
def test_a_refresh_does_not_undo_the_webhooks_dating(seat_histories):
    times, histories = seat_histories
    for stage in ("webhook_applied", "webhook_refresh_1", "webhook_refresh_2"):
        assert_changed_on_day_d(histories[stage], times)
    assert histories["webhook_refresh_2"] == histories["backfill_after"]
