"""Webhook batches and the marts refreshed after them, recorded in the Dagster instance like
every other sync and build.

Each applied batch is a materialisation of the raw tables it wrote (and ``sync_runs``) for its
project's partition, with the rows, the events' window, the duration, the re-fetch requests
and 429s and the test mode; the refresh is a materialisation of ``metrics_daily``. The Dagster
``webhooks`` job logs them in its run; the real-time service (:mod:`service.applier`), which
refreshes within seconds outside Dagster, reports the same materialisations to the instance of
its state directory as runless events, with the results of the dbt data tests its round ran
on what it rebuilt as asset checks (the same check keys a build's tests report). Both build
them here.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetMaterialization,
    DagsterInstance,
    MetadataValue,
)

from orchestration.checks import alerts_check_evaluation
from orchestration.partitions import project_partitions
from orchestration.run_metadata import metrics_metadata
from orchestration.translators import METRICS_DAILY_KEY, raw_table_key
from pipelines.webhook_round import WebhookRound
from pipelines.webhooks_apply import AppliedBatch, ApplyResult
from stripe_warehouse.publish import published_path
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import DataTests
from stripe_warehouse.warehouse_target import WarehouseTarget

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
            **metrics_metadata(_readers_source(home), None),
        },
    )


def _readers_source(home: Path) -> Path | WarehouseTarget:
    """Where readers find the marts: the published copy, or a PostgreSQL warehouse's server."""
    target = StateDir.of(home).target
    return target if target.is_postgres else published_path(home)


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


def webhook_check_evaluations(tests: DataTests, by: str) -> list[AssetCheckEvaluation]:
    """The data tests a round ran, as the asset checks dagster-dbt reports for a build's
    tests: the same check key (the test's name on its model's asset), ``passed`` only when dbt
    says pass, WARN severity for a warning, and the failing rows."""
    from dagster_dbt.asset_utils import get_asset_check_key_for_test

    from orchestration.translators import StripeDbtTranslator

    # the manifest the tests were compiled in: the project's nodes, as Dagster's manifest has
    # them (read here rather than importing the dbt assets, which may parse the project first)
    manifest = _manifest(tests.manifest, tests.manifest.stat().st_mtime)
    translator = StripeDbtTranslator()
    evaluations = []
    for test in tests.results:
        key = get_asset_check_key_for_test(manifest, translator, test.unique_id, None)
        if key is None:
            continue
        metadata: dict[str, Any] = {"unique_id": test.unique_id, "status": test.status,
                                    "refreshed_by": by}
        if test.failures is not None:
            metadata["dagster_dbt/failed_row_count"] = test.failures
        evaluations.append(AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=test.status == "pass",
            severity=AssetCheckSeverity.WARN if test.status == "warn"
            else AssetCheckSeverity.ERROR,
            metadata=metadata, description=f"dbt test after a webhook refresh ({by})"))
    return evaluations


@lru_cache(maxsize=1)
def _manifest(path: Path, mtime: float) -> dict[str, Any]:
    """A dbt manifest, read again when it changes (``mtime``)."""
    return json.loads(path.read_text())


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
    from orchestration.instance_writes import cheap_instance_writes
    from orchestration.ui import dagster_home

    by = "the real-time service"
    try:
        checks = webhook_check_evaluations(done.tests, by) if done.tests else []
        # one event per table and check (~50 of them): without a sync and checkpoint each
        with cheap_instance_writes(dagster_home(home)), \
                DagsterInstance.from_config(str(dagster_home(home))) as instance:
            add_project_partitions(instance, batches)
            for batch in batches:
                for materialization in webhook_raw_materializations(batch, by):
                    instance.report_runless_asset_event(materialization)
            instance.report_runless_asset_event(
                webhook_marts_materialization(home, done.result, done.refreshed, by))
            for evaluation in checks:
                instance.report_runless_asset_event(evaluation)
            if done.alerts is not None and done.alerts.evaluated:
                instance.report_runless_asset_event(alerts_check_evaluation(done.alerts, by))
    except Exception as error:  # noqa: BLE001 - recording is best effort, never a failed round
        log.warning("marts refresh not recorded in Dagster (%s: %s)", type(error).__name__,
                    " ".join(str(error).split())[:200])
