"""Issue 14 case 7: discounts removed before the 30-day event window, dated by the invoices.

Sandbox -> real sync over HTTP -> real `dbt build`. One subscription of a small company, created
80 days ago (monthly, renewed twice since, at R1 and R2): 10 seats of pro ($12/seat/month) with
the item's own LAUNCH25 (25% off for 3 months) plus 1 support ($9/month), and SAVE5 on the
whole subscription ($5 off a month for 6 months). The item's LAUNCH25 is removed 65 days ago
(between the first invoice and R1), SAVE5 40 days ago (between R1 and R2), both mid-period
without proration: their events are past Stripe's 30 days, no sync saw them happen, so the
only evidence is the next regular invoice, which no longer applies them. The rule
(docs/metrics-spec.md, "Discounts"): such a removal is dated at that invoice and flagged
estimated (it happened between the last invoice with the discount and it).

By hand, net MRR (USD), gross $129 on every day (METRICS-SPEC "Discounts": the item's own
discount first, then the subscription's on what is left):
- before R1 (first day, and the day before R1): 10 x $12 - 25% = $90, + $9 = $99, - $5 = $94;
- R1 .. the day before R2: $120 + $9 - $5 = $124;
- R2 .. today: $129.
After a backfill today, and after a refresh. The days each removal may have happened on (from
the last invoice with the discount to the next one: the first day to R2) are flagged
`is_estimated`; the later ones are not. Before this branch (read from its models, not run), a
backfill lost the item's discount from every day (only an id on the invoice lines) and kept
SAVE5 to its natural end: $124 before R1, $124 from R2. With the lines' discounts expanded but no
invoice dating, both ran to their natural ends: $94 on every day, today included (run on
2026-12-07, R1 2026-10-18, R2 2026-11-18: `{date(2026, 10, 18): Decimal('94.000000')} !=
{date(2026, 10, 18): Decimal('124')}`, `{date(2026, 12, 7): Decimal('94.000000')} !=
{date(2026, 12, 7): Decimal('129')}`, and no day flagged estimated).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import subscribe_priced
from sandbox.renewals import renew_until_now
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import PROJECT_ID, Timeline, net_mrr, sync_at

API_KEY = "sk_test_old_discount_removals"


def subscription_with_old_removals(company: Company, now: int) -> tuple[str, int, int]:
    """The subscription, its removals made as described above; returns it and R1, R2."""
    customer = next(c for c in company.objects["customer"]
                    if not c.get("deleted") and c.get("currency") == "usd")
    sub = subscribe_priced(company, customer["id"],
                           [("pro_usd_month", 10), ("support_usd_month", 1)], now - 80 * DAY,
                           item_coupons={0: "LAUNCH25"}, coupon="SAVE5")
    pro = sub["items"]["data"][0]["id"]
    renew_until_now(company, sub, until=now - 65 * DAY)
    company.replace_item_discounts(sub["id"], pro, now - 65 * DAY)
    renew_until_now(company, sub, until=now - 40 * DAY)
    company.replace_discounts(sub["id"], now - 40 * DAY)
    renew_until_now(company, sub)
    renewals = sorted(i["created"] for i in company.objects["invoice"]
                      if i["billing_reason"] == "subscription_cycle"
                      and i["parent"]["subscription_details"]["subscription"] == sub["id"])
    assert len(renewals) == 2
    return sub["id"], renewals[0], renewals[1]


def estimated_days(home, subscription_id: str) -> set[date]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {day for (day,) in con.execute(
            "select distinct metric_date from marts.fct_subscription_mrr_daily "
            "where project_id = ? and subscription_id = ? and is_estimated",
            [PROJECT_ID, subscription_id]).fetchall()}


@pytest.fixture(scope="module")
def old_removals(tmp_path_factory):
    """(times, R1, R2, {stage: {day: net MRR}}, estimated days after the backfill): after a
    backfill today, then a refresh."""
    times = Timeline()
    histories: dict[str, dict[date, Decimal]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        home = tmp_path_factory.mktemp("old_removals")
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        company = generate_company(CompanyConfig(customers=8, years=1, seed=16, now=times.now))
        sub_id, first, second = subscription_with_old_removals(company, times.now)
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_at(store, home, server.url, "backfill", None)
            build(home=home)
            histories["backfill"] = net_mrr(home, sub_id)
            flagged = estimated_days(home, sub_id)
            company.now = int(time.time())
            sync_at(store, home, server.url, "refresh", None)
            build(home=home)
            histories["refresh"] = net_mrr(home, sub_id)
    return times, times.day(first), times.day(second), histories, flagged


@pytest.mark.e2e
def test_discounts_removed_before_the_event_window_stop_at_the_next_invoice(old_removals):
    times, first, second, histories, _ = old_removals
    start, today, day = times.day(times.now - 80 * DAY), times.day(times.now + 60), timedelta(1)
    for stage, mrr in histories.items():
        checked = {start: mrr[start], first - day: mrr[first - day], first: mrr[first],
                   second - day: mrr[second - day], second: mrr[second], today: mrr[today]}
        assert checked == {start: Decimal("94"), first - day: Decimal("94"),
                           first: Decimal("124"), second - day: Decimal("124"),
                           second: Decimal("129"), today: Decimal("129")}, stage
        assert set(mrr.values()) == {Decimal("94"), Decimal("124"), Decimal("129")}, stage


@pytest.mark.e2e
def test_the_days_a_removal_may_have_happened_on_are_flagged_estimated(old_removals):
    times, _, second, histories, flagged = old_removals
    start = times.day(times.now - 80 * DAY)
    assert flagged == {d for d in histories["backfill"] if start <= d <= second}


@pytest.mark.e2e
def test_a_refresh_keeps_the_invoice_dating(old_removals):
    histories = old_removals[3]
    assert histories["refresh"] == histories["backfill"]
