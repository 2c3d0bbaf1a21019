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
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import (
    ChangeScenario,
    Timeline,
    run_change_scenarios,
    subscription_mrr,
)

API_KEY = "sk_test_item_removal"


def two_item_subscription(company: Company, at: int) -> tuple[str, str]:
    """The subscription (3 x $5 base, 5 x $4 add-on) of the company's first live customer."""
    customer = next(c for c in company.objects["customer"] if not c.get("deleted"))
    base, add_on = company.price_by_key("module2_usd_month"), company.price_by_key(
        "module1_usd_month")
    company.create_subscription_with_items(customer["id"], [(base["id"], 3), (add_on["id"], 5)],
                                           at)
    sub = company.objects["subscription"][-1]
    return sub["id"], sub["items"]["data"][1]["id"]


def assert_removed_on_day_d(mrr: dict[date, Decimal], times: Timeline) -> None:
    removal_day = times.day(times.removed)
    assert mrr[removal_day - dt.timedelta(days=1)] == Decimal("35")
    assert mrr[removal_day] == Decimal("15")
    assert mrr[times.day(times.now + 60)] == Decimal("15")
    assert {d: v for d, v in mrr.items() if d >= removal_day} == dict.fromkeys(
        (d for d in mrr if d >= removal_day), Decimal("15"))


def new_company(times: Timeline) -> tuple[Company, tuple[str, str]]:
    company = generate_company(CompanyConfig(customers=4, years=1, seed=14, now=times.now))
    return company, two_item_subscription(company, times.created)


REMOVAL = ChangeScenario(
    API_KEY, new_company,
    change=lambda company, subjects, at: company.remove_subscription_item(*subjects, at),
    read=lambda home, subjects: subscription_mrr(home, subjects[0]), refreshes=3)


@pytest.fixture(scope="module")
def removal_histories(new_home):
    """MRR histories of the subscription: {stage: {day: MRR}}, one warehouse per scenario."""
    times = Timeline()
    return times, run_change_scenarios(REMOVAL, times, new_home,
                                       scenarios=("backfill_after", "refreshes"))


@pytest.mark.e2e
def test_add_on_removed_on_day_d_stops_counting_after_a_backfill(removal_histories):
    times, histories = removal_histories
    assert_removed_on_day_d(histories["backfill_after"], times)


@pytest.mark.e2e
def test_add_on_removed_after_the_backfill_stops_counting_after_each_refresh(removal_histories):
    times, histories = removal_histories
    before = histories["refreshes_before_change"]
    assert before[times.day(times.early_backfill)] == Decimal("35")
    for refresh in ("refreshes_refresh_1", "refreshes_refresh_2", "refreshes_refresh_3"):
        assert_removed_on_day_d(histories[refresh], times)
        # the days before the removal keep what the first backfill said
        assert {d: v for d, v in histories[refresh].items() if d in before} == before


@pytest.mark.e2e
def test_refreshes_and_a_late_backfill_give_the_same_history(removal_histories):
    _, histories = removal_histories
    assert histories["refreshes_refresh_3"] == histories["backfill_after"]


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
