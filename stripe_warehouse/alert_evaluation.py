"""Evaluating alert rules: SQL over the published marts (``reporting.duckdb``), one day at a time.

Each rule gives a :class:`Finding` for a project and day: whether its condition holds, the
value, what it was compared with, and the customers behind it (ids only). Which days are
evaluated and what is sent is :mod:`stripe_warehouse.alerts`' business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from stripe_warehouse.alert_rules import PERIODS, Rule
from stripe_warehouse.registry import Connection
from stripe_warehouse.tiers import freshness_allowed

TRAILING_DAYS = 28  # failed_payments' "K x the trailing average" looks at the 28 days before
MAX_CUSTOMERS_NAMED = 20  # a churn alert names at most this many customers (largest first)


@dataclass(frozen=True)
class Finding:
    """A rule's outcome for one project and day."""

    project_id: str
    rule: Rule
    day: dt.date
    firing: bool
    value: Decimal
    compared_to: Decimal | None = None  # the previous MRR, the trailing average
    customers: list[dict[str, Any]] = field(default_factory=list)  # [{customer_id, lost_mrr}]
    note: str = ""

    def summary(self) -> str:
        """One line saying what the rule saw (no secret, ids only)."""
        base = f"{self.project_id} {self.day}: {self.rule.describe()}: {self.note}"
        if self.customers:
            named = ", ".join(f"{c['customer_id']} ${c['lost_mrr']}" for c in self.customers)
            base += f" (customers: {named})"
        return base


def money(value: Any) -> Decimal:
    """A money figure from DuckDB (DECIMAL or None) as a Decimal with cents kept exact."""
    return Decimal(0) if value is None else Decimal(value)


def plain(number: Decimal) -> str:
    """A count or ratio without trailing zeros: 2, 0.178571."""
    return f"{number.normalize():f}"


def _metric(con: duckdb.DuckDBPyConnection, project_id: str, metric: str,
            day: dt.date) -> Decimal | None:
    row = con.execute(
        "select value from marts.metrics_daily where project_id = ? and metric = ? "
        "and metric_date = ?", [project_id, metric, day]).fetchone()
    return None if row is None else money(row[0])


def mrr_change(con: duckdb.DuckDBPyConnection, project_id: str, rule: Rule,
               day: dt.date) -> Finding | None:
    """MRR of ``day`` against the day (or week) before: fires beyond +/-N% or +/-$N.

    A percentage of a zero MRR is not defined: from 0 only a dollar rule can fire."""
    assert rule.threshold is not None
    today = _metric(con, project_id, "stripe_mrr", day)
    before = _metric(con, project_id, "stripe_mrr", day - dt.timedelta(days=PERIODS[rule.period]))
    if today is None or before is None:
        return None  # outside the reporting window: nothing to compare
    change = today - before
    if rule.threshold.unit == "percent":
        percent = (change / before * 100) if before else None
        firing = percent is not None and abs(percent) > rule.threshold.amount
        shown = f"{percent:+.2f}%" if percent is not None else "n/a (MRR was 0)"
    else:
        firing = abs(change) > rule.threshold.amount
        shown = f"{'+' if change >= 0 else '-'}${abs(change)}"
    return Finding(project_id, rule, day, firing, today, before,
                   note=f"MRR ${before} -> ${today} ({shown})")


def failed_payments(con: duckdb.DuckDBPyConnection, project_id: str, rule: Rule,
                    day: dt.date) -> Finding | None:
    """Failed payment attempts of ``day`` above N, or above K x the average of the 28 days
    before (those of them in the reporting window; none: no average, no alert)."""
    assert rule.threshold is not None
    count = _metric(con, project_id, "stripe_failed_payments", day)
    if count is None:
        return None
    if rule.threshold.unit == "count":
        return Finding(project_id, rule, day, count > rule.threshold.amount, count,
                       note=f"{plain(count)} failed payments (threshold {rule.threshold.amount})")
    days, total = con.execute(
        "select count(*), sum(value) from marts.metrics_daily where project_id = ? "
        "and metric = 'stripe_failed_payments' and metric_date >= ? and metric_date < ?",
        [project_id, day - dt.timedelta(days=TRAILING_DAYS), day]).fetchone()
    if not days:
        return None
    average = (money(total) / days).quantize(Decimal("0.000001"))
    firing = count > rule.threshold.amount * average
    return Finding(project_id, rule, day, firing, count, average,
                   note=f"{plain(count)} failed payments, trailing {TRAILING_DAYS}-day average "
                        f"{plain(average)} (threshold {rule.threshold.amount}x)")


