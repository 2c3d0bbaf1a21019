"""History stability (issue 14): refreshing day by day gives the history a late backfill gives.

A small company changes over 10 simulated days: seat upgrades and downgrades (with and without
prorations), an add-on removed, a cancellation at period end and an immediate one, a pause of
collection, a discount added, a subscription's discount replaced, an item's own discount
replaced and another item's removed, a new subscription; four days' changes arrive by webhook
(applied from their payloads) before that day's refresh. The sandbox's clock (`Company.now`:
its event window) and the sync's clock (`sync_at`) are set to each simulated day, so the
refresh of day k sees the account as it was on day k.

Warehouse 1: backfill on day 0, then a refresh + incremental `dbt build` each day (10).
Warehouse 2: the same account (same seed, same changes) backfilled once, on day 10.
Every scripted change has its event, so its dating is exact and, by construction, the same in
both: every subscription's gross and net MRR (USD) on every day both warehouses report is equal
to the cent, and so are the published `stripe_mrr` and `stripe_active_subscriptions`; the days
before the first change keep what the first backfill said.
Not compared: subscriptions with a change dated at an *estimate* that depends on the first
sync's 30-day event window (docs/metrics-spec.md: a `cancel_at` set before the window, an item
change or removal seen first against an older line), since a backfill 10 days later sees 10
days less of events; they are flagged, there are few, none is scripted, and the published
metrics are compared from the later backfill's window start on, where both know the same.
Known limit, left out of the script (docs/metrics-spec.md, case 7): a discount added and
removed again between two invoices is seen by the daily refreshes but not by a later backfill.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import pipelines.webhooks_apply
from pipelines.webhooks_apply import apply_inbox
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pauses import pause_collection
from sandbox.pricing_shapes import subscribe_priced
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import PROJECT_ID, sync_at
from tests.dbt.warehouses import query, reading_warehouse

API_KEY = "sk_test_history_stability"
DAYS = 10
# days whose changes also arrive by webhook: a prorated seat change (3), an add-on removal and an
# item discount replaced (4), a pause and a subscription discount replaced (6), a cancellation
# and a prorated seat change (8)
WEBHOOK_DAYS = (3, 4, 6, 8)
# the marts `history` and `estimated` read, and everything they are built from; and
# fct_mrr_movements_monthly: a data test of fct_mrr_daily (under metrics_daily) also reads
# fct_mrr_movements, so that model must exist before the first build runs the test
SELECT = "+fct_subscription_mrr_daily +metrics_daily +fct_mrr_movements_monthly"

Change = Callable[[Company, int], list[dict]]


class Account:
    """The scenario's company, its subscriptions and the change script, day by day."""

    def __init__(self, end: int) -> None:
        self.end = end
        self.start = end - DAYS * DAY
        self.company = generate_company(CompanyConfig(customers=8, years=1, seed=41,
                                                      now=self.start))
        co = self.company
        customers = [c["id"] for c in co.objects["customer"] if not c.get("deleted")]
        seat, add_on, base = (co.price_by_key(k)["id"] for k in (
            "module7_usd_month", "module1_usd_month", "module2_usd_month"))
        created = self.start - 15 * DAY
        self.subs: dict[str, str] = {}
        for name, customer, items in (("a", 0, [(seat, 10), (add_on, 5)]), ("b", 1, [(seat, 4)]),
                                      ("c", 2, [(seat, 20)]), ("d", 3, [(base, 3)]),
                                      ("e", 4, [(base, 2)])):
            co.create_subscription_with_items(customers[customer], items, created)
            self.subs[name] = co.objects["subscription"][-1]["id"]
        # discounted from the start: "f" its two items (LAUNCH25, FRIENDS100), "g" the whole
        # subscription (SAVE5); all on their first invoice, where a late backfill finds them
        for name, customer, terms in (("f", 6, {"item_coupons": {0: "LAUNCH25",
                                                                 1: "FRIENDS100"}}),
                                      ("g", 7, {"coupon": "SAVE5"})):
            self.subs[name] = subscribe_priced(
                co, customers[customer], [("pro_usd_month", 10), ("support_usd_month", 1)],
                created, **terms)["id"]
        self.new_customer, self.new_price = customers[5], seat
        s = self.subs

        def item(name: str, n: int = 0) -> str:
            return co.get("subscription", s[name])["items"]["data"][n]["id"]

        # day -> changes made that day (each at its own hour)
        self.script: dict[int, list[Change]] = {
            1: [lambda c, t: c.change_item_quantity(s["a"], item("a"), 15, t)],
            2: [lambda c, t: c.replace_discounts(s["b"], t, "FOREVER20")],
            3: [lambda c, t: c.change_item_quantity(s["c"], item("c"), 12, t, prorate=True)],
            4: [lambda c, t: c.remove_subscription_item(s["a"], item("a", 1), t),
                lambda c, t: c.replace_item_discounts(s["f"], item("f"), t, "SAVE5")],
            5: [lambda c, t: c.cancel_subscription(s["d"], t, at_period_end=True)],
            6: [lambda c, t: pause_collection(c, s["c"], t),
                lambda c, t: c.replace_discounts(s["g"], t, "LAUNCH25")],
            7: [lambda c, t: c.change_item_quantity(s["a"], item("a"), 12, t),
                lambda c, t: c.replace_item_discounts(s["f"], item("f", 1), t)],
            8: [lambda c, t: c.cancel_subscription(s["e"], t),
                lambda c, t: c.change_item_quantity(s["a"], item("a"), 18, t, prorate=True)],
            9: [lambda c, t: c.change_item_quantity(s["b"], item("b"), 6, t)],
            10: [lambda c, t: c.create_subscription(self.new_customer, self.new_price, t)],
        }

    def sync_moment(self, day: int) -> int:
        return self.start + day * DAY

    def change_day(self, day: int) -> list[dict]:
        """Make day `day`'s changes, a few hours apart before that day's sync."""
        events: list[dict] = []
        for n, change in enumerate(self.script.get(day, [])):
            events += change(self.company, self.sync_moment(day) - (8 - n) * 3600)
        return events


