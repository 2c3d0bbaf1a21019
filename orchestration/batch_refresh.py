"""The batched refresh: every due project of a tier synced in one run, then one dbt build.

``batch_refresh`` runs :func:`pipelines.batch.sync_batch` (concurrent extraction across
accounts, loads one at a time on the writer lock), then one ``dbt build`` and publish for the
whole batch (the incremental models decide their work per project), then fails the run if any
project failed, naming them. Partitions stay per project, so "when was project X last
refreshed, and did it fail" is answered as for a single refresh:

- a refreshed project gets a materialisation of ``stripe_raw/sync_runs`` for its partition,
  with the sync's metadata (window, rows per table, requests, 429s);
- a failed project gets a planned materialisation and an observation carrying the error for
  its partition; the run then fails, which is what Dagster's partition status reads as
  "failed" (planned, not materialised, in a failed run).

One event per project (not one per raw table as a single refresh records): each stored event
costs 20-90 ms of SQLite here, and a batch of 1,000 projects would spend minutes on fourteen.
The command line runs the same job in process (``stripe-warehouse sync --all --refresh``).
"""

import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetMaterialization,
    AssetObservation,
    Config,
    DagsterEvent,
    DefaultScheduleStatus,
    Failure,
    In,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    ResourceParam,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    job,
    op,
    schedule,
)
from dagster._core.events import AssetMaterializationPlannedData
from dagster_dbt import DbtCliResource

from orchestration.assets import DUCKDB_POOL
from orchestration.checks import log_alerts
from orchestration.observer import RunObserver
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource, build_and_publish, dbt_project
from orchestration.run_metadata import sync_metadata
from orchestration.translators import StripeDbtTranslator, raw_table_key
from pipelines.batch import (
    BATCH_RUNS_ENV,
    DEFAULT_BATCH_WORKERS,
    ProjectOutcome,
    batch_projects,
    batch_runs,
    split_batch,
    sync_batch,
    validate_workers,
)
from stripe_warehouse.tiers import REFRESH_CRON_BY_TIER

BATCH_JOB = "batch_refresh"
SYNC_RUNS_KEY = raw_table_key("sync_runs")
BATCH_TIER_TAG = "stripe_warehouse/batch_tier"


class BatchConfig(Config):
    """Which projects a batch refreshes: ``projects`` if given, else every active project (of
    ``tier``, if given); ``workers`` of them at once."""

    tier: str | None = None
    projects: list[str] | None = None
    kind: str = "refresh"
    workers: int = DEFAULT_BATCH_WORKERS


# What a command running the job in process wants to hear: each project's outcome as it
# finishes (a run's resources cannot carry a callback through run config).
_listener: Callable[[ProjectOutcome], None] | None = None


@contextmanager
def listening(callback: Callable[[ProjectOutcome], None]) -> Iterator[None]:
    """Batches run in this process meanwhile report each project's outcome to ``callback``."""
    global _listener
    previous, _listener = _listener, callback
    try:
        yield
    finally:
        _listener = previous


def _record_failure(context: OpExecutionContext, outcome: ProjectOutcome) -> None:
    """The project's partition: planned (so the failed run marks it failed), and an
    observation carrying the error (SQLite and PostgreSQL instances do not store Dagster's
    own failed-materialisation events)."""
    planned = DagsterEvent.build_asset_materialization_planned_event(
        context.job_name, context.get_step_execution_context().step.key,
        AssetMaterializationPlannedData(SYNC_RUNS_KEY, partition=outcome.project_id))
    context.instance.report_dagster_event(planned, context.run_id)
    context.log_event(AssetObservation(
        asset_key=SYNC_RUNS_KEY, partition=outcome.project_id,
        description=f"refresh failed: {outcome.error}",
        metadata={"status": "failed", "error": str(outcome.error), "batch_run": context.run_id,
                  "duration_s": MetadataValue.float(round(outcome.seconds, 1))}))


