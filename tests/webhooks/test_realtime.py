"""Real-time mode: a webhook reaches marts.metrics_daily within seconds, as dbt would build it."""

import sqlite3
import time

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from orchestration.ui import dagster_home
from orchestration.webhook_events import report_webhook_refresh
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from service.marts_refresh import CompiledMetrics, CompiledTest
from stripe_warehouse.inbox import inbox_path
from stripe_warehouse.transform import build, run_dbt

from .conftest import API_KEY, PROJECT, running_service
from .warehouse import load_backfill

# metrics_daily's dbt tests (generic tests on its columns, and the singular tests whose meta
# names it): each one runs after a real-time refresh
METRICS_DAILY_CHECKS = {
    "assert_published_usd_figures_are_converted",
    "assert_metrics_daily_has_six_metrics_per_day",
    "accepted_values_metrics_daily_metric__stripe_mrr__stripe_arr__stripe_revenue__stripe_active"
    "_subscriptions__stripe_customers__stripe_failed_payments",
    "accepted_values_metrics_daily_unit__USD__count",
    "unique_combination_metrics_daily_project_id__metric_date__metric",
    "covers_every_reporting_day_metrics_daily_",
    "column_checks_metrics_daily_project_id__metric_date__metric__value__unit",
}
VISIBLE_WITHIN = 60.0  # generous for a loaded CI box; the benchmark reports the real numbers


def metrics(home, database: str = "warehouse.duckdb") -> list[tuple]:
    with duckdb.connect(str(home / database), read_only=True) as con:
        return con.execute("select project_id, metric_date, metric, round(value, 6), unit "
                           "from marts.metrics_daily order by all").fetchall()


def today_value(rows: list[tuple], metric: str) -> float:
    return max((row for row in rows if row[2] == metric), key=lambda row: row[1])[3]


def recorded_refresh(home) -> dict:
    """The metadata of the marts refresh the service reported to the Dagster instance (it
    reports right after publishing, so shortly after the events are visible)."""
    from dagster import DagsterInstance

    from orchestration.translators import METRICS_DAILY_KEY
    from orchestration.ui import dagster_home

    deadline = time.monotonic() + VISIBLE_WITHIN
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        while time.monotonic() < deadline:
            records = instance.fetch_materializations(METRICS_DAILY_KEY, limit=1).records
            if records:
                metadata = records[0].asset_materialization.metadata
                return {key: value.value for key, value in metadata.items()}
            time.sleep(0.2)
    raise AssertionError("the real-time refresh was not recorded in the Dagster instance")


