"""`stripe-warehouse status`: registry, published windows and webhooks, never the write lock."""

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from service.inbox import Inbox
from stripe_warehouse.cli import main
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.status import project_statuses

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
    assert lines[4:] == [
        "gone: Stripe no longer accepts the credentials of project gone",
        "trial: test mode: its numbers are test data, not revenue",
    ]


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
