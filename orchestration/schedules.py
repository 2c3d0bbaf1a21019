"""Schedules: Pro refreshes every 3 hours, Scale every 30 minutes, retention once a day.

Each tick reads the registry, so a tier change or a disconnect applies from the next tick.
A project with its own cron is refreshed by ``own_cron_sensor`` instead of its tier's schedule.
"""

from dagster import (
    DagsterInstance,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from orchestration.assets import SYNC_KIND_TAG
from orchestration.jobs import freshness_job, refresh_job, retention_job
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from stripe_warehouse.demo_project import demo_project
from stripe_warehouse.registry import Connection, ConnectionStore
from stripe_warehouse.tiers import REFRESH_CRON_BY_TIER


def schedulable_projects(instance: DagsterInstance, store: ConnectionStore) -> list[Connection]:
    """The active projects Dagster knows as partitions, but the demo's."""
    known = set(instance.get_dynamic_partitions(project_partitions.name))
    return [
        c for c in store.list()
        if c.status == "active" and c.project_id in known
        # the demo's project syncs from a sandbox that stopped with the demo
        and demo_project(store.home, c) is None
    ]


def tier_refresh_requests(
    context: ScheduleEvaluationContext, warehouse: WarehouseResource, tier: str
) -> list[RunRequest] | SkipReason:
    """One refresh per active project of ``tier`` that Dagster knows as a partition, unless
    the project has a cron of its own."""
    projects = [
        c.project_id
        for c in schedulable_projects(context.instance, warehouse.store())
        if c.tier == tier and c.cron is None
    ]
    if not projects:
        return SkipReason(f"no active {tier} project")
    tick = context.scheduled_execution_time.isoformat()
    return [
        RunRequest(run_key=f"{project}:{tick}", partition_key=project,
                   tags={SYNC_KIND_TAG: "refresh"})
        for project in projects
    ]


def _tier_refresh_schedule(tier: str) -> ScheduleDefinition:
    @schedule(
        name=f"{tier}_refresh",
        cron_schedule=REFRESH_CRON_BY_TIER[tier],
        execution_timezone="UTC",
        job=refresh_job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Refresh every active {tier.title()} project.",
    )
    def refresh_tier(
        context: ScheduleEvaluationContext, warehouse: WarehouseResource
    ) -> list[RunRequest] | SkipReason:
        return tier_refresh_requests(context, warehouse, tier)

    return refresh_tier


pro_refresh_schedule = _tier_refresh_schedule("pro")
scale_refresh_schedule = _tier_refresh_schedule("scale")
retention_schedule = ScheduleDefinition(
    name="daily_retention",
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    job=retention_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Expire data older than each tier keeps, then rebuild the marts.",
)
# Between syncs nothing else would evaluate the freshness check: a stalled schedule must show.
freshness_schedule = ScheduleDefinition(
    name="hourly_freshness_check",
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    job=freshness_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Warn on the marts when a Pro or Scale project's last sync is too old.",
)
