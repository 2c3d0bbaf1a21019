"""Money in the marts is DECIMAL, identical build to build, and the movement identities hold
exactly (issue 20, point 11: MRR once differed in its last digits between identical runs)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.transform import TransformError, build, run_dbt
from tests.dbt import rounding_scenario

MONEY = "DECIMAL(38,6)"
# every money column of the marts (USD or original currency), by relation
MONEY_COLUMNS = {
    "metrics_daily": ["value"],
    "fct_mrr_daily": ["mrr", "arr", "mrr_at_risk"],
    "fct_subscription_mrr_daily": ["gross_mrr", "discount_mrr", "net_mrr", "gross_mrr_usd",
                                   "discount_mrr_usd", "net_mrr_usd"],
    "fct_mrr_movements": ["opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr",
                          "contraction_mrr", "churn_mrr", "fx_mrr", "closing_mrr"],
    "fct_mrr_movements_monthly": ["opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr",
                                  "contraction_mrr", "churn_mrr", "fx_mrr", "closing_mrr"],
    "fct_revenue_daily": ["invoice_payments", "standalone_charges", "refunds", "dispute_losses",
                          "paid_out_of_band", "revenue", "revenue_usd"],
    "fct_failed_payments_daily": ["failed_amount", "failed_amount_usd"],
    "dim_customers": ["current_mrr"],
    "dim_subscriptions": ["current_gross_mrr", "current_discount_mrr", "current_net_mrr",
                          "current_mrr_usd"],
    "metrics_period_comparison": ["value", "previous_value", "change"],
    "fct_saas_metrics_monthly": ["opening_mrr", "closing_mrr", "arpa", "ltv"],
    "fct_saas_metrics_daily": ["mrr", "arpa", "base_mrr_30d", "new_mrr_30d", "expansion_mrr_30d",
                               "reactivation_mrr_30d", "contraction_mrr_30d", "churn_mrr_30d"],
    "fct_cohort_retention": ["cohort_starting_mrr", "retained_mrr"],
    "fct_customer_retention_monthly": ["opening_mrr", "closing_mrr", "net_retained_mrr_1m",
                                       "gross_retained_mrr_1m"],
    "fct_mrr_by_segment_monthly": ["opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr",
                                   "contraction_mrr", "churn_mrr", "fx_mrr", "closing_mrr",
                                   "arpa"],
}
DAILY_MRR = "select metric_date, mrr from marts.fct_mrr_daily order by metric_date"
MOVEMENTS = "new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr + fx_mrr"


def column_types(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """(relation, column) -> type of every column in the marts schema."""
    return {(table, column): data_type for table, column, data_type in con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' order by table_name, ordinal_position"
    ).fetchall()}


def every_mart(home: Path) -> dict[str, list[tuple]]:
    """Every row of every mart (tables and views), in a stable order, without `built_as_of`
    (it names the sync a row was last rebuilt from, which differs by design)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        columns: dict[str, list[str]] = {}
        for (mart, column) in column_types(con):
            if column != "built_as_of":
                columns.setdefault(mart, []).append(column)
        return {mart: con.execute(
            f"select {', '.join(names)} from marts.{mart} order by all"
        ).fetchall() for mart, names in columns.items()}