def _losses(con: duckdb.DuckDBPyConnection, project_id: str, day: dt.date,
            column: str) -> list[dict[str, Any]]:
    rows = con.execute(
        f"select customer_id, {column} as lost from marts.fct_mrr_movements "
        f"where project_id = ? and metric_date = ? and {column} > 0 "
        "order by lost desc, customer_id", [project_id, day]).fetchall()
    return [{"customer_id": customer, "lost_mrr": str(money(lost))} for customer, lost in rows]


def churned_mrr(con: duckdb.DuckDBPyConnection, project_id: str, rule: Rule,
                day: dt.date) -> Finding | None:
    """MRR churned on ``day`` (fct_mrr_movements.churn_mrr) above $N, naming the customers."""
    assert rule.threshold is not None
    lost = _losses(con, project_id, day, "churn_mrr")
    total = sum((Decimal(c["lost_mrr"]) for c in lost), Decimal(0))
    firing = total > rule.threshold.amount
    return Finding(project_id, rule, day, firing, total,
                   customers=lost[:MAX_CUSTOMERS_NAMED] if firing else [],
                   note=f"${total} MRR churned by {len(lost)} customer(s)")


def customer_loss(con: duckdb.DuckDBPyConnection, project_id: str, rule: Rule,
                  day: dt.date) -> Finding | None:
    """Customers whose contraction or churn on ``day`` is above $N; the value is the largest."""
    assert rule.threshold is not None
    losses = _losses(con, project_id, day, "contraction_mrr + churn_mrr")
    over = [c for c in losses if Decimal(c["lost_mrr"]) > rule.threshold.amount]
    largest = Decimal(losses[0]["lost_mrr"]) if losses else Decimal(0)
    return Finding(project_id, rule, day, bool(over), largest,
                   customers=over[:MAX_CUSTOMERS_NAMED],
                   note=f"{len(over)} customer(s) lost more than ${rule.threshold.amount} "
                        f"of MRR (largest ${largest})")


MART_RULES = {
    "mrr_change": mrr_change,
    "failed_payments": failed_payments,
    "churned_mrr": churned_mrr,
    "customer_loss": customer_loss,
}


def evaluate_on_marts(con: duckdb.DuckDBPyConnection, project_id: str, rule: Rule,
                      day: dt.date) -> Finding | None:
    """A marts rule's finding for ``day``; None when the day has no numbers to judge."""
    return MART_RULES[rule.kind](con, project_id, rule, day)


def stale_reason(connection: Connection, now: dt.datetime) -> str | None:
    """Why an active project's data is stale (no sync for longer than its tier's cadence x 2,
    or its own cron's), or None; the same rule as Dagster's freshness check."""
    allowed = freshness_allowed(connection.tier, now, connection.cron)
    if connection.status != "active" or allowed is None:
        return None
    if connection.last_sync_at is None:
        return "never synced"
    age = now - dt.datetime.fromtimestamp(connection.last_sync_at, dt.UTC)
    if age <= allowed:
        return None
    return (f"last sync {age.total_seconds() / 3600:.1f} h ago; "
            f"{'its own cron' if connection.cron else connection.tier} allows "
            f"{allowed.total_seconds() / 3600:g} h")


def sync_failing(connection: Connection, rule: Rule, now: dt.datetime) -> Finding:
    """Fires while the project's syncs fail: its last attempt failed (the registry counts the
    failures since the last success); the value is that count. A success resolves it."""
    failures = connection.failures_since_success
    if not failures or connection.last_failure_at is None:
        return Finding(connection.project_id, rule, now.date(), False, Decimal(0),
                       note="last sync succeeded")
    since = ("no successful sync yet" if connection.last_sync_at is None else
             f"last success {_utc_text(connection.last_sync_at)}")
    return Finding(connection.project_id, rule, now.date(), True, Decimal(failures),
                   note=f"{failures} failed sync(s), {since}; last failure "
                        f"{_utc_text(connection.last_failure_at)}: "
                        f"{connection.last_failure_error}")


def _utc_text(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def evaluate_health(connection: Connection, rule: Rule, now: dt.datetime) -> Finding:
    """``stale_data``, ``connection_revoked`` and ``sync_failing``, judged on the registry as
    of ``now``."""
    if rule.kind == "sync_failing":
        return sync_failing(connection, rule, now)
    if rule.kind == "stale_data":
        reason = stale_reason(connection, now)
        return Finding(connection.project_id, rule, now.date(), reason is not None,
                       Decimal(0), note=reason or "fresh")
    revoked = connection.status == "revoked"
    return Finding(connection.project_id, rule, now.date(), revoked, Decimal(int(revoked)),
                   note=(connection.status_reason or "revoked") if revoked else "connected")