def apply_webhooks(home: Path, events: list[dict], at: int) -> None:
    """The events' webhooks, applied from their payloads as if at `at`."""
    with Inbox(home) as inbox:
        for event in events:
            inbox.store(PROJECT_ID, event)
    clock = types.SimpleNamespace(time=lambda: float(at), perf_counter=time.perf_counter)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipelines.webhooks_apply, "time", clock)
        applied = apply_inbox(home, refetch=False)
    assert applied.failed == applied.stale == 0


def history(home: Path) -> dict[tuple, tuple]:
    """{(subscription or metric, day): values}: each subscription's gross and net MRR per day,
    and the published MRR and active subscriptions."""
    with reading_warehouse(home) as con:
        rows = con.execute(
            "select subscription_id, metric_date, sum(gross_mrr_usd), sum(net_mrr_usd) "
            "from marts.fct_subscription_mrr_daily where project_id = ? "
            "group by subscription_id, metric_date", [PROJECT_ID]).fetchall()
        metrics = con.execute(
            "select metric, metric_date, value from marts.metrics_daily where project_id = ? "
            "and metric in ('stripe_mrr', 'stripe_active_subscriptions')",
            [PROJECT_ID]).fetchall()
    found = {(sub, day): (gross, net) for sub, day, gross, net in rows}
    found.update({(metric, day): (value,) for metric, day, value in metrics})
    return found


# the per-subscription models whose rows of an unchanged subscription a refresh must not move
SUBSCRIPTION_MODELS = (
    "int_subscription_states", "int_subscription_item_prices", "int_subscription_item_states",
    "int_subscription_item_removals", "int_subscription_discounts",
    "int_subscription_discount_removals", "int_subscription_cancellation_requests",
)


def subscription_rows(home: Path) -> dict[str, set[tuple]]:
    """{model: its rows, subscription_id first} of the per-subscription models (without the
    `built_as_of` stamp)."""
    found: dict[str, set[tuple]] = {}
    for model in SUBSCRIPTION_MODELS:
        columns = [name for (name,) in query(
            home, "select column_name from information_schema.columns "
            "where table_schema = 'intermediate' and table_name = ? "
            "and column_name not in ('built_as_of', 'subscription_id') "
            "order by ordinal_position", [model])]
        found[model] = set(query(
            home, f"select subscription_id, {', '.join(columns)} from intermediate.{model} "
            "where project_id = ?", [PROJECT_ID]))
    return found


def estimated(home: Path) -> set[str]:
    """Subscriptions with a date estimated from the first sync's event window."""
    return {sub for (sub,) in query(
        home, "select subscription_id from intermediate.int_subscription_cancellation_requests "
        "where is_requested_at_estimated "
        "union select subscription_id from intermediate.int_subscription_item_states "
        "where is_estimated and state_source <> 'renewal' "
        "union select subscription_id from intermediate.int_subscription_item_removals "
        "where is_estimated")}


def on_days(values: dict[tuple, tuple], days: set[date], leaving: set[str] = frozenset()
            ) -> dict[tuple, tuple]:
    return {key: value for key, value in values.items()
            if key[1] in days and key[0] not in leaving}


def subscription_keys(values: dict[tuple, tuple]) -> set[str]:
    return {key[0] for key in values if key[0].startswith("sub_")}


