"""Whether a Dagster scheduler runs for this state directory: the schedules' next syncs need one.

Schedules run only inside a Dagster daemon (`dagster-daemon run`, which `stripe-warehouse ui`
starts through `dagster dev`). The daemon writes a heartbeat into the instance's run storage
every 30 s; this reads it straight from SQLite (``<home>/dagster/history/runs.db``, Dagster's
default storage) instead of importing Dagster, which would add two seconds to `status`. An
instance configured with other storage (Postgres, say) is reported as unknown, with the command
that checks it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import yaml

from stripe_warehouse.state_dir import StateDir

RUN_STORAGE = Path("history") / "runs.db"
# dagster.yaml keys that move the run storage (and its heartbeats) out of runs.db.
STORAGE_KEYS = ("storage", "run_storage")
# Three missed heartbeats (every 30 s): the daemon stopped or hangs.
HEARTBEAT_TOLERANCE = dt.timedelta(seconds=90)


@dataclass(frozen=True)
class SchedulerState:
    """The newest scheduler heartbeat of the state directory's Dagster instance."""

    dagster_home: Path
    heartbeat_at: dt.datetime | None
    running: bool | None  # None: the instance's storage is not the SQLite file read here


def scheduler_state(home: Path, now: dt.datetime | None = None) -> SchedulerState:
    """Whether the Dagster scheduler daemon of ``home``'s instance beat in the last 90 s."""
    now = now or dt.datetime.now(dt.UTC)
    dagster_home = StateDir.of(home).dagster
    if _storage_elsewhere(dagster_home / "dagster.yaml"):
        return SchedulerState(dagster_home, None, None)
    heartbeat = _scheduler_heartbeat(dagster_home / RUN_STORAGE)
    running = heartbeat is not None and now - heartbeat <= HEARTBEAT_TOLERANCE
    return SchedulerState(dagster_home, heartbeat, running)


def _storage_elsewhere(config: Path) -> bool:
    try:
        settings = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(settings, dict) and any(key in settings for key in STORAGE_KEYS)


def _scheduler_heartbeat(run_storage: Path) -> dt.datetime | None:
    if not run_storage.exists():
        return None
    try:
        # mode=ro: `status` never creates or changes the instance's files.
        con = sqlite3.connect(f"file:{run_storage}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(
                "select body from daemon_heartbeats where daemon_type = 'SCHEDULER'"
            ).fetchone()
        finally:
            con.close()
        return None if row is None else dt.datetime.fromtimestamp(
            json.loads(row[0])["timestamp"], dt.UTC)
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return None


def format_scheduler(state: SchedulerState) -> str:
    """One line: running (the next syncs happen), or not (and how to start one)."""
    if state.running is None:
        return (f"scheduler: unknown ({state.dagster_home}/dagster.yaml keeps the run storage "
                f"elsewhere): check it with `DAGSTER_HOME={state.dagster_home} dagster-daemon "
                "liveness-check`")
    if state.running and state.heartbeat_at is not None:
        return (f"scheduler: running (Dagster daemon, last heartbeat "
                f"{state.heartbeat_at:%H:%M:%S} UTC): the next syncs above happen on time")
    seen = (f"last heartbeat {state.heartbeat_at:%Y-%m-%d %H:%M} UTC"
            if state.heartbeat_at else "no heartbeat ever")
    return (f"scheduler: NOT running ({seen} in {state.dagster_home}): no scheduled sync "
            "happens until one runs; start `stripe-warehouse ui`, or in production run "
            "`dagster-daemon run` as a service (see README, 'Schedules in production')")
