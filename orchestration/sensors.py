"""The registry sensor: projects become partitions when they connect, and get one backfill."""

import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from orchestration.assets import SYNC_KIND_TAG
from orchestration.jobs import backfill_job
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource


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
