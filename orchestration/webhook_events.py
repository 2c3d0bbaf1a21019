"""Marts refreshed after webhooks, recorded in the Dagster instance like every other build.

The Dagster ``webhooks`` job logs the materialisation in its run; the real-time service
(:mod:`service.applier`), which refreshes within seconds outside Dagster, reports the same
materialisation to the instance of its state directory as a runless event. Both build it here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dagster import AssetMaterialization, DagsterInstance, MetadataValue

from orchestration.run_metadata import metrics_metadata
from orchestration.translators import METRICS_DAILY_KEY
from pipelines.webhook_round import WebhookRound
from pipelines.webhooks_apply import ApplyResult
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


def report_webhook_refresh(home: Path, done: WebhookRound) -> None:
    """Record the real-time service's refresh in the state directory's Dagster instance; a
    failure here is logged on one line and never stops the service (the marts are fresh).
    `stripe-warehouse serve` hands it to the service (which cannot import Dagster's layer)."""
    from orchestration.ui import dagster_home

    try:
        with DagsterInstance.from_config(str(dagster_home(home))) as instance:
            instance.report_runless_asset_event(
                webhook_marts_materialization(home, done.result, done.refreshed,
                                              "the real-time service"))
    except Exception as error:  # noqa: BLE001 - recording is best effort, never a failed round
        log.warning("marts refresh not recorded in Dagster (%s: %s)", type(error).__name__,
                    " ".join(str(error).split())[:200])
