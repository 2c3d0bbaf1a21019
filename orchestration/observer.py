"""What a run shows while it runs, and what it hands back, when a command runs it in process.

`stripe-warehouse sync` and the demo run the backfill or refresh job in their own process
(:mod:`orchestration.in_process`), so the run, its materialisations and its check results are
recorded in the Dagster instance like any run the daemon launches. The command still owns the
terminal: the job's steps report their phases, objects and dbt nodes to the command's progress
display through this resource, and the sync step leaves its result for the command's summary.
Runs launched by Dagster itself get an observer that shows nothing.
"""

from __future__ import annotations

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
    # run by a command that owns the terminal (dbt's log lines then go to a file)
    command: bool = False


def observer_resource(observer: RunObserver | None = None) -> ResourceDefinition:
    """The resource holding ``observer``; a fresh, silent one per run when none is given."""
    if observer is not None:
        return ResourceDefinition.hardcoded_resource(observer, "the command's progress display")
    return ResourceDefinition(lambda _: RunObserver(),
                              description="silent: runs launched by Dagster show no display")