@pytest.fixture(scope="module")
def rounding_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The same account built two ways: a full build then a refresh's incremental build, and
    one full build of the refreshed account."""
    refreshed_later = tmp_path_factory.mktemp("built_then_refreshed")
    rounding_scenario.build_rounding_scenario(refreshed_later)
    build(home=refreshed_later)
    rounding_scenario.add_refresh(refreshed_later)
    build(home=refreshed_later)
    built_once = tmp_path_factory.mktemp("built_once")
    rounding_scenario.build_rounding_scenario(built_once, refreshed=True)
    build(home=built_once)
    yield refreshed_later, built_once


def test_money_columns_of_the_marts_are_decimal_and_no_mart_holds_a_float(scenario_db):
    types = column_types(scenario_db)
    money = {(mart, column): types.get((mart, column))
             for mart, columns in MONEY_COLUMNS.items() for column in columns}
    assert money == dict.fromkeys(money, MONEY)
    floats = {key: data_type for key, data_type in types.items()
              if data_type in ("DOUBLE", "FLOAT", "REAL")}
    # a growth rate is a ratio, not money
    assert floats == {("metrics_period_comparison", "growth_rate"): "DOUBLE"}


def test_a_refresh_build_and_a_full_build_give_bit_identical_money_in_every_mart(
    rounding_homes,
):
    refreshed_later, built_once = rounding_homes
    incremental, full = every_mart(refreshed_later), every_mart(built_once)
    assert incremental.keys() == full.keys()
    differing = {mart: len(set(incremental[mart]) ^ set(full[mart]))
                 for mart in full if incremental[mart] != full[mart]}
    assert differing == {}
    # the account is large enough to exercise it: MRR of thousands of items, revenue
    assert len(full["fct_subscription_mrr_daily"]) > 100_000
    assert len(full["fct_revenue_daily"]) > 200


def test_movement_identities_hold_exactly(rounding_homes):
    for home in rounding_homes:
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            per_customer = con.execute(
                f"select count(*) filter (opening_mrr + {MOVEMENTS} <> closing_mrr), count(*) "
                "from marts.fct_mrr_movements"
            ).fetchone()
            per_month = con.execute(
                f"select count(*) filter (opening_mrr + {MOVEMENTS} <> closing_mrr), count(*) "
                "from marts.fct_mrr_movements_monthly"
            ).fetchone()
            per_day = con.execute(
                f"select count(*) filter (yesterday.mrr + coalesce(moved.net, 0) <> today.mrr), "
                "count(*) "
                "from marts.fct_mrr_daily as today "
                "join marts.fct_mrr_daily as yesterday "
                "  on yesterday.metric_date = today.metric_date - 1 "
                f"left join (select metric_date, sum({MOVEMENTS}) as net "
                "           from marts.fct_mrr_movements group by metric_date) as moved "
                "  on moved.metric_date = today.metric_date"
            ).fetchone()
        assert (per_customer[0], per_month[0], per_day[0]) == (0, 0, 0)
        assert per_customer[1] > 10_000 and per_month[1] == 4 and per_day[1] > 85


def test_a_warehouse_built_when_money_was_double_is_rewritten_exact_by_the_next_build(
    scenario_home: Path, tmp_path: Path
) -> None:
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        exact = con.execute(DAILY_MRR).fetchall()
        # what an older release left: DOUBLE columns, and figures with a float residue
        for model in ("marts.fct_mrr_daily", "marts.fct_mrr_movements",
                      "intermediate.int_subscription_item_mrr_daily"):
            money = "mrr" if model.endswith("fct_mrr_daily") else (
                "closing_mrr" if "movements" in model else "net_mrr")
            con.execute(f"alter table {model} alter column {money} type double")
            con.execute(f"update {model} set {money} = {money} + 0.1 + 0.2 - 0.3 + 0.25")

    build(home=tmp_path)  # an ordinary build: no new sync, no --full-refresh

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        types = column_types(con)
        rebuilt = con.execute(DAILY_MRR).fetchall()
    assert types[("fct_mrr_daily", "mrr")] == MONEY
    assert types[("fct_mrr_movements", "closing_mrr")] == MONEY
    assert rebuilt == exact


USD_CHECK = "assert_published_usd_figures_are_converted"


def test_the_usd_check_of_a_refresh_fails_on_a_figure_a_millionth_off_on_a_day_it_rebuilt(
    rounding_homes, tmp_path: Path
) -> None:
    """The USD check recomputes only the days the last build rewrote (a refresh: its window),
    not every item-day; it still fails when a published MRR of such a day is a millionth of a
    dollar off (a figure summed unconverted or rounded differently)."""
    refreshed_later, _ = rounding_homes
    shutil.copy(refreshed_later / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rebuilt_days, all_days = con.execute(
            "select count(*) filter (built_as_of = (select max(built_as_of) "
            "from marts.fct_mrr_daily)), count(*) from marts.fct_mrr_daily"
        ).fetchone()
    assert 0 < rebuilt_days < all_days  # the refresh rewrote some days, not all
    run_dbt(["test", "--select", USD_CHECK], home=tmp_path)  # as built: passes

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(
            "update marts.metrics_daily set value = value + 0.000001 "
            "where metric = 'stripe_mrr' "
            "and metric_date = (select max(metric_date) from marts.metrics_daily)"
        )
    with pytest.raises(TransformError, match=USD_CHECK):
        run_dbt(["test", "--select", USD_CHECK], home=tmp_path)


ITEM_CHECKS = "int_subscription_item_mrr_daily,test_name:column_checks"


@pytest.mark.parametrize(("day", "fails"), [("rebuilt", True), ("older", False)])
def test_the_item_column_checks_of_a_refresh_read_the_days_it_rebuilt(
    rounding_homes, tmp_path: Path, day: str, fails: bool
) -> None:
    """`column_checks(rebuilt_days_only)` on the item-day model: after a refresh, a negative
    amount on a day the refresh rewrote fails the build; one on an older day is not read again
    (the build that wrote that day checked it), so a refresh does not rescan every item-day."""
    refreshed_later, _ = rounding_homes
    shutil.copy(refreshed_later / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    latest = "(select max(built_as_of) from intermediate.int_subscription_item_mrr_daily)"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        metric_date, item = con.execute(
            "select metric_date, subscription_item_id "
            "from intermediate.int_subscription_item_mrr_daily "
            f"where built_as_of {'=' if day == 'rebuilt' else '<'} {latest} "
            "order by metric_date desc, subscription_item_id limit 1"
        ).fetchone()
        con.execute("update intermediate.int_subscription_item_mrr_daily set gross_mrr = -1 "
                    "where metric_date = ? and subscription_item_id = ?", [metric_date, item])
        assert con.execute("select count(*) from intermediate.int_subscription_item_mrr_daily "
                           "where gross_mrr < 0").fetchone()[0] == 1
    if fails:
        with pytest.raises(TransformError, match="column_checks_int_subscription_item_mrr_daily"):
            run_dbt(["test", "--select", ITEM_CHECKS], home=tmp_path)
    else:
        run_dbt(["test", "--select", ITEM_CHECKS], home=tmp_path)
