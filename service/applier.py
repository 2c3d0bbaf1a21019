"""Real-time mode: apply new inbox events and refresh the marts that read them, in the background.

A Dagster run takes seconds just to launch, and so does ``dbt run``; this worker runs inside
the service process, starts as soon as an event is stored, and rebuilds only the models between
the raw tables it changed (always including ``sync_runs``, which moves "today") and
``metrics_daily``, from dbt's compiled SQL (:mod:`service.marts_refresh`; ``dbt run`` of that
selection when a model cannot be replayed or the replay fails), then runs the dbt data tests on
what it rebuilt (none after a ``dbt run``). The other marts and their tests wait for the
scheduled build.
A failure (the warehouse locked by a sync, dbt down) leaves the work for the next round:
events stay in the inbox, marts stay marked stale. An event the applier cannot process is
quarantined by :func:`apply_inbox`; anything unforeseen in a round is logged on one line and
retried, so the thread only ends when the service stops (``/healthz`` fails if it does not).
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.webhook_round import (
    MartsNotPublished,
    MartsNotRefreshed,
    WebhookRound,
    WebhookRoundError,
    apply_and_refresh,
)
from pipelines.webhooks_apply import AppliedBatch, ApplyResult
from service.marts_refresh import CompiledMetrics, rebuild
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import (
    DataTests,
    TransformError,
    project_version,
    run_marts_selection,
)

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0

# Told of each round that refreshed the marts (``home``, the round, and every batch applied
# since the last call: a round that could not refresh hands its batches to the next), once they
# are published: `stripe-warehouse serve` records them in the state directory's Dagster instance.
OnRefreshed = Callable[[Path, WebhookRound, list[AppliedBatch]], None]


class InboxApplier:
    """A background thread: wakes on :meth:`notify` (or every ``poll_seconds``) and catches up."""

    def __init__(
        self, home: Path, api_base: str | None = None, poll_seconds: float = 5.0,
        refetch: bool = True, on_refreshed: OnRefreshed | None = None,
    ) -> None:
        self.home = home
        self.api_base = api_base
        self.poll_seconds = poll_seconds
        self.refetch = refetch
        self.on_refreshed = on_refreshed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stale_tables: set[str] = set()
        self._unreported: list[AppliedBatch] = []  # applied, not yet recorded in Dagster
        self._compiled: CompiledMetrics | None = None
        self._thread = threading.Thread(target=self._loop, name="inbox-applier", daemon=True)
        self.last_round_at: float | None = None  # when the thread last finished a round

    @property
    def alive(self) -> bool:
        """Whether the thread runs (it was started and has not ended)."""
        return self._thread.is_alive()

    def start(self) -> "InboxApplier":
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the current round and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)

    def notify(self) -> None:
        """An event was stored: start a round now."""
        self._wake.set()

    def refresh_metrics(self, home: Path, tables: set[str]) -> DataTests | None:
        """Rebuild what ``metrics_daily`` reads of ``tables``: compiled SQL, then the data
        tests on what it rebuilt (their results); else ``dbt run`` and ``dbt test``, which is
        also how a PostgreSQL warehouse is refreshed (the replay is DuckDB's SQL, in one DuckDB
        transaction; dbt's run there waits for the server's build lock)."""
        if StateDir.of(home).target.is_postgres:
            return run_marts_selection(home, tables)
        try:
            compiled = self._compiled
            if compiled is None or compiled.version != project_version():
                compiled = self._compiled = CompiledMetrics.compile(home)
            if not compiled.needs_dbt(tables):
                results = rebuild(home, compiled.reading(tables), compiled.checking(tables))
                return DataTests(compiled.path, results) if compiled.path else None
        except (TransformError, duckdb.Error, KeyError) as error:
            log.warning("fast marts refresh failed (%s): falling back to dbt run",
                        " ".join(str(error).split())[:200])
            self._compiled = None
        # A model only dbt can build, or a failed replay: dbt itself knows how (and tests).
        return run_marts_selection(home, tables)

    def _loop(self) -> None:
        if not StateDir.of(self.home).target.is_postgres:  # PostgreSQL: dbt run refreshes
            with contextlib.suppress(WarehouseError):  # warm-up only: the first round retries
                self._compiled = CompiledMetrics.compile(self.home)
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                done = self.run_once()
            except Exception as error:  # one bad round must not end the thread
                log.error("webhook round failed (%s: %s): retrying in %.0f s",
                          type(error).__name__, " ".join(str(error).split())[:300],
                          RETRY_SECONDS)
                done = False
            self.last_round_at = time.time()
            if not done:
                self._stop.wait(RETRY_SECONDS)

    def run_once(self) -> bool:
        """One round: apply, then refresh the marts; False if something must be retried."""
        try:
            done = apply_and_refresh(self.home, api_base=self.api_base, refetch=self.refetch,
                                     refresh=self.refresh_metrics, stale=self._stale_tables)
        except WebhookRoundError as error:
            self._unreported += error.result.batches  # recorded with the next refresh
            _log_quarantined(error.result)
            if isinstance(error, MartsNotPublished):
                log.error("%s", error)
                return True
            assert isinstance(error, MartsNotRefreshed)
            log.error("%s: retrying in %.0f s", error, RETRY_SECONDS)
            return False
        except WarehouseError as error:  # the inbox was not applied
            log.error("%s", error)
            return False
        result = done.result
        self._unreported += result.batches
        _log_quarantined(result)
        if not done.refreshed:
            return True
        log.info("applied %d events in %.2f s, marts refreshed %.2f s later", result.events,
                 result.seconds, done.refresh_seconds)
        # the marts are visible: now record the refresh where `stripe-warehouse ui` shows it
        if self.on_refreshed is not None:
            self.on_refreshed(self.home, done, self._unreported)
        self._unreported = []
        return True


def _log_quarantined(result: ApplyResult) -> None:
    if result.failed:
        log.error("%d webhook events could not be applied and were quarantined: "
                  "`stripe-warehouse status` shows why", result.failed)
