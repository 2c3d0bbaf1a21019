"""Items valued from their price through the full pipeline: sandbox -> real sync -> dbt build.

Issue 14 case 6 (package and tiered prices), the rest of case 7 (a subscription item's own
discounts) and issue 15 case 3 (a subscription billed in a currency option of its price).
Subscriptions of one small generated company, all started on day D = NOW - 6 days (the day
before D they do not exist yet); two of them change quantity on day D2 = NOW - 2 days (with
prorations, invoiced at once). By hand (METRICS-SPEC "Monthly amount"):

- PACK_MONTH, `seatpack_usd_month` ($10 per 5 seats, `round=up`), 12 seats: ceil(12 / 5) = 3
  packs -> $30 from D on (old code: 12 x $10 = $120);
- PACK_YEAR, `seatpack_usd_year` ($100 a year per 10 seats, `round=down`), 25 seats:
  floor(25 / 10) = 2 packs -> $200 a year -> $200 / 12 = $16.666667 (a millionth, half away
  from zero) from D on (old code: 25 x $100 / 12 = $208.333333);
- TEAM, `team_usd_month`, graduated: seats 1-5 $0 + $49 flat, 6-20 $9, beyond 20 $7. 12 seats
  from D: $49 + 7 x $9 = $112; 25 seats from D2: $49 + 15 x $9 + 5 x $7 = $219 (old code:
  the latest invoice line's $112 on every day);
- PLATFORM, `platform_usd_month`, volume: up to 10 $8 + $20, up to 50 $6 + $40, beyond $5.
  30 units from D: 30 x $6 + $40 = $220; 60 units from D2: 60 x $5 = $300 (old code: $220);
- ITEM_DISCOUNTS: 10 x $12 (pro, its own LAUNCH25: 25% off = $30) + $9 (support, its own
  SAVE5: $5 off a month) -> gross $129, discount $35, net $94 (old code: no discount);
- MIXED: 4 x $12 (pro) + $9 (support, its own FRIENDS100: 100% off = $9), and LAUNCH25 (25%)
  on the whole subscription, applied after the item's own discount as Stripe does: 25% of
  ($48 + $0) = $12 -> gross $57, discount $21, net $36 (old code: 25% of $57 = $14.25);
- INR, `global_usd_month` ($29 by default, `currency_options.inr` INR 1,999), billed in INR:
  gross INR 1,999, in USD 1,999 x the day's USD rate of INR (the shipped table: 0.0117 ->
  $23.3883) (old code: the default $29).

Checked on D - 1, D, D2 - 1, D2 and today, after a backfill run on NOW - 4 days followed by
the D2 changes and a refresh, and after a single backfill run today.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import new_customer, subscribe_priced
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "pricing"
API_KEY = "sk_test_price_valuation"
NOW = 1_780_000_000  # 2026-05-28 20:26:40 UTC
STARTED = NOW - 6 * DAY  # D
EARLY_BACKFILL = NOW - 4 * DAY
CHANGED = NOW - 2 * DAY  # D2
SCENARIOS = ("backfill_then_refresh", "backfill_today")

Money = tuple[str, Decimal, Decimal, Decimal, Decimal]  # currency, gross, discount, net, USD


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def checked_days() -> list[date]:
    started, changed = _day(STARTED), _day(CHANGED)
    return [started - timedelta(days=1), started, changed - timedelta(days=1), changed,
            _day(NOW)]


def priced_subscriptions(company: Company) -> dict[str, str]:
    """The scenario's subscriptions, started on D: {name: subscription id}."""
    customer = next(c for c in company.objects["customer"]
                    if not c.get("deleted") and c["currency"] == "usd")["id"]
    shapes = {
        "PACK_MONTH": dict(items=[("seatpack_usd_month", 12)]),
        "PACK_YEAR": dict(items=[("seatpack_usd_year", 25)]),
        "TEAM": dict(items=[("team_usd_month", 12)]),
        "PLATFORM": dict(items=[("platform_usd_month", 30)]),
        "ITEM_DISCOUNTS": dict(items=[("pro_usd_month", 10), ("support_usd_month", 1)],
                               item_coupons={0: "LAUNCH25", 1: "SAVE5"}),
        "MIXED": dict(items=[("pro_usd_month", 4), ("support_usd_month", 1)],
                      item_coupons={1: "FRIENDS100"}, coupon="LAUNCH25"),
    }
    subscriptions = {name: subscribe_priced(company, customer, at=STARTED, **shape)["id"]
                     for name, shape in shapes.items()}
    rupee_customer = new_customer(company, "inr", STARTED - 3600)["id"]
    subscriptions["INR"] = subscribe_priced(company, rupee_customer, [("global_usd_month", 1)],
                                            STARTED, currency="inr")["id"]
    return subscriptions


def change_quantities(company: Company, subscriptions: dict[str, str]) -> None:
    company.change_quantity(subscriptions["TEAM"], 25, CHANGED)
    company.change_quantity(subscriptions["PLATFORM"], 60, CHANGED)


