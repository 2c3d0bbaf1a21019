"""A build after a refresh rewrites only the touched days and equals a full rebuild."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from stripe_warehouse.publish import published_path
from stripe_warehouse.transform import TransformError, build, run_dbt
from tests.dbt import raw_tables, scenario

SNAPSHOT_SQL = {
    "metrics": "select project_id, metric_date, metric, round(value, 6) "
               "from marts.metrics_daily order by all",
    "items": "select project_id, metric_date, subscription_item_id, round(net_mrr_usd, 6) "
             "from marts.fct_subscription_mrr_daily order by all",
    "movements": "select customer_id, metric_date, round(new_mrr, 6), round(churn_mrr, 6), "
                 "round(closing_mrr, 6) from marts.fct_mrr_movements order by all",
}


def snapshot(home) -> dict[str, list[tuple]]:
    """The published rows, rounded, in a stable order."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in SNAPSHOT_SQL.items()}
    finally:
        con.close()


def first_day_rewritten_by_last_build(home) -> str:
    """The earliest item-day whose row reflects the newest sync (the rest were kept)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return str(con.execute(
            "select min(metric_date) from marts.fct_subscription_mrr_daily "
            "where built_as_of = (select max(built_as_of) from marts.fct_subscription_mrr_daily)"
        ).fetchone()[0])
    finally:
        con.close()


def cancel_monthly_subscription_in_a_refresh(home) -> None:
    """A refresh sync the next day: sub_monthly canceled after the last sync, a new charge."""
    refresh_at = scenario.LAST_SYNC + timedelta(days=1)
    canceled_at = scenario.LAST_SYNC + timedelta(hours=10)
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        subscription = json.loads(con.execute(
            "select data from stripe_raw.subscriptions where id = 'sub_monthly'"
        ).fetchone()[0])
        subscription.update(status="canceled", canceled_at=int(canceled_at.timestamp()),
                            ended_at=int(canceled_at.timestamp()))
        raw_tables.replace_objects(
            con, "subscriptions", scenario.PROJECT_ID, [subscription], refresh_at
        )
        raw_tables.insert_objects(con, "charges", scenario.PROJECT_ID, [{
            "id": "ch_refresh", "object": "charge", "customer": "cus_annual", "amount": 4200,
            "amount_captured": 4200, "currency": "usd", "status": "succeeded", "captured": True,
            "created": int((refresh_at - timedelta(hours=1)).timestamp()),
        }], refresh_at)
        raw_tables.insert_sync_run(
            con, scenario.PROJECT_ID, refresh_at - timedelta(days=7), refresh_at, kind="refresh"
        )
    finally:
        con.close()


def test_build_after_refresh_equals_full_rebuild_and_keeps_older_days(built_scenario_copy):
    # the scenario after its first build (the session's, copied)
    home = built_scenario_copy
    before = snapshot(home)

    cancel_monthly_subscription_in_a_refresh(home)
    build(home=home)
    incremental = snapshot(home)
    rewritten_from = first_day_rewritten_by_last_build(home)
    build(home=home, full_refresh=True)
    full = snapshot(home)

    assert incremental == full
    # the refresh window started Nov 18, one lookback day earlier: older rows were kept as built
    assert rewritten_from == "2026-11-17"
    mrr = {str(day): value for _, day, metric, value in incremental["metrics"]
           if metric == "stripe_mrr"}
    # canceled on Nov 24 at 22:00: Nov 24, now a whole day, ends without it
    expected_mrr = Decimal(repr(scenario.EXPECTED_MRR_TODAY))
    assert mrr["2026-11-25"] == expected_mrr - 100
    assert mrr["2026-11-24"] == expected_mrr - 100
    assert mrr["2026-11-23"] == expected_mrr
    revenue = {str(day): value for _, day, metric, value in incremental["metrics"]
               if metric == "stripe_revenue"}
    assert revenue["2026-11-25"] == 42
    churned = [row for row in incremental["movements"]
               if row[0] == "cus_monthly" and str(row[1]) == "2026-11-24"]
    assert churned == [("cus_monthly", date(2026, 11, 24), 0.0, 100.0, 0.0)]
    older_before = [row for row in before["items"] if str(row[1]) < "2026-11-17"]
    older_after = [row for row in incremental["items"] if str(row[1]) < "2026-11-17"]
    assert older_after == older_before


def test_a_full_rebuild_republishes_days_it_rewrote_with_the_same_built_as_of(built_scenario_copy):
    # the scenario after its first build (the session's, copied)
    home = built_scenario_copy
    # what a full rebuild after an FX table change looks like to the readers' copy: old days
    # that differ while their built_as_of (the last sync) stays the same
    with duckdb.connect(str(published_path(home))) as con:
        con.execute("update marts.fct_subscription_mrr_daily set net_mrr_usd = -1")
        con.execute("update marts.metrics_daily set value = -1")
    build(home=home, full_refresh=True)
    with duckdb.connect(str(published_path(home)), read_only=True) as con:
        stale = con.execute(
            "select (select count(*) from marts.fct_subscription_mrr_daily "
            "        where net_mrr_usd = -1), "
            "       (select count(*) from marts.metrics_daily where value = -1), "
            "       (select count(*) from marts.fct_subscription_mrr_daily)"
        ).fetchone()
    assert stale[:2] == (0, 0) and stale[2] > 0


def test_uniqueness_check_after_a_refresh_covers_every_rewritten_day(built_scenario_copy):
    # the scenario after its first build (the session's, copied)
    home = built_scenario_copy
    cancel_monthly_subscription_in_a_refresh(home)
    build(home=home)
    # a stale row left on the first rewritten day (an older build's) duplicates a new one
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute(
            "insert into intermediate.int_subscription_item_mrr_daily "
            "select * replace (built_as_of - interval 1 day as built_as_of) "
            "from intermediate.int_subscription_item_mrr_daily "
            "where metric_date = cast('2026-11-17' as date) limit 1"
        )
    finally:
        con.close()

    with pytest.raises(TransformError,
                       match="unique_combination_int_subscription_item_mrr_daily"):
        run_dbt(["test", "--select",
                 "int_subscription_item_mrr_daily,test_name:unique_combination"],
                home=home)


STAGED_SQL = {
    # api_version: the sentinel of the test below
    "subscriptions": "select * exclude (built_as_of, content_hash, api_version) "
                     "from staging.stg_stripe__subscriptions order by subscription_id",
    "items": "select * exclude (built_as_of, content_hash) "
             "from staging.stg_stripe__subscription_items order by subscription_item_id",
    "item_lists": "select * exclude (built_as_of, content_hash) "
                  "from staging.stg_stripe__subscription_item_lists order by subscription_id",
}


def staged_rows(home) -> dict[str, list[tuple]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in STAGED_SQL.items()}


def test_a_refresh_parses_again_only_the_relisted_subscriptions_that_changed(
        built_scenario_copy):
    """A refresh re-lists every subscription and item (macros/restaging.sql): the unchanged
    ones are only restamped, the canceled sub_monthly is parsed again, and the staged rows are
    those a full rebuild gives (synced_at the refresh's time everywhere)."""
    home = built_scenario_copy
    refresh_at = scenario.LAST_SYNC + timedelta(days=1)
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        for table in ("subscriptions", "subscription_items"):
            listed = [json.loads(data) for (data,) in con.execute(
                f"select data from stripe_raw.{table} where id <> 'sub_monthly' order by id"
            ).fetchall()]
            raw_tables.replace_objects(con, table, scenario.PROJECT_ID, listed, refresh_at)
        # a staged value no parse gives: it stays only where a row was not parsed again
        con.execute("update staging.stg_stripe__subscriptions set api_version = 'not re-parsed'")
    finally:
        con.close()
    cancel_monthly_subscription_in_a_refresh(home)  # re-lists sub_monthly, changed
    build(home=home)
    incremental = staged_rows(home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        kept = con.execute(
            "select subscription_id, status, api_version = 'not re-parsed', synced_at "
            "from staging.stg_stripe__subscriptions order by subscription_id").fetchall()
    build(home=home, full_refresh=True)
    full = staged_rows(home)

    synced = refresh_at.replace(tzinfo=None)
    assert len(kept) > 1
    assert [row for row in kept if row[0] == "sub_monthly"] == [
        ("sub_monthly", "canceled", False, synced)]
    assert all(row[2] and row[3] == synced for row in kept if row[0] != "sub_monthly")
    # row for row what a full rebuild stages, but for the sentinel
    assert incremental == full
    assert len(full["items"]) > 1 and len(full["item_lists"]) == len(kept)


VERSIONS_SQL = ("select * exclude (built_as_of, observed_by) "
                "from staging.stg_stripe__subscription_versions order by all")


def test_a_refresh_stages_only_the_subscription_versions_it_loaded(built_scenario_copy):
    """stg_stripe__subscription_versions is incremental: its raw table is insert-only, so a
    refresh parses the versions of its own load only. A sentinel `observed_by` planted on every
    staged version stays on each one the refresh did not load; sub_monthly's version written by
    the refresh is parsed (observed_by 'sync', status 'canceled'); a full rebuild (the retention
    job's) parses every version again and stages the same rows, sentinel aside."""
    home = built_scenario_copy
    refresh_at = scenario.LAST_SYNC + timedelta(days=1)
    # the scenario stores no versions: a first load adds sub_annual's, staged by a build
    first_load_at = scenario.LAST_SYNC + timedelta(hours=12)
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        annual = json.loads(con.execute(
            "select data from stripe_raw.subscriptions where id = 'sub_annual'").fetchone()[0])
        raw_tables.insert_subscription_version(con, scenario.PROJECT_ID, annual, first_load_at)
        raw_tables.insert_sync_run(con, scenario.PROJECT_ID, first_load_at - timedelta(days=7),
                                   first_load_at, kind="refresh")
    finally:
        con.close()
    build(home=home, select="stg_stripe__subscription_versions")
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        versions_before = con.execute(
            "select count(*) from staging.stg_stripe__subscription_versions").fetchone()[0]
        con.execute("update staging.stg_stripe__subscription_versions "
                    "set observed_by = 'not re-parsed'")
    finally:
        con.close()
    cancel_monthly_subscription_in_a_refresh(home)
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        canceled = json.loads(con.execute(
            "select data from stripe_raw.subscriptions where id = 'sub_monthly'").fetchone()[0])
        raw_tables.insert_subscription_version(con, scenario.PROJECT_ID, canceled, refresh_at)
    finally:
        con.close()
    build(home=home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        marks = con.execute(
            "select observed_by, status, count(*) from staging.stg_stripe__subscription_versions "
            "group by all order by all").fetchall()
        incremental = con.execute(VERSIONS_SQL).fetchall()
    build(home=home, full_refresh=True)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        full = con.execute(VERSIONS_SQL).fetchall()
        unmarked = con.execute("select count(*) from staging.stg_stripe__subscription_versions "
                               "where observed_by = 'not re-parsed'").fetchone()[0]

    # sub_annual's version kept the sentinel; the one new version was parsed
    assert versions_before == 1
    assert sum(count for by, _, count in marks if by == "not re-parsed") == versions_before
    assert [(status, count) for by, status, count in marks if by == "sync"] == [("canceled", 1)]
    assert incremental == full and len(full) == versions_before + 1
    assert unmarked == 0



# A row no build gives, per model, planted for a subscription: `kept` shows whether a build
# rewrote that subscription's rows (macros/changed_subscriptions.sql)
SENTINELS = {
    "int_subscription_item_states": (
        "subscription_item_id", "si_sentinel",
        "select ? as project_id, ? as subscription_id, 'si_sentinel' as subscription_item_id, "
        "'price_sentinel' as price_id, 1 as quantity, timestamp '2026-01-01' as valid_from, "
        "'event' as state_source, false as is_estimated, "
        "timestamp '2026-01-01' as estimated_from, ? as built_as_of"),
    "int_subscription_discount_removals": (
        "discount_id", "di_sentinel",
        "select ? as project_id, ? as subscription_id, 'di_sentinel' as discount_id, "
        "timestamp '2026-01-01' as removed_at, false as is_estimated, "
        "timestamp '2026-01-01' as estimated_from, ? as built_as_of"),
}


@pytest.mark.parametrize("model", sorted(SENTINELS))
def test_a_refresh_rebuilds_the_history_of_the_changed_subscriptions_only(
        built_scenario_copy, model):
    """The history model is incremental by subscription (macros/changed_subscriptions.sql): a
    refresh that loads a version of sub_monthly rebuilds sub_monthly's rows only. A sentinel
    row planted for sub_monthly and one for sub_annual (unchanged): after the refresh, sub_annual's
    is kept, sub_monthly's is gone and its rows are what a full rebuild (the retention job's)
    gives; the full rebuild drops both sentinels and gives every other row as the refresh
    left it."""
    home = built_scenario_copy
    column, sentinel, planted = SENTINELS[model]
    refresh_at = scenario.LAST_SYNC + timedelta(days=1)
    rows_sql = (f"select * exclude (built_as_of) from intermediate.{model} "
                "order by all")
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        # the stamp the scenario's build gave its rows: the project's last load
        built_as_of = con.execute(
            "select max(finished_at) from stripe_raw.sync_runs where project_id = ? "
            "and status = 'succeeded'", [scenario.PROJECT_ID]).fetchone()[0]
        for subscription in ("sub_annual", "sub_monthly"):
            con.execute(f"insert into intermediate.{model} by name {planted}",
                        [scenario.PROJECT_ID, subscription, built_as_of])
        listed = json.loads(con.execute(
            "select data from stripe_raw.subscriptions where id = 'sub_monthly'").fetchone()[0])
        raw_tables.insert_subscription_version(con, scenario.PROJECT_ID, listed, refresh_at)
        raw_tables.insert_sync_run(con, scenario.PROJECT_ID, refresh_at - timedelta(days=7),
                                   refresh_at, kind="refresh")
    finally:
        con.close()
    # the model and what it is built from: the sentinels reach no other model
    build(home=home, select=f"+{model}")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        kept = con.execute(f"select subscription_id from intermediate.{model} "
                           f"where {column} = ? order by 1", [sentinel]).fetchall()
        incremental = con.execute(rows_sql).fetchall()
    build(home=home, select=f"+{model}", full_refresh=True)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        full = con.execute(rows_sql).fetchall()

    assert kept == [("sub_annual",)]
    assert [row for row in incremental if sentinel not in row] == full
    assert not [row for row in full if sentinel in row]
