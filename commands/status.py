"""``stripe-warehouse status``: every project's tier, mode, state, syncs and webhooks.

Nothing here opens ``warehouse.duckdb``: a reader would lock out a running sync. The reporting
window comes from the published copy ``reporting.duckdb`` (when present), everything else from
the registry and the webhook inbox (SQLite in WAL mode, where readers never block the writer).
"""

import datetime as dt
import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from commands.scheduler_status import SchedulerState
from stripe_warehouse.demo_project import demo_advice, demo_project
from stripe_warehouse.publish import published_path
from stripe_warehouse.registry import Connection, ConnectionStore
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import (
    CorruptDatabase,
    check_not_truncated,
    corrupt_database,
    is_corruption,
)
from stripe_warehouse.tiers import next_scheduled_sync

# A DuckDB file has "DUCK" at bytes 8-12 of its first header.
DUCKDB_MAGIC = b"DUCK"
_DUCKDB_MAGIC_START, _DUCKDB_MAGIC_END = 8, 12


@dataclass(frozen=True)
class ProjectStatus:
    """One row of ``status``."""

    project_id: str
    tier: str
    mode: str
    state: str
    reason: str | None
    last_sync_at: dt.datetime | None
    last_sync_kind: str | None
    window: tuple[dt.date, dt.date] | None
    next_sync: dt.datetime | None
    webhook_last_received: dt.datetime | None
    note: str | None = None  # what to do with the project (the demo's, say)
    webhooks_failed: tuple[int, str] | None = None  # quarantined events: how many, newest why
    cron: str | None = None  # the project's own refresh cron, if it has one
    time_zone: str = "UTC"  # the reporting time zone its days and months follow


