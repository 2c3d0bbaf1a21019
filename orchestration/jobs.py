"""Jobs: what can run. Syncs are per project partition; transform and retention cover all."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetSelection,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from dagster_dbt import DbtCliResource

from orchestration.assets import (
    DUCKDB_POOL,
    SYNC_KIND_TAG,
    stripe_dbt_models,
    stripe_raw_tables,
)
from orchestration.checks import log_alerts, projects_fresh_for_their_tier
from orchestration.resources import (
    WarehouseResource,
    build_and_publish,
    dbt_project,
)
from orchestration.translators import StripeDbtTranslator
from pipelines.retention import apply_retention

SYNC_AND_TRANSFORM = AssetSelection.assets(stripe_raw_tables) | AssetSelection.assets(
    stripe_dbt_models
)

backfill_job = define_asset_job(
    name="backfill",
    description="Load a newly connected project's last 90 days, then rebuild the marts.",
    selection=SYNC_AND_TRANSFORM,
    tags={SYNC_KIND_TAG: "backfill"},
)
refresh_job = define_asset_job(
    name="refresh",
    description="Load a project's last 7 days and what its events name, then rebuild the marts.",
    selection=SYNC_AND_TRANSFORM,
    tags={SYNC_KIND_TAG: "refresh"},
)
freshness_job = define_asset_job(
    name="check_freshness",
    description="Evaluate the per-tier freshness check alone (no sync, no dbt).",
    selection=AssetSelection.checks(projects_fresh_for_their_tier),
)
transform_job = define_asset_job(
    name="transform",
    description="Rebuild the dbt models from the raw tables as they are (no Stripe calls).",
    selection=AssetSelection.assets(stripe_dbt_models),
)


@op(pool=DUCKDB_POOL)
def expire_raw_data(context: OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Delete each project's raw rows older than its tier keeps (Starter 3 d, Basic 30 d)."""
    now = dt.datetime.now(dt.UTC)
    summary: dict[str, Any] = {}
    for connection in warehouse.store().list():
        result = apply_retention(
            connection.project_id, connection.tier, home=warehouse.home_path(), now=now
        )
        if result.cutoff is not None:
            context.log.info(
                f"{connection.project_id} ({connection.tier}): kept data since "
                f"{result.cutoff:%Y-%m-%d}, deleted {sum(result.deleted.values())} rows"
            )
        summary[connection.project_id] = {
            "tier": connection.tier,
            "cutoff": result.cutoff.isoformat() if result.cutoff else None,
            "deleted": result.deleted,
        }
    context.add_output_metadata({"projects": MetadataValue.json(summary)})


@op(pool=DUCKDB_POOL, ins={"after_retention": In(Nothing)}, out={})
def rebuild_marts(
    context: OpExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Rebuild every dbt model from scratch so the marts' reporting windows follow the clipped
    data: an incremental build would keep the expired days and staged rows it never rewrites."""
    yield from build_and_publish(
        context,
        dbt,
        warehouse,
        full_refresh=True,
        manifest=dbt_project.manifest_path,
        dagster_dbt_translator=StripeDbtTranslator(),
    )
    log_alerts(context, warehouse.home_path())


@job(
    name="retention",
    description="Daily: delete data older than each tier keeps, then rebuild the marts.",
)
def retention_job() -> None:
    """Expire old raw data, then rebuild the marts from what is left."""
    rebuild_marts(after_retention=expire_raw_data())
