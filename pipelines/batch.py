"""A refresh cycle of many projects as one batch: concurrent extraction, serialised loads.

Stripe's rate limits are per account, so N accounts read concurrently give N times the
bandwidth of one: each project runs :func:`pipelines.revocation.sync_or_revoke` (its own
Stripe client and rate limiter, as a single sync) in a bounded pool of threads. DuckDB has
one writer: every sync takes the warehouse's writer lock for its short load
(:func:`stripe_warehouse.writer_lock.warehouse_writer` queues the threads of this process
too), so projects load one at a time as each finishes reading while the others go on reading.
One project's failure (a revoked key, an unreachable account) is its outcome alone: the
others go on. The dbt build that follows (once, for the whole batch) is the caller's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipelines.load import SyncResult, fewer_gc_passes
from pipelines.privacy import AllowlistingDecoder
from pipelines.revocation import sync_or_revoke
from stripe_warehouse.demo_project import demo_project
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore

log = logging.getLogger(__name__)

# Projects synced at once. Reading is mostly waiting on Stripe (each sync keeps its own
# requests in flight); loads queue on the one writer, so beyond a few workers the writer is
# the bound and more threads only add GIL contention.
DEFAULT_BATCH_WORKERS = 4
MAX_BATCH_WORKERS = 64
# Runs a tier's batch is split into (one per run worker of a deployment: docs/deploy.md). On
# DuckDB the single writer makes more than one pointless; on PostgreSQL each run can go to
# another machine, and each one's dbt build waits for the build lock in turn.
BATCH_RUNS_ENV = "STRIPE_WAREHOUSE_BATCH_RUNS"


@dataclass
class ProjectOutcome:
    """One project's part of a batch: its sync's result or its error, and phase times."""

    project_id: str
    result: SyncResult | None = None
    error: WarehouseError | None = None
    seconds: float = 0.0
    # seconds spent in each phase of the sync (extract, normalize, load incl. the writer wait)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the project was refreshed."""
        return self.error is None

    @property
    def rows(self) -> int:
        """Rows loaded (0 for a failed project)."""
        return self.result.objects_loaded if self.result is not None else 0

    def line(self) -> str:
        """The project's line of the cycle's report."""
        if self.result is not None:
            return (f"{self.project_id}: ok, {self.rows:,} rows in {self.seconds:.1f} s "
                    f"({self.result.requests:,} requests)")
        return f"{self.project_id}: error after {self.seconds:.1f} s: {self.error}"


def batch_projects(store: ConnectionStore, tier: str | None = None) -> list[str]:
    """The projects a batch refreshes: every active one (of ``tier``), but the demo's, whose
    sandbox stopped with the demo."""
    return [
        c.project_id for c in store.list()
        if c.status == "active" and (tier is None or c.tier == tier)
        and demo_project(store.home, c) is None
    ]


def batch_runs() -> int:
    """How many runs a tier's batch is split into (``STRIPE_WAREHOUSE_BATCH_RUNS``, default 1);
    a malformed value is a one-line error naming the variable."""
    value = os.environ.get(BATCH_RUNS_ENV, "1").strip() or "1"
    if not value.isdigit() or not 1 <= int(value) <= MAX_BATCH_WORKERS:
        raise WarehouseError(f"{BATCH_RUNS_ENV} must be a whole number from 1 to "
                             f"{MAX_BATCH_WORKERS} (got {value!r}): the runs a tier's batch is "
                             "split into, one per run worker")
    return int(value)


def split_batch(projects: list[str], runs: int) -> list[list[str]]:
    """``projects`` dealt round-robin into at most ``runs`` non-empty shares of near-equal size
    (every project in exactly one)."""
    return [share for share in (projects[k::runs] for k in range(runs)) if share]


def validate_workers(workers: int) -> int:
    """``workers`` if it is a sensible pool size, else a one-line error naming the range."""
    if not 1 <= workers <= MAX_BATCH_WORKERS:
        raise WarehouseError(f"--workers must be 1 to {MAX_BATCH_WORKERS} (got {workers}): "
                             f"projects synced at once; default {DEFAULT_BATCH_WORKERS}")
    return workers


class _PhaseClock:
    """The seconds each phase of one sync took, from the phase names the sync reports."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._current: str | None = None
        self._since = time.monotonic()

    def __call__(self, name: str) -> None:
        self.stop()
        self._current, self._since = name, time.monotonic()

    def stop(self) -> None:
        if self._current is not None:
            self.phases[self._current] = time.monotonic() - self._since
            self._current = None


def sync_batch(
    store: ConnectionStore,
    projects: list[str],
    kind: Literal["backfill", "refresh"] = "refresh",
    *,
    home: Path | None = None,
    api_base: str | None = None,
    workers: int = DEFAULT_BATCH_WORKERS,
    on_outcome: Callable[[ProjectOutcome], None] | None = None,
) -> list[ProjectOutcome]:
    """Sync ``projects`` with ``workers`` at once; one outcome per project, in their order.

    ``on_outcome`` receives each outcome as its project finishes (from a worker thread, one
    at a time). An interrupt (Ctrl-C) stops the batch: the projects not started are skipped.
    """
    validate_workers(workers)
    report = threading.Lock()

    def one(project_id: str, decode: AllowlistingDecoder) -> ProjectOutcome:
        outcome = ProjectOutcome(project_id)
        clock = _PhaseClock()
        started = time.monotonic()
        try:
            outcome.result = sync_or_revoke(
                store, project_id, kind, home=home, api_base=api_base, phase=clock,
                decode=decode)
        except WarehouseError as error:  # recorded as this project's; the batch goes on
            log.error("%s", error)
            outcome.error = error
        except Exception as error:  # noqa: BLE001 - an unforeseen one is this project's too
            log.exception("sync of project %s failed", project_id)
            outcome.error = WarehouseError(
                f"sync of project {project_id} failed ({type(error).__name__}: "
                f"{str(error)[:200]}): run it again; rows loaded so far are kept")
        clock.stop()
        outcome.seconds, outcome.phases = time.monotonic() - started, clock.phases
        if on_outcome is not None:
            with report:
                on_outcome(outcome)
        return outcome

    # one pool of decoding processes for the whole batch (a sync alone starts its own)
    with fewer_gc_passes(), AllowlistingDecoder() as decode, ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="batch-sync") as pool:
        futures = [pool.submit(one, project, decode) for project in projects]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
