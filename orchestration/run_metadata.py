"""The numbers an operator looks for first, as asset metadata in the Dagster UI.

Raw tables: rows loaded per table, the sync window, its duration, requests, retries and 429s,
and whether the data is test-mode. ``metrics_daily``: each project's six metrics on its last
reported day, read from the published copy right after it is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import AssetRecordsFilter, DagsterInstance, MetadataValue

from orchestration.translators import raw_table_key
from pipelines.load import SyncResult
from stripe_warehouse.metrics import METRIC_ORDER, format_amount
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

# Beyond this many projects the table shows the first ones; the run's own project is always in.
MAX_PROJECTS_SHOWN = 50


def sync_metadata(result: SyncResult) -> dict[str, Any]:
    """What one sync did, shared by every raw table it loaded."""
    return {
        "sync_kind": result.kind,
        "sync_run_id": result.run_id,
        "window_start": MetadataValue.timestamp(result.window_start),
        "window_end": MetadataValue.timestamp(result.window_end),
        "duration_s": MetadataValue.float(
            round((result.finished_at - result.started_at).total_seconds(), 1)),
        "objects_read": result.objects_read,
        "requests": result.requests,
        "retries": result.retries,
        "rate_limited_429": result.throttled,
        "test_mode": MetadataValue.bool(result.test_mode),
    }


def previous_objects_read(instance: DagsterInstance, project: str, kind: str) -> int | None:
    """Objects the project's newest recorded sync of this kind read: what the next one
    expects, for the extraction's ETA (None before its first)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=raw_table_key("sync_runs"), asset_partitions=[project]),
        limit=20, ascending=False,
    ).records
    for record in records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        kind_entry, read = metadata.get("sync_kind"), metadata.get("objects_read")
        if kind_entry is not None and kind_entry.value == kind and read is not None:
            return int(read.value)
    return None


def latest_metrics(
    published: Path | WarehouseTarget,
) -> dict[str, tuple[str, dict[str, tuple[str, float]]]]:
    """Per project: its last reported day and the six metrics' (unit, value) on that day."""
    with reading(published) as con:
        rows = con.execute(
            "with last as (select project_id, max(metric_date) as day "
            "              from marts.metrics_daily group by project_id) "
            "select m.project_id, cast(m.metric_date as varchar), m.metric, m.unit, m.value "
            "from marts.metrics_daily m join last on m.project_id = last.project_id "
            "and m.metric_date = last.day order by m.project_id"
        ).fetchall()
    latest: dict[str, tuple[str, dict[str, tuple[str, float]]]] = {}
    for project, day, metric, unit, value in rows:
        latest.setdefault(project, (day, {}))[1][metric] = (unit, float(value))
    return latest


def metrics_metadata(published: Path | WarehouseTarget, project: str | None) -> dict[str, Any]:
    """A table of every project's six metrics on its last day; the run's project's values
    (``project``, the run's partition) also as numbers of their own, plotted across runs."""
    latest = latest_metrics(published)
    shown = sorted(latest)[:MAX_PROJECTS_SHOWN]
    if project in latest and project not in shown:
        shown.append(project)
    header = "| project | day | " + " | ".join(METRIC_ORDER) + " |"
    lines = [header, "|" + " --- |" * (len(METRIC_ORDER) + 2)]
    for name in shown:
        day, values = latest[name]
        cells = [format_amount(values[m][1], values[m][0]) if m in values else ""
                 for m in METRIC_ORDER]
        lines.append(f"| {name} | {day} | " + " | ".join(cells) + " |")
    metadata: dict[str, Any] = {
        "projects": len(latest),
        "latest_metrics": MetadataValue.md("\n".join(lines)),
    }
    if project in latest:
        day, values = latest[project]
        metadata["metrics_project"] = project
        metadata["metrics_day"] = day
        for metric in METRIC_ORDER:
            if metric in values:
                metadata[metric] = MetadataValue.float(values[metric][1])
    return metadata
