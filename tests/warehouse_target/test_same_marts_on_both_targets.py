"""The same sandbox company, synced over HTTP and built by dbt on DuckDB and on PostgreSQL, gives
the same rows in every model both warehouses hold (staging, intermediate and marts: metrics_daily,
fct_mrr_daily, fct_revenue_daily, ...), after the backfill and after a later refresh.

One session-scoped build per target (the PostgreSQL server: tests/conftest.py). The only model
that differs by design is int_fx_rates_ecb (a dbt Python model, DuckDB only): on PostgreSQL the
sync writes the same rates into stripe_raw.fx_rates_ecb, compared here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import load_metrics, marts_source
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.report import load_report_data
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import build
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.dbt.timed_sync import sync_as_of

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PROJECT_ID = "acme"
API_KEY = "sk_test_both_targets"
NOW = 1_790_000_000  # 2026-09-21 14:13:20 UTC: fixed, so that a failure replays
REFRESH_AT = NOW + 3 * 86_400 + 3_600
SCHEMAS = ("staging", "intermediate", "marts")
# the build's own time; the staged rows' change detection (each target hashes its own way)
IGNORED_COLUMNS = {"built_as_of", "content_hash"}
MARTS = ("metrics_daily", "fct_mrr_daily", "fct_revenue_daily", "fct_mrr_movements",
         "fct_mrr_movements_monthly", "fct_failed_payments_daily", "fct_subscription_mrr_daily",
         "dim_customers", "dim_subscriptions", "metrics_period_comparison",
         "fct_saas_metrics_monthly", "fct_cohort_retention", "fct_customer_retention_monthly",
         "time_spine_daily", "fct_mrr_by_segment_monthly", "fct_saas_metrics_daily")


def compared_company() -> Company:
    return generate_company(CompanyConfig(customers=120, seed=17, now=REFRESH_AT))


@pytest.fixture(scope="module")
def both_warehouses(tmp_path_factory, postgres_url) -> Iterator[tuple[Path, Path]]:
    """(DuckDB home, PostgreSQL home): one company backfilled at NOW, built, then refreshed
    three days later and built again (incremental) in each."""
    duck_home = tmp_path_factory.mktemp("duckdb_home")
    pg_home = tmp_path_factory.mktemp("postgres_home")
    WarehouseTarget.postgres(postgres_url).save(pg_home)
    company = compared_company()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        with SandboxServer(accounts={API_KEY: company}) as server:
            for home in (duck_home, pg_home):
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY)
                sync_as_of(store, PROJECT_ID, home, server.url, "backfill", NOW)
                build(home=home)
            for home in (duck_home, pg_home):
                store = ConnectionStore(home)
                sync_as_of(store, PROJECT_ID, home, server.url, "refresh", REFRESH_AT)
                build(home=home)
    yield duck_home, pg_home


def _canonical(value: Any, is_json: bool) -> Any:
    """A value as both drivers can agree on it: JSON parsed and re-serialised with sorted keys,
    decimals normalised (0.500000 == 0.5), lists as tuples."""
    if is_json:  # DuckDB: JSON text or a list of structs; psycopg2: parsed jsonb
        parsed = json.loads(value) if isinstance(value, str) else value
        return json.dumps(_exact_numbers(parsed), sort_keys=True)
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    if isinstance(value, list):
        return tuple(_canonical(item, False) for item in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _exact_numbers(value: Any) -> Any:
    """Numbers inside a JSON value as normalised decimal text (4900.000000000000 == 4900.0)."""
    if isinstance(value, dict):
        return {key: _exact_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact_numbers(item) for item in value]
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(Decimal(str(value)).normalize())
    return value


def _duckdb_relations(home: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(StateDir.of(home).warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name, data_type "
            "from information_schema.columns where table_schema in ? order by ordinal_position",
            [list(SCHEMAS)]).fetchall()
    return _by_relation(rows)


def _postgres_relations(target: WarehouseTarget) -> dict[str, list[tuple[str, str]]]:
    rows = target.fetch_all(
        "select table_schema || '.' || table_name, column_name, data_type "
        "from information_schema.columns where table_schema = any(%s) order by ordinal_position",
        [list(SCHEMAS)])
    return _by_relation(rows)


def _by_relation(rows: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for relation, column, data_type in rows:
        if column not in IGNORED_COLUMNS:
            found.setdefault(relation, []).append((column, data_type.lower()))
    return found


def _rows(fetch, relation: str, columns: list[tuple[str, str]],
          json_columns: set[str]) -> list[tuple]:
    select = ", ".join(f'"{name}"' for name, _ in columns)
    rows = fetch(f"select {select} from {relation}")
    canonical = [tuple(_canonical(value, name in json_columns)
                       for (name, _), value in zip(columns, row, strict=True)) for row in rows]
    return sorted(canonical, key=repr)


def test_the_compared_company_carries_the_shapes_of_the_extended_scenarios() -> None:
    """`make test` leaves the scenario modules' PostgreSQL variants to `make test-extended`
    (tests/scheduling.py EXTENDED_UNITS): their shapes reach PostgreSQL in `make test` through
    this comparison, so the company compared here must carry each of them (seed 17 has 4 bank
    debits, 3 invoices paid out of band, 3 credit notes, 1 tax-inclusive price, 2 graduated +
    1 volume + 2 package prices, 4 removed add-ons, 1 pending proration, 1 discount change, 1
    deleted coupon). Lost disputes are not among them: they
    reach PostgreSQL only in `make test-extended` (test_collected_revenue)."""
    company = compared_company()
    objects = company.objects
    prices = objects["price"]
    shapes = {
        "bank debits": sum(1 for charge in objects["charge"]
                           if (charge.get("payment_method_details") or {}).get("type")
                           == "us_bank_account"),
        "paid out of band": sum(1 for invoice in objects["invoice"]
                                if invoice.get("paid_out_of_band")),
        "credit notes": len(objects["credit_note"]),
        "tax-inclusive prices": sum(1 for p in prices if p.get("tax_behavior") == "inclusive"),
        "graduated prices": sum(1 for p in prices if p.get("tiers_mode") == "graduated"),
        "volume prices": sum(1 for p in prices if p.get("tiers_mode") == "volume"),
        "package prices": sum(1 for p in prices if p.get("transform_quantity")),
        "removed add-ons": len(company.removed_items),
        "pending prorations": len(company.pending_prorations),
        "discount changes": len(company.discount_changes),
        "deleted coupons": len(company.deleted_coupons),
    }
    assert [shape for shape, count in shapes.items() if count == 0] == []


def test_every_model_has_the_same_rows_on_duckdb_and_postgres(both_warehouses):
    duck_home, pg_home = both_warehouses
    target = StateDir.of(pg_home).target
    duck_relations = _duckdb_relations(duck_home)
    pg_relations = _postgres_relations(target)
    # every model but the DuckDB-only Python model is on both sides
    assert set(duck_relations) - set(pg_relations) == {"intermediate.int_fx_rates_ecb"}
    assert set(pg_relations) == set(duck_relations) - {"intermediate.int_fx_rates_ecb"}

    con = duckdb.connect(str(StateDir.of(duck_home).warehouse), read_only=True)
    try:
        differences, counts = [], {}
        for relation, pg_columns in sorted(pg_relations.items()):
            duck_columns = duck_relations[relation]
            assert [name for name, _ in duck_columns] == [name for name, _ in pg_columns], relation
            json_columns = {name for name, kind in duck_columns
                            if kind == "json" or kind.startswith("struct")} | {
                name for name, kind in pg_columns if kind in ("json", "jsonb")}
            duck_rows = _rows(lambda sql: con.execute(sql).fetchall(), relation, duck_columns,
                              json_columns)
            pg_rows = _rows(target.fetch_all, relation, pg_columns, json_columns)
            counts[relation] = len(duck_rows)
            if duck_rows != pg_rows:
                only_duck = [row for row in duck_rows if row not in pg_rows][:3]
                only_pg = [row for row in pg_rows if row not in duck_rows][:3]
                differences.append(f"{relation}: duckdb {len(duck_rows)} rows, postgres "
                                   f"{len(pg_rows)}; only duckdb {only_duck}; only pg {only_pg}")
        # not a comparison of empty tables: the marts hold the company's days and figures
        for mart in MARTS:
            assert counts[f"marts.{mart}"] > 0, mart
        assert not differences, "\n".join(differences)

        mrr_today = con.execute(
            "select value from marts.metrics_daily where metric = 'stripe_mrr' "
            "and metric_date = ?", [datetime.fromtimestamp(REFRESH_AT, UTC).date()]).fetchone()
        assert mrr_today is not None and mrr_today[0] > 0
    finally:
        con.close()


def test_postgres_ecb_rates_equal_the_duckdb_python_model(both_warehouses):
    duck_home, pg_home = both_warehouses
    with duckdb.connect(str(StateDir.of(duck_home).warehouse), read_only=True) as con:
        duck_rates = con.execute(
            "select currency, rate_date, usd_per_unit, source from intermediate.int_fx_rates_ecb "
            "order by currency, rate_date").fetchall()
    pg_rates = StateDir.of(pg_home).target.fetch_all(
        "select currency, rate_date, usd_per_unit, source from stripe_raw.fx_rates_ecb "
        "order by currency, rate_date")
    assert len(duck_rates) > 200_000
    assert pg_rates == duck_rates


def test_postgres_build_publishes_no_duckdb_copy(both_warehouses):
    _, pg_home = both_warehouses
    assert not (pg_home / "warehouse.duckdb").exists()
    assert not (pg_home / "reporting.duckdb").exists()


def test_readers_give_the_same_metrics_and_report_on_both_targets(both_warehouses):
    """`stripe-warehouse metrics` and `report` read the server of a PostgreSQL warehouse (no
    published copy there) and show the same figures as the DuckDB warehouse's published copy."""
    duck_home, pg_home = both_warehouses
    assert marts_source(duck_home) == duck_home / "reporting.duckdb"
    assert marts_source(pg_home) == StateDir.of(pg_home).target
    duck_day, duck_values = load_metrics(marts_source(duck_home), PROJECT_ID)
    pg_day, pg_values = load_metrics(marts_source(pg_home), PROJECT_ID)
    assert duck_day == pg_day == datetime.fromtimestamp(REFRESH_AT, UTC).date()
    assert len(duck_values) == 6
    assert pg_values == duck_values
    duck_report = load_report_data(marts_source(duck_home), PROJECT_ID)
    pg_report = load_report_data(marts_source(pg_home), PROJECT_ID)
    assert duck_report.movement_months and pg_report == duck_report


def test_an_unreachable_server_is_a_one_line_error(tmp_path):
    WarehouseTarget.postgres("postgresql://warehouse:x@127.0.0.1:9/warehouse").save(tmp_path)
    with pytest.raises(WarehouseError) as raised:
        load_metrics(marts_source(tmp_path), PROJECT_ID)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("cannot read the marts from the PostgreSQL warehouse (")
    assert "warehouse_target.json" in message
