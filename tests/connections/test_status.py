"""`stripe-warehouse status`: registry, published windows and webhooks, never the write lock."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from commands.scheduler_status import scheduler_state
from commands.status import project_statuses
from orchestration.ui import dagster_home
from stripe_warehouse.demo_project import mark_demo
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from tests.paths import REPO_ROOT
from tests.processes import alive, descendants

NOW = dt.datetime(2026, 6, 15, 4, 10, tzinfo=dt.UTC)

HOLD_WRITE_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists held (x int)")
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def store(home: Path) -> ConnectionStore:
    """A synced live Pro project with webhooks, a test-mode Basic one, and a revoked one."""
    store = ConnectionStore(home)
    store.connect("shop", "pro", "rk_live_status_0001", webhook_secret="whsec_status")
    store.record_sync("shop", "refresh", NOW.timestamp() - 600, None)
    store.connect("trial", "basic", "sk_test_status_0002")
    store.connect("gone", "scale", "rk_live_status_0003")
    store.revoke("gone", "Stripe no longer accepts the credentials of project gone")
    # The published copy, as stripe_warehouse.publish leaves it after a build.
    with duckdb.connect(str(home / "reporting.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.metrics_daily as select 'shop' as project_id, "
                    "d::date as metric_date from range(date '2026-03-17', date '2026-06-16', "
                    "interval 1 day) t(d)")
    with Inbox(home) as inbox:
        inbox.store("shop", {"id": "evt_1", "type": "invoice.paid", "created": 1})
    return store


def test_status_reports_tier_mode_state_syncs_window_schedule_and_webhooks(
    store: ConnectionStore, home: Path
) -> None:
    rows = {s.project_id: s for s in project_statuses(home, now=NOW)}
    shop, trial, gone = rows["shop"], rows["trial"], rows["gone"]
    assert (shop.tier, shop.mode, shop.state) == ("pro", "live", "active")
    assert shop.last_sync_at == NOW - dt.timedelta(minutes=10)
    assert shop.window == (dt.date(2026, 3, 17), dt.date(2026, 6, 15))
    assert shop.next_sync == dt.datetime(2026, 6, 15, 6, tzinfo=dt.UTC)  # Pro: every 3 hours
    assert shop.webhook_last_received is not None
    assert abs(shop.webhook_last_received.timestamp() - time.time()) < 60
    assert (trial.mode, trial.last_sync_at, trial.next_sync, trial.window) == (
        "test", None, None, None)
    assert (gone.state, gone.next_sync) == ("revoked", None)


def test_status_command_prints_a_row_per_project_and_flags_test_mode_and_revocation(
    store: ConnectionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["project", "tier", "status", "mode", "last", "sync", "kind",
                                "window", "next", "sync", "last", "webhook"]
    assert [line.split()[:4] for line in lines[1:4]] == [
        ["gone", "scale", "revoked", "live"], ["shop", "pro", "active", "live"],
        ["trial", "basic", "active", "test"]]
    assert "2026-03-17..2026-06-15" in lines[2]
    assert lines[4:6] == [
        "gone: Stripe no longer accepts the credentials of project gone",
        "trial: test mode: its numbers are test data, not revenue",
    ]
    assert lines[6].startswith("scheduler: NOT running (no heartbeat ever in ")
    assert "dagster-daemon run" in lines[6] and len(lines) == 7


def test_status_works_while_a_sync_holds_the_warehouse_write_lock(
    store: ConnectionStore, home: Path
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK,
                               str(home / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        rows = project_statuses(home, now=NOW)
        assert [s.project_id for s in rows] == ["gone", "shop", "trial"]
    finally:
        holder.kill()
        holder.wait()


def test_status_json_has_every_project_and_the_scheduler(
    store: ConnectionStore, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state_directory"] == str(home.resolve())
    assert report["scheduler"]["running"] is False
    assert report["scheduler"]["heartbeat_at"] is None
    shop = next(p for p in report["projects"] if p["project_id"] == "shop")
    assert (shop["tier"], shop["state"], shop["mode"], shop["last_sync_kind"]) == (
        "pro", "active", "live", "refresh")
    assert shop["window"] == ["2026-03-17", "2026-06-15"]
    assert dt.datetime.fromisoformat(shop["next_sync"]).tzinfo is not None


def test_status_says_the_demo_project_is_the_demos_and_schedules_no_sync_for_it(
    store: ConnectionStore, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mark_demo(home, store.connect("demo", "pro", "sk_test_demo"), "http://127.0.0.1:9")
    rows = {s.project_id: s for s in project_statuses(home, now=NOW)}
    assert rows["demo"].next_sync is None and rows["shop"].next_sync is not None
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert ("demo: the demo's sandbox company, synced from the sandbox at http://127.0.0.1:9 "
            "that ran only during the demo") in out
    assert "run `stripe-warehouse demo` again" in out
    # Connecting a real account under the same id ends the demo mark.
    store.connect("demo", "pro", "rk_live_now_a_real_account")
    assert project_statuses(home, now=NOW)[0].note is None
    assert project_statuses(home, now=NOW)[0].next_sync is not None


def test_status_sees_a_running_dagster_daemon_and_its_end(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real `dagster-daemon run` on the state directory's instance, as production runs it."""
    store = ConnectionStore(home)
    store.connect("shop", "starter", "rk_live_status_daemon")
    store.record_sync("shop", "backfill", time.time(), None)  # the sensor launches no backfill
    env = {**os.environ, "STRIPE_WAREHOUSE_HOME": str(home),
           "DAGSTER_HOME": str(dagster_home(home))}
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not scheduler_state(home).running:
            assert daemon.poll() is None, "dagster-daemon exited"
            assert time.monotonic() < deadline, "no scheduler heartbeat within 180 s"
            time.sleep(1)
        assert main(["status"]) == 0
        assert capsys.readouterr().out.splitlines()[-1].startswith("scheduler: running (")
        state = scheduler_state(home)
        assert state.heartbeat_at is not None
        later = scheduler_state(home, now=state.heartbeat_at + dt.timedelta(minutes=5))
        assert not later.running  # a heartbeat older than 90 s: the daemon is gone or hangs
    finally:
        children = descendants(daemon.pid)
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        assert not alive(children, within=30)


def test_status_does_not_guess_for_an_instance_with_its_own_run_storage(
    store: ConnectionStore, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = dagster_home(home) / "dagster.yaml"
    config.write_text("storage:\n  postgres:\n    postgres_url: postgresql://db/dagster\n")
    assert scheduler_state(home).running is None
    assert main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"scheduler: unknown ({home.resolve() / 'dagster'}/dagster.yaml keeps the run storage "
        f"elsewhere): check it with `DAGSTER_HOME={home.resolve() / 'dagster'} dagster-daemon "
        "liveness-check`")
