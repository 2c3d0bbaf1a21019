"""The one runner of the change scenarios (issue 14's cases: an add-on removed, seats changed,
an item of a twelve-item subscription changed, an item's discount removed or replaced).

A change happens on day D (`Timeline.removed`, 5 days ago) to a small sandbox company; each
case (`ChangeScenario`, registered by its module with `register`) is a project of its own, and
the cases share their warehouses: one per scenario and target (`new_home`: DuckDB or
PostgreSQL), built once per test session (tests/dbt/conftest.py: `change_histories`) with
every registered case's project in it. After each build the runner records each case's
history, under these keys:
- ``backfill_after``: the change, then one backfill and a whole `dbt build`;
- ``refreshes``: a backfill before D (``refreshes_before_change``), the change, then
  refreshes (``refreshes_refresh_1``...);
- ``webhook``: a backfill before D (``webhook_before_change``), the change's events applied as
  webhooks (``webhook_applied``), then refreshes (``webhook_refresh_1``...).
The builds between a scenario's first and last select only what `fct_subscription_mrr_daily`
is built from (with their data tests, "cautious": a test also reading a model outside the
selection waits for the whole build); each scenario's last build is whole, so every model and
data test of the project still runs on the shapes.
Why shared: the builds are nearly all of these modules' time (a dbt build costs about the same
for one project or four), and the projects are separate tenants of one warehouse, so each
case's history is what it would be alone. The `make test` workers run the change modules of a
target as one unit (tests/scheduling.py), so each target's warehouses are built once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipelines.webhooks_apply import apply_inbox
from sandbox.catalog import DAY
from sandbox.company import Company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of
from tests.dbt.warehouses import NewHome, query

PROJECT_ID = "items"
SCENARIOS = ("backfill_after", "refreshes", "webhook")
# What `subscription_mrr` reads, and everything it is built from (with their data tests): the
# builds between a scenario's first and last. Each scenario's last build is a whole `dbt build`,
# so every model and data test of the project still runs on the shape.
SUBSCRIPTION_MRR = "+fct_subscription_mrr_daily"
# Set with it: a data test that also reads a model outside the selection (metrics_daily's)
# waits for the whole build instead of failing on a model not built yet (dbt's default "eager").
CAUTIOUS_TESTS = ("DBT_INDIRECT_SELECTION", "cautious")


class Timeline:
    """The scenario's moments (unix seconds) and days."""

    def __init__(self) -> None:
        self.now = int(time.time()) - 60
        self.created = self.now - 20 * DAY
        self.early_backfill = self.now - 8 * DAY  # before the change
        self.removed = self.now - 5 * DAY  # day D, the change's moment

    def day(self, ts: int) -> date:
        return datetime.fromtimestamp(ts, UTC).date()


def sync_at(store: ConnectionStore, home, url: str, kind: str, at: int | None,
            project: str = PROJECT_ID) -> None:
    """A real sync; with `at`, as if run at that moment (its rows and run stamped then)."""
    sync_as_of(store, project, home, url, kind, at)


def subscription_mrr(home, subscription_id: str, column: str = "gross_mrr_usd",
                     project: str = PROJECT_ID) -> dict[date, Decimal]:
    """The subscription's MRR (USD; gross unless ``column`` says) per day, from the mart."""
    return dict(query(
        home, f"select metric_date, sum({column}) from marts.fct_subscription_mrr_daily "
        "where project_id = ? and subscription_id = ? group by metric_date",
        [project, subscription_id]))


@dataclass(frozen=True)
class ChangeScenario:
    """What differs between the change modules: their company, change and reading."""

    api_key: str
    # a new company (as of the timeline's `now`) and the subjects its change touches
    company: Callable[[Timeline], tuple[Company, Any]]
    # makes the change at `at`; returns its events
    change: Callable[[Company, Any, int], list[dict]]
    # the subjects' history in `home`'s warehouse: read(home, subjects, project)
    read: Callable[[Any, Any, str], Any]
    refreshes: int = 2
    # the webhook applier re-fetches the named objects from the API (else: from the payloads)
    refetch: bool = False
    scenarios: tuple[str, ...] = SCENARIOS
    # the customer and subscription metadata keys the project keeps for segments
    segment_metadata_keys: dict[str, list[str]] | None = None

    @property
    def project_id(self) -> str:
        """The case's project in the shared warehouses: its key without ``sk_test_``."""
        return self.api_key.removeprefix("sk_test_")


