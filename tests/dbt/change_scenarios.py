"""The one runner of the change scenarios (issue 14's cases: an add-on removed, seats changed,
an item of a twelve-item subscription changed, an item's discount removed or replaced).

A change happens on day D (`Timeline.removed`, 5 days ago) to a small sandbox company; each
scenario is its own warehouse (`new_home`: DuckDB or PostgreSQL) and records the subject's
history after each build, under these keys:
- ``backfill_after``: the change, then one backfill and a whole `dbt build`;
- ``refreshes``: a backfill before D (``refreshes_before_change``), the change, then
  refreshes (``refreshes_refresh_1``...);
- ``webhook``: a backfill before D (``webhook_before_change``), the change's events applied as
  webhooks (``webhook_applied``), then refreshes (``webhook_refresh_1``...).
The builds between a scenario's first and last select only what `fct_subscription_mrr_daily`
is built from (with their data tests, "cautious": a test also reading a model outside the
selection waits for the whole build); each scenario's last build is whole, so every model and
data test of the project still runs on the shape.
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


def sync_at(store: ConnectionStore, home, url: str, kind: str, at: int | None) -> None:
    """A real sync; with `at`, as if run at that moment (its rows and run stamped then)."""
    sync_as_of(store, PROJECT_ID, home, url, kind, at)


def subscription_mrr(home, subscription_id: str, column: str = "gross_mrr_usd"
                     ) -> dict[date, Decimal]:
    """The subscription's MRR (USD; gross unless ``column`` says) per day, from the mart."""
    return dict(query(
        home, f"select metric_date, sum({column}) from marts.fct_subscription_mrr_daily "
        "where project_id = ? and subscription_id = ? group by metric_date",
        [PROJECT_ID, subscription_id]))


@dataclass(frozen=True)
class ChangeScenario:
    """What differs between the change modules: their company, change and reading."""

    api_key: str
    # a new company (as of the timeline's `now`) and the subjects its change touches
    company: Callable[[Timeline], tuple[Company, Any]]
    # makes the change at `at`; returns its events
    change: Callable[[Company, Any, int], list[dict]]
    # the subjects' history in `home`'s warehouse
    read: Callable[[Any, Any], Any]
    refreshes: int = 2
    # the webhook applier re-fetches the named objects from the API (else: from the payloads)
    refetch: bool = False


def run_change_scenarios(spec: ChangeScenario, times: Timeline, new_home: NewHome,
                         scenarios: tuple[str, ...] = SCENARIOS) -> dict[str, Any]:
    """{stage: history} of each scenario (module docstring), on either warehouse target."""
    histories: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv(*CAUTIOUS_TESTS)
        for scenario in scenarios:
            home = new_home(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company, subjects = spec.company(times)
            with SandboxServer(accounts={spec.api_key: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", spec.api_key,
                              webhook_secret=f"whsec_{spec.api_key}_0123456789")
                if scenario == "backfill_after":
                    spec.change(company, subjects, times.removed)
                    sync_at(store, home, server.url, "backfill", None)
                    build(home=home)
                    histories[scenario] = spec.read(home, subjects)
                    continue
                sync_at(store, home, server.url, "backfill", times.early_backfill)
                build(home=home, select=SUBSCRIPTION_MRR)
                histories[f"{scenario}_before_change"] = spec.read(home, subjects)
                events = spec.change(company, subjects, times.removed)
                if scenario == "webhook":
                    with Inbox(home) as inbox:
                        for event in events:
                            inbox.store(PROJECT_ID, event)
                    applied = (apply_inbox(home, api_base=server.url) if spec.refetch
                               else apply_inbox(home, refetch=False))
                    assert applied.failed == applied.stale == 0
                    build(home=home, select=SUBSCRIPTION_MRR)
                    histories["webhook_applied"] = spec.read(home, subjects)
                for refresh in range(1, spec.refreshes + 1):
                    sync_at(store, home, server.url, "refresh", None)
                    last = refresh == spec.refreshes
                    build(home=home, select=None if last else SUBSCRIPTION_MRR)
                    histories[f"{scenario}_refresh_{refresh}"] = spec.read(home, subjects)
    return histories


def net_mrr(home, subscription_id: str) -> dict[date, Decimal]:
    """The subscription's net MRR (USD) per day, from the mart."""
    return subscription_mrr(home, subscription_id, "net_mrr_usd")
