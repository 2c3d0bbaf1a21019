"""Issue 14 case 7: a removed subscription discount made from a coupon deleted since.

Sandbox -> real sync over HTTP -> real `dbt build` (and the real webhook applier, re-fetching).
Subscriptions of a small company, the first two 10 seats of pro ($12/seat/month) plus 1 support
($9/month), gross $129 on every day, with FOREVER20 (20% off, forever) on the whole
subscription. The merchant deletes FOREVER20 after both redeemed it, 35 days ago: /v1/coupons
no longer lists it, retrieving it is a 404 and its `coupon.deleted` event is past Stripe's 30
days, so its terms are on the discounts only.
- `old`: created 80 days ago (renewed at R1 and R2 since); FOREVER20 removed 40 days ago,
  between R1 and R2, mid-period. Its event is past Stripe's 30 days: the rule
  (docs/metrics-spec.md, "Discounts") dates the removal at the next regular invoice, R2.
- `replaced`: created 45 days ago (renewed 15 days ago); FOREVER20 replaced by SAVE5 ($5 off
  a month for 6 months) on day D, 5 days ago. Its `customer.subscription.updated` event holds
  the removed discount's id only (`previous_attributes.discounts`, never expanded).
- `annual` (issue 14 leftover: a removal with no regular invoice since): 10 seats of pro
  yearly ($120/seat/year, $100 a month), created 60 days ago with FOREVER20, removed 50 days
  ago inside its first year: the event is past the 30 days and no regular invoice came since,
  so nothing Stripe keeps dates it. The rule dates it at the first sync that saw the
  subscription without it, **estimated**: the days from the last invoice with it (its first)
  to that sync carry `is_estimated`. $100 - 20% = $80 to the day before the first sync, $100
  from it (the truth, $100 from 50 days ago, is inside the flagged days). A refresh does not
  move it; a first backfill 8 days ago dates it there.
After the removal no read of the subscription shows the discount; its invoices do, and the sync
now expands their discounts' coupon (`data.discounts.source.coupon`, four levels), so the
terms of a deleted coupon are read there.

By hand, net MRR (USD):
- `old`: the first day .. R2 - 1: $129 - 20% ($25.80) = $103.20; R2 .. today: $129;
- `replaced`: the first day .. D - 1: $103.20; D .. today: $129 - $5 = $124.
After a backfill today and a refresh after it; and (`replaced`) after a backfill 8 days ago,
the change's webhook applied (the subscription re-fetched) and a refresh.
Before the fix (invoices' discounts expanded, their coupon an id: no terms for a deleted
coupon), run on 2026-12-07 (R2 2026-11-18, D 2026-12-02), a backfill after the removal lost
FOREVER20 from every day before it: `backfill_after old 2026-09-18: 129.00` and
`... old 2026-11-17: 129.00` (expected 103.20), `backfill_after replaced 2026-12-01: 129.00`
(expected 103.20), the same after the refresh; the webhook warehouse (backfilled before D, when
the subscription itself still showed the discount with its coupon) had `replaced` right and
`old` wrong.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from pipelines.webhooks_apply import apply_inbox
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import subscribe_priced
from sandbox.renewals import renew_until_now
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import PROJECT_ID, Timeline, net_mrr, sync_at
from tests.dbt.test_old_discount_removals import estimated_days

API_KEY = "sk_test_deleted_coupon_discounts"
DELETED = "FOREVER20"
ITEMS = [("pro_usd_month", 10), ("support_usd_month", 1)]
DISCOUNTED, GROSS, REPLACED = Decimal("103.2"), Decimal("129"), Decimal("124")
ANNUAL = [("pro_usd_year", 10)]
ANNUAL_DISCOUNTED, ANNUAL_GROSS = Decimal("80"), Decimal("100")


class Shapes:
    """The three subscriptions and their moments (unix seconds)."""

    def __init__(self, company: Company, times: Timeline) -> None:
        usd = [c for c in company.objects["customer"]
               if not c.get("deleted") and c.get("currency") == "usd"]
        self.times = times
        self.replaced_start = times.now - 45 * DAY
        self.annual_start = times.now - 60 * DAY
        # in time order: both redeem FOREVER20, `old` loses it, the coupon is deleted
        old = subscribe_priced(company, usd[0]["id"], ITEMS, times.now - 80 * DAY,
                               coupon=DELETED)
        renew_until_now(company, old, until=self.annual_start)
        annual = subscribe_priced(company, usd[2]["id"], ANNUAL, self.annual_start,
                                  coupon=DELETED)
        renew_until_now(company, old, until=times.now - 50 * DAY)
        company.replace_discounts(annual["id"], times.now - 50 * DAY)
        renew_until_now(company, old, until=self.replaced_start)
        replaced = subscribe_priced(company, usd[1]["id"], ITEMS, self.replaced_start,
                                    coupon=DELETED)
        self.old, self.replaced, self.annual = old["id"], replaced["id"], annual["id"]
        renew_until_now(company, old, until=times.now - 40 * DAY)
        company.replace_discounts(old["id"], times.now - 40 * DAY)
        company.delete_coupon(DELETED, times.now - 35 * DAY)
        renew_until_now(company, old)
        renew_until_now(company, replaced)
        self.renewals = sorted(
            i["created"] for i in company.objects["invoice"]
            if i["billing_reason"] == "subscription_cycle"
            and i["parent"]["subscription_details"]["subscription"] == old["id"])
        assert len(self.renewals) == 2

    def replace(self, company: Company) -> list[dict]:
        """Day D's change (its events)."""
        return company.replace_discounts(self.replaced, self.times.removed, "SAVE5")

    def checked(self, stage: str, mrr: dict[str, dict[date, Decimal]]) -> str:
        """The days checked of each subscription's history, and their values (as text, so
        that a failure prints them whole)."""
        day, one = self.times.day, timedelta(days=1)
        first, r2, change, today = (day(self.times.now - 80 * DAY), day(self.renewals[1]),
                                    day(self.times.removed), day(self.times.now + 60))
        old, replaced = mrr["old"], mrr["replaced"]
        return _text({stage: {
            "old": {first: old[first], r2 - one: old[r2 - one], r2: old[r2], today: old[today]},
            "replaced": {day(self.replaced_start): replaced[day(self.replaced_start)],
                         change - one: replaced[change - one], change: replaced[change],
                         today: replaced[today]},
        }})

    def expected(self, stage: str) -> str:
        day, one = self.times.day, timedelta(days=1)
        first, r2, change, today = (day(self.times.now - 80 * DAY), day(self.renewals[1]),
                                    day(self.times.removed), day(self.times.now + 60))
        return _text({stage: {
            "old": {first: DISCOUNTED, r2 - one: DISCOUNTED, r2: GROSS, today: GROSS},
            "replaced": {day(self.replaced_start): DISCOUNTED, change - one: DISCOUNTED,
                         change: REPLACED, today: REPLACED},
        }})


    def annual_days(self, stage: str, mrr: dict[date, Decimal], synced: int) -> tuple[str, str]:
        """(checked, expected) days of `annual`, whose removal is dated at `synced`, the first
        sync's moment (no evidence between the last invoice with the discount and it)."""
        day, one = self.times.day, timedelta(days=1)
        start, removal, seen, today = (day(self.annual_start), day(self.times.now - 50 * DAY),
                                       day(synced), day(self.times.now + 60))
        days = (start, removal, seen - one, seen, today)
        return (_text({stage: {"annual": {d: mrr[d] for d in days}}}),
                _text({stage: {"annual": {start: ANNUAL_DISCOUNTED, removal: ANNUAL_DISCOUNTED,
                                          seen - one: ANNUAL_DISCOUNTED, seen: ANNUAL_GROSS,
                                          today: ANNUAL_GROSS}}}))


