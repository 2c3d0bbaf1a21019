"""An account whose MRR is a sum of thousands of inexact amounts, in the raw-table contract.

Prices of $0.10, $0.70, EUR 0.30, ... billed weekly, daily, yearly and quarterly: every item's
monthly amount (x 52 / 12, x 365 / 12, / 12, / 3) and its USD value have no short binary form,
so a floating-point sum of them depends on the order the rows are added in. Subscriptions start
and end on different days, so every day of the window moves some customer's MRR.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.dbt import raw_tables
from tests.dbt.scenario import customer, item, price, subscription, ts

PROJECT_ID = "proj_rounding"
WINDOW_START = datetime(2026, 8, 26, tzinfo=UTC)
LAST_SYNC = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REFRESH_AT = LAST_SYNC + timedelta(days=1)
SUBSCRIPTIONS = 2400
CHARGES = 900

PRICES = [
    price("price_w10", 10, interval="week"),
    price("price_d70", 70, interval="day"),
    price("price_y70", 70, interval="year"),
    price("price_q110", 110, interval="month", interval_count=3),
    price("price_eur_w30", 30, currency="eur", interval="week"),
    price("price_gbp_y10", 10, currency="gbp", interval="year"),
    price("price_jpy_d7", 7, currency="jpy", interval="day"),
    price("price_m1", 1),
]
PERCENT_COUPON = {"id": "coupon_third_off", "object": "coupon", "created": ts("2026-01-01"),
                  "duration": "forever", "percent_off": 33.33, "amount_off": None,
                  "currency": None, "duration_in_months": None}


def _subscription(number: int) -> dict:
    """The number-th subscription: its price, quantity, start and end vary with the number."""
    sub_id = f"sub_r{number:05d}"
    item_price = PRICES[number % len(PRICES)]
    start = (WINDOW_START + timedelta(days=number % 97 - 5)).date().isoformat()
    fields: dict = {}
    if number % 11 == 0:
        ended = ts((WINDOW_START + timedelta(days=number % 83 + 3)).date().isoformat())
        fields.update(status="canceled", canceled_at=ended, ended_at=ended)
    if number % 7 == 0:
        fields["discounts"] = [{"id": f"di_{sub_id}", "object": "discount", "start": ts(start),
                                "end": None, "source": {"type": "coupon",
                                                        "coupon": PERCENT_COUPON["id"]}}]
    return subscription(
        sub_id, f"cus_r{number % 1700:05d}",
        item(f"si_r{number:05d}", sub_id, item_price, 1 + number % 7, start),
        start, currency=item_price["currency"], **fields,
    )


def _charge(number: int) -> dict:
    """A standalone charge of 0.10 to 0.70 in one of three currencies, on one of the days."""
    created = WINDOW_START + timedelta(days=number % 89, minutes=number)
    return {"id": f"ch_r{number:05d}", "object": "charge", "customer": f"cus_r{number % 1700:05d}",
            "amount": 10 * (1 + number % 7), "amount_captured": 10 * (1 + number % 7),
            "currency": ("usd", "eur", "gbp")[number % 3], "status": "succeeded",
            "captured": True, "created": int(created.timestamp())}


def build_rounding_scenario(home: Path, refreshed: bool = False) -> None:
    """Writes the account into `home`/warehouse.duckdb; `refreshed` adds the next day's sync."""
    subscriptions = [_subscription(number) for number in range(SUBSCRIPTIONS)]
    customers = [customer(f"cus_r{number:05d}", "2025-12-01") for number in range(1700)]
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
        for table, objects in (
            ("prices", PRICES), ("customers", customers), ("subscriptions", subscriptions),
            ("subscription_items", [sub["items"]["data"][0] for sub in subscriptions]),
            ("coupons", [PERCENT_COUPON]), ("charges", [_charge(n) for n in range(CHARGES)]),
        ):
            raw_tables.insert_many_objects(con, table, PROJECT_ID, objects, LAST_SYNC)
        raw_tables.insert_sync_run(con, PROJECT_ID, WINDOW_START, LAST_SYNC)
    finally:
        con.close()
    if refreshed:
        add_refresh(home)


def add_refresh(home: Path) -> None:
    """The next day's refresh sync: one subscription canceled, the rest unchanged."""
    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        canceled = _subscription(1)
        canceled_at = ts((LAST_SYNC + timedelta(hours=2)).isoformat())
        canceled.update(status="canceled", canceled_at=canceled_at, ended_at=canceled_at)
        raw_tables.replace_objects(con, "subscriptions", PROJECT_ID, [canceled], REFRESH_AT)
        raw_tables.insert_sync_run(con, PROJECT_ID, REFRESH_AT - timedelta(days=7), REFRESH_AT,
                                   kind="refresh")
    finally:
        con.close()
