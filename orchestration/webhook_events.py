"""Webhook batches and the marts refreshed after them, recorded in the Dagster instance like
every other sync and build.

Each applied batch is a materialisation of the raw tables it wrote (and ``sync_runs``) for its
project's partition, with the rows, the events' window, the duration, the re-fetch requests
and 429s and the test mode; the refresh is a materialisation of ``metrics_daily``. The Dagster
``webhooks`` job logs them in its run; the real-time service (:mod:`service.applier`), which
refreshes within seconds outside Dagster, reports the same materialisations to the instance of
its state directory as runless events. Both build them here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dagster import AssetMaterialization, DagsterInstance, MetadataValue

from orchestration.partitions import project_partitions
from orchestration.run_metadata import metrics_metadata
from orchestration.translators import METRICS_DAILY_KEY, raw_table_key
from pipelines.webhook_round import WebhookRound
from pipelines.webhooks_apply import AppliedBatch, ApplyResult
from stripe_warehouse.publish import published_path

log = logging.getLogger(__name__)


def webhook_marts_materialization(
    home: Path, result: ApplyResult, tables: set[str], by: str
) -> AssetMaterialization:
    """``metrics_daily`` refreshed from ``tables`` after a batch of webhooks, with the batch's
    counts and every project's six metrics as published."""
    return AssetMaterialization(
        asset_key=METRICS_DAILY_KEY,
        description=f"refreshed after webhooks ({by})",
        metadata={
            "refreshed_by": by,
            "events_applied": result.applied,
            "events_stale": result.stale,
            "events_quarantined": result.failed,
            "rows_written": MetadataValue.json(result.rows_written),
            "tables_refreshed": MetadataValue.json(sorted(tables)),
            **metrics_metadata(published_path(home), None),
        },
    )


def webhook_raw_materializations(batch: AppliedBatch, by: str) -> list[AssetMaterialization]:
    """The raw tables one batch wrote, and its ``sync_runs`` row, for its project's partition
    (a child table's rows count for the table whose asset loads it)."""
    rows: dict[str, int] = {}
    for table, count in batch.rows_written.items():
        asset_table = table.split("__")[0]
        rows[asset_table] = rows.get(asset_table, 0) + count
    shared = {
        "sync_kind": "webhook",
        "applied_by": by,
        "window_start": MetadataValue.timestamp(batch.window_start),
        "window_end": MetadataValue.timestamp(batch.window_end),
        "duration_s": MetadataValue.float(
            round((batch.finished_at - batch.started_at).total_seconds(), 3)),
        "requests": batch.requests,
        "retries": batch.retries,
        "rate_limited_429": batch.throttled,
        "test_mode": MetadataValue.bool(batch.test_mode),
    }
    materializations = [
        AssetMaterialization(asset_key=raw_table_key(table), partition=batch.project_id,
                             description=f"webhook batch applied ({by})",
                             metadata={**shared, "rows_loaded": count})
        for table, count in sorted(rows.items())
    ]
    materializations.append(AssetMaterialization(
        asset_key=raw_table_key("sync_runs"), partition=batch.project_id,
        description=f"webhook batch applied ({by})",
        metadata={**shared, "rows_loaded": 1,
                  "rows_per_table": MetadataValue.json(batch.rows_written)}))
    return materializations


def add_project_partitions(instance: DagsterInstance, batches: list[AppliedBatch]) -> None:
    """The batches' projects as partitions (a project synced before it was recorded has none)."""
    missing = sorted({batch.project_id for batch in batches} - set(
        instance.get_dynamic_partitions(project_partitions.name)))
    if missing:
        instance.add_dynamic_partitions(project_partitions.name, missing)


def report_webhook_refresh(home: Path, done: WebhookRound, batches: list[AppliedBatch]) -> None:
    """Record the real-time service's batches (``batches``: every one applied since the last
    report) and its refresh (``done``) in the state directory's Dagster instance; a failure
    here is logged on one line and never stops the service (the marts are fresh).
    `stripe-warehouse serve` hands it to the service (which cannot import Dagster's layer)."""
    from orchestration.ui import dagster_home

    by = "the real-time service"
    try:
        with DagsterInstance.from_config(str(dagster_home(home))) as instance:
            add_project_partitions(instance, batches)
            for batch in batches:
                for materialization in webhook_raw_materializations(batch, by):
                    instance.report_runless_asset_event(materialization)
            instance.report_runless_asset_event(
                webhook_marts_materialization(home, done.result, done.refreshed, by))
    except Exception as error:  # noqa: BLE001 - recording is best effort, never a failed round
        log.warning("marts refresh not recorded in Dagster (%s: %s)", type(error).__name__,
                    " ".join(str(error).split())[:200])