# The cases of the collected change modules, by project: one run builds them all.
REGISTERED: dict[str, ChangeScenario] = {}


def register(spec: ChangeScenario) -> ChangeScenario:
    """Adds a change module's case to the session's shared run (its module calls this when
    pytest imports it, before any test runs). Each module has its own API key, so its own
    project; a module imported twice registers its case again, in place."""
    REGISTERED[spec.project_id] = spec
    return spec


def run_change_scenarios(specs: list[ChangeScenario], times: Timeline, new_home: NewHome
                         ) -> dict[str, dict[str, Any]]:
    """{project: {stage: history}} of each case (module docstring): each scenario's warehouse
    holds the project of every case that has the scenario, on either warehouse target."""
    histories: dict[str, dict[str, Any]] = {spec.project_id: {} for spec in specs}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv(*CAUTIOUS_TESTS)
        for scenario in SCENARIOS:
            cases = [spec for spec in specs if scenario in spec.scenarios]
            if not cases:
                continue
            home = new_home(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            made = {spec.project_id: spec.company(times) for spec in cases}
            accounts = {spec.api_key: made[spec.project_id][0] for spec in cases}
            with SandboxServer(accounts=accounts) as server:
                _run_scenario(scenario, cases, made, times, home, server.url, histories)
    return histories


def _run_scenario(scenario: str, cases: list[ChangeScenario], made: dict[str, tuple],
                  times: Timeline, home, url: str, histories: dict[str, dict[str, Any]]) -> None:
    """One scenario's syncs and builds in `home`, recording each case's history after each."""
    store = ConnectionStore(home)
    for spec in cases:
        store.connect(spec.project_id, "pro", spec.api_key,
                      webhook_secret=f"whsec_{spec.api_key}_0123456789")
        if spec.segment_metadata_keys:
            store.set_segment_metadata_keys(spec.project_id, **spec.segment_metadata_keys)

    def sync_all(kind: str, at: int | None) -> None:
        for spec in cases:
            sync_at(store, home, url, kind, at, project=spec.project_id)

    def record(stage: str) -> None:
        for spec in cases:
            _, subjects = made[spec.project_id]
            histories[spec.project_id][stage] = spec.read(home, subjects, spec.project_id)

    def change_all() -> dict[str, list[dict]]:
        return {spec.project_id: spec.change(*made[spec.project_id], times.removed)
                for spec in cases}

    if scenario == "backfill_after":
        change_all()
        sync_all("backfill", None)
        build(home=home)
        record(scenario)
        return
    sync_all("backfill", times.early_backfill)
    build(home=home, select=SUBSCRIPTION_MRR)
    record(f"{scenario}_before_change")
    events = change_all()
    if scenario == "webhook":
        # the applier takes the whole inbox: the cases re-fetching and the others apart
        for refetch in (False, True):
            group = [spec for spec in cases if spec.refetch == refetch]
            if not group:
                continue
            with Inbox(home) as inbox:
                for spec in group:
                    for event in events[spec.project_id]:
                        inbox.store(spec.project_id, event)
            applied = (apply_inbox(home, api_base=url) if refetch
                       else apply_inbox(home, refetch=False))
            assert applied.failed == applied.stale == 0
        build(home=home, select=SUBSCRIPTION_MRR)
        record("webhook_applied")
    refreshes = max(spec.refreshes for spec in cases)
    for refresh in range(1, refreshes + 1):
        sync_all("refresh", None)
        build(home=home, select=None if refresh == refreshes else SUBSCRIPTION_MRR)
        record(f"{scenario}_refresh_{refresh}")


def net_mrr(home, subscription_id: str, project: str = PROJECT_ID) -> dict[date, Decimal]:
    """The subscription's net MRR (USD) per day, from the mart."""
    return subscription_mrr(home, subscription_id, "net_mrr_usd", project)
