"""A command's in-process run whose process died (SIGKILL, out of memory) never holds the
`duckdb` pool: the next command's run marks it failed and frees its slot. Without that, the
pool of one stays claimed by a run nobody runs, and every later run waits forever."""

import socket
import subprocess
import uuid

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from orchestration.assets import DUCKDB_POOL
from orchestration.in_process import HOST_TAG, PID_TAG, release_abandoned_runs


def started_run(instance: DagsterInstance, pid: int) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="backfill", run_id=run_id,
                                status=DagsterRunStatus.STARTED,
                                tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()}))
    return run_id


def claim_pool(instance: DagsterInstance, run_id: str) -> bool:
    return instance.event_log_storage.claim_concurrency_slot(
        DUCKDB_POOL, run_id, "stripe_raw_tables").is_claimed


def test_a_dead_commands_run_is_failed_and_frees_the_pool_a_live_ones_is_kept(
    instance: DagsterInstance,
) -> None:
    # as Dagster's executor does before a step's first claim: the pool gets its one slot
    assert instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that ran a sync and is gone
    with subprocess.Popen(["sleep", "60"]) as alive:
        try:
            dead_run = started_run(instance, gone.pid)
            live_run = started_run(instance, alive.pid)
            assert claim_pool(instance, dead_run)
            assert not claim_pool(instance, live_run)  # the pool of one is taken
            release_abandoned_runs(instance)
            assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(live_run).status == DagsterRunStatus.STARTED
            assert claim_pool(instance, live_run)  # freed: the waiting run gets it
        finally:
            alive.kill()
