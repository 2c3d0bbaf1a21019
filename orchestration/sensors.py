"""Sensors: projects become partitions when they connect and get one backfill; projects with
a cron of their own are refreshed at its ticks."""

import datetime as dt
import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from orchestration.assets import SYNC_KIND_TAG
from orchestration.jobs import backfill_job, refresh_job
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.schedules import schedulable_projects
from stripe_warehouse.registry import Connection
from stripe_warehouse.tiers import last_cron_tick


@sensor(
    job=backfill_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Keeps the `projects` partitions equal to the active connections and launches "
    "one backfill per newly connected project.",
)
def connections_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult:
    """Add/remove project partitions; backfill each project once (its id stays in the cursor)."""
    connections = warehouse.store().list()
    active = {c.project_id for c in connections if c.status == "active"}
    known = set(context.instance.get_dynamic_partitions(project_partitions.name))
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    # A project the CLI already synced needs no backfill: its data is there.
    to_backfill = sorted(
        c.project_id
        for c in connections
        if c.status == "active" and c.project_id not in seen and c.last_sync_at is None
    )
    return SensorResult(
        run_requests=[
            RunRequest(run_key=f"backfill:{project}", partition_key=project,
                       tags={SYNC_KIND_TAG: "backfill"})
            for project in to_backfill
        ],
        dynamic_partitions_requests=[
            project_partitions.build_add_request(sorted(active - known)),
            project_partitions.build_delete_request(sorted(known - active)),
        ],
        cursor=json.dumps(sorted(seen | active)),
    )


def own_cron_requests(
    connections: list[Connection], since: dt.datetime, now: dt.datetime
) -> list[RunRequest]:
    """One refresh per project whose own cron ticked in ``(since, now]``; the run key names
    the tick, so a tick runs once however often the sensor looks. Ticks missed while nothing
    evaluated (the daemon was down) are caught up by one run, at the latest of them."""
    requests = []
    for connection in connections:
        if connection.cron is None:
            continue
        tick = last_cron_tick(connection.cron, now)
        if tick > since:
            requests.append(RunRequest(
                run_key=f"cron:{connection.project_id}:{tick.isoformat()}",
                partition_key=connection.project_id, tags={SYNC_KIND_TAG: "refresh"}))
    return requests


@sensor(
    job=refresh_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Refreshes each active project that has a cron of its own "
    "(`stripe-warehouse schedule`) at that cron's ticks (UTC).",
)
def own_cron_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    """Ticks since the last evaluation (the cursor; the first one starts from now)."""
    now = dt.datetime.now(dt.UTC)
    since = dt.datetime.fromisoformat(context.cursor) if context.cursor else now
    requests = own_cron_requests(
        schedulable_projects(context.instance, warehouse.store()), since, now)
    if not requests:
        context.update_cursor(now.isoformat())
        return SkipReason("no project's own cron ticked since the last evaluation")
    return SensorResult(run_requests=requests, cursor=now.isoformat())
