"""Checks on the published marts: per-tier freshness (a warning when a project's data is older
than its tier promises) and the projects' alert rules (``revenue_alerts``)."""

import datetime as dt
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    OpExecutionContext,
    asset_check,
)

from orchestration.resources import WarehouseResource
from orchestration.translators import METRICS_DAILY_KEY
from stripe_warehouse.alert_evaluation import stale_reason  # two missed schedule ticks
from stripe_warehouse.alerts import AlertRound, run_alerts_after_build
from stripe_warehouse.registry import Connection

ALERTS_CHECK = "revenue_alerts"


def stale_projects(connections: list[Connection], now: dt.datetime) -> dict[str, str]:
    """Active projects whose last sync is older than their tier (or their own cron) allows,
    with why."""
    reasons = {c.project_id: stale_reason(c, now) for c in connections}
    return {project: reason for project, reason in reasons.items() if reason is not None}


@asset_check(
    asset=METRICS_DAILY_KEY,
    name="projects_fresh_for_their_tier",
    description="Warns when a Pro or Scale project's last sync is older than its tier allows "
    "(Scale 1 h, Pro 6 h).",
    blocking=False,
)
def projects_fresh_for_their_tier(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Fail with WARN naming each stale project; the metadata says how stale."""
    stale = stale_projects(warehouse.store().list(), dt.datetime.now(dt.UTC))
    return AssetCheckResult(
        passed=not stale,
        severity=AssetCheckSeverity.WARN,
        metadata={"stale_projects": len(stale), **stale},
    )


def alerts_metadata(round_: AlertRound) -> dict[str, Any]:
    """The rule, value and threshold of what fires (the first one on top, every one in
    ``firing``), what was sent, and delivery failures: what the UI's check timeline shows."""
    firing = [{
        "project_id": f.project_id, "rule": f.rule.id, "kind": f.rule.kind,
        "day": f.day.isoformat(), "value": str(f.value),
        "threshold": None if f.rule.threshold is None else f.rule.threshold.text,
        "compared_to": None if f.compared_to is None else str(f.compared_to),
        "customers": f.customers, "summary": f.summary(),
    } for f in sorted(round_.firing, key=lambda f: (f.project_id, f.rule.id, f.day))]
    metadata: dict[str, Any] = {
        "rules_firing": len(firing),
        "alerts_sent": len(round_.events),
        "firing": MetadataValue.json(firing),
        "sent": MetadataValue.json([e.payload() for e in round_.events]),
        "delivery_failures": MetadataValue.json(
            [d.error for d in round_.failed_deliveries]),
        "problems": MetadataValue.json(round_.problems),
    }
    if firing:
        first = firing[0]
        metadata.update({"project_id": first["project_id"], "rule": first["rule"],
                         "day": first["day"], "value": first["value"],
                         "threshold": first["threshold"] or "-"})
    return metadata


def alerts_check_evaluation(round_: AlertRound, by: str) -> AssetCheckEvaluation:
    """An alert round as the ``revenue_alerts`` check's result, for a run that is not an asset
    job (the batch, retention and webhooks jobs) or for the real-time service's runless report.
    """
    return AssetCheckEvaluation(
        asset_key=METRICS_DAILY_KEY, check_name=ALERTS_CHECK, passed=not round_.firing,
        severity=AssetCheckSeverity.WARN, metadata={**alerts_metadata(round_), "by": by},
        description=f"alert rules evaluated after a build ({by})")


def log_alerts(context: OpExecutionContext, home: Path) -> None:
    """Run the alert rules after an op's build and log the round as the check's result."""
    round_ = run_alerts_after_build(home, log=context.log.warning)
    if round_.evaluated:
        context.log_event(alerts_check_evaluation(round_, "Dagster"))


@asset_check(
    asset=METRICS_DAILY_KEY,
    name=ALERTS_CHECK,
    description="Evaluates each project's alert rules (`stripe-warehouse alerts`) on the "
    "published marts after a build, sends what is new to the project's channels, and warns "
    "while a rule fires; the metadata carry the rule, the value and the threshold.",
    blocking=False,
)
def revenue_alerts(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Fail with WARN while a rule fires; never fails the run (delivery failures are
    recorded, and listed in the metadata)."""
    round_ = run_alerts_after_build(warehouse.home_path(), log=context.log.warning)
    return AssetCheckResult(passed=not round_.firing, severity=AssetCheckSeverity.WARN,
                            metadata=alerts_metadata(round_))
