"""Issue 14 cases 5 and 8 through the whole pipeline (sandbox -> sync over HTTP -> dbt build):
$0 subscriptions are active but not paying, and a cancellation scheduled with `cancel_at`
(`canceled_at` null) stops counting at the request, flagged estimated where Stripe kept no
event of it.

One company, now = T (the wall clock: syncs stamp real time), R = T - 10 days:
- sub_metered: only the metered API price, created at R.  MRR $0.
- sub_free: starter $19/month with FRIENDS100 (100% off forever), created at R.  MRR $0.
- sub_scheduled: starter $19/month since T - 60 d; at R an update sets cancel_at = T + 20 d
  (the event is kept: previous_attributes.cancel_at = null), canceled_at stays null.
- sub_old_schedule: starter since T - 80 d; cancel_at set at T - 50 d, before the 30-day event
  window (first sync - 30 d = W): no event left, dated at W, estimated.
- sub_unseen_schedule: starter since T - 70 d; after the backfill, cancel_at is set without
  any event: the next sync (a refresh) lists it, dated at that sync, estimated; a later full
  resync keeps that date.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox.active_shapes import (
    schedule_cancellation,
    subscribe_fully_discounted,
    subscribe_metered_only,
)
from sandbox.catalog import DAY
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

PROJECT_ID = "active_shapes"
API_KEY = "sk_test_active_shapes"
STAGES = ("backfill", "refresh", "resync")


def day_of(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def snapshot(home) -> dict:
    """What the marts say: counted subscriptions with their net MRR per day, the day totals,
    and the cancellation requests."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        counted = {}
        for day, sub, mrr in con.execute(
                "select metric_date, subscription_id, sum(net_mrr_usd) "
                "from marts.fct_subscription_mrr_daily where project_id = ? group by all",
                [PROJECT_ID]).fetchall():
            counted.setdefault(day, {})[sub] = mrr
        totals = {day: (mrr, active, paying) for day, mrr, active, paying in con.execute(
            "select metric_date, mrr, active_subscriptions, paying_subscriptions "
            "from marts.fct_mrr_daily where project_id = ?", [PROJECT_ID]).fetchall()}
        published = {(day, metric): value for day, metric, value in con.execute(
            "select metric_date, metric, value from marts.metrics_daily where project_id = ?",
            [PROJECT_ID]).fetchall()}
        requests = {sub: (at, source, estimated) for sub, at, source, estimated in con.execute(
            "select subscription_id, cancellation_requested_at, requested_at_source, "
            "is_requested_at_estimated from intermediate.int_subscription_cancellation_requests "
            "where project_id = ?", [PROJECT_ID]).fetchall()}
        canceled_at = dict(con.execute(
            "select subscription_id, canceled_at from staging.stg_stripe__subscriptions "
            "where project_id = ?", [PROJECT_ID]).fetchall())
    finally:
        con.close()
    return {"counted": counted, "totals": totals, "published": published,
            "requests": requests, "canceled_at": canceled_at}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The company synced and built three times: a backfill, a refresh, a full resync."""
    home = tmp_path_factory.mktemp("active_shapes_home")
    now = int(time.time()) - 120
    company = generate_company(CompanyConfig(customers=12, seed=14, now=now))
    customer = next(c for c in company.objects["customer"] if not c.get("deleted"))["id"]
    requested = now - 10 * DAY
    subs = {
        "metered": subscribe_metered_only(company, customer, requested),
        "free": subscribe_fully_discounted(company, customer, "starter_usd_month", requested),
    }
    company.create_subscription(customer, company.price_by_key("starter_usd_month")["id"],
                                now - 60 * DAY)
    subs["scheduled"] = company.subscriptions_of(customer)[-1]
    schedule_cancellation(company, subs["scheduled"]["id"], requested, now + 20 * DAY)
    company.create_subscription(customer, company.price_by_key("starter_usd_month")["id"],
                                now - 80 * DAY)
    subs["old_schedule"] = company.subscriptions_of(customer)[-1]
    schedule_cancellation(company, subs["old_schedule"]["id"], now - 50 * DAY, now + 5 * DAY)
    company.create_subscription(customer, company.price_by_key("starter_usd_month")["id"],
                                now - 70 * DAY)
    subs["unseen_schedule"] = company.subscriptions_of(customer)[-1]
    ids = {name: sub["id"] for name, sub in subs.items()}

    stages = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            first_sync = time.time()
            sync_project(store, PROJECT_ID, "backfill", home=home, api_base=server.url)
            build(home=home)
            stages["backfill"] = snapshot(home)
            # a schedule no event shows (e.g. set while events were not read)
            schedule_cancellation(company, ids["unseen_schedule"], int(time.time()),
                                  now + 30 * DAY, emit_event=False)
            refreshed = time.time()
            sync_project(store, PROJECT_ID, "refresh", home=home, api_base=server.url)
            build(home=home)
            stages["refresh"] = snapshot(home)
            resynced = time.time()
            sync_project(store, PROJECT_ID, "backfill", home=home, api_base=server.url)
            build(home=home)
            stages["resync"] = snapshot(home)
    return {"now": now, "requested": requested, "ids": ids, "stages": stages,
            "window_starts": first_sync - 30 * DAY, "refreshed": refreshed,
            "resynced": resynced}


@pytest.mark.e2e
@pytest.mark.parametrize("stage", STAGES)
def test_zero_mrr_subscriptions_count_as_active_not_paying(history, stage):
    """sub_metered ($0: metered only) and sub_free ($19 - 100% = $0), both created on day R:
    on R - 1 neither counts; on R and on the last day both count in active_subscriptions
    (stripe_active_subscriptions) with net MRR 0, neither in paying_subscriptions, and MRR is
    the sum of the others' (they add $0). Every day: active = subscriptions with a row in
    fct_subscription_mrr_daily, paying = those with net MRR > 0."""
    snap, ids = history["stages"][stage], history["ids"]
    zero = {ids["metered"], ids["free"]}
    day_r = day_of(history["requested"])
    today = day_of(history["now"])
    counted = snap["counted"]
    assert not zero & set(counted[day_r - timedelta(days=1)])
    for day in (day_r, today):
        assert {sub: counted[day][sub] for sub in zero} == {sub: 0 for sub in zero}
        mrr, active, paying = snap["totals"][day]
        assert active == len(counted[day])
        assert paying == sum(1 for value in counted[day].values() if value > 0)
        assert paying <= active - 2
        assert mrr == sum(value for sub, value in counted[day].items() if sub not in zero)
        assert snap["published"][(day, "stripe_active_subscriptions")] == active
    for day, (mrr, active, paying) in snap["totals"].items():
        assert active == len(counted.get(day, {}))
        assert paying == sum(1 for value in counted.get(day, {}).values() if value > 0)
        assert mrr == sum(counted.get(day, {}).values())


@pytest.mark.e2e
@pytest.mark.parametrize("stage", STAGES)
def test_scheduled_cancellation_without_canceled_at_stops_counting_at_the_request(
        history, stage):
    """sub_scheduled: counted ($19) on R - 1, not on R (the update at R, earlier that day, set
    cancel_at), nor on the last day; exact (source: the event). sub_old_schedule: counted
    until the day before the event window starts (W = first sync - 30 d), not from W's day
    on; estimated. sub_unseen_schedule: counted until the refresh that first lists its
    cancel_at, not from that day on; estimated; the resync keeps that date; before the
    refresh it counts."""
    snap, ids = history["stages"][stage], history["ids"]
    counted, requests = snap["counted"], snap["requests"]
    day_r = day_of(history["requested"])
    today = day_of(history["now"])
    scheduled = ids["scheduled"]
    assert snap["canceled_at"][scheduled] is None
    assert counted[day_r - timedelta(days=1)][scheduled] == 19
    assert scheduled not in counted.get(day_r, {})
    assert scheduled not in counted.get(today, {})
    assert requests[scheduled][1:] == ("scheduling_event", False)
    assert requests[scheduled][0] == datetime.fromtimestamp(history["requested"], UTC)

    old = ids["old_schedule"]
    window_day = day_of(int(history["window_starts"]))
    assert counted[window_day - timedelta(days=1)][old] == 19
    assert old not in counted.get(window_day, {})
    assert old not in counted.get(today, {})
    assert requests[old][1:] == ("before_event_window", True)

    unseen = ids["unseen_schedule"]
    if stage == "backfill":
        assert unseen not in requests
        assert counted[today][unseen] == 19
    else:  # the refresh's listing shows cancel_at set, its previous version did not
        seen_at = requests[unseen][0].timestamp()
        assert history["refreshed"] <= seen_at <= history["resynced"]
        assert requests[unseen][1:] == ("first_version_with_cancel_at", True)
        assert unseen not in counted.get(day_of(int(seen_at)), {})
        assert counted[day_of(int(seen_at)) - timedelta(days=1)][unseen] == 19
