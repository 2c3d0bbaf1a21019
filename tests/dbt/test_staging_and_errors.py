"""Stripe's own sample objects go through staging; a currency without a rate stops the build."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.transform import TransformError, build, run_dbt
from tests.dbt import raw_tables
from tests.locks import held_by_another_process
from tests.paths import STRIPE_FIXTURES

FIXTURES = STRIPE_FIXTURES
RAW_TABLE_FIXTURES = {
    "customers": "customer",
    "subscriptions": "subscription",
    "subscription_items": "subscription_item",
    "invoices": "invoice",
    "invoice_lines": "line_item",
    "charges": "charge",
    "refunds": "refund",
    "prices": "price",
    "products": "product",
    "coupons": "coupon",
    "events": "event",
}
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def load_fixture_objects(home: Path) -> dict:
    """Writes every fixtures3.json object of a raw table into a fresh warehouse."""
    resources = json.loads(FIXTURES.read_text())["resources"]
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
        for table, resource in RAW_TABLE_FIXTURES.items():
            raw_tables.insert_objects(con, table, "proj_fixtures", [resources[resource]], NOW)
        raw_tables.insert_subscription_version(con, "proj_fixtures", resources["subscription"], NOW)
        raw_tables.insert_sync_run(con, "proj_fixtures", datetime(2026, 11, 1, tzinfo=UTC), NOW)
    finally:
        con.close()
    return resources


@pytest.mark.skipif(not FIXTURES.exists(), reason="Stripe fixtures not on this machine")
def test_stripe_fixture_objects_go_through_staging(tmp_path):
    resources = load_fixture_objects(tmp_path)
    build(home=tmp_path, select="+staging")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        subscription = con.execute(
            "select subscription_id, customer_id, status, currency, is_cancel_at_period_end, "
            "pause_collection_behavior from staging.stg_stripe__subscriptions"
        ).fetchone()
        line = con.execute(
            "select invoice_id, is_proration, line_type, amount "
            "from staging.stg_stripe__invoice_lines"
        ).fetchone()
        item_price = con.execute(
            "select unit_amount, billing_interval from staging.stg_stripe__subscription_items"
        ).fetchone()
    finally:
        con.close()
    expected_sub = resources["subscription"]
    assert subscription == (
        expected_sub["id"], expected_sub["customer"], "active", "USD", True, "mark_uncollectible"
    )
    assert line == ("in_1Pgc6tB7WZ01zgkWu9fdqL6I", True, "invoiceitem", 10.0)
    assert item_price == (20.0, "month")


def test_unknown_currency_warns_naming_the_fix_and_builds(tmp_path, capsys):
    """A currency in no FX table (XTS) no longer stops the build (issue 15 case 6): the build
    warns, naming the currency and the file to edit, and the row's USD figure stays empty."""
    con = raw_tables.connect(tmp_path / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
        raw_tables.insert_objects(con, "charges", "proj_x", [{
            "id": "ch_xts", "object": "charge", "amount": 1000, "currency": "xts",
            "status": "succeeded", "captured": True, "created": int(NOW.timestamp()) - 3600,
        }], NOW)
        raw_tables.insert_sync_run(con, "proj_x", datetime(2026, 11, 20, tzinfo=UTC), NOW)
    finally:
        con.close()

    warnings = build(home=tmp_path)

    assert len(warnings) == 1
    assert warnings[0].startswith("project proj_x: no FX rate for XTS")
    assert "dbt_project/seeds/fx_rates_usd.csv" in warnings[0]
    assert f"warning: {warnings[0]}" in capsys.readouterr().err
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from stripe_raw.charges").fetchone()[0] == 1
        assert con.execute(
            "select revenue, revenue_usd from marts.fct_revenue_daily where currency = 'XTS'"
        ).fetchall() == [(Decimal("10"), None)]
    finally:
        con.close()


def test_docs_generate_works_offline(scenario_home, dbt_target_path):
    run_dbt(["docs", "generate"], home=scenario_home)
    target = dbt_target_path
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.stripe_warehouse.metrics_daily" in catalog["nodes"]
    assert (target / "index.html").exists()


def test_build_on_a_warehouse_held_by_another_process_names_the_fix(tmp_path):
    con = raw_tables.connect(tmp_path / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
    finally:
        con.close()
    with held_by_another_process(tmp_path / "warehouse.duckdb"), \
            pytest.raises(TransformError) as failure:
        build(home=tmp_path)
    assert str(failure.value) == (
        f"the warehouse {tmp_path / 'warehouse.duckdb'} is open in another process (a BI tool, "
        "the DuckDB CLI, dbt?): close it and run dbt build again; loaded data is kept (readers "
        "should open reporting.duckdb, which is never locked)")


def test_discount_of_a_coupon_not_loaded_warns_without_failing_the_build(tmp_path):
    # /v1/coupons does not list deleted coupons; their discounts still apply at Stripe
    created = int(NOW.timestamp()) - 86_400
    con = raw_tables.connect(tmp_path / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
        raw_tables.insert_objects(con, "subscriptions", "proj_x", [{
            "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
            "created": created, "start_date": created, "currency": "usd",
            "items": {"object": "list", "data": [], "has_more": False},
            "discounts": [{"id": "di_1", "object": "discount", "start": created, "end": None,
                           "subscription": "sub_1",
                           "source": {"type": "coupon", "coupon": "co_deleted"}}],
        }], NOW)
        raw_tables.insert_sync_run(con, "proj_x", datetime(2026, 11, 20, tzinfo=UTC), NOW)
    finally:
        con.close()

    build(home=tmp_path)

    target = Path(os.environ["DBT_TARGET_PATH"])
    results = json.loads((target / "run_results.json").read_text())["results"]
    [warning] = [r for r in results
                 if r["unique_id"].startswith("test.stripe_warehouse.warn_discounts_whose")]
    assert (warning["status"], warning["failures"]) == ("warn", 1)
