"""Issue 14: a subscription with more than ten items (Stripe embeds the first ten of
`subscription.items`, with `has_more`; the sync and the webhook's re-fetch page the rest from
`/v1/subscription_items?subscription=...`).

Sandbox -> real sync over HTTP -> real `dbt build` (and the real webhook applier, re-fetching
the subscription from the sandbox). One subscription of a small company, created 20 days ago:
12 items, one of each module add-on, quantity 1 (module n: $(3 + n)/month); the twelfth
(module12, $15) has its own FRIENDS100 discount (100% off forever). On day D (5 days ago), in the
middle of the period, the twelfth item goes to 3 seats (`proration_behavior=none`): a
`customer.subscription.updated` event. By hand (METRICS-SPEC "Monthly amount", "Discounts"):
- every day before D: gross $4 + $5 + ... + $15 = $114; net $114 - $15 = $99;
- day D (read at the end of the day) and every later day to today: gross $99 + 3 x $15 = $144,
  net $144 - 3 x $15 = $99 (its own 100% off follows the item's amount).
This must hold after a backfill run after D; after a backfill before D followed by refreshes;
and after a backfill before D, the events' webhooks (the subscription re-fetched and its items
paged) and refreshes. The item beyond the tenth is never missed, never dated at a sync.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal

import pytest

from sandbox.api import EMBEDDED_LIST_LIMIT
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import subscribe_priced
from tests.dbt.change_scenarios import (
    ChangeScenario,
    Timeline,
    register,
)
from tests.dbt.warehouses import query

API_KEY = "sk_test_many_items"
MODULES = range(1, 13)
BEFORE = (Decimal("114"), Decimal("99"))  # (gross, net)
AFTER = (Decimal("144"), Decimal("99"))


def twelve_item_subscription(company: Company, at: int) -> tuple[str, str]:
    """(subscription, its twelfth item) of the company's first USD customer."""
    customer = next(c for c in company.objects["customer"]
                    if not c.get("deleted") and c.get("currency") == "usd")
    sub = subscribe_priced(company, customer["id"],
                           [(f"module{n}_usd_month", 1) for n in MODULES], at,
                           item_coupons={len(MODULES) - 1: "FRIENDS100"})
    assert len(sub["items"]["data"]) == 12 > EMBEDDED_LIST_LIMIT
    assert [i["price"]["unit_amount"] for i in sub["items"]["data"]] == [
        300 + 100 * n for n in MODULES]
    return sub["id"], sub["items"]["data"][-1]["id"]


def change_twelfth_item(company: Company, sub_id: str, item_id: str, at: int) -> list[dict]:
    return company.change_item_quantity(sub_id, item_id, 3, at)


def mrr(home, subscription_id: str, project: str) -> dict[date, tuple[Decimal, Decimal]]:
    """The subscription's (gross, net) MRR in USD per day, from the mart."""
    return {day: (gross, net) for day, gross, net in query(
        home, "select metric_date, sum(gross_mrr_usd), sum(net_mrr_usd) "
        "from marts.fct_subscription_mrr_daily "
        "where project_id = ? and subscription_id = ? group by metric_date",
        [project, subscription_id])}


def assert_changed_on_day_d(history: dict[date, tuple[Decimal, Decimal]],
                            times: Timeline) -> None:
    change_day = times.day(times.removed)
    assert history[change_day - dt.timedelta(days=1)] == BEFORE
    assert history[change_day] == AFTER
    assert history[times.day(times.now + 60)] == AFTER
    assert {d: v for d, v in history.items() if d < change_day} == dict.fromkeys(
        (d for d in history if d < change_day), BEFORE)
    assert {d: v for d, v in history.items() if d >= change_day} == dict.fromkeys(
        (d for d in history if d >= change_day), AFTER)


def new_company(times: Timeline) -> tuple[Company, tuple[str, str]]:
    company = generate_company(CompanyConfig(customers=6, years=1, seed=15, now=times.now))
    return company, twelve_item_subscription(company, times.created)


TWELFTH_ITEM_CHANGE = register(ChangeScenario(
    API_KEY, new_company,
    change=lambda company, subjects, at: change_twelfth_item(company, *subjects, at),
    read=lambda home, subjects, project: mrr(home, subjects[0], project), refetch=True))


@pytest.fixture(scope="module")
def many_item_histories(change_histories, warehouse_kind):
    """{stage: {day: (gross, net)}}, from the session's shared warehouses
    (`times.removed` is day D)."""
    return change_histories(warehouse_kind, TWELFTH_ITEM_CHANGE)


@pytest.mark.e2e
def test_a_twelve_item_subscription_after_a_backfill(many_item_histories):
    times, histories = many_item_histories
    assert_changed_on_day_d(histories["backfill_after"], times)


@pytest.mark.e2e
def test_a_twelve_item_subscription_after_refreshes(many_item_histories):
    times, histories = many_item_histories
    before = histories["refreshes_before_change"]
    assert set(before.values()) == {BEFORE}
    for stage in ("refreshes_refresh_1", "refreshes_refresh_2"):
        assert_changed_on_day_d(histories[stage], times)
    assert histories["refreshes_refresh_2"] == histories["backfill_after"]


@pytest.mark.e2e
def test_a_twelve_item_subscription_after_webhooks_and_refreshes(many_item_histories):
    times, histories = many_item_histories
    for stage in ("webhook_applied", "webhook_refresh_1", "webhook_refresh_2"):
        assert_changed_on_day_d(histories[stage], times)
    assert histories["webhook_refresh_2"] == histories["backfill_after"]
