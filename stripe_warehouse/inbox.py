"""The durable webhook inbox: SQLite next to the warehouse, so receiving never waits on DuckDB.

DuckDB locks its whole file while a sync or dbt build writes; the inbox is a separate SQLite
file in WAL mode with ``synchronous=FULL``, so an acknowledged event survives a crash or a
power cut. ``(project_id, event_id)`` is the primary key: a redelivered event is stored once.

An event is settled once: ``applied_at`` is set with its ``outcome``. An event the applier
cannot process is quarantined as outcome ``failed`` with a one-line ``reason``, so it never
holds up the events behind it; it stays in the file (pruned like applied ones) for inspection.
"""

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripe_warehouse.state_dir import StateDir

BUSY_TIMEOUT_MS = 10_000
# Stripe retries a delivery for 3 days; applied events are kept well beyond that for duplicate
# detection, then deleted so the file stays small (a later redelivery re-applies harmlessly).
KEEP_APPLIED_SECONDS = 35 * 86_400

_SCHEMA = """
create table if not exists inbox_events (
    project_id  text    not null,
    event_id    text    not null,
    type        text    not null,
    created     integer not null,
    payload     text    not null,  -- the event after the privacy allowlist
    received_at real    not null,
    applied_at  real,
    outcome     text,              -- 'applied', 'ignored', 'stale' or 'failed' once settled
    visible_at  real,              -- when the marts were refreshed after applying it
    reason      text,              -- why a 'failed' event could not be applied
    primary key (project_id, event_id)
);
create index if not exists inbox_unapplied on inbox_events (applied_at, created);
"""
FAILED = "failed"


@dataclass(frozen=True)
class InboxEvent:
    """One stored event; ``seq`` is the arrival order (SQLite rowid)."""

    seq: int
    project_id: str
    event_id: str
    type: str
    created: int
    event: dict[str, Any]
    received_at: float


def inbox_path(home: Path | str | StateDir) -> Path:
    """``inbox.sqlite`` of the state directory ``home``."""
    return StateDir.of(home).inbox


class Inbox:
    """Thread-safe access to the inbox file; one connection, writes serialised by a lock."""

    def __init__(self, home: Path | str | StateDir) -> None:
        self.path = StateDir.of(home).create().inbox
        self._lock = threading.Lock()
        self._con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
            isolation_level=None,  # explicit transactions only
        )
        self.path.chmod(0o600)  # events hold billing data
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=full")
        self._con.execute(f"pragma busy_timeout={BUSY_TIMEOUT_MS}")
        self._con.executescript(_SCHEMA)
        if not self._has_reason_column():  # an inbox written before quarantine existed
            try:
                self._con.execute("alter table inbox_events add column reason text")
            except sqlite3.OperationalError:
                if not self._has_reason_column():  # else another process added it first
                    raise

    def _has_reason_column(self) -> bool:
        columns = self._con.execute("pragma table_info(inbox_events)").fetchall()
        return "reason" in {row[1] for row in columns}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._con.close()

    def __enter__(self) -> "Inbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def store(self, project_id: str, event: dict[str, Any]) -> bool:
        """Durably store ``event``; False if ``(project_id, event id)`` was already stored."""
        row = (project_id, event["id"], event["type"], int(event["created"]),
               json.dumps(event, separators=(",", ":")), time.time())
        with self._lock:
            cursor = self._con.execute(
                "insert or ignore into inbox_events "
                "(project_id, event_id, type, created, payload, received_at) "
                "values (?, ?, ?, ?, ?, ?)", row,
            )
        return cursor.rowcount == 1

    def unapplied(self, project_id: str | None = None, limit: int = 10_000) -> list[InboxEvent]:
        """Events not applied yet, oldest ``created`` first, then arrival order."""
        query = (
            "select rowid, project_id, event_id, type, created, payload, received_at "
            "from inbox_events where applied_at is null"
            + (" and project_id = ?" if project_id else "")
            + " order by created, rowid limit ?"
        )
        params: tuple = (project_id, limit) if project_id else (limit,)
        with self._lock:
            rows = self._con.execute(query, params).fetchall()
        return [
            InboxEvent(seq, pid, eid, etype, created, json.loads(payload), received)
            for seq, pid, eid, etype, created, payload, received in rows
        ]

    def mark_applied(self, outcomes: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(project_id, event_id, outcome)`` for applied events, in one transaction."""
        now = time.time()
        with self._lock:
            self._con.execute("begin immediate")
            try:
                self._con.executemany(
                    "update inbox_events set applied_at = ?, outcome = ? "
                    "where project_id = ? and event_id = ?",
                    [(now, outcome, pid, eid) for pid, eid, outcome in outcomes],
                )
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise

    def mark_failed(self, failures: Iterable[tuple[str, str, str]]) -> None:
        """Quarantine ``(project_id, event_id, reason)``: settled as ``failed``, never retried."""
        now = time.time()
        with self._lock:
            self._con.executemany(
                "update inbox_events set applied_at = ?, outcome = ?, reason = ? "
                "where project_id = ? and event_id = ? and applied_at is null",
                [(now, FAILED, " ".join(reason.split())[:500], pid, eid)
                 for pid, eid, reason in failures],
            )

    def failed(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        """Quarantined events ``(project_id, event_id, reason)``, newest first."""
        where, params = ("and project_id = ?", (project_id,)) if project_id else ("", ())
        with self._lock:
            return self._con.execute(
                "select project_id, event_id, reason from inbox_events "
                f"where outcome = '{FAILED}' {where} order by applied_at desc, rowid desc",
                params).fetchall()

    def backlog(self) -> tuple[int, float | None]:
        """How many events wait to be applied, and when the oldest of them arrived."""
        with self._lock:
            count, oldest = self._con.execute(
                "select count(*), min(received_at) from inbox_events where applied_at is null"
            ).fetchone()
        return count, oldest

    def mark_visible(self, applied_before: float) -> int:
        """Stamp events applied before ``applied_before`` as visible in the marts now."""
        with self._lock:
            cursor = self._con.execute(
                "update inbox_events set visible_at = ? where visible_at is null "
                f"and applied_at <= ? and outcome != '{FAILED}'", (time.time(), applied_before)
            )
        return cursor.rowcount

    def prune_applied(self, older_than_seconds: float = KEEP_APPLIED_SECONDS) -> int:
        """Delete events applied longer ago than ``older_than_seconds``; how many went."""
        with self._lock:
            cursor = self._con.execute(
                "delete from inbox_events where applied_at < ?",
                (time.time() - older_than_seconds,))
        return cursor.rowcount

    def newest_unapplied(self) -> int | None:
        """The arrival number (rowid) of the newest unapplied event, or None if all are applied."""
        with self._lock:
            return self._con.execute(
                "select max(rowid) from inbox_events where applied_at is null").fetchone()[0]

    def counts(self, project_id: str | None = None) -> dict[str, int]:
        """``{"stored": n, "unapplied": m}`` for one project or all."""
        where, params = ("where project_id = ?", (project_id,)) if project_id else ("", ())
        with self._lock:
            stored, unapplied = self._con.execute(
                f"select count(*), count(*) - count(applied_at) from inbox_events {where}", params
            ).fetchone()
        return {"stored": stored, "unapplied": unapplied}
