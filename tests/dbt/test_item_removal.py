"""Issue 14 case 1: a removed subscription item stops counting on the day it was removed.

Sandbox -> real sync over HTTP -> real `dbt build`, for one subscription of a small company:
base item 3 x $5/month (module2) plus an add-on 5 x $4/month (module1, $20), created 20 days
ago and paid; the add-on is deleted on day D (5 days ago, `proration_behavior=none`: no
invoice line dates the removal), with Stripe's `customer.subscription.updated` event whose
`previous_attributes.items` still lists it. By hand (METRICS-SPEC "Monthly amount"):
- day D-1: 3 x $5 + 5 x $4 = $35;
- day D (read at the end of the day, after the removal) and every later day: 3 x $5 = $15.
This must hold after a backfill run after D, and after a backfill run before D followed by
any number of refreshes after D (the raw `subscription_items` row of the add-on is never
deleted: only the subscription's own item list says it is gone).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "items"
API_KEY = "sk_test_item_removal"
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
        self.early_backfill = self.now - 8 * DAY  # before the removal
        self.removed = self.now - 5 * DAY

    def day(self, ts: int) -> date:
        return datetime.fromtimestamp(ts, UTC).date()


def two_item_subscription(company: Company, at: int) -> tuple[str, str]:
    """The subscription (3 x $5 base, 5 x $4 add-on) of the company's first live customer."""
    customer = next(c for c in company.objects["customer"] if not c.get("deleted"))
    base, add_on = company.price_by_key("module2_usd_month"), company.price_by_key(
        "module1_usd_month")
    company.create_subscription_with_items(customer["id"], [(base["id"], 3), (add_on["id"], 5)],
                                           at)
    sub = company.objects["subscription"][-1]
    return sub["id"], sub["items"]["data"][1]["id"]


def sync_at(store: ConnectionStore, home, url: str, kind: str, at: int | None) -> None:
    """A real sync; with `at`, as if run at that moment (its rows and run stamped then)."""
    sync_as_of(store, PROJECT_ID, home, url, kind, at)


def subscription_mrr(home, subscription_id: str) -> dict[date, Decimal]:
    """The subscription's gross MRR (USD) per day, from the mart."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute(
            "select metric_date, sum(gross_mrr_usd) from marts.fct_subscription_mrr_daily "
            "where project_id = ? and subscription_id = ? group by metric_date",
            [PROJECT_ID, subscription_id]).fetchall())


def assert_removed_on_day_d(mrr: dict[date, Decimal], times: Timeline) -> None:
    removal_day = times.day(times.removed)
    assert mrr[removal_day - dt.timedelta(days=1)] == Decimal("35")
    assert mrr[removal_day] == Decimal("15")
    assert mrr[times.day(times.now + 60)] == Decimal("15")
    assert {d: v for d, v in mrr.items() if d >= removal_day} == dict.fromkeys(
        (d for d in mrr if d >= removal_day), Decimal("15"))


@pytest.fixture(scope="module")
def removal_histories(tmp_path_factory):
    """MRR histories of the subscription: {scenario: {day: MRR}}, one warehouse per scenario."""
    times = Timeline()
    histories: dict[str, dict[date, Decimal]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv(*CAUTIOUS_TESTS)
        for scenario in ("backfill_after", "backfill_before_then_refreshes"):
            home = tmp_path_factory.mktemp(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company = generate_company(CompanyConfig(customers=4, years=1, seed=14,
                                                     now=times.now))
            sub_id, add_on_id = two_item_subscription(company, times.created)
            with SandboxServer(accounts={API_KEY: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY)
                if scenario == "backfill_after":
                    company.remove_subscription_item(sub_id, add_on_id, times.removed)
                    sync_at(store, home, server.url, "backfill", None)
                    build(home=home)
                    histories[scenario] = subscription_mrr(home, sub_id)
                    continue
                sync_at(store, home, server.url, "backfill", times.early_backfill)
                build(home=home, select=SUBSCRIPTION_MRR)
                histories["before_removal"] = subscription_mrr(home, sub_id)
                company.remove_subscription_item(sub_id, add_on_id, times.removed)
                for refresh in range(3):
                    sync_at(store, home, server.url, "refresh", None)
                    build(home=home, select=None if refresh == 2 else SUBSCRIPTION_MRR)
                    histories[f"refresh_{refresh + 1}"] = subscription_mrr(home, sub_id)
    return times, histories


@pytest.mark.e2e
def test_add_on_removed_on_day_d_stops_counting_after_a_backfill(removal_histories):
    times, histories = removal_histories
    assert_removed_on_day_d(histories["backfill_after"], times)


@pytest.mark.e2e
def test_add_on_removed_after_the_backfill_stops_counting_after_each_refresh(removal_histories):
    times, histories = removal_histories
    before = histories["before_removal"]
    assert before[times.day(times.early_backfill)] == Decimal("35")
    for refresh in ("refresh_1", "refresh_2", "refresh_3"):
        assert_removed_on_day_d(histories[refresh], times)
        # the days before the removal keep what the first backfill said
        assert {d: v for d, v in histories[refresh].items() if d in before} == before


@pytest.mark.e2e
def test_refreshes_and_a_late_backfill_give_the_same_history(removal_histories):
    _, histories = removal_histories
    assert histories["refresh_3"] == histories["backfill_after"]


def test_an_item_mrr_table_built_by_an_older_release_is_rewritten_whole(
        scenario_home: Path, tmp_path: Path):
    """A warehouse built before removal dating (no `is_estimated`; past days priced by the old
    rule, here: every amount off by 1) is recomputed on every day by the next ordinary build,
    not only on the days a new sync touched (there is none here)."""
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    table = "intermediate.int_subscription_item_mrr_daily"
    rows = (f"select metric_date, subscription_item_id, gross_mrr, net_mrr, is_estimated "
            f"from {table} order by all")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        current = con.execute(rows).fetchall()
        con.execute(f"alter table {table} drop column is_estimated")
        con.execute(f"update {table} set gross_mrr = gross_mrr + 1, net_mrr = net_mrr + 1")

    build(home=tmp_path)

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(rows).fetchall() == current
    assert len(current) > 100
