"""A sync loaded in several packages while it extracts (pipelines/segments.py, issue 18).

The test company (200 customers) is one segment at the real SEGMENT_ROWS; these tests make
segments of 150 rows, so that a backfill goes through every lane several times.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import segments
from pipelines.load import sync_project
from pipelines.source import RAW_TABLES
from sandbox.company import Company
from sandbox.server import SandboxServer
from stripe_warehouse.purge import pipeline_names
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.pipelines.conftest import NOW, TEST_KEY, query, table_ids
from tests.pipelines.expected import expected_backfill_ids
from tests.pipelines.test_sync_recovery import REPO
from tests.postgres_databases import new_database
from tests.processes import alive, descendants

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("spawned_dbt")]
DAY = 86_400
SMALL_SEGMENT = 150


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "SEGMENT_ROWS", SMALL_SEGMENT)


def assert_exactly_the_backfill(home: Path, company: Company) -> None:
    expected = expected_backfill_ids(company, NOW)
    for table in RAW_TABLES:
        count, distinct = query(home, f"select count(*), count(distinct id) "
                                      f"from stripe_raw.{table}")[0]
        assert count == distinct == len(expected[table]), table
        assert table_ids(home, table) == sorted(expected[table]), table


def test_backfill_in_segments_loads_each_object_once_and_records_one_run(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    """Every lane loads packages; the warehouse holds exactly the objects of the window (the
    same ids as one package loads: test_sync_sandbox), each once, and one sync_runs row."""
    result = sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    expected = expected_backfill_ids(company, NOW)
    total = sum(len(ids) for ids in expected.values())
    # a segment grows while no other lane is free, so how many there are varies (not 1)
    assert result.timings.segments >= 3
    assert result.objects_loaded == total
    assert_exactly_the_backfill(store.home, company)
    loads = query(store.home, "select count(distinct _dlt_load_id) from stripe_raw.events")
    assert loads[0][0] >= 2
    lanes = {row[0] for row in query(store.home, "select pipeline_name from "
                                                 "stripe_raw._dlt_pipeline_state")}
    names = pipeline_names("acme", segments.LANES)
    assert set(names[:2]) <= lanes <= set(names)  # segment 2 always goes to the second lane
    assert query(store.home, "select count(*), max(objects_loaded) from stripe_raw.sync_runs"
                 ) == [(1, total)]
    timings = result.timings
    assert timings.extract > 0 and timings.normalize > 0 and timings.load > 0


def test_refresh_after_a_segmented_backfill_picks_up_a_change_to_an_old_object(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    """The refresh path is the same code: an old subscription canceled since the backfill is
    canceled in the warehouse, with a second version, and nothing else is duplicated."""
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    old = next(s for s in company.objects["subscription"]
               if s["status"] == "active" and s["created"] < NOW - 365 * DAY)
    later = NOW + 2 * DAY
    company.cancel_subscription(old["id"], at=later - 60, at_period_end=False)
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=later)
    assert query(store.home, "select data->>'status' from stripe_raw.subscriptions "
                             "where id = ?", [old["id"]]) == [("canceled",)]
    versions = query(store.home, "select data->>'status', source from "
                                 "stripe_raw.subscription_versions where id = ? "
                                 "order by observed_at", [old["id"]])
    assert versions == [("active", "backfill"), ("canceled", "refresh")]
    for table in RAW_TABLES:
        if table != "subscription_versions":
            count, distinct = query(store.home, f"select count(*), count(distinct id) "
                                                f"from stripe_raw.{table}")[0]
            assert count == distinct, table


SEGMENTED_SYNC_SCRIPT = f"""
import sys
from pipelines import segments
from pipelines.load import sync_project
from stripe_warehouse.registry import ConnectionStore
segments.SEGMENT_ROWS = {SMALL_SEGMENT}
sync_project(ConnectionStore(sys.argv[1]), "acme", "backfill", api_base=sys.argv[2],
             now=int(sys.argv[3]))
"""


def test_backfill_killed_while_a_later_lane_loads_is_completed_by_the_next_run(
    company: Company, store: ConnectionStore
) -> None:
    """SIGKILL once the second lane has a package in the load stage (the first lane's packages
    are loaded or being loaded): the next run discards what the lanes left and loads exactly
    the backfill's objects, once each."""
    with SandboxServer(accounts={TEST_KEY: company}, latency_ms=5) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-c", SEGMENTED_SYNC_SCRIPT, str(store.home), srv.url, str(NOW)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        second_lane = pipeline_names("acme", segments.LANES)[1]
        stage = store.home / ".dlt" / second_lane / "load" / "normalized"
        reached = _wait_for(lambda: any(stage.glob("*/")), proc)
        helpers = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert reached and proc.returncode == -signal.SIGKILL
        assert not alive(helpers, within=10), "processes of the killed sync survived it"
        assert store.get("acme").last_sync_at is None
        sync_project(store, "acme", "backfill", api_base=srv.url, now=NOW)
    assert_exactly_the_backfill(store.home, company)
    assert query(store.home, "select count(*) from stripe_raw.sync_runs")[0][0] == 1
    for name in pipeline_names("acme", segments.LANES):  # nothing left pending in any lane
        assert not any((store.home / ".dlt" / name / "load" / "normalized").glob("*/"))


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen,
              timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.postgres
def test_segmented_backfill_into_postgresql_loads_each_object_once(
    company: Company, sandbox: SandboxServer, store: ConnectionStore, postgres_url: str
) -> None:
    """The lanes load through dlt's `postgres` destination too (csv, the project's own staging
    dataset, one lane at a time): every object of the window once, one sync_runs row."""
    with new_database(postgres_url, "segments") as url:
        target = WarehouseTarget.postgres(url)
        target.save(store.home)
        result = sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
        assert result.timings.segments >= 3
        expected = expected_backfill_ids(company, NOW)
        for table in RAW_TABLES:
            ids = [row[0] for row in target.fetch_all(
                f"select id from stripe_raw.{table} where project_id = %s", ["acme"])]
            assert sorted(ids) == sorted(expected[table]), table
        assert target.fetch_all("select count(*) from stripe_raw.sync_runs") == [(1,)]