def recorded_checks(home, expected: set[str]) -> dict:
    """The asset-check evaluations the service reported to the Dagster instance (runless:
    outside any run), by check name, once ``expected`` are all there."""
    from dagster import DagsterEventType, DagsterInstance

    from orchestration.ui import dagster_home

    deadline = time.monotonic() + VISIBLE_WITHIN
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        while True:
            found = {record.dagster_event.event_specific_data.check_name:
                     record.dagster_event.event_specific_data
                     for record in instance.all_logs(
                         "", of_type=DagsterEventType.ASSET_CHECK_EVALUATION)}
            if expected <= set(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def webhook_sync_runs(home) -> list[tuple]:
    """The project's ``sync_runs`` rows of webhook batches: (window start, end, objects)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select epoch(window_start), epoch(window_end), objects_loaded from "
            "stripe_raw.sync_runs where kind = 'webhook' and project_id = ? order by all",
            [PROJECT]).fetchall()


def recorded_batches(home, batches: int) -> dict[str, list[dict]]:
    """Per raw table, the metadata of the webhook batches' materialisations of the project's
    partition in the state directory's Dagster instance, once ``batches`` are recorded."""
    from dagster import AssetRecordsFilter, DagsterInstance

    from orchestration.translators import raw_table_key
    from orchestration.ui import dagster_home

    deadline = time.monotonic() + VISIBLE_WITHIN
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        while True:
            found = {table: [
                {key: value.value for key, value in record.asset_materialization.metadata.items()}
                for record in instance.fetch_materializations(AssetRecordsFilter(
                    asset_key=raw_table_key(table), asset_partitions=[PROJECT]),
                    limit=100).records]
                for table in ("sync_runs", "subscriptions", "events", "customers")}
            if len(found["sync_runs"]) >= batches or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def wait_visible(home, event_ids: list[str], within: float = VISIBLE_WITHIN) -> None:
    deadline = time.monotonic() + within
    with sqlite3.connect(inbox_path(home)) as con:
        while time.monotonic() < deadline:
            marks = [con.execute("select visible_at from inbox_events where event_id = ?",
                                 [eid]).fetchone() for eid in event_ids]
            if all(mark and mark[0] for mark in marks):
                return
            time.sleep(0.05)
    raise AssertionError(f"events not visible in the marts within {within} s")


@pytest.mark.e2e
def test_cancellation_reaches_metrics_daily_exactly_as_a_dbt_run_computes_it(home):
    company = generate_company(CompanyConfig(customers=40, seed=5, now=int(time.time()) - 120))
    load_backfill(home, PROJECT, company)
    build(home)
    before = metrics(home)
    active = [s for s in company.objects["subscription"] if s["status"] == "active"]
    # recorded in Dagster as `stripe-warehouse serve` and `python -m commands.serve` do
    with SandboxServer({API_KEY: company}) as stripe_api, \
            running_service(home, realtime=True, api_base=stripe_api.url,
                            on_refreshed=report_webhook_refresh) as service:
        events = (company.cancel_subscription(active[0]["id"], int(time.time()) - 2)
                  + company.change_quantity(active[1]["id"], 9, int(time.time()) - 1))
        assert {d.status for d in service.sender().send(events)} == {200}
        wait_visible(home, [e["id"] for e in events])
    fast = metrics(home)
    # readers' copy (BI tools, `stripe-warehouse metrics`) is republished by the same round
    assert metrics(home, "reporting.duckdb") == fast
    assert today_value(fast, "stripe_active_subscriptions") == (
        today_value(before, "stripe_active_subscriptions") - 1)
    # the refresh is recorded in the state directory's Dagster instance (`stripe-warehouse ui`)
    recorded = recorded_refresh(home)
    assert recorded["refreshed_by"] == "the real-time service"
    assert 1 <= recorded["events_applied"] <= len(events)
    assert {"subscriptions", "sync_runs"} <= set(recorded["tables_refreshed"])
    assert recorded["projects"] == 1
    assert today_value(fast, "stripe_mrr") != today_value(before, "stripe_mrr")
    # the dbt tests on what the round rebuilt ran, recorded as metrics_daily's asset checks
    # (the same checks a build reports), all passing on the refreshed marts
    checks = recorded_checks(home, METRICS_DAILY_CHECKS)
    assert METRICS_DAILY_CHECKS <= set(checks), sorted(checks)
    for name in METRICS_DAILY_CHECKS:
        assert checks[name].asset_key == AssetKey(["marts", "metrics_daily"])
        assert checks[name].passed, (name, checks[name].metadata)
        assert checks[name].metadata["dagster_dbt/failed_row_count"].value == 0
        assert checks[name].metadata["refreshed_by"].value == "the real-time service"
    # nothing the round did not rebuild: no check on a model metrics_daily does not read
    assert "projects_fresh_for_their_tier" not in checks
    assert not any(e.asset_key.path[0] == "stripe_raw" for e in checks.values())
    run_dbt(["run", "--quiet", "--select", "+metrics_daily"], home=home)
    assert metrics(home) == fast


@pytest.mark.parametrize(("rows", "severity", "status", "failures"), [
    ("select 1 as id where false", "error", "pass", 0),
    ("select 1 as id union all select 2", "error", "fail", 2),
    ("select 1 as id union all select 2", "warn", "warn", 2),
    ("select missing_column from (select 1 as id)", "error", "error", None),
])
def test_a_compiled_test_gets_dbts_status_for_its_failing_rows(rows, severity, status, failures):
    """As dbt's test materialization: failing rows counted (fail_calc), ``!= 0`` fails an
    error-severity test and warns for a warn-severity one; a query that fails is an error."""
    with duckdb.connect() as con:
        result = CompiledTest("test.x", rows, severity).run(con)
    assert (result.unique_id, result.status, result.failures) == ("test.x", status, failures)


@pytest.mark.e2e
def test_each_webhook_batch_is_a_raw_table_materialisation_of_its_project(home):
    """Every batch the service applies is recorded in the Dagster instance, as a sync is: a
    materialisation of each raw table it wrote and of ``sync_runs``, for the project's partition.

    By hand: the events cancel one subscription and change another's quantity (which also
    invoices the proration), so the batches write exactly 2 ``subscriptions`` rows (both
    re-fetched states are newer than the backfill's) and one ``events`` row per event; each
    batch appends one ``sync_runs`` row of kind ``webhook``, whose window (its events' oldest
    and newest ``created``) and objects (its rows) the materialisations repeat.
    """
    company = generate_company(CompanyConfig(customers=40, seed=5, now=int(time.time()) - 120))
    load_backfill(home, PROJECT, company)
    build(home)
    active = [s for s in company.objects["subscription"] if s["status"] == "active"]
    # the instance exists before the service records into it, as after any Dagster-run sync
    # (this test reads it while the service writes: two first-time creators would race)
    DagsterInstance.from_config(str(dagster_home(home))).dispose()
    # recorded in Dagster as `stripe-warehouse serve` and `python -m commands.serve` do
    with SandboxServer({API_KEY: company}) as stripe_api, \
            running_service(home, realtime=True, api_base=stripe_api.url,
                            on_refreshed=report_webhook_refresh) as service:
        events = (company.cancel_subscription(active[0]["id"], int(time.time()) - 2)
                  + company.change_quantity(active[1]["id"], 9, int(time.time()) - 1))
        assert {d.status for d in service.sender().send(events)} == {200}
        wait_visible(home, [e["id"] for e in events])
        runs = webhook_sync_runs(home)
        recorded = recorded_batches(home, len(runs))
    assert 1 <= len(runs) <= len(events)
    assert len(recorded["sync_runs"]) == len(runs)
    assert sorted((r["window_start"], r["window_end"], sum(r["rows_per_table"].values()))
                  for r in recorded["sync_runs"]) == [(float(a), float(b), n) for a, b, n in runs]
    assert sum(r["rows_loaded"] for r in recorded["subscriptions"]) == 2
    assert sum(r["rows_loaded"] for r in recorded["events"]) == len(events)
    assert not recorded["customers"]  # no customer changed: no materialisation of it
    # each object named by an event is re-fetched from Stripe: both subscriptions at least
    assert sum(r["requests"] for r in recorded["sync_runs"]) >= 2
    for batches in recorded.values():
        for metadata in batches:
            assert metadata["sync_kind"] == "webhook"
            assert metadata["applied_by"] == "the real-time service"
            assert metadata["test_mode"] is True  # a sk_test_ key and livemode false events
            assert metadata["rate_limited_429"] == 0
            assert 0 <= metadata["duration_s"] < VISIBLE_WITHIN


@pytest.mark.e2e
def test_compiled_metrics_rebuild_only_tables_downstream_of_the_changed_raw_tables(home):
    company = generate_company(CompanyConfig(customers=5, seed=5))
    load_backfill(home, PROJECT, company)
    compiled = CompiledMetrics.compile(home)
    everything = {m.unique_id for m in compiled.reading(["sync_runs"])}
    from_prices = [m.unique_id.split(".")[-1] for m in compiled.reading(["prices"])]
    assert "model.stripe_warehouse.metrics_daily" in everything
    assert from_prices[-1] == "metrics_daily"
    assert "int_subscription_item_prices" in from_prices
    assert "int_payment_failures" not in from_prices
    assert compiled.reading([]) == []
    assert not compiled.needs_dbt(["sync_runs", "subscriptions"])
