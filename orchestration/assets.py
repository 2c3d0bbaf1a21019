"""The assets: the raw Stripe tables (one per dlt resource) feeding the dbt models.

The raw tables are loaded by ``pipelines.load.sync_project``, the same code the CLI runs, once
per project partition; dbt then rebuilds the marts for every project at once.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    multi_asset,
)
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.observer import RunObserver
from orchestration.partitions import project_partitions
from orchestration.resources import (
    WarehouseResource,
    build_and_publish,
    dbt_project,
)
from orchestration.run_metadata import previous_objects_read, sync_metadata
from orchestration.translators import (
    RAW_GROUP,
    StripeDbtTranslator,
    raw_table_key,
    raw_table_spec,
)
from pipelines.revocation import sync_or_revoke
from pipelines.source import RAW_TABLES
from stripe_warehouse.settings import RAW_DATASET
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import reading
from stripe_warehouse.writer_lock import warehouse_writer

DUCKDB_POOL = "duckdb"  # DuckDB allows one writing process: the instance limits this pool to 1
SYNC_KIND_TAG = "stripe_warehouse/sync_kind"
# "true": the dbt build rebuilds incremental models from scratch (`transform --full-refresh`)
FULL_REFRESH_TAG = "stripe_warehouse/full_refresh"
DEFAULT_SYNC_KIND = "refresh"
SYNC_KINDS = ("backfill", "refresh")


# sync_project also appends the run to sync_runs, which dbt reads for the reporting window.
SYNC_RUNS_SPEC = AssetSpec(
    key=raw_table_key("sync_runs"),
    group_name=RAW_GROUP,
    kinds={"dlt", "duckdb"},
    description="One row per finished sync: the project's reporting window.",
)
# One per table the dlt source loads, made from their names: no dlt source or pipeline is built
# when the definitions load (each run builds its own in pipelines.load.sync_project).
RAW_TABLE_SPECS = [
    *(raw_table_spec(table) for table in RAW_TABLES),
    SYNC_RUNS_SPEC,
]


def sync_kind_of(tags: dict[str, str]) -> str:
    """The sync kind a run asked for (run tag ``stripe_warehouse/sync_kind``), default refresh."""
    kind = tags.get(SYNC_KIND_TAG, DEFAULT_SYNC_KIND)
    if kind not in SYNC_KINDS:
        raise ValueError(f"run tag {SYNC_KIND_TAG}={kind!r} is unknown: use backfill or refresh")
    return kind


@multi_asset(
    name="stripe_raw_tables",
    specs=RAW_TABLE_SPECS,
    partitions_def=project_partitions,
    can_subset=True,
    pool=DUCKDB_POOL,
)
def stripe_raw_tables(
    context: AssetExecutionContext, warehouse: WarehouseResource,
    observer: ResourceParam[RunObserver],
) -> Iterator[MaterializeResult]:
    """Sync one project (the partition) from Stripe and report the rows each table received,
    the window, the requests and 429s (see :func:`orchestration.run_metadata.sync_metadata`)."""
    kind = sync_kind_of(context.run.tags)
    observer.progress.expect(previous_objects_read(context.instance, context.partition_key, kind))
    # A token Stripe rejects (401) marks the project revoked: no schedule retries it.
    result = sync_or_revoke(
        warehouse.store(),
        context.partition_key,
        kind,  # type: ignore[arg-type]
        home=warehouse.home_path(),
        api_base=warehouse.api_base,
        progress=observer.progress.objects,
        phase=observer.progress.phase,
    )
    observer.sync = result
    for warning in result.warnings:
        context.log.warning(warning)
    loaded = {**result.rows_per_table, "sync_runs": 1}
    tables = [key.path[-1] for key in context.selected_asset_keys]
    totals = project_row_counts(warehouse.home_path(), context.partition_key, tables)
    shared = sync_metadata(result)
    # One extraction feeds every table, so a subset run still reads all of them.
    for key in context.selected_asset_keys:
        table = key.path[-1]
        metadata = {**shared, "rows_loaded": loaded.get(table, 0),
                    "dagster/row_count": totals.get(table, 0)}
        if table == "sync_runs":  # the run's own row: every table's count in one place
            metadata["rows_per_table"] = MetadataValue.json(result.rows_per_table)
        yield MaterializeResult(asset_key=key, metadata=metadata)


def project_row_counts(home: Path, project_id: str, tables: list[str]) -> dict[str, int]:
    """Rows each raw table holds for one project (0 for a table not created yet)."""
    state = StateDir.of(home)
    if state.target.is_postgres:  # a reader on the server: no turn to take
        with reading(state.target) as con:
            return _row_counts(con, project_id, tables)
    # a read-only connection conflicts with a writer's as well: take a turn like one
    with (warehouse_writer(state.root, f"counting the rows of {project_id}"),
          duckdb.connect(str(state.warehouse), read_only=True) as con):
        return _row_counts(con, project_id, tables)


def _row_counts(con: Any, project_id: str, tables: list[str]) -> dict[str, int]:
    present = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ?",
            [RAW_DATASET],
        ).fetchall()
    }
    return {
        table: con.execute(
            f"select count(*) from {RAW_DATASET}.{table} where project_id = ?", [project_id]
        ).fetchone()[0]
        for table in tables
        if table in present
    }


@dbt_assets(
    manifest=dbt_project.manifest_path,  # prepared by the entry point (see resources)
    dagster_dbt_translator=StripeDbtTranslator(),
    name="stripe_dbt_models",
    pool=DUCKDB_POOL,
)
def stripe_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
    observer: ResourceParam[RunObserver],
) -> Iterator[Any]:
    """Build (run and test) the selected dbt models; tests report as asset checks. Then publish
    the marts to the readers' copy, so BI tools see the new data without touching the lock.
    A run tagged ``stripe_warehouse/full_refresh=true`` rebuilds incremental models whole."""
    full_refresh = context.run.tags.get(FULL_REFRESH_TAG, "false") == "true"
    yield from build_and_publish(context, dbt, warehouse, full_refresh=full_refresh,
                                 observer=observer)
