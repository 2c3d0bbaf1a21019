"""One round of webhooks: apply the inbox, refresh the marts that read what changed, mark the
events visible, publish the readers' copy (DuckDB; on PostgreSQL readers read the server's
marts, and the refresh's dbt run took the server's build lock, ``stripe_warehouse.build_lock``).

The real-time service (:mod:`service.applier`, every few seconds, refreshing from dbt's compiled
SQL) and Dagster's ``webhooks`` job (:mod:`orchestration.webhooks`, ``dbt run`` and ``dbt test``
of the same selection) both run this; they differ only in how they refresh and in what they do
with an error (the service logs it and retries, a Dagster run fails).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.webhooks_apply import ApplyResult, apply_inbox
from stripe_warehouse.alerts import AlertRound, run_alerts_after_build
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.publish import publish_marts
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import DataTests, run_marts_selection
from stripe_warehouse.warehouse_target import WarehouseTarget

# ``refresh(home, tables)``: rebuild what ``metrics_daily`` reads of the raw ``tables``; the
# data tests it ran on what it rebuilt (None: it ran none).
log = logging.getLogger(__name__)
Refresh = Callable[[Path, set[str]], DataTests | None]


class WebhookRoundError(WarehouseError):
    """A round stopped after applying the inbox; ``result`` says what was applied."""

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


class MartsNotRefreshed(WebhookRoundError):
    """The events were applied but the marts not refreshed (nothing marked visible): the
    changed tables stay stale for the next round."""


class MartsNotPublished(WebhookRoundError):
    """The marts were refreshed (the events are visible in the warehouse) but the readers'
    copy was not replaced: the next round or build publishes it."""


@dataclass
class WebhookRound:
    """What one :func:`apply_and_refresh` did."""

    result: ApplyResult
    refreshed: set[str] = field(default_factory=set)  # raw tables whose marts were refreshed
    applied_through: float = 0.0  # events applied before this instant are now visible
    refresh_seconds: float = 0.0
    published: Path | WarehouseTarget | None = None  # the copy, or the server readers read
    tests: DataTests | None = None  # run on the refreshed models
    alerts: AlertRound | None = None  # the alert rules judged on what was published


def apply_and_refresh(
    home: Path, *, api_base: str | None = None, refetch: bool = True,
    refresh: Refresh = run_marts_selection, stale: set[str] | None = None,
) -> WebhookRound:
    """Apply the inbox, then refresh and publish the marts if a raw table changed.

    ``stale`` carries the tables a failed round could not refresh into the next one (the
    caller's set: emptied once they are refreshed). Raises :class:`WarehouseError` when the
    inbox could not be applied, :class:`MartsNotRefreshed` when the refresh failed (nothing
    is marked visible then), :class:`MartsNotPublished` when only the publish failed.
    """
    stale = set() if stale is None else stale
    result = apply_inbox(home, api_base=api_base, refetch=refetch)
    done = WebhookRound(result, applied_through=time.time())
    if result.rows_written:
        # sync_runs always changes: it moves "today" to the newest applied batch.
        stale.update({*result.rows_written, "sync_runs"})
    if not stale:
        return done
    try:
        tests = refresh(home, stale)
    except (WarehouseError, duckdb.Error) as error:
        raise MartsNotRefreshed(f"marts not refreshed after webhooks ({error})", result) \
            from error
    done.refresh_seconds = time.time() - done.applied_through
    done.refreshed = set(stale)
    done.tests = tests
    stale.clear()
    with Inbox(home) as inbox:
        inbox.mark_visible(done.applied_through)
    # Readers (BI tools, `stripe-warehouse metrics`) read the published copy, not the warehouse;
    # a PostgreSQL warehouse's readers read its marts on the server: nothing to publish.
    target = StateDir.of(home).target
    try:
        done.published = target if target.is_postgres else publish_marts(home)
    except (WarehouseError, duckdb.Error) as error:  # e.g. the writer lock's wait ran out
        raise MartsNotPublished(
            f"marts refreshed but not published ({error}): the next round or build publishes "
            "them", result) from error
    # a delivery failure is recorded and logged, never a failed round
    done.alerts = run_alerts_after_build(home, log=log.warning)
    return done