def _utc(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def reporting_windows(home: Path) -> dict[str, tuple[dt.date, dt.date]]:
    """First and last reported day per project, from the published ``reporting.duckdb`` (the
    server of a PostgreSQL warehouse)."""
    windows = ("select project_id, min(metric_date), max(metric_date) "
               "from marts.metrics_daily group by project_id")
    target = StateDir.of(home).target
    if target.is_postgres:
        try:
            rows = target.fetch_all(windows)
        except Exception:  # noqa: BLE001 - psycopg2's errors: marts not built yet, server down
            return {}  # (`doctor` says which)
        return {project: (first, last) for project, first, last in rows}
    path = published_path(home)
    if not path.exists():
        return {}
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute(windows).fetchall()
    except duckdb.Error:  # published before the marts existed, or mid-swap
        return {}
    return {project: (first, last) for project, first, last in rows}


def damaged_files(home: Path) -> list[str]:
    """One line per damaged DuckDB file, found without taking or waiting for any lock.

    ``warehouse.duckdb`` is not opened (a reader would lock out a sync): only its header is
    read, which catches a file overwritten or cut short before its first block. The published
    copy is never written in place, so it is opened read-only and its length checked.
    """
    problems = []
    warehouse = StateDir.of(home).warehouse
    if warehouse.exists():
        with open(warehouse, "rb") as f:
            header = f.read(_DUCKDB_MAGIC_END)
        if header[_DUCKDB_MAGIC_START:_DUCKDB_MAGIC_END] != DUCKDB_MAGIC:
            problems.append(str(corrupt_database(warehouse, "not a DuckDB file")))
    published = published_path(home)
    if published.exists():
        try:
            with duckdb.connect(str(published), read_only=True) as con:
                check_not_truncated(con, published)
        except CorruptDatabase as error:
            problems.append(str(error))
        except duckdb.Error as error:
            if is_corruption(str(error)):
                problems.append(str(corrupt_database(published, error)))
    return problems


def _inbox_rows(home: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the inbox; none if there is no inbox (or it predates ``sql``)."""
    path = StateDir.of(home).inbox
    if not path.exists():
        return []
    con = sqlite3.connect(path, timeout=5)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def webhooks_last_received(home: Path) -> dict[str, dt.datetime]:
    """When each project's newest webhook arrived, from the inbox (absent: none received)."""
    rows = _inbox_rows(
        home, "select project_id, max(received_at) from inbox_events group by project_id")
    return {project: _utc(received) for project, received in rows}


def webhooks_failed(home: Path) -> dict[str, tuple[int, str]]:
    """Per project, events the applier quarantined: how many, and the newest one's reason."""
    rows = _inbox_rows(
        home, "select project_id, count(*), "
        "(select reason from inbox_events newest where newest.project_id = e.project_id "
        " and newest.outcome = 'failed' order by applied_at desc, rowid desc limit 1) "
        "from inbox_events e where outcome = 'failed' group by project_id")
    return {project: (count, reason or "") for project, count, reason in rows}


def project_statuses(
    home: Path | str, now: dt.datetime | None = None
) -> list[ProjectStatus]:
    """The status of every connected project, sorted by project id."""
    state = StateDir.of(home).root  # the CLI checked it exists: a reader creates nothing
    now = now or dt.datetime.now(dt.UTC)
    windows = reporting_windows(state)
    webhooks = webhooks_last_received(state)
    failed = webhooks_failed(state)
    return [
        ProjectStatus(
            project_id=c.project_id,
            tier=c.tier,
            mode=c.mode,
            state=c.status,
            reason=c.status_reason,
            last_sync_at=_utc(c.last_sync_at),
            last_sync_kind=c.last_sync_kind,
            window=windows.get(c.project_id),
            next_sync=_next_sync(state, c, now),
            webhook_last_received=webhooks.get(c.project_id),
            note=_note(state, c),
            webhooks_failed=failed.get(c.project_id),
            cron=c.cron,
            time_zone=c.time_zone,
        )
        for c in ConnectionStore(state).list()
    ]


def _next_sync(home: Path, connection: Connection, now: dt.datetime) -> dt.datetime | None:
    if connection.status != "active" or demo_project(home, connection) is not None:
        return None  # the demo's project is synced by running the demo, never by a schedule
    return next_scheduled_sync(connection.tier, now, connection.cron)


def _note(home: Path, connection: Connection) -> str | None:
    demo = demo_project(home, connection)
    return None if demo is None else demo_advice(demo)


def _when(moment: dt.datetime | None, empty: str = "never") -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else empty


def format_statuses(statuses: list[ProjectStatus]) -> str:
    """A fixed-width table, then one line per project that needs attention."""
    header = ("project", "tier", "status", "mode", "last sync", "kind", "window", "next sync",
              "last webhook")
    rows = [
        (
            s.project_id, s.tier, s.state, s.mode, _when(s.last_sync_at),
            s.last_sync_kind or "-",
            f"{s.window[0]}..{s.window[1]}" if s.window else "-",
            _when(s.next_sync, "on demand" if s.state == "active" else "-"),
            _when(s.webhook_last_received, "none"),
        )
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    for s in statuses:
        if s.mode == "test":
            lines.append(f"{s.project_id}: test mode: its numbers are test data, not revenue")
        if s.state != "active" and s.reason:
            lines.append(f"{s.project_id}: {s.reason}")
        if s.note:
            lines.append(f"{s.project_id}: {s.note}")
        if s.cron and s.state == "active":
            lines.append(f"{s.project_id}: refreshes on its own cron {s.cron!r} (UTC), "
                         f"not its tier's schedule")
        if s.time_zone != "UTC":
            lines.append(f"{s.project_id}: days and months in {s.time_zone} "
                         "(its reporting time zone)")
        if s.webhooks_failed:
            lines.append(failed_webhooks_line(s.project_id, *s.webhooks_failed))
    return "\n".join(lines)


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def statuses_json(
    home: Path, statuses: list[ProjectStatus], scheduler: SchedulerState
) -> str:
    """``status --json``: every project's fields, and whether a scheduler runs."""
    return json.dumps({
        "state_directory": str(home.resolve()),
        "scheduler": {k: _json_value(v) for k, v in asdict(scheduler).items()},
        "projects": [{k: _json_value(v) for k, v in asdict(s).items()} for s in statuses],
    }, indent=2)


def failed_webhooks_line(project_id: str, count: int, newest_reason: str) -> str:
    """One line on a project's quarantined webhook events (``status`` and ``doctor``)."""
    return (f"{project_id}: {count} webhook event{'s' if count != 1 else ''} could not be "
            f"applied and {'were' if count != 1 else 'was'} quarantined in the inbox (newest: "
            f"{newest_reason}); the next refresh sync reads their objects from Stripe")