@op(pool=DUCKDB_POOL, out={"failed": Out(dict)})
def sync_projects(
    context: OpExecutionContext, config: BatchConfig, warehouse: WarehouseResource
) -> dict[str, str]:
    """Sync every project of the batch; record each one's result on its partition. Returns
    the failed projects' errors (the run fails on them after the build)."""
    validate_workers(config.workers)
    store = warehouse.store()
    projects = config.projects if config.projects is not None else batch_projects(
        store, config.tier)
    known = set(context.instance.get_dynamic_partitions(project_partitions.name))
    new = [p for p in projects if p not in known]
    if new:
        context.instance.add_dynamic_partitions(project_partitions.name, new)

    def record(outcome: ProjectOutcome) -> None:
        if outcome.result is not None:
            context.log_event(AssetMaterialization(
                asset_key=SYNC_RUNS_KEY, partition=outcome.project_id,
                metadata={**sync_metadata(outcome.result), "rows_loaded": outcome.rows,
                          "rows_per_table": MetadataValue.json(outcome.result.rows_per_table),
                          "batch_run": context.run_id}))
        else:
            _record_failure(context, outcome)
        if _listener is not None:
            _listener(outcome)

    outcomes = sync_batch(store, projects, config.kind,  # type: ignore[arg-type]
                          home=warehouse.home_path(), api_base=warehouse.api_base,
                          workers=config.workers, on_outcome=record)
    refreshed = sum(o.ok for o in outcomes)
    context.add_output_metadata({
        "projects": len(outcomes), "refreshed": refreshed,
        "failed": MetadataValue.json({o.project_id: str(o.error) for o in outcomes if not o.ok}),
        "rows_loaded": sum(o.rows for o in outcomes),
    }, output_name="failed")
    context.log.info(f"{refreshed} of {len(outcomes)} projects refreshed")
    return {o.project_id: str(o.error) for o in outcomes if not o.ok}


@op(pool=DUCKDB_POOL, ins={"failed": In(dict)}, out={"failed": Out(dict)})
def build_batch_marts(
    context: OpExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
    observer: ResourceParam[RunObserver], failed: dict[str, str],
) -> Iterator[Any]:
    """One incremental `dbt build` and publish for the whole batch; hands the failed
    projects on."""
    yield from build_and_publish(context, dbt, warehouse, observer=observer,
                                 manifest=dbt_project.manifest_path,
                                 dagster_dbt_translator=StripeDbtTranslator())
    log_alerts(context, warehouse.home_path())
    yield Output(failed, "failed")


@op(ins={"failed": In(dict)})
def fail_on_failed_projects(context: OpExecutionContext, failed: dict[str, str]) -> None:
    """Fail the run when a project failed (after the others were built and published), so the
    failed projects' partitions show as failed; the error names each."""
    if failed:
        names = ", ".join(sorted(failed))
        raise Failure(description=f"{len(failed)} project(s) failed to refresh: {names}",
                      metadata={"errors": MetadataValue.json(failed)})


@job(name=BATCH_JOB, description="Refresh many projects in one run: concurrent extraction "
     "across accounts, one load at a time, then one dbt build and publish for all.")
def batch_refresh_job() -> None:
    """Sync the batch, build and publish once, then fail if any project failed."""
    fail_on_failed_projects(build_batch_marts(sync_projects()))


@job(name=f"{BATCH_JOB}_sync_only", description="The batch's syncs without the dbt build.")
def batch_sync_only_job() -> None:
    """Sync the batch (raw tables only), then fail if any project failed."""
    fail_on_failed_projects(sync_projects())


def batch_run_config(home: Path | None, api_base: str | None, config: dict[str, Any]
                     ) -> dict[str, Any]:
    """Run config of a batch: the batch's ``config`` and the warehouse resource's."""
    resource = {"home": str(home) if home is not None else None, "api_base": api_base}
    return {"ops": {"sync_projects": {"config": config}},
            "resources": {"warehouse": {"config": resource}}}