@pytest.fixture(scope="module")
def histories(new_home):
    """The histories of both warehouses, on the module's target, the days' webhooks applied
    before their refreshes (on either target: the applier writes both)."""
    end = int(time.time()) - 300
    found: dict[str, dict[tuple, tuple]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        for scenario in ("daily", "late_backfill"):
            home = new_home(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            account = Account(end)
            with SandboxServer(accounts={API_KEY: account.company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY,
                              webhook_secret="whsec_history_stability_0123")
                if scenario == "late_backfill":
                    for day in range(1, DAYS + 1):
                        account.change_day(day)
                    account.company.now = account.end
                    sync_at(store, home, server.url, "backfill", account.end)
                    build(home=home, select=SELECT)
                    found[scenario] = history(home)
                    found["late_estimated"] = dict.fromkeys(estimated(home), ())
                    continue
                sync_at(store, home, server.url, "backfill", account.start)
                build(home=home, select=SELECT)
                found["first_backfill"] = history(home)
                for day in range(1, DAYS + 1):
                    events = account.change_day(day)
                    moment = account.sync_moment(day)
                    account.company.now = moment
                    if day in WEBHOOK_DAYS:
                        apply_webhooks(home, events, moment - 3600)
                    sync_at(store, home, server.url, "refresh", moment)
                    build(home=home, select=SELECT)
                    if day in (DAYS - 1, DAYS):
                        found[f"rows_on_day_{day}"] = subscription_rows(home)
                found[scenario] = history(home)
                found["daily_estimated"] = dict.fromkeys(estimated(home), ())
    return account, found


def left_out(account: Account, found: dict[str, dict]) -> set[str]:
    """The estimated subscriptions of either warehouse: few, and none of the scripted ones."""
    leaving = set(found["daily_estimated"]) | set(found["late_estimated"])
    assert len(leaving) <= 3, leaving
    assert not leaving & set(account.subs.values())
    return leaving


@pytest.mark.e2e
def test_daily_refreshes_give_the_history_of_one_late_backfill(histories):
    account, found = histories
    daily, late = found["daily"], found["late_backfill"]
    common = {day for _, day in daily} & {day for _, day in late}
    assert len(common) >= 85
    leaving = left_out(account, found) | {"stripe_mrr", "stripe_active_subscriptions"}
    assert on_days(daily, common, leaving) == on_days(late, common, leaving)
    assert set(account.subs.values()) <= subscription_keys(on_days(daily, common, leaving))
    # the published metrics, from the day after the late backfill's event window starts
    window = datetime.fromtimestamp(account.end - 30 * DAY, UTC).date()
    known = {day for day in common if day > window}
    metrics = {key for key in daily if not key[0].startswith("sub_")}
    assert {k: daily[k] for k in metrics if k[1] in known} == {
        k: late[k] for k in late if k[1] in known and not k[0].startswith("sub_")}


@pytest.mark.e2e
def test_days_before_the_first_change_keep_the_first_backfills_values(histories):
    account, found = histories
    first_change = datetime.fromtimestamp(account.sync_moment(1) - 8 * 3600, UTC).date()
    first = found["first_backfill"]
    unchanged = {day for _, day in first if day < first_change
                 and day < datetime.fromtimestamp(account.start, UTC).date()}
    assert len(unchanged) >= 80
    assert on_days(found["daily"], unchanged) == on_days(first, unchanged)
    common = unchanged & {day for _, day in found["late_backfill"]}
    leaving = left_out(account, found) | {"stripe_mrr", "stripe_active_subscriptions"}
    assert on_days(found["late_backfill"], common, leaving) == on_days(first, common, leaving)


@pytest.mark.e2e
def test_the_scripted_discount_changes_move_net_mrr_on_their_days(histories):
    """The discount changes are in both histories, on their days (net MRR, USD). By hand, both
    10 x $12 pro + $9 support ($129 gross):
    - "f": pro with its own LAUNCH25 (25%: -$30), support with its own FRIENDS100 (-$9): $90;
      day 4 pro's replaced by SAVE5 (-$5): $115; day 7 support's removed: $124.
    - "g": SAVE5 on the subscription (-$5): $124; day 6 replaced by LAUNCH25 (25%): $96.75.
    """
    account, found = histories
    f, g = account.subs["f"], account.subs["g"]

    def day_of(day: int) -> date:  # the day's second change, 7 hours before its sync
        return datetime.fromtimestamp(account.sync_moment(day) - 7 * 3600, UTC).date()

    expected = {(f, day_of(3)): Decimal("90"), (f, day_of(4)): Decimal("115"),
                (f, day_of(6)): Decimal("115"), (f, day_of(7)): Decimal("124"),
                (g, day_of(5)): Decimal("124"), (g, day_of(6)): Decimal("96.75"),
                (g, day_of(10)): Decimal("96.75")}
    for scenario in ("daily", "late_backfill"):
        assert {key: found[scenario][key][1] for key in expected} == expected, scenario


@pytest.mark.e2e
def test_a_refresh_leaves_the_history_rows_of_unchanged_subscriptions_as_they_were(histories):
    """An observation is dated when its content was first observed (docs/metrics-spec.md
    "Dating the current listing"). Day 10's refresh re-lists every subscription, but only
    creates a new one: every other subscription's rows in the per-subscription models are
    exactly day 9's (before, the current status and each listed item started a new segment at
    the latest sync, so every refresh rewrote every subscription's history)."""
    account, found = histories
    before, after = found[f"rows_on_day_{DAYS - 1}"], found[f"rows_on_day_{DAYS}"]
    new = {row[0] for row in after["int_subscription_states"]} - {
        row[0] for row in before["int_subscription_states"]}
    assert len(new) == 1  # day 10's new subscription
    assert set(account.subs.values()) <= {row[0] for row in before["int_subscription_states"]}
    for model in SUBSCRIPTION_MODELS:
        kept = {row for row in after[model] if row[0] not in new}
        assert kept == before[model], model
