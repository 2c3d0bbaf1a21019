"""Issue 15 case 2: tax never enters MRR; revenue is offered gross and net of tax.

Sandbox -> real sync over HTTP -> real `dbt build`. Two EU customers subscribe on day D (5 days
ago) with German VAT (19%), set as the subscription's `default_tax_rates`:
- INCLUSIVE: 1 x EUR 119 a month, the price VAT-inclusive (`tax_behavior=inclusive`): the
  invoice line is 119.00 with `taxes[]` = [19.00 inclusive, taxable 100.00]; paid 119.00;
- EXCLUSIVE: 10 seats x EUR 11 a month, VAT on top: line 110.00, tax 20.90 exclusive; paid
  130.90.
On day D+2 half of INCLUSIVE's payment is refunded: EUR 59.50, of which 19/119 is VAT = 9.50.

By hand (METRICS-SPEC "Monthly amount", "excluding tax"; `stripe_revenue` is gross):
- MRR, EUR: INCLUSIVE 100.00 (not 119), EXCLUSIVE 110.00 (not 130.90), on D and every day after
  (today included); no row on D-1 (neither existed);
- fct_revenue_daily, EUR (revenue gross / tax / revenue excluding tax):
  D:   119.00 + 130.90 = 249.90 / 19.00 + 20.90 = 39.90 / 210.00;
  D+1: no row;
  D+2: -59.50 / -9.50 / -50.00.
Both after a backfill run after D (then a refresh) and after a backfill run before D followed
by refreshes. The company's other customers bill in no EUR (asserted), so these are all of
its EUR figures.
"""

from __future__ import annotations

import datetime as dt
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sandbox.billing import refund_charge
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from sandbox.taxes import new_eu_customer, subscribe_with_vat
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import PROJECT_ID, sync_at
from tests.dbt.test_item_removal import API_KEY
from tests.dbt.warehouses import reading_warehouse


class Timeline:
    """The scenario's moments (unix seconds) and days."""

    def __init__(self) -> None:
        self.now = int(time.time()) - 60
        self.signed_up = self.now - 20 * DAY
        # a refresh reads the last 7 days: the gap between the two syncs stays within them
        self.early_backfill = self.now - 6 * DAY  # before the subscriptions
        self.subscribed = self.now - 5 * DAY  # day D
        self.refunded = self.subscribed + 2 * DAY  # day D+2

    def day(self, ts: int, plus: int = 0) -> date:
        return datetime.fromtimestamp(ts, UTC).date() + dt.timedelta(days=plus)


def subscribe(company: Company, times: Timeline, customers: tuple[str, str]) -> tuple[str, str]:
    """INCLUSIVE (1 x EUR 119 VAT included) and EXCLUSIVE (10 x EUR 11 + VAT) on day D."""
    inclusive = subscribe_with_vat(company, customers[0], times.subscribed, inclusive=True)
    exclusive = subscribe_with_vat(company, customers[1], times.subscribed, inclusive=False,
                                   quantity=10)
    return inclusive["id"], exclusive["id"]


def refund_half(company: Company, times: Timeline, subscription_id: str) -> None:
    """Refund EUR 59.50 of the subscription's first payment on day D+2."""
    invoice = company.get("invoice", company.get("subscription", subscription_id)["latest_invoice"])
    charge = company.get("charge", invoice["payments"]["data"][0]["payment"]["charge"])
    refund_charge(company, charge, 5950, times.refunded)