def mrr_by_day(home: Path, subscriptions: dict[str, str]) -> dict[tuple[str, date], Money]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select subscription_id, metric_date, max(currency), sum(gross_mrr), "
            "sum(discount_mrr), sum(net_mrr), sum(gross_mrr_usd) "
            "from marts.fct_subscription_mrr_daily where project_id = ? "
            "and metric_date in (select unnest(?)) group by all",
            [PROJECT_ID, checked_days()]).fetchall()
    names = {sub_id: name for name, sub_id in subscriptions.items()}
    return {(names[sub], day): tuple(money) for sub, day, *money in rows if sub in names}


def usd_per_unit(home: Path, currency: str, day: date) -> Decimal:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select usd_per_unit from intermediate.int_fx_rates_daily "
            "where currency = ? and metric_date = ?", [currency, day]).fetchone()[0]


@pytest.fixture(scope="module")
def valuations(tmp_path_factory) -> Iterator[tuple[dict, dict]]:
    """{scenario: {(name, day): money}} and the INR rate of today, one warehouse a scenario."""
    histories: dict[str, dict[tuple[str, date], Money]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        for scenario in SCENARIOS:
            home = tmp_path_factory.mktemp(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company = generate_company(CompanyConfig(customers=4, years=1, seed=15, now=NOW))
            subscriptions = priced_subscriptions(company)
            with SandboxServer(accounts={API_KEY: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY)
                if scenario == "backfill_then_refresh":
                    sync_as_of(store, PROJECT_ID, home, server.url, "backfill", EARLY_BACKFILL)
                    build(home=home)
                    histories["early_backfill"] = mrr_by_day(home, subscriptions)
                    change_quantities(company, subscriptions)
                    sync_as_of(store, PROJECT_ID, home, server.url, "refresh", NOW)
                else:
                    change_quantities(company, subscriptions)
                    sync_as_of(store, PROJECT_ID, home, server.url, "backfill", NOW)
                build(home=home)
                histories[scenario] = mrr_by_day(home, subscriptions)
                rates = {day: usd_per_unit(home, "INR", day) for day in checked_days()[1:]}
    yield histories, rates


def usd(amount: str) -> tuple[str, Decimal, Decimal, Decimal, Decimal]:
    return ("USD", Decimal(amount), Decimal(0), Decimal(amount), Decimal(amount))


def expected_by_day(name: str) -> list[Money | None]:
    """The hand-computed figures (module docstring) on checked_days()."""
    before, started, changed_eve, changed, today = checked_days()
    constant = {
        "PACK_MONTH": usd("30"),
        "PACK_YEAR": usd("16.666667"),
        "ITEM_DISCOUNTS": ("USD", Decimal(129), Decimal(35), Decimal(94), Decimal(129)),
        "MIXED": ("USD", Decimal(57), Decimal(21), Decimal(36), Decimal(57)),
    }
    changing = {"TEAM": (usd("112"), usd("219")), "PLATFORM": (usd("220"), usd("300"))}
    if name in constant:
        return [None] + [constant[name]] * 4
    old, new = changing[name]
    return [None, old, old, new, new]


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", ["PACK_MONTH", "PACK_YEAR", "TEAM", "PLATFORM"])
def test_package_and_tiered_prices_are_valued_from_the_price(valuations, scenario, name):
    histories, _ = valuations
    for day, expected in zip(checked_days(), expected_by_day(name), strict=True):
        assert histories[scenario].get((name, day)) == expected, (name, day)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", ["ITEM_DISCOUNTS", "MIXED"])
def test_an_item_discount_applies_to_its_item_before_the_subscription_discount(
        valuations, scenario, name):
    histories, _ = valuations
    for day, expected in zip(checked_days(), expected_by_day(name), strict=True):
        assert histories[scenario].get((name, day)) == expected, (name, day)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_subscription_in_a_currency_option_is_valued_in_that_currency(valuations, scenario):
    histories, rates = valuations
    assert histories[scenario].get(("INR", checked_days()[0])) is None
    for day in checked_days()[1:]:
        in_usd = (Decimal(1999) * rates[day]).quantize(Decimal("0.000001"))
        assert histories[scenario][("INR", day)] == (
            "INR", Decimal(1999), Decimal(0), Decimal(1999), in_usd), day


@pytest.mark.e2e
def test_the_early_backfill_already_valued_the_days_before_the_change(valuations):
    """The refresh after D2 changes no day before D2 (history stability)."""
    histories, _ = valuations
    early, refreshed = histories["early_backfill"], histories["backfill_then_refresh"]
    before_change = [d for d in checked_days() if d <= _day(EARLY_BACKFILL)]
    assert {k: v for k, v in refreshed.items() if k[1] in before_change} == {
        k: v for k, v in early.items() if k[1] in before_change}
    assert len([k for k in early if k[1] in before_change]) == 7  # day D: all seven
