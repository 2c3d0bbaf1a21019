"""`dbt build` on the hand-built scenario publishes the figures computed by hand."""

from __future__ import annotations

import shutil
from decimal import Decimal

import duckdb

from stripe_warehouse.transform import build, run_dbt
from tests.dbt import scenario


def exactly(figure: float) -> Decimal:
    """A hand-computed figure (at most six decimals) as the exact DECIMAL the marts hold."""
    return Decimal(repr(figure))


def metric(con: duckdb.DuckDBPyConnection, name: str, day: str) -> Decimal:
    """One published value of metrics_daily."""
    rows = con.execute(
        "select value from marts.metrics_daily "
        "where project_id = ? and metric = ? and metric_date = cast(? as date)",
        [scenario.PROJECT_ID, name, day],
    ).fetchall()
    assert len(rows) == 1, f"{name} on {day}: {rows}"
    return rows[0][0]


def test_mrr_today_matches_hand_computed_figure(scenario_db):
    assert metric(scenario_db, "stripe_mrr", scenario.LAST_DAY) == exactly(
        scenario.EXPECTED_MRR_TODAY
    )
    assert metric(scenario_db, "stripe_arr", scenario.LAST_DAY) == 12 * exactly(
        scenario.EXPECTED_MRR_TODAY
    )


def test_past_day_shows_old_price_before_upgrade_and_canceled_subscription_before_request(
    scenario_db,
):
    for day, expected in scenario.EXPECTED_MRR_ON.items():
        assert metric(scenario_db, "stripe_mrr", day) == exactly(expected)


def test_active_subscriptions_customers_and_mrr_at_risk_today(scenario_db):
    assert metric(scenario_db, "stripe_active_subscriptions", scenario.LAST_DAY) == (
        scenario.EXPECTED_ACTIVE_SUBSCRIPTIONS_TODAY
    )
    assert metric(scenario_db, "stripe_customers", scenario.LAST_DAY) == (
        scenario.EXPECTED_CUSTOMERS_TODAY
    )
    at_risk = scenario_db.execute(
        "select mrr_at_risk from marts.fct_mrr_daily where metric_date = cast(? as date)",
        [scenario.LAST_DAY],
    ).fetchone()[0]
    assert at_risk == exactly(scenario.EXPECTED_MRR_AT_RISK_TODAY)


def test_revenue_counts_invoice_and_standalone_charge_once_minus_refund(scenario_db):
    for day, expected in scenario.EXPECTED_REVENUE.items():
        assert metric(scenario_db, "stripe_revenue", day) == exactly(expected)
    total = scenario_db.execute(
        "select sum(value) from marts.metrics_daily where metric = 'stripe_revenue'"
    ).fetchone()[0]
    assert total == sum(map(exactly, scenario.EXPECTED_REVENUE.values()))


def test_failed_payment_counted_once_on_its_day(scenario_db):
    for day, expected in scenario.EXPECTED_FAILED_PAYMENTS.items():
        assert metric(scenario_db, "stripe_failed_payments", day) == expected
    total = scenario_db.execute(
        "select sum(value) from marts.metrics_daily where metric = 'stripe_failed_payments'"
    ).fetchone()[0]
    assert total == sum(scenario.EXPECTED_FAILED_PAYMENTS.values())


def test_metrics_daily_has_six_metrics_for_every_day_of_the_window(scenario_db):
    days, rows, first, last = scenario_db.execute(
        "select count(distinct metric_date), count(*), min(metric_date), max(metric_date) "
        "from marts.metrics_daily"
    ).fetchone()
    assert str(first) == scenario.FIRST_DAY
    assert str(last) == scenario.LAST_DAY
    assert days == 91
    assert rows == 91 * 6


def test_schemas_are_exactly_staging_intermediate_and_marts(scenario_db):
    schemas = {
        row[0]
        for row in scenario_db.execute(
            "select distinct table_schema from information_schema.tables"
        ).fetchall()
    }
    assert schemas == {"stripe_raw", "staging", "intermediate", "marts"}


def test_mrr_movements_explain_the_upgrade_and_the_cancellation(scenario_db):
    rows = dict(
        scenario_db.execute(
            "select customer_id, expansion_mrr + churn_mrr from marts.fct_mrr_movements "
            "where metric_date = cast('2026-11-09' as date) and customer_id = 'cus_upgrade' "
            "union all "
            "select customer_id, churn_mrr from marts.fct_mrr_movements "
            "where metric_date = cast('2026-11-10' as date) and customer_id = 'cus_cancel_at_end'"
        ).fetchall()
    )
    assert rows == {"cus_upgrade": exactly(40.0), "cus_cancel_at_end": exactly(40.0)}


def test_every_rule_unit_test_passes(scenario_home):
    # the dbt unit tests (named after METRICS-SPEC rules) raise TransformError on any failure
    run_dbt(["test", "--select", "test_type:unit"], home=scenario_home)


def test_a_warehouse_built_before_paying_subscriptions_gets_it_on_every_day(
    scenario_home, tmp_path
):
    """An older release's fct_mrr_daily (no paying_subscriptions, $0 subscriptions left out of
    active_subscriptions) is rewritten whole by the next ordinary build: on the last day the
    scenario has 10 active subscriptions (sub_metered, $0, among them) and 9 paying ones, and
    no day is left null."""
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("alter table marts.fct_mrr_daily drop column paying_subscriptions")
        con.execute("update marts.fct_mrr_daily set active_subscriptions = 9 "
                    "where metric_date = cast(? as date)", [scenario.LAST_DAY])

    build(home=tmp_path)  # an ordinary build: no new sync, no --full-refresh

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        nulls = con.execute("select count(*) from marts.fct_mrr_daily "
                            "where paying_subscriptions is null").fetchone()[0]
        last = con.execute("select active_subscriptions, paying_subscriptions "
                           "from marts.fct_mrr_daily where metric_date = cast(? as date)",
                           [scenario.LAST_DAY]).fetchone()
    assert nulls == 0
    assert last == (scenario.EXPECTED_ACTIVE_SUBSCRIPTIONS_TODAY,
                    scenario.EXPECTED_PAYING_SUBSCRIPTIONS_TODAY)
