"""One alert round, run after every build that published a project's marts: evaluate each
project's rules on the published numbers, remember the outcome, send what is new.

Callers: Dagster's ``revenue_alerts`` asset check (the CLI's syncs and transforms, Dagster's
jobs), the batch and retention jobs, and the real-time webhook round. A failure to deliver is
recorded and never fails the build; a rule that cannot be evaluated is one line in
:attr:`AlertRound.problems`.
"""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from stripe_warehouse.alert_delivery import BACKOFF_SECONDS, Delivery, deliver
from stripe_warehouse.alert_evaluation import Finding, evaluate_health, evaluate_on_marts
from stripe_warehouse.alert_rules import NO_THRESHOLD, rule_from_stored
from stripe_warehouse.alert_state import AlertEvent, AlertStore
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import Connection, ConnectionStore
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import reading

# The last reported day (partial, as of the last sync) and the one before it, whose numbers a
# later sync may still complete: each build judges both. Older days are history, not news.
EVALUATED_DAYS = 2


@dataclass
class AlertRound:
    """What one evaluation saw and sent."""

    findings: list[Finding] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    deliveries: list[tuple[AlertEvent, Delivery]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def firing(self) -> list[Finding]:
        """The rules whose condition holds now (sent before or in this round)."""
        return [f for f in self.findings if f.firing]

    @property
    def evaluated(self) -> bool:
        """Did any project have rules to judge (else there is nothing to report)?"""
        return bool(self.findings or self.problems)

    @property
    def failed_deliveries(self) -> list[Delivery]:
        return [d for _, d in self.deliveries if not d.delivered]


def _days_to_judge(con: duckdb.DuckDBPyConnection, project_id: str) -> list[dt.date]:
    (last,) = con.execute("select max(metric_date) from marts.metrics_daily where project_id = ?",
                          [project_id]).fetchone()
    return [] if last is None else [last - dt.timedelta(days=n)
                                    for n in reversed(range(EVALUATED_DAYS))]


def evaluate(home: Path | StateDir, connections: list[Connection],
             now: dt.datetime) -> tuple[list[Finding], list[str]]:
    """Every rule's finding on the days it judges; and one line per rule that could not be.

    The published numbers are ``reporting.duckdb``, or the server itself for a PostgreSQL
    warehouse (nothing is published there: readers query it, see metrics.marts_source)."""
    findings: list[Finding] = []
    problems: list[str] = []
    state = StateDir.of(home)
    target = state.target
    source = target if target.is_postgres else state.reporting
    try:
        with ExitStack() as opened:
            con = (opened.enter_context(reading(source))
                   if target.is_postgres or state.reporting.exists() else None)
            for connection in connections:
                rules = [rule_from_stored(r) for r in connection.alert_rules or []]
                findings += [evaluate_health(connection, r, now) for r in rules
                             if r.kind in NO_THRESHOLD]
                marts_rules = [r for r in rules if r.kind not in NO_THRESHOLD]
                if not marts_rules:
                    continue
                if con is None:
                    problems.append(f"{connection.project_id}: no published marts yet: run "
                                    f"`stripe-warehouse sync {connection.project_id} --backfill`")
                    continue
                for day in _days_to_judge(con, connection.project_id):
                    for rule in marts_rules:
                        finding = evaluate_on_marts(con, connection.project_id, rule, day)
                        if finding is not None:
                            findings.append(finding)
    except WarehouseError as error:  # storage.reading's one line (a server, a damaged file)
        problems.append(str(error))
    return findings, problems


def run_alerts(home: Path | StateDir, *, projects: list[str] | None = None,
               now: dt.datetime | None = None, backoff: float = BACKOFF_SECONDS) -> AlertRound:
    """Evaluate, record and deliver the alerts of ``projects`` (default: every project with
    rules). Delivery failures are recorded in the round and in ``alerts.sqlite``."""
    state = StateDir.of(home)
    store = ConnectionStore(state)
    connections = [c for c in store.list()
                   if c.alert_rules and (projects is None or c.project_id in projects)]
    round_ = AlertRound()
    if not connections:
        return round_
    round_.findings, round_.problems = evaluate(state, connections, now or dt.datetime.now(dt.UTC))
    alerts = AlertStore(state)
    round_.events = alerts.record(round_.findings)
    by_project = {c.project_id: c for c in connections}
    for event in round_.events:
        connection = by_project[event.finding.project_id]
        for channel in connection.alert_channels or []:
            try:
                secret = store.channel_secret(connection.project_id, channel)
            except WarehouseError as error:  # the key to open it is missing: one line
                delivery = Delivery(channel["id"], False, 0, str(error))
            else:
                delivery = deliver(channel, secret, event.message()[:120], event.payload(),
                                   backoff=backoff)
            alerts.record_delivery(event.log_id, delivery.channel_id, delivery.delivered,
                                   delivery.attempts, delivery.error)
            round_.deliveries.append((event, delivery))
    return round_


def run_alerts_after_build(home: Path | StateDir, log: object = None,
                           projects: list[str] | None = None) -> AlertRound:
    """:func:`run_alerts` for a build's caller: never raises a user error into the build (it
    becomes one problem line); ``log`` (a callable) is told each alert and failure."""
    try:
        round_ = run_alerts(home, projects=projects)
    except WarehouseError as error:
        round_ = AlertRound(problems=[f"alerts not evaluated: {error}"])
    if callable(log):
        for line in format_round(round_):
            log(line)
    return round_


def format_round(round_: AlertRound) -> list[str]:
    """One line per alert sent, per failed delivery and per problem."""
    lines = [event.message() for event in round_.events]
    lines += [f"alert delivery failed: {d.error}" for d in round_.failed_deliveries]
    lines += [f"alerts: {problem}" for problem in round_.problems]
    return lines
