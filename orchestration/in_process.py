"""A command's sync or build as a Dagster run in its own process: one code path for each.

`stripe-warehouse sync`, the demo and Dagster's schedules all run the same ``backfill`` or
``refresh`` job, and `stripe-warehouse transform` the ``transform`` job Dagster launches too;
a command executes it in process against the instance of its state directory (``<state
dir>/dagster``, the one `stripe-warehouse ui` shows), so its run, the project's partition, the
marts' materialisations and their check results are all recorded there. The
command keeps its terminal: Dagster's own log lines are off, the progress display is fed by the
steps (:mod:`orchestration.observer`), and an error is the step's own one-line error.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestration.observer import RunObserver
from pipelines.load import SyncResult, discard_working_files
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import HOME_ENV
from stripe_warehouse.storage import storage_error

STARTED_BY_TAG = "stripe_warehouse/started_by"
PID_TAG = "stripe_warehouse/pid"
HOST_TAG = "stripe_warehouse/host"
# Dagster logs every event of the run; the command prints its own lines (and errors) instead.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# The same instance (storage, pools) without capturing the steps' stdout and stderr: that is
# the command's terminal, and the capture's helper processes (`tail`, an orphan watcher, in
# the command's process group) would each print a traceback on Ctrl-C.
NO_CAPTURED_OUTPUT = {"compute_logs": {
    "module": "dagster._core.storage.noop_compute_log_manager",
    "class": "NoOpComputeLogManager",
}}


def run_sync_job(
    home: Path, project_id: str, kind: str, observer: RunObserver | None = None, *,
    transform: bool = True, api_base: str | None = None, started_by: str = "cli",
) -> SyncResult:
    """Run the ``kind`` job (backfill or refresh) for ``project_id`` in this process; with
    ``transform=False`` only the raw tables (no dbt). ``observer`` holds the progress display
    and receives the sync's result, kept even when the build fails after it. Returns the
    sync's result; raises the failed step's own error (a WarehouseError, or the interrupt)."""
    observer = observer or RunObserver()
    selection = None
    if not transform:
        from orchestration.assets import stripe_raw_tables

        selection = list(stripe_raw_tables.keys)
    _run_job(home, kind, observer, f"the sync of {project_id}", partition=project_id,
             selection=selection, api_base=api_base, tags={STARTED_BY_TAG: started_by},
             # as a sync failing in its own code does
             on_disk_error=lambda: discard_working_files(home.resolve(), project_id))
    assert observer.sync is not None  # the sync step succeeded, or its error was raised
    return observer.sync


def run_transform_job(
    home: Path, observer: RunObserver | None = None, *, full_refresh: bool = False,
    started_by: str = "cli",
) -> RunObserver:
    """Run the ``transform`` job (`dbt build` of every model and its tests, then publish; no
    Stripe calls) in this process: `stripe-warehouse transform` is recorded like a sync's
    build, the marts' materialisations with their metadata and the dbt tests' check results.
    Returns ``observer``, holding the build's warnings; raises the build's one-line error."""
    from orchestration.assets import FULL_REFRESH_TAG

    observer = observer or RunObserver()
    tags = {STARTED_BY_TAG: started_by}
    if full_refresh:
        tags[FULL_REFRESH_TAG] = "true"
    _run_job(home, "transform", observer, "`stripe-warehouse transform`", tags=tags)
    return observer


def _run_job(
    home: Path, job_name: str, observer: RunObserver, what: str, *,
    partition: str | None = None, selection: list | None = None, api_base: str | None = None,
    tags: dict[str, str], on_disk_error: Callable[[], None] | None = None,
) -> None:
    """Execute ``job_name`` in this process against the state directory's instance; a full or
    read-only disk under Dagster's own storage is one line naming ``what`` failed."""
    home = home.resolve()
    # dbt (profiles.yml) and the dbt assets' manifest location read the state directory here
    os.environ[HOME_ENV] = str(home)
    observer.command = True
    with _quiet_dagster():
        try:
            _execute(home, job_name, observer, partition, selection, api_base, tags)
        except (WarehouseError, KeyboardInterrupt):
            raise
        except Exception as error:  # Dagster's own storage (SQLite) on a full or read-only disk
            chain: list[BaseException] = []
            seen: BaseException | None = error
            while seen is not None and seen not in chain:
                chain.append(seen)
                seen = seen.__cause__ or seen.__context__
            disk = storage_error(chain, what)
            if disk is None:
                raise
            if on_disk_error is not None:
                on_disk_error()
            raise disk from error


@contextmanager
def _quiet_dagster() -> Iterator[None]:
    """No Dagster preview notices or log lines on the command's terminal (the run's events are
    in the instance); the command prints its own lines and errors."""
    # Dagster re-logs the run's events under the `dagster` loggers, which would reach the
    # command's root handler (it prints errors) at every level.
    dagster_logger = logging.getLogger("dagster")
    propagate = dagster_logger.propagate
    dagster_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        dagster_logger.propagate = propagate


def _execute(home: Path, job_name: str, observer: RunObserver, partition: str | None,
             selection: list | None, api_base: str | None, tags: dict[str, str]) -> None:
    from dagster import DagsterExecutionInterruptedError, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from orchestration.definitions import defs
    from orchestration.instance_writes import cheap_instance_writes
    from orchestration.observer import observing
    from orchestration.partitions import project_partitions
    from orchestration.ui import dagster_home

    job = defs.resolve_job_def(job_name)
    # the run stores ~300 events: without a sync and a checkpoint each (instance_writes)
    with cheap_instance_writes(dagster_home(home)), DagsterInstance.from_ref(InstanceRef.from_dir(
            str(dagster_home(home)), overrides=NO_CAPTURED_OUTPUT)) as instance:
        if partition is not None and not instance.has_dynamic_partition(
                project_partitions.name, partition):
            instance.add_dynamic_partitions(project_partitions.name, [partition])
        release_abandoned_runs(instance)
        # the state directory and API address as run config: the job keeps its resources
        run_config = {**QUIET, "resources": {
            "warehouse": {"config": {"home": str(home), "api_base": api_base}}}}
        try:
            with observing(observer):
                job.execute_in_process(
                    run_config=run_config, instance=instance, partition_key=partition,
                    asset_selection=selection,
                    tags={**tags, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
                )
        except DagsterExecutionInterruptedError:
            # Dagster turns Ctrl-C inside a step into its own error (the run is recorded as
            # failed): for the command it is the interrupt it always was (exit 130, one line).
            raise KeyboardInterrupt from None


def release_abandoned_runs(instance: object) -> None:
    """Mark failed the runs a command started here whose process is gone (killed with SIGKILL,
    out of memory), and free their pool slot: else the ``duckdb`` pool of one stays taken and
    every later run waits for it forever."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    assert isinstance(instance, DagsterInstance)
    running = instance.get_runs(RunsFilter(
        statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
        tags={HOST_TAG: socket.gethostname()},
    ))
    for run in running:
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the process that ran it ({pid}) is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