def read_marts(home, subscription_ids: tuple[str, str]) -> dict:
    """{(subscription, day): (gross MRR, net MRR)} and {day: (revenue, tax, excluding tax)}."""
    with reading_warehouse(home) as con:
        mrr = {(sub, day): (gross, net) for sub, day, gross, net in con.execute(
            "select subscription_id, metric_date, sum(gross_mrr), sum(net_mrr) "
            "from marts.fct_subscription_mrr_daily where subscription_id in (?, ?) "
            "group by subscription_id, metric_date", list(subscription_ids)).fetchall()}
        estimated = con.execute(
            "select count(*) from marts.fct_subscription_mrr_daily "
            "where subscription_id in (?, ?) and is_estimated", list(subscription_ids)
        ).fetchone()[0]
        cursor = con.execute("select * from marts.fct_revenue_daily where currency = 'EUR'")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    # .get: a warehouse without the tax columns shows None, not an error
    revenue = {row["metric_date"]: (row["revenue"], row.get("tax_amount"),
                                    row.get("revenue_excluding_tax")) for row in rows}
    return {"mrr": mrr, "revenue": revenue, "estimated_days": estimated}


@pytest.fixture(scope="module")
def taxed_marts(new_home):
    """The marts' figures, per scenario: {scenario: read_marts(...)}."""
    times = Timeline()
    marts: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        for scenario in ("backfill_after", "backfill_before"):
            home = new_home(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company = generate_company(CompanyConfig(customers=3, years=1, seed=15,
                                                     now=times.now))
            assert "eur" not in {inv["currency"] for inv in company.objects["invoice"]}
            customers = tuple(new_eu_customer(company, times.signed_up)["id"] for _ in range(2))
            with SandboxServer(accounts={API_KEY: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY)
                if scenario == "backfill_before":
                    sync_at(store, home, server.url, "backfill", times.early_backfill)
                    build(home=home)
                subs = subscribe(company, times, customers)
                refund_half(company, times, subs[0])
                marts["subscriptions"] = subs
                kinds = ["backfill", "refresh"] if scenario == "backfill_after" else [
                    "refresh", "refresh"]
                for n, kind in enumerate(kinds, start=1):
                    sync_at(store, home, server.url, kind, None)
                    build(home=home)
                    marts[f"{scenario}_{n}"] = read_marts(home, subs)
    return times, marts


BUILDS = ("backfill_after_1", "backfill_after_2", "backfill_before_1", "backfill_before_2")


@pytest.mark.e2e
@pytest.mark.parametrize("build_name", BUILDS)
def test_tax_inclusive_price_counts_its_amount_excluding_tax_in_mrr(taxed_marts, build_name):
    """EUR 119 a month VAT included is MRR EUR 100 on D and today; nothing on D-1."""
    times, marts = taxed_marts
    inclusive, _ = marts["subscriptions"]
    mrr = marts[build_name]["mrr"]
    assert (inclusive, times.day(times.subscribed, -1)) not in mrr
    for day in (times.day(times.subscribed), times.day(times.refunded), times.day(times.now)):
        assert mrr[(inclusive, day)] == (Decimal("100"), Decimal("100")), day
    # every day is exact: the invoice line, then the same price and quantity listed since
    assert marts[build_name]["estimated_days"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("build_name", BUILDS)
def test_tax_exclusive_tax_never_enters_mrr(taxed_marts, build_name):
    """10 seats x EUR 11 + 19% VAT is MRR EUR 110 (the customer pays 130.90)."""
    times, marts = taxed_marts
    _, exclusive = marts["subscriptions"]
    mrr = marts[build_name]["mrr"]
    assert (exclusive, times.day(times.subscribed, -1)) not in mrr
    for day in (times.day(times.subscribed), times.day(times.now)):
        assert mrr[(exclusive, day)] == (Decimal("110"), Decimal("110")), day


@pytest.mark.e2e
@pytest.mark.parametrize("build_name", BUILDS)
def test_revenue_is_offered_gross_and_net_of_tax_and_refunds_return_their_tax(
        taxed_marts, build_name):
    """D: 249.90 collected, 39.90 of it VAT; D+2: the EUR 59.50 refund returns 9.50 of VAT."""
    times, marts = taxed_marts
    revenue = marts[build_name]["revenue"]
    assert revenue == {
        times.day(times.subscribed): (Decimal("249.9"), Decimal("39.9"), Decimal("210")),
        times.day(times.refunded): (Decimal("-59.5"), Decimal("-9.5"), Decimal("-50")),
    }
