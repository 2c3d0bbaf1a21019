"""What a run shows while it runs, and what it hands back, when a command runs it in process.

`stripe-warehouse sync` and the demo run the backfill or refresh job in their own process
(:mod:`orchestration.in_process`), so the run, its materialisations and its check results are
recorded in the Dagster instance like any run the daemon launches. The command still owns the
terminal: the job's steps report their phases, objects and dbt nodes to the command's progress
display through this resource, and the sync step leaves its result for the command's summary.
Runs launched by Dagster itself get an observer that shows nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dagster import ResourceDefinition

from pipelines.load import SyncResult
from stripe_warehouse.progress import SyncProgress

OBSERVER_KEY = "observer"


@dataclass
class RunObserver:
    """The command's progress display, and the sync result the run leaves for its summary."""

    progress: SyncProgress = field(default_factory=SyncProgress)
    sync: SyncResult | None = None
    # the build's warnings (a currency without an FX rate), for the command to print
    warnings: list[str] = field(default_factory=list)
    # run by a command that owns the terminal (dbt's log lines then go to a file)
    command: bool = False


# The observer of the command running a job in this process, while it does (a run's resources
# cannot be swapped for an asset subset, as `sync --no-transform` runs).
_command_observer: RunObserver | None = None


@contextmanager
def observing(observer: RunObserver) -> Iterator[RunObserver]:
    """Runs executed in this process meanwhile report to ``observer``."""
    global _command_observer
    previous, _command_observer = _command_observer, observer
    try:
        yield observer
    finally:
        _command_observer = previous


def observer_resource() -> ResourceDefinition:
    """The command's observer during :func:`observing`; else a fresh, silent one per run."""
    return ResourceDefinition(lambda _: _command_observer or RunObserver(),
                              description="the command's progress display, if a command runs "
                                          "the job in its process; silent otherwise")
