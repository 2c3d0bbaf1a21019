"""What alerting remembers (``<home>/alerts.sqlite``, 0600): each rule's state per day, the
alerts sent (fired and resolved) and each delivery's outcome.

The state makes evaluation idempotent: a rule fires once for a day; a refresh that leaves the
number where it was (or moves it by less than :data:`MATERIAL_CHANGE`) sends nothing new; a
condition that stops holding sends one "resolved".
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from stripe_warehouse.alert_evaluation import Finding
from stripe_warehouse.state_dir import StateDir

# A fired alert is sent again for the same day only when its value moved by more than this
# share of the value it was sent with (at least 1 unit: a dollar, a payment).
MATERIAL_CHANGE = Decimal("0.01")
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
create table if not exists alert_state (
    project_id text not null, rule_id text not null, day text not null,
    firing integer not null, value text not null, updated_at real not null,
    primary key (project_id, rule_id, day));
create table if not exists alert_log (
    id integer primary key, project_id text not null, rule_id text not null,
    kind text not null, day text not null, event text not null, value text not null,
    threshold text, compared_to text, message text not null, customers text not null,
    created_at real not null);
create table if not exists alert_deliveries (
    log_id integer not null, channel_id text not null, delivered integer not null,
    attempts integer not null, error text, at real not null);
"""


@dataclass(frozen=True)
class AlertEvent:
    """An alert to send: a rule ``fired`` (or fired again with a changed number) or
    ``resolved`` for a project and day."""

    log_id: int
    event: str
    finding: Finding

    def message(self) -> str:
        """The one line every channel carries."""
        word = {"fired": "ALERT", "resolved": "RESOLVED"}[self.event]
        return f"[{word}] {self.finding.summary()}"

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook (and the metadata of Dagster's check)."""
        f = self.finding
        return {
            "id": self.log_id, "event": self.event, "project_id": f.project_id,
            "rule": f.rule.id, "kind": f.rule.kind, "day": f.day.isoformat(),
            "value": str(f.value),
            "threshold": None if f.rule.threshold is None else f.rule.threshold.text,
            "compared_to": None if f.compared_to is None else str(f.compared_to),
            "customers": f.customers, "message": self.message(),
        }


def material(before: Decimal, after: Decimal) -> bool:
    """Has a fired alert's value changed enough to be sent again?"""
    return abs(after - before) > max(abs(before) * MATERIAL_CHANGE, Decimal(1))


class AlertStore:
    """``alerts.sqlite`` of a state directory."""

    def __init__(self, home: Path | StateDir) -> None:
        self.path = StateDir.of(home).alerts

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None)) as con:
            con.execute(f"pragma busy_timeout={BUSY_TIMEOUT_MS}")
            con.executescript(_SCHEMA)
            self.path.chmod(0o600)  # it names customers: owner-only, like the warehouse
            yield con

    def record(self, findings: list[Finding]) -> list[AlertEvent]:
        """Update each finding's (project, rule, day) state; the alerts to send, logged.

        One transaction: two evaluations at once (the real-time service and a Dagster run)
        never both send the same alert."""
        events: list[AlertEvent] = []
        now = time.time()
        with self._connection() as con:
            con.execute("begin immediate")
            try:
                for finding in findings:
                    event = self._transition(con, finding, now)
                    if event is not None:
                        events.append(event)
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        return events

    @staticmethod
    def _transition(con: sqlite3.Connection, f: Finding, now: float) -> AlertEvent | None:
        key = [f.project_id, f.rule.id, f.day.isoformat()]
        row = con.execute("select firing, value from alert_state where project_id = ? "
                          "and rule_id = ? and day = ?", key).fetchone()
        was_firing = bool(row and row[0])
        if f.firing and was_firing and not material(Decimal(row[1]), f.value):
            return None
        if not f.firing and not was_firing:
            if row is None:  # remember the quiet value: a later build compares with it
                con.execute("insert into alert_state values (?, ?, ?, 0, ?, ?)",
                            [*key, str(f.value), now])
            return None
        con.execute("insert or replace into alert_state values (?, ?, ?, ?, ?, ?)",
                    [*key, int(f.firing), str(f.value), now])
        event = "fired" if f.firing else "resolved"
        provisional = AlertEvent(0, event, f)
        cursor = con.execute(
            "insert into alert_log (project_id, rule_id, kind, day, event, value, threshold, "
            "compared_to, message, customers, created_at) values (?,?,?,?,?,?,?,?,?,?,?)",
            [f.project_id, f.rule.id, f.rule.kind, f.day.isoformat(), event, str(f.value),
             None if f.rule.threshold is None else f.rule.threshold.text,
             None if f.compared_to is None else str(f.compared_to), provisional.message(),
             json.dumps(f.customers), now])
        return AlertEvent(int(cursor.lastrowid or 0), event, f)

    def record_delivery(self, log_id: int, channel_id: str, delivered: bool, attempts: int,
                        error: str | None) -> None:
        """Remember one channel's outcome for one alert (the error is one line, no secret)."""
        with self._connection() as con:
            con.execute("insert into alert_deliveries values (?, ?, ?, ?, ?, ?)",
                        [log_id, channel_id, int(delivered), attempts, error, time.time()])

    def recent(self, project_id: str, days: int = 30,
               now: float | None = None) -> list[dict[str, Any]]:
        """The project's alerts logged in the last ``days`` days, newest first, each with its
        deliveries."""
        if not self.path.exists():
            return []
        since = (now or time.time()) - days * 86400
        with self._connection() as con:
            con.row_factory = sqlite3.Row
            rows = [dict(r) for r in con.execute(
                "select * from alert_log where project_id = ? and created_at >= ? "
                "order by created_at desc, id desc", [project_id, since])]
            for row in rows:
                row["customers"] = json.loads(row["customers"])
                row["deliveries"] = [dict(d) for d in con.execute(
                    "select channel_id, delivered, attempts, error from alert_deliveries "
                    "where log_id = ? order by at", [row["id"]])]
        return rows
