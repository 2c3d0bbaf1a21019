"""Issue 14 case 7: an item's own discount removed or replaced on day D stops on D.

Sandbox -> real sync over HTTP -> real `dbt build` (and the real webhook applier). Two
subscriptions of a small company, created 20 days ago, each 10 seats of pro ($12/seat/month)
plus 1 support ($9/month), the pro item with its own LAUNCH25 (25% off for 3 months,
`subscription_item.discounts`); on day D (5 days ago), in the middle of the period:
- `removed`: the pro item's LAUNCH25 is removed;
- `replaced`: the pro item's LAUNCH25 is replaced by SAVE5 ($5 off a month for 6 months).
Each with Stripe's `customer.subscription.updated` event whose `previous_attributes.items`
holds the previous item list (the item's previous discount ids). By hand (METRICS-SPEC
"Discounts": an item's own discount applies to that item only), net MRR:
- day D-1: both 10 x $12 = $120 - 25% ($30) = $90, plus $9 = $99;
- day D (read at the end of the day, after the change) and every later day to today:
  `removed` $120 + $9 = $129; `replaced` $120 - $5 + $9 = $124.
Gross MRR is $129 on every day. This holds after a backfill before D followed by refreshes,
and after a backfill before D, the change's webhook applied from its payload, and refreshes.
Before the fix the removed discount vanished from every day (the item's current state no longer
lists it): $129 on D-1 instead of $99.
A backfill run after D sees the removed discount as an object only on the invoice lines it
discounted (the event's `previous_attributes.items` and every other read hold its id): the sync
expands `data.lines.data.discounts` and stg_stripe__discounts reads them. Before that, the
backfill-after test failed on D-1 (2026-12-01, run on 2026-12-07):
`AssertionError: assert ('removed', Decimal('129.000000')) == ('removed', Decimal('99'))`.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal

import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import subscribe_priced
from tests.dbt.change_scenarios import (
    ChangeScenario,
    Timeline,
    net_mrr,
    register,
)

API_KEY = "sk_test_item_discount_removal"
REPLACEMENTS = {"removed": None, "replaced": "SAVE5"}
BEFORE = {"removed": Decimal("99"), "replaced": Decimal("99")}
AFTER = {"removed": Decimal("129"), "replaced": Decimal("124")}


def item_discounted_subscriptions(company: Company, at: int) -> dict[str, tuple[str, str]]:
    """{name: (subscription, its pro item)}, each on its own USD customer."""
    customers = [c for c in company.objects["customer"]
                 if not c.get("deleted") and c.get("currency") == "usd"]
    created = {}
    for customer, name in zip(customers, REPLACEMENTS, strict=False):
        sub = subscribe_priced(company, customer["id"],
                               [("pro_usd_month", 10), ("support_usd_month", 1)], at,
                               item_coupons={0: "LAUNCH25"})
        created[name] = (sub["id"], sub["items"]["data"][0]["id"])
    assert len(created) == len(REPLACEMENTS)
    return created


def change_item_discounts(company: Company, subs: dict[str, tuple[str, str]],
                          at: int) -> list[dict]:
    events = []
    for name, coupon in REPLACEMENTS.items():
        sub_id, item_id = subs[name]
        events += company.replace_item_discounts(sub_id, item_id, at, coupon)
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
        assert {d: v for d, v in mrr.items() if d < change_day} == dict.fromkeys(
            (d for d in mrr if d < change_day), BEFORE[name]), name


def new_company(times: Timeline) -> tuple[Company, dict[str, tuple[str, str]]]:
    company = generate_company(CompanyConfig(customers=8, years=1, seed=15, now=times.now))
    return company, item_discounted_subscriptions(company, times.created)


ITEM_DISCOUNT_CHANGES = register(ChangeScenario(
    API_KEY, new_company, change=change_item_discounts,
    read=lambda home, subs, project: {name: net_mrr(home, sub_id, project)
                                      for name, (sub_id, _) in subs.items()}))


@pytest.fixture(scope="module")
def discount_histories(change_histories, warehouse_kind):
    """{stage: {subscription name: {day: net MRR}}}, from the session's shared warehouses
    (`times.removed` is day D, the change's moment)."""
    return change_histories(warehouse_kind, ITEM_DISCOUNT_CHANGES)


@pytest.mark.e2e
def test_an_item_discount_removed_or_replaced_stops_on_its_day_after_a_backfill(
        discount_histories):
    times, histories = discount_histories
    assert_changed_on_day_d(histories["backfill_after"], times)


@pytest.mark.e2e
def test_refreshes_after_the_item_discount_change_keep_it_on_its_day(discount_histories):
    times, histories = discount_histories
    before = histories["refreshes_before_change"]
    early = times.day(times.early_backfill)
    assert {name: mrr[early] for name, mrr in before.items()} == BEFORE
    for refresh in ("refreshes_refresh_1", "refreshes_refresh_2"):
        assert_changed_on_day_d(histories[refresh], times)
        # the days before the change keep what the first backfill said
        for name, mrr in histories[refresh].items():
            assert {d: v for d, v in mrr.items() if d in before[name]} == before[name]


@pytest.mark.e2e
def test_a_refresh_keeps_the_webhooks_dating_of_the_item_discount_change(discount_histories):
    times, histories = discount_histories
    for stage in ("webhook_applied", "webhook_refresh_1", "webhook_refresh_2"):
        assert_changed_on_day_d(histories[stage], times)
    # the webhook's way ends where the refreshes' way does
    assert histories["webhook_refresh_2"] == histories["refreshes_refresh_2"]
