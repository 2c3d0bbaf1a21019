"""Per-tier freshness: a warning on the published marts when a project's data is older than its
tier promises."""

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from orchestration.resources import WarehouseResource
from orchestration.translators import METRICS_DAILY_KEY
from stripe_warehouse.alert_evaluation import stale_reason  # two missed schedule ticks
from stripe_warehouse.registry import Connection


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
