"""Trials dated where they happened (issue 14, cases 3 and 4), through the full pipeline:
sandbox company -> real sync over HTTP -> `dbt build`, after a backfill and after a refresh.

Both subscriptions are on `starter_usd_month` ($19.00 a month, quantity 1). Day -n is the UTC
day of `now - n days`; the reporting window is the backfill's 90 days.

Case 3, `paused_trial`: created at -80 with a 14-day trial and no payment method; the trial
ended at -66 in status `paused` (`missing_payment_method = pause`), before the 30-day event
window, and no paid period was ever invoiced (only the $0 trial invoice). MRR is $0 on every
day: -67 (in trial), -66 (the day it paused), -65, -31 (the last day before the event window)
and today.

Case 4, `added_trial`: paying $19.00 a month since -60 (paid invoices at -60 and at the
renewal a month later); a 30-day trial added at -10 (trial_start = -10, trial_end = +20).
MRR is $19.00 on -60 (the day it started), -31 and -11 (the day before the trial), and $0 on
-10 (the trial started during the day: the day is read at its end) and today (still in trial:
trials are excluded until converted). Nothing before -60.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox import trials
from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import DAY, line_amount, period_end
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

PROJECT_ID = "trials"
API_KEY = "sk_test_trial_history"
PRICE = "starter_usd_month"
MONTHLY = Decimal("19.00")


def renew(co: Company, sub: dict) -> None:
    """Bill the subscription's next period at the end of the current one, paid at once."""
    item = sub["items"]["data"][0]
    start = item["current_period_end"]
    end = period_end(start, "month", 1)
    item["current_period_start"], item["current_period_end"] = start, end
    line = Line(item["price"], 1, line_amount(co.plan(PRICE), 1), (start, end), item["id"])
    inv = create_invoice(co, sub["customer"], sub["currency"], start, "subscription_cycle",
                         sub["id"], [line], [], Collection([Attempt(start)]))
    sub["latest_invoice"] = inv["id"]


def trial_company(now: int) -> tuple[Company, str, str]:
    """A small generated company plus the two trial shapes; returns their subscription ids."""
    co = generate_company(CompanyConfig(customers=4, years=1, seed=14, now=now))
    customer = co.objects["customer"][0]["id"]
    price = co.price_by_key(PRICE)["id"]

    co.create_subscription(customer, price, now - 80 * DAY, trial_days=14)
    paused = co.objects["subscription"][-1]
    trials.pause_at_trial_end(co, paused)

    co.create_subscription(customer, price, now - 60 * DAY)
    added = co.objects["subscription"][-1]
    added["status"] = "active"  # its first invoice was paid at creation
    renew(co, added)
    trials.add_trial(co, added, now - 10 * DAY, now + 20 * DAY)
    return co, paused["id"], added["id"]


def mrr_by_day(home: Path, subscription_id: str) -> dict[date, Decimal]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute(
            "select metric_date, sum(net_mrr) from marts.fct_subscription_mrr_daily "
            "where project_id = ? and subscription_id = ? group by metric_date",
            [PROJECT_ID, subscription_id]).fetchall())


@pytest.fixture(scope="module")
def trial_homes(tmp_path_factory):
    """The company backfilled and built, then (a copy of the warehouse) refreshed and rebuilt:
    the MRR per day of both subscriptions after each step."""
    home = tmp_path_factory.mktemp("trial_history_home")
    now = int(time.time())
    co, paused, added = trial_company(now)
    after: dict[str, dict[str, dict[date, Decimal]]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts={API_KEY: co}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_project(store, PROJECT_ID, "backfill", home=home, api_base=server.url)
            build(home=home)
            after["backfill"] = {"paused": mrr_by_day(home, paused),
                                 "added": mrr_by_day(home, added)}
            sync_project(store, PROJECT_ID, "refresh", home=home, api_base=server.url)
            build(home=home)
            after["refresh"] = {"paused": mrr_by_day(home, paused),
                                "added": mrr_by_day(home, added)}
    return datetime.fromtimestamp(now, UTC).date(), after


@pytest.mark.e2e
@pytest.mark.parametrize("step", ["backfill", "refresh"])
def test_a_trial_that_ended_paused_before_the_event_window_never_counts(trial_homes, step):
    today, after = trial_homes
    mrr = after[step]["paused"]
    checked = {n: mrr.get(today - timedelta(days=n), Decimal(0)) for n in (67, 66, 65, 31, 0)}
    assert checked == dict.fromkeys(checked, Decimal(0))
    assert sum(mrr.values(), Decimal(0)) == 0  # and no other day either


@pytest.mark.e2e
@pytest.mark.parametrize("step", ["backfill", "refresh"])
def test_a_trial_added_to_a_paying_subscription_keeps_the_days_before_it(trial_homes, step):
    today, after = trial_homes
    mrr = after[step]["added"]
    checked = {n: mrr.get(today - timedelta(days=n), Decimal(0)) for n in (61, 60, 31, 11, 10, 0)}
    assert checked == {61: 0, 60: MONTHLY, 31: MONTHLY, 11: MONTHLY, 10: 0, 0: 0}
    paying_days = [day for day, value in mrr.items() if value]
    assert (min(paying_days), max(paying_days), len(paying_days)) == (
        today - timedelta(days=60), today - timedelta(days=11), 50)
    assert set(mrr.values()) == {MONTHLY}
