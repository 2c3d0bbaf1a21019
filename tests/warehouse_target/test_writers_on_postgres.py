"""The other writers and readers of a PostgreSQL warehouse: `status`, `doctor`, retention,
`disconnect` + `purge`, and the webhook applier (not ported: a one-line limitation, no
traceback, events kept). Before, status showed no reporting window, doctor failed with
"warehouse.duckdb is missing though it was synced", and retention and purge found no
warehouse.duckdb and did nothing while saying they were done.

One warehouse for the module, in a database of its own on the session's server: two sandbox
companies synced over HTTP (a starter-tier `lean`, whose retention keeps 3 days, and a pro
`keep`) and built by dbt; the tests then read it, expire `lean`'s old rows, and purge it last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from commands.cli import main
from commands.status import reporting_windows
from pipelines.retention import apply_retention, retention_cutoff
from pipelines.webhooks_apply import POSTGRES_NOT_APPLIED, apply_inbox
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.dbt.timed_sync import sync_as_of
from tests.postgres_databases import new_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PROJECTS = {"lean": ("starter", 31), "keep": ("pro", 32)}  # project: tier, the company's seed


@dataclass
class Warehouse:
    home: Path
    target: WarehouseTarget
    store: ConnectionStore
    sandbox_url: str


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
                          account_id=companies[project].account_id)
            sync_as_of(store, project, home, sandbox.url, "backfill", None)
        build(home=home)
        yield Warehouse(home, target, store, sandbox.url)


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


def test_the_webhook_applier_names_its_limitation_and_keeps_the_events(
        warehouse: Warehouse) -> None:
    with Inbox(warehouse.home) as inbox:
        inbox.store("keep", {"id": "evt_pg_1", "object": "event", "type": "customer.updated",
                             "created": int(time.time()) - 60, "livemode": False,
                             "data": {"object": {"id": "cus_x", "object": "customer"}}})
    result = apply_inbox(warehouse.home, "keep", api_base=warehouse.sandbox_url)
    assert result.waiting == {"keep": POSTGRES_NOT_APPLIED}
    with Inbox(warehouse.home) as inbox:
        assert [event.event_id for event in inbox.unapplied("keep")] == ["evt_pg_1"]
    code, out = _cli("serve", "--realtime", "--port", "0")
    assert code != 0 and "DuckDB warehouse only" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


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