def _text(checked: dict) -> str:
    return "\n".join(f"{stage} {name} {day}: {value:.2f}" for stage, names in checked.items()
                     for name, days in names.items() for day, value in days.items())


@pytest.fixture(scope="module")
def deleted_coupon_histories(tmp_path_factory):
    """(shapes, {stage: {name: {day: net MRR}}}, {warehouse: its first sync's moment},
    {warehouse: days of `annual` flagged estimated}): one warehouse backfilled today then
    refreshed; one backfilled before D, given D's webhook, then refreshed."""
    times = Timeline()
    histories: dict[str, dict[str, dict[date, Decimal]]] = {}
    first_syncs: dict[str, int] = {}
    flagged: dict[str, set[date]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        for scenario in ("backfill_after", "webhook"):
            home = tmp_path_factory.mktemp(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company = generate_company(CompanyConfig(customers=8, years=1, seed=16,
                                                     now=times.now))
            shapes = Shapes(company, times)

            def read(shapes=shapes, home=home) -> dict[str, dict[date, Decimal]]:
                return {"old": net_mrr(home, shapes.old),
                        "replaced": net_mrr(home, shapes.replaced),
                        "annual": net_mrr(home, shapes.annual)}

            with SandboxServer(accounts={API_KEY: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY,
                              webhook_secret="whsec_deleted_coupon_0123456789")
                if scenario == "backfill_after":
                    shapes.replace(company)
                    first_syncs[scenario] = int(time.time())
                    sync_at(store, home, server.url, "backfill", None)
                else:
                    first_syncs[scenario] = times.early_backfill
                    sync_at(store, home, server.url, "backfill", times.early_backfill)
                    events = shapes.replace(company)
                    with Inbox(home) as inbox:
                        for event in events:
                            inbox.store(PROJECT_ID, event)
                    applied = apply_inbox(home, api_base=server.url)
                    assert applied.failed == applied.stale == 0
                build(home=home)
                histories[scenario] = read()
                flagged[scenario] = estimated_days(home, shapes.annual)
                company.now = int(time.time())
                sync_at(store, home, server.url, "refresh", None)
                build(home=home)
                histories[f"{scenario}_refresh"] = read()
    return shapes, histories, first_syncs, flagged


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["backfill_after", "backfill_after_refresh"])
def test_a_removed_discount_of_a_deleted_coupon_counts_until_its_removal(
        deleted_coupon_histories, stage):
    shapes, histories, _, _ = deleted_coupon_histories
    assert shapes.checked(stage, histories[stage]) == shapes.expected(stage)


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["webhook", "webhook_refresh"])
def test_a_webhook_and_a_refresh_keep_the_deleted_coupons_discount_until_its_removal(
        deleted_coupon_histories, stage):
    shapes, histories, _, _ = deleted_coupon_histories
    assert shapes.checked(stage, histories[stage]) == shapes.expected(stage)


@pytest.mark.e2e
def test_every_day_has_one_of_the_hand_computed_values(deleted_coupon_histories):
    histories = deleted_coupon_histories[1]
    for stage, mrr in histories.items():
        assert set(mrr["old"].values()) == {DISCOUNTED, GROSS}, stage
        assert set(mrr["replaced"].values()) == {DISCOUNTED, REPLACED}, stage
        assert set(mrr["annual"].values()) == {ANNUAL_DISCOUNTED, ANNUAL_GROSS}, stage
    # the refresh changes no day
    assert histories["backfill_after_refresh"] == histories["backfill_after"]
    assert histories["webhook_refresh"]["replaced"] == histories["backfill_after"]["replaced"]


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["backfill_after", "backfill_after_refresh", "webhook",
                                   "webhook_refresh"])
def test_a_removal_with_no_invoice_since_is_dated_at_the_first_sync_without_it(
        deleted_coupon_histories, stage):
    shapes, histories, first_syncs, _ = deleted_coupon_histories
    synced = first_syncs[stage.removesuffix("_refresh")]
    checked, expected = shapes.annual_days(stage, histories[stage]["annual"], synced)
    assert checked == expected


@pytest.mark.e2e
def test_the_days_a_removal_with_no_invoice_since_may_have_happened_on_are_flagged(
        deleted_coupon_histories):
    shapes, histories, first_syncs, flagged = deleted_coupon_histories
    for warehouse, days in flagged.items():
        start, seen = shapes.times.day(shapes.annual_start), shapes.times.day(
            first_syncs[warehouse])
        assert days == {d for d in histories[warehouse]["annual"] if start <= d <= seen}, (
            warehouse)