def _tier_batch_schedule(tier: str) -> ScheduleDefinition:
    @schedule(
        name=f"{tier}_batch_refresh",
        cron_schedule=REFRESH_CRON_BY_TIER[tier],
        execution_timezone="UTC",
        job=batch_refresh_job,
        # The per-project schedule of the tier runs by default; turn this one on instead of it
        # (README, "Dagster") when the tier has more projects than separate runs keep up with.
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Refresh every active {tier.title()} project in one batched run (split "
                    f"into ${BATCH_RUNS_ENV} runs for several run workers: docs/deploy.md).",
    )
    def batch_tier(context: ScheduleEvaluationContext, warehouse: WarehouseResource
                   ) -> list[RunRequest] | SkipReason:
        from orchestration.schedules import schedulable_projects

        projects = [c.project_id for c in schedulable_projects(context.instance,
                                                                warehouse.store())
                    if c.tier == tier and c.cron is None]
        if not projects:
            return SkipReason(f"no active {tier} project")
        tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        shares = split_batch(projects, batch_runs())
        # One share: the run key of a single batch run, as before splitting existed.
        return [RunRequest(
            run_key=f"{tier}:{tick.isoformat()}" + (f":{k + 1}/{len(shares)}"
                                                     if len(shares) > 1 else ""),
            tags={BATCH_TIER_TAG: tier},
            run_config={"ops": {"sync_projects": {"config": {"tier": tier,
                                                              "projects": share}}}})
            for k, share in enumerate(shares)]

    return batch_tier


pro_batch_schedule = _tier_batch_schedule("pro")
scale_batch_schedule = _tier_batch_schedule("scale")


def run_batch_job(
    home: Path, config: dict[str, Any], observer: RunObserver, *, transform: bool = True,
    api_base: str | None = None, on_outcome: Callable[[ProjectOutcome], None] | None = None,
    started_by: str = "cli",
) -> bool:
    """Run the batch in this process against the state directory's instance (as
    :func:`orchestration.in_process.run_sync_job` runs one sync); whether every project
    was refreshed. A failed build raises its error; failed projects do not."""
    from dagster import DagsterExecutionInterruptedError, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from orchestration.definitions import defs
    from orchestration.in_process import (
        HOST_TAG,
        NO_CAPTURED_OUTPUT,
        PID_TAG,
        QUIET,
        STARTED_BY_TAG,
        _quiet_dagster,
        release_abandoned_runs,
    )
    from orchestration.instance_writes import cheap_instance_writes
    from orchestration.observer import observing
    from orchestration.ui import dagster_home
    from stripe_warehouse.state_dir import HOME_ENV

    home = home.resolve()
    os.environ[HOME_ENV] = str(home)  # dbt (profiles.yml) reads the state directory here
    observer.command = True
    job_def = defs.resolve_job_def(BATCH_JOB if transform else f"{BATCH_JOB}_sync_only")
    with (_quiet_dagster(), cheap_instance_writes(dagster_home(home)),
          DagsterInstance.from_ref(InstanceRef.from_dir(
              str(dagster_home(home)), overrides=NO_CAPTURED_OUTPUT)) as instance):
        release_abandoned_runs(instance)
        run_config = {**QUIET, **batch_run_config(home, api_base, config)}
        try:
            with observing(observer), listening(on_outcome or (lambda outcome: None)):
                job_def.execute_in_process(
                    run_config=run_config, instance=instance,
                    tags={STARTED_BY_TAG: started_by, PID_TAG: str(os.getpid()),
                          HOST_TAG: socket.gethostname()})
        except Failure:
            return False  # only projects failed (fail_on_failed_projects): each one's outcome
            # said why; a sync or build step's own error is raised as it is
        except DagsterExecutionInterruptedError:
            raise KeyboardInterrupt from None  # Ctrl-C, as for a single sync
    return True


