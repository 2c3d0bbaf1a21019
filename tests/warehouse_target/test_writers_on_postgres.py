"""The other writers and readers of a PostgreSQL warehouse: `status`, `doctor`, retention,
`disconnect` + `purge`, and the webhook applier (`serve --realtime`, quarantine, revocation, and
its per-project lock shared with the sync). Before, status showed no reporting window, doctor
failed with "warehouse.duckdb is missing though it was synced", retention and purge found no
warehouse.duckdb and did nothing while saying they were done, and every webhook event of a
PostgreSQL project waited in the inbox ("webhook events are applied to a DuckDB warehouse
only") while `serve --realtime` refused to start.

One warehouse for the module, in a database of its own on the session's server: two sandbox
companies synced over HTTP (a starter-tier `lean`, whose retention keeps 3 days, and a pro
`keep`) and built by dbt; the tests then read it, expire `lean`'s old rows, and purge it last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from commands.cli import main
from commands.status import reporting_windows
from orchestration.resources import WarehouseResource
from orchestration.translators import raw_table_key
from orchestration.webhook_events import report_webhook_refresh
from orchestration.webhooks import webhook_inbox_sensor, webhooks_job
from pipelines.load import sync_project
from pipelines.retention import apply_retention, retention_cutoff
from pipelines.webhooks_apply import apply_inbox
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.build_lock import project_write_turn
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.export import EXPORTED_MARTS
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build, run_dbt
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.dbt.timed_sync import sync_as_of
from tests.postgres_databases import new_database
from tests.webhooks.conftest import running_service
from tests.webhooks.events import subscription_event
from tests.webhooks.test_realtime import wait_visible

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PROJECTS = {"lean": ("starter", 31), "keep": ("pro", 32)}  # project: tier, the company's seed
SECRET = "whsec_test_keep_0123456789"  # `keep`'s webhook signing secret
# A real-time round on PostgreSQL refreshes with `dbt run` + `dbt test` (the DuckDB replay of
# compiled SQL is not ported): 38-40 s measured at load average 10 on the 2-core box
REALTIME_WITHIN = 180.0


@dataclass
class Warehouse:
    home: Path
    target: WarehouseTarget
    store: ConnectionStore
    sandbox_url: str
    companies: dict[str, Company]


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Warehouse]:
    home = tmp_path_factory.mktemp("writers_pg") / "state"
    home.mkdir()
    companies = {p: generate_company(CompanyConfig(customers=15, years=1, seed=seed))
                 for p, (_, seed) in PROJECTS.items()}
    with new_database(postgres_url, "writers") as url, \
            SandboxServer(accounts={f"sk_test_{p}": c for p, c in companies.items()}) \
            as sandbox, pytest.MonkeyPatch.context() as mp:
        target = WarehouseTarget.postgres(url)
        target.save(home)
        mp.setenv(SECRET_KEY_ENV, generate_key())
        mp.setenv("STRIPE_API_BASE", sandbox.url)
        mp.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        store = ConnectionStore(home)
        for project, (tier, _) in PROJECTS.items():
            store.connect(project, tier, f"sk_test_{project}",
                          account_id=companies[project].account_id,
                          webhook_secret=SECRET if project == "keep" else None)
            sync_as_of(store, project, home, sandbox.url, "backfill", None)
        build(home=home)
        yield Warehouse(home, target, store, sandbox.url, companies)


def _project_rows(target: WarehouseTarget, project: str) -> dict[str, int]:
    """Rows of ``project`` in every base table of the database holding a project_id."""
    tables = target.fetch_all(
        "select c.table_schema, c.table_name from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where c.column_name = 'project_id' and t.table_type = 'BASE TABLE'")
    return {f"{schema}.{table}": target.fetch_all(
        f'select count(*) from "{schema}"."{table}" where project_id = %s', [project])[0][0]
        for schema, table in tables}


def test_status_shows_each_projects_reporting_window_from_the_server(
        warehouse: Warehouse) -> None:
    expected = dict((project, (first, last)) for project, first, last in warehouse.target.fetch_all(
        "select project_id, min(metric_date), max(metric_date) from marts.metrics_daily "
        "group by project_id"))
    assert set(expected) == set(PROJECTS)
    assert reporting_windows(warehouse.home) == expected
    code, out = _cli("status")
    assert code == 0, out


def test_doctor_checks_the_server_instead_of_a_file(warehouse: Warehouse) -> None:
    code, out = _cli("doctor", "keep")
    (line,) = [line for line in out.splitlines() if "warehouse server" in line]
    assert "OK" in line and "answers (1 syncs of keep)" in line, out
    assert "warehouse file" not in out and "missing" not in out, out


def test_export_and_chosen_metrics_read_each_projects_own_rows_from_the_server(
        warehouse: Warehouse, tmp_path: Path) -> None:
    # Tenant isolation: each project's files hold its rows only, every one the server holds.
    for project in PROJECTS:
        out = tmp_path / project
        code, printed = _cli("export", project, "--format", "parquet", "--out", str(out))
        assert code == 0, printed
        for mart in EXPORTED_MARTS:
            held = warehouse.target.fetch_all(
                f"select count(*) from marts.{mart.name} where project_id = %s", [project])[0][0]
            found = duckdb.sql(f"select project_id, count(*) from '{out}/{mart.name}.parquet' "
                               "group by project_id").fetchall()
            assert dict(found) == ({project: held} if held else {}), mart.name
        assert (out / "metrics_daily.parquet").stat().st_size > 0
        exported = duckdb.sql(f"select * from '{out}/fct_saas_metrics_monthly.parquet' "
                              "order by metric_month").fetchall()
        assert exported and exported == warehouse.target.fetch_all(
            "select * from marts.fct_saas_metrics_monthly where project_id = %s "
            "order by metric_month", [project])

    ((month, arpa),) = warehouse.target.fetch_all(
        "select metric_month, arpa from marts.fct_saas_metrics_monthly where project_id = 'keep' "
        "order by metric_month desc limit 1")
    code, printed = _cli("metrics", "keep", "--metrics", "arpa", "--json")
    assert code == 0, printed
    (figure,) = json.loads(printed)["metrics"]
    assert (figure["month"], figure["value"]) == (month.isoformat(), float(arpa))


def _metrics(target: WarehouseTarget) -> list[tuple]:
    return target.fetch_all("select project_id, metric_date, metric, round(value::numeric, 6), "
                            "unit from marts.metrics_daily order by 1, 2, 3")


def _today(rows: list[tuple], project: str, metric: str) -> float:
    return max((r for r in rows if r[0] == project and r[2] == metric), key=lambda r: r[1])[3]


def _duplicate_keys(target: WarehouseTarget, project: str) -> dict[str, int]:
    """Per raw table, the (project_id, id) keys of ``project`` held by more than one row
    (subscription_versions: (project_id, id, version_hash)); none, when writers never
    interleave."""
    found = {}
    for (table,) in target.fetch_all(
            "select table_name from information_schema.columns where table_schema = "
            "'stripe_raw' and column_name = 'id' order by 1"):
        key = "id, version_hash" if table == "subscription_versions" else "id"
        found[table] = target.fetch_all(
            f"select count(*) from (select {key} from stripe_raw.{table} where project_id = %s "
            f"group by {key} having count(*) > 1) d", [project])[0][0]
    return {table: n for table, n in found.items() if n}


def _active(company: Company, skip: int = 0) -> dict:
    return [s for s in company.objects["subscription"] if s["status"] == "active"][skip]


def test_serve_realtime_applies_webhooks_to_the_server_and_refreshes_its_marts(
        warehouse: Warehouse) -> None:
    """`serve --realtime` on PostgreSQL: signed webhooks over HTTP, re-fetched from the sandbox,
    merged into the server's raw tables, metrics_daily refreshed by dbt on the server.

    By hand: cancelling one of `keep`'s active subscriptions takes today's active
    subscriptions down by exactly 1 and changes MRR; the quantity change of another writes a
    new subscription version. Each changed subscription gets one `subscription_versions` row of
    source `webhook` (insert-only: the backfill's versions stay), each batch one `sync_runs`
    row of kind `webhook`, `lean` is untouched, no key is held twice, and a full `dbt run` of
    +metrics_daily afterwards gives the same marts as the real-time refresh.
    """
    company, target = warehouse.companies["keep"], warehouse.target
    cancelled, changed = _active(company)["id"], _active(company, 1)["id"]
    before = _metrics(target)
    lean_before = _project_rows(target, "lean")
    # delivered first, so that one round applies them all: a round's refresh is `dbt run` and
    # `dbt test` of the selection on PostgreSQL (tens of seconds on a loaded 2-core box)
    with running_service(warehouse.home) as service:
        events = (company.cancel_subscription(cancelled, int(time.time()) - 2)
                  + company.change_quantity(changed, 9, int(time.time()) - 1))
        deliveries = service.sender(secret=SECRET, project_id="keep").send(events)
        assert {d.status for d in deliveries} == {200}
    with running_service(warehouse.home, realtime=True, api_base=warehouse.sandbox_url,
                         on_refreshed=report_webhook_refresh):
        wait_visible(warehouse.home, [e["id"] for e in events], within=REALTIME_WITHIN)
    fast = _metrics(target)
    assert _today(fast, "keep", "stripe_active_subscriptions") == \
        _today(before, "keep", "stripe_active_subscriptions") - 1
    assert _today(fast, "keep", "stripe_mrr") != _today(before, "keep", "stripe_mrr")
    assert target.fetch_all(
        "select id, (data::jsonb)->>'status' from stripe_raw.subscriptions where project_id = "
        "'keep' and id in (%s, %s) order by id", [cancelled, changed]) == sorted(
        [(cancelled, "canceled"), (changed, "active")])
    assert target.fetch_all(
        "select id, count(*) from stripe_raw.subscription_versions where project_id = 'keep' "
        "and source = 'webhook' group by id order by id") == sorted([(cancelled, 1), (changed, 1)])
    assert target.fetch_all("select count(*) > 0 from stripe_raw.sync_runs "
                            "where project_id = 'keep' and kind = 'webhook'") == [(True,)]
    assert _project_rows(target, "lean") == lean_before
    assert _duplicate_keys(target, "keep") == {}
    with Inbox(warehouse.home) as inbox:
        assert inbox.unapplied("keep") == []
    run_dbt(["run", "--quiet", "--select", "+metrics_daily"], home=warehouse.home)
    assert _metrics(target) == fast


def test_the_applier_quarantines_a_bad_event_on_the_server_and_applies_the_others(
        warehouse: Warehouse) -> None:
    """An object whose `created` is not a number: PostgreSQL refuses the row (psycopg2's
    DataError, the transaction aborted), so the batch is retried event by event on a fresh
    transaction, the bad one quarantined with the reason, the good one applied."""
    sub = _active(warehouse.companies["keep"], 2)
    good = subscription_event("evt_pg_good", created=int(time.time()), status="past_due")
    good["data"]["object"].update(id=sub["id"], customer=sub["customer"])
    bad = subscription_event("evt_pg_bad", created=int(time.time()))
    bad["data"]["object"].update(id="sub_pg_bad", created="yesterday")
    with Inbox(warehouse.home) as inbox:
        inbox.store("keep", good)
        inbox.store("keep", bad)
    result = apply_inbox(warehouse.home, "keep", refetch=False)
    assert (result.applied, result.failed) == (1, 1), result
    assert warehouse.target.fetch_all(
        "select (data::jsonb)->>'status' from stripe_raw.subscriptions where project_id = 'keep' "
        "and id = %s", [sub["id"]]) == [("past_due",)]
    assert warehouse.target.fetch_all(
        "select count(*) from stripe_raw.subscriptions where id = 'sub_pg_bad'") == [(0,)]
    with Inbox(warehouse.home) as inbox:
        reasons = {event_id: reason for _, event_id, reason in inbox.failed()}
    assert set(reasons) == {"evt_pg_bad"}
    assert "InvalidTextRepresentation" in reasons["evt_pg_bad"], reasons
    assert apply_inbox(warehouse.home, "keep", refetch=False).events == 0  # settled


def _mrr_today(target: WarehouseTarget, subscription_id: str) -> list[tuple]:
    return target.fetch_all(
        "select status, sum(net_mrr) from marts.fct_subscription_mrr_daily where project_id = "
        "'keep' and subscription_id = %s and metric_date = (select max(metric_date) from "
        "marts.fct_subscription_mrr_daily) group by status", [subscription_id])


def test_the_dagster_webhooks_job_applies_and_refreshes_on_the_server(
        warehouse: Warehouse) -> None:
    """The Dagster path of webhooks (sensor + `webhooks` job) on PostgreSQL, as the DuckDB one in
    tests/webhooks/test_dagster_sensor.py: the sensor asks for one run, the job merges the
    event's re-fetched object into the server's raw tables, refreshes the marts there with dbt
    and reports what the sync reports (raw tables per project, the sync_runs row) and the dbt
    tests as asset checks. By hand: the cancelled subscription was active today with MRR > 0;
    after the run it has no active MRR today, and the sensor has nothing left to ask for."""
    company, target = warehouse.companies["keep"], warehouse.target
    cancelled = _active(company, 3)["id"]
    [(status, mrr)] = _mrr_today(target, cancelled)
    assert status == "active" and mrr > 0
    with Inbox(warehouse.home) as inbox:
        for event in company.cancel_subscription(cancelled, int(time.time()) - 1):
            inbox.store("keep", event)
    resources = {"warehouse": WarehouseResource(home=str(warehouse.home),
                                                api_base=warehouse.sandbox_url)}
    assert isinstance(webhook_inbox_sensor(build_sensor_context(resources=resources)), RunRequest)
    instance = DagsterInstance.ephemeral()
    outcome = webhooks_job.execute_in_process(resources=resources, instance=instance)
    assert outcome.success
    assert target.fetch_all(
        "select (data::jsonb)->>'status' from stripe_raw.subscriptions where project_id = 'keep' "
        "and id = %s", [cancelled]) == [("canceled",)]
    assert _mrr_today(target, cancelled) in ([], [("canceled", 0)])
    [record] = instance.fetch_materializations(AssetRecordsFilter(
        asset_key=raw_table_key("sync_runs"), asset_partitions=["keep"]), limit=10).records
    assert record.asset_materialization.metadata["applied_by"].value == "Dagster"
    checks = outcome.get_asset_check_evaluations()
    assert any(evaluation.asset_key == AssetKey(["marts", "metrics_daily"])
               for evaluation in checks)
    assert all(evaluation.passed for evaluation in checks)
    assert isinstance(webhook_inbox_sensor(build_sensor_context(resources=resources)), SkipReason)
    assert _duplicate_keys(target, "keep") == {}


def test_the_applier_and_the_sync_of_a_project_wait_for_its_lock_on_any_machine(
        warehouse: Warehouse) -> None:
    """The project's advisory lock on the server (build_lock.project_write_turn) is what a
    sync's load and an applier's merge of that project hold: while another session (here the
    test, standing for another machine) holds it, neither writes a row; once it is freed both
    finish, every key is held by one row, and another project's applier never waited."""
    company, target = warehouse.companies["keep"], warehouse.target
    runs = "select kind, count(*) from stripe_raw.sync_runs where project_id = %s group by kind"
    keep_runs = dict(target.fetch_all(runs, ["keep"]))
    lean_runs = dict(target.fetch_all(runs, ["lean"]))
    with Inbox(warehouse.home) as inbox:
        for event in company.change_quantity(_active(company, 3)["id"], 4, int(time.time())):
            inbox.store("keep", event)
        lean_event = subscription_event("evt_pg_lean", created=int(time.time()), status="past_due")
        lean_sub = _active(warehouse.companies["lean"])
        lean_event["data"]["object"].update(id=lean_sub["id"], customer=lean_sub["customer"])
        inbox.store("lean", lean_event)
    outcomes: dict[str, object] = {}

    def run(name: str, work) -> threading.Thread:
        def target_() -> None:
            try:
                outcomes[name] = work()
            except Exception as error:  # reported by the assertions below
                outcomes[name] = error
        thread = threading.Thread(target=target_, name=name)
        thread.start()
        return thread

    with project_write_turn(warehouse.home, "keep", "another machine's sync"):
        assert apply_inbox(warehouse.home, "lean", refetch=False).applied == 1  # not held
        threads = [
            run("applier", lambda: apply_inbox(warehouse.home, "keep",
                                               api_base=warehouse.sandbox_url)),
            run("sync", lambda: sync_project(warehouse.store, "keep", "refresh",
                                             home=warehouse.home, api_base=warehouse.sandbox_url)),
        ]
        time.sleep(3.0)
        assert [t.name for t in threads if t.is_alive()] == ["applier", "sync"], outcomes
        assert dict(target.fetch_all(runs, ["keep"])) == keep_runs  # nothing written
    for thread in threads:
        thread.join(timeout=120)
    assert not isinstance(outcomes["applier"], Exception), outcomes
    assert not isinstance(outcomes["sync"], Exception), outcomes
    assert outcomes["applier"].applied >= 1
    after = dict(target.fetch_all(runs, ["keep"]))
    assert after == {**keep_runs, "webhook": keep_runs["webhook"] + 1,
                     "refresh": keep_runs.get("refresh", 0) + 1}
    assert dict(target.fetch_all(runs, ["lean"])) == {**lean_runs,
                                                      "webhook": lean_runs.get("webhook", 0) + 1}
    assert _duplicate_keys(target, "keep") == {}


def test_retention_expires_the_starter_projects_old_rows_on_the_server(
        warehouse: Warehouse) -> None:
    now = dt.datetime.now(dt.UTC)
    cutoff = retention_cutoff("starter", now)
    old_events = "select count(*) from stripe_raw.events where project_id = %s and created < %s"
    before = warehouse.target.fetch_all(old_events, ["lean", int(cutoff.timestamp())])[0][0]
    kept_before = _project_rows(warehouse.target, "keep")
    assert before > 0  # a year of history: events older than 3 days
    result = apply_retention("lean", "starter", home=warehouse.home, now=now)
    assert result.deleted["events"] == before
    assert warehouse.target.fetch_all(old_events, ["lean", int(cutoff.timestamp())]) == [(0,)]
    (window_start,) = warehouse.target.fetch_all(
        "select min(window_start) from stripe_raw.sync_runs where project_id = 'lean'")[0]
    assert window_start == cutoff  # clipped: the marts start where the data now starts
    assert _project_rows(warehouse.target, "keep") == kept_before  # the other project: as it was


def test_disconnect_then_purge_deletes_every_row_of_the_project(warehouse: Warehouse) -> None:
    kept_before = _project_rows(warehouse.target, "keep")
    assert sum(_project_rows(warehouse.target, "lean").values()) > 0
    assert _cli("disconnect", "lean")[0] == 0
    code, out = _cli("purge", "lean")
    assert code == 0, out
    rows = _project_rows(warehouse.target, "lean")
    # raw, its own staging dataset, staging/intermediate/marts models: nothing left
    assert any(table.startswith("stripe_raw_staging_lean.") for table in rows)
    assert any(table.startswith("marts.") for table in rows)
    assert {table: n for table, n in rows.items() if n} == {}
    assert _project_rows(warehouse.target, "keep") == kept_before


def test_deauthorization_revokes_the_project_and_quarantines_its_other_events(
        warehouse: Warehouse) -> None:
    """Last (it ends `keep`'s access): as on DuckDB, `account.application.deauthorized` marks
    the connection revoked and is itself applied; the project's other events are quarantined,
    never written from their payload, so the server gains no row."""
    before = _project_rows(warehouse.target, "keep")
    deauthorized = subscription_event("evt_pg_deauth",
                                      event_type="account.application.deauthorized")
    deauthorized["data"]["object"] = {"id": "ca_sandbox", "object": "application", "name": None}
    other = subscription_event("evt_pg_after", created=int(time.time()), status="canceled")
    other["data"]["object"].update(id=_active(warehouse.companies["keep"], 4)["id"])
    with Inbox(warehouse.home) as inbox:
        inbox.store("keep", deauthorized)
        inbox.store("keep", other)
    result = apply_inbox(warehouse.home, "keep", api_base=warehouse.sandbox_url)
    assert (result.applied, result.failed, result.revoked) == (1, 1, ["keep"])
    assert ConnectionStore(warehouse.home).get("keep").status == "revoked"
    assert _project_rows(warehouse.target, "keep") == before
