"""Per-tier freshness: a warning on the published marts when a project's data is older than its
tier promises."""

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from orchestration.resources import WarehouseResource
from orchestration.translators import METRICS_DAILY_KEY
from stripe_warehouse.registry import Connection
from stripe_warehouse.tiers import freshness_allowed  # two missed schedule ticks


def stale_projects(connections: list[Connection], now: dt.datetime) -> dict[str, str]:
    """Active projects whose last sync is older than their tier (or their own cron) allows,
    with why."""
    stale: dict[str, str] = {}
    for connection in connections:
        allowed = freshness_allowed(connection.tier, now, connection.cron)
        if connection.status != "active" or allowed is None:
            continue
        if connection.last_sync_at is None:
            stale[connection.project_id] = "never synced"
            continue
        age = now - dt.datetime.fromtimestamp(connection.last_sync_at, dt.UTC)
        if age > allowed:
            stale[connection.project_id] = (
                f"last sync {age.total_seconds() / 3600:.1f} h ago; "
                f"{'its own cron' if connection.cron else connection.tier} allows "
                f"{allowed.total_seconds() / 3600:g} h"
            )
    return stale


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
