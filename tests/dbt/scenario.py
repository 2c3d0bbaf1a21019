"""A hand-built Stripe account whose correct figures are known, in the raw-table contract.

Each customer exercises one rule of METRICS-SPEC.md; `EXPECTED_*` hold the figures a careful
person computes by hand for "today" (the last sync) and for chosen past days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.dbt import raw_tables

PROJECT_ID = "proj_scenario"
WINDOW_START = datetime(2026, 8, 26, tzinfo=UTC)
LAST_SYNC = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
FIRST_DAY = "2026-08-26"
LAST_DAY = "2026-11-24"

EXPECTED_MRR_TODAY = round(
    100.0  # 2 x $50 monthly
    + 100.0  # $1200 yearly
    + 30.0  # trial converted on Nov 15
    + 60.0  # upgraded from $20 to $60 on Nov 9
    # rates: the ECB's of Fri 2026-10-30, the last day of the bundled history, carried forward
    + 100.0 * 1.1172  # EUR 100 at 1.1172 USD/EUR (old API shape)
    + 31.796448  # JPY 5000 (zero-decimal) at 1.1172 / 175.68 = 0.006359289617 USD/JPY
    + 10.0  # past_due still counts
    + 80.0  # $100 with a forever 20% coupon
    + 26.595745,  # BHD 10.000 (three-decimal) at its USD peg, 1 / 0.376 = 2.659574468085
    6,
)
# the nine above, and sub_metered: metered only, MRR $0, still counted (issue 14 case 5)
EXPECTED_ACTIVE_SUBSCRIPTIONS_TODAY = 10
EXPECTED_PAYING_SUBSCRIPTIONS_TODAY = 9  # all but sub_metered
EXPECTED_MRR_AT_RISK_TODAY = 10.0
# 14 customers created, one deleted (customer.deleted event on Nov 1)
EXPECTED_CUSTOMERS_TODAY = 13
# every paid invoice on its day; Nov 20: invoice $100 + standalone charge $25 - refund $10
# (the $100 charge paying the invoice is not counted twice)
EXPECTED_REVENUE = {"2026-10-25": 20.0, "2026-11-09": 26.67, "2026-11-20": 115.0}
EXPECTED_FAILED_PAYMENTS = {"2026-11-21": 1}
# Nov 8: upgrade not yet (old $20), trial not converted, cancellation (Nov 10) not yet requested
EXPECTED_MRR_ON = {
    "2026-11-08": round(EXPECTED_MRR_TODAY - 30.0 - 60.0 + 20.0 + 40.0 + 15.0, 6),
}


def ts(text: str) -> int:
    """Unix seconds of an ISO UTC date or datetime."""
    moment = datetime.fromisoformat(text)
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())


def price(price_id: str, amount: int, currency: str = "usd", interval: str = "month",
          interval_count: int = 1, usage_type: str = "licensed") -> dict:
    """A recurring per-unit price in the current API shape."""
    return {
        "id": price_id, "object": "price", "created": ts("2025-01-01"), "livemode": False,
        "currency": currency, "unit_amount": amount, "billing_scheme": "per_unit",
        "type": "recurring", "tax_behavior": "exclusive", "product": "prod_1",
        "recurring": {"interval": interval, "interval_count": interval_count,
                      "usage_type": usage_type},
    }


def customer(customer_id: str, created: str) -> dict:
    """A customer with only the allowlisted fields."""
    return {"id": customer_id, "object": "customer", "created": ts(created),
            "email": f"{customer_id}@example.com", "currency": "usd", "livemode": False,
            "delinquent": False}


def subscription(sub_id: str, customer_id: str, item: dict, start: str, status: str = "active",
                 currency: str = "usd", **fields) -> dict:
    """A subscription in the current shape (period on the item, `discounts[]`)."""
    return {
        "id": sub_id, "object": "subscription", "customer": customer_id, "status": status,
        "currency": currency, "created": ts(start), "start_date": ts(start),
        "trial_start": None, "trial_end": None, "canceled_at": None, "cancel_at": None,
        "cancel_at_period_end": False, "ended_at": None, "pause_collection": None,
        "discounts": [], "livemode": False,
        "items": {"object": "list", "data": [item], "has_more": False},
        **fields,
    }


def item(item_id: str, sub_id: str, item_price: dict, quantity: int = 1, created: str = "",
         period: tuple[str, str] = ("2026-11-01", "2026-12-01")) -> dict:
    """A subscription item with its period (current shape)."""
    return {
        "id": item_id, "object": "subscription_item", "subscription": sub_id,
        "price": item_price, "quantity": quantity, "created": ts(created or period[0]),
        "current_period_start": ts(period[0]), "current_period_end": ts(period[1]),
    }


def invoice(invoice_id: str, customer_id: str, sub_id: str | None, amount: int, created: str,
            status: str = "paid", currency: str = "usd", paid_at: str | None = None) -> dict:
    """An invoice in the current shape (`parent.subscription_details`, no `paid`)."""
    parent = ({"type": "subscription_details",
               "subscription_details": {"subscription": sub_id}} if sub_id else None)
    return {
        "id": invoice_id, "object": "invoice", "customer": customer_id, "status": status,
        "currency": currency, "created": ts(created), "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else amount, "subtotal": amount,
        "total": amount, "attempt_count": 1, "billing_reason": "subscription_cycle",
        "parent": parent, "livemode": False,
        "status_transitions": {"finalized_at": ts(created),
                               "paid_at": ts(paid_at or created) if status == "paid" else None,
                               "voided_at": None, "marked_uncollectible_at": None},
    }


def line(line_id: str, invoice_id: str, sub_id: str, item_id: str, price_id: str, amount: int,
         period: tuple[str, str], quantity: int = 1, proration: bool = False,
         currency: str = "usd") -> dict:
    """A subscription invoice line in the current shape (`parent`, `pricing`)."""
    return {
        "id": line_id, "object": "line_item", "invoice": invoice_id, "amount": amount,
        "currency": currency, "quantity": quantity,
        "period": {"start": ts(period[0]), "end": ts(period[1])},
        "pricing": {"type": "price_details", "price_details": {"price": price_id}},
        "parent": {"type": "subscription_item_details", "subscription_item_details": {
            "subscription": sub_id, "subscription_item": item_id, "proration": proration}},
    }


def build_scenario(home: Path) -> None:
    """Writes the scenario's raw tables into `home`/warehouse.duckdb."""
    p_basic = price("price_basic", 2000)
    p_pro = price("price_pro", 6000)
    p_50 = price("price_50", 5000)
    p_year = price("price_year", 120000, interval="year")
    p_30 = price("price_30", 3000)
    p_40 = price("price_40", 4000)
    p_10 = price("price_10", 1000)
    p_100 = price("price_100", 10000)
    p_15 = price("price_15", 1500)
    p_eur = price("price_eur", 10000, currency="eur")
    p_jpy = price("price_jpy", 5000, currency="jpy")
    p_bhd = price("price_bhd", 10000, currency="bhd")
    p_metered = price("price_metered", 100, usage_type="metered")
    prices = [p_basic, p_pro, p_50, p_year, p_30, p_40, p_10, p_100, p_15, p_eur, p_jpy,
              p_bhd, p_metered]

    customers = [customer(f"cus_{name}", "2025-12-01") for name in (
        "monthly", "annual", "trial_converts", "trial_pending", "cancel_at_end", "upgrade",
        "eur", "jpy", "past_due", "unpaid", "coupon", "bhd", "deleted", "metered")]

    subs = [
        subscription("sub_monthly", "cus_monthly",
                     item("si_monthly", "sub_monthly", p_50, 2, "2026-06-01"), "2026-06-01"),
        subscription("sub_annual", "cus_annual",
                     item("si_annual", "sub_annual", p_year, 1, "2026-01-15",
                          ("2026-01-15", "2027-01-15")), "2026-01-15"),
        subscription("sub_trial_converts", "cus_trial_converts",
                     item("si_trial_converts", "sub_trial_converts", p_30, 1, "2026-11-01",
                          ("2026-11-15", "2026-12-15")), "2026-11-01",
                     trial_start=ts("2026-11-01"), trial_end=ts("2026-11-15")),
        subscription("sub_trial_pending", "cus_trial_pending",
                     item("si_trial_pending", "sub_trial_pending", p_30, 1, "2026-11-10"),
                     "2026-11-10", status="trialing",
                     trial_start=ts("2026-11-10"), trial_end=ts("2026-12-10")),
        subscription("sub_cancel_at_end", "cus_cancel_at_end",
                     item("si_cancel_at_end", "sub_cancel_at_end", p_40, 1, "2026-03-01"),
                     "2026-03-01", canceled_at=ts("2026-11-10T09:00:00"),
                     cancel_at_period_end=True, cancel_at=ts("2026-12-01")),
        subscription("sub_upgrade", "cus_upgrade",
                     item("si_upgrade", "sub_upgrade", p_pro, 1, "2026-05-25",
                          ("2026-10-25", "2026-11-25")), "2026-05-25"),
        _old_shape_subscription(p_eur),
        subscription("sub_jpy", "cus_jpy", item("si_jpy", "sub_jpy", p_jpy, 1, "2026-04-01"),
                     "2026-04-01", currency="jpy"),
        subscription("sub_past_due", "cus_past_due",
                     item("si_past_due", "sub_past_due", p_10, 1, "2026-02-01"), "2026-02-01",
                     status="past_due"),
        subscription("sub_unpaid", "cus_unpaid",
                     item("si_unpaid", "sub_unpaid", p_15, 1, "2026-02-01"), "2026-02-01",
                     status="unpaid"),
        subscription("sub_coupon", "cus_coupon",
                     item("si_coupon", "sub_coupon", p_100, 1, "2026-07-01"), "2026-07-01",
                     discounts=[{"id": "di_coupon", "object": "discount",
                                 "start": ts("2026-07-01"), "end": None,
                                 "source": {"type": "coupon", "coupon": "coupon_20_forever"}}]),
        subscription("sub_bhd", "cus_bhd", item("si_bhd", "sub_bhd", p_bhd, 1, "2026-04-01"),
                     "2026-04-01", currency="bhd"),
        subscription("sub_metered", "cus_metered",
                     item("si_metered", "sub_metered", p_metered, 1, "2026-04-01"),
                     "2026-04-01"),
    ]
    items = [sub["items"]["data"][0] for sub in subs]
    coupons = [{"id": "coupon_20_forever", "object": "coupon", "created": ts("2026-01-01"),
                "duration": "forever", "percent_off": 20.0, "amount_off": None,
                "currency": None, "duration_in_months": None}]

    invoices = [
        invoice("in_monthly_nov", "cus_monthly", "sub_monthly", 10000, "2026-11-20"),
        invoice("in_upgrade_oct", "cus_upgrade", "sub_upgrade", 2000, "2026-10-25"),
        invoice("in_upgrade_prorate", "cus_upgrade", "sub_upgrade", 2667, "2026-11-09"),
        invoice("in_past_due", "cus_past_due", "sub_past_due", 1000, "2026-11-15",
                status="open"),
    ]
    lines = [
        line("il_upgrade_oct", "in_upgrade_oct", "sub_upgrade", "si_upgrade", "price_basic",
             2000, ("2026-10-25", "2026-11-25")),
        line("il_upgrade_credit", "in_upgrade_prorate", "sub_upgrade", "si_upgrade",
             "price_basic", -1067, ("2026-11-09", "2026-11-25"), proration=True),
        line("il_upgrade_new", "in_upgrade_prorate", "sub_upgrade", "si_upgrade", "price_pro",
             3200, ("2026-11-09", "2026-11-25"), proration=True),
        line("il_monthly_nov", "in_monthly_nov", "sub_monthly", "si_monthly", "price_50",
             10000, ("2026-11-01", "2026-12-01"), quantity=2),
    ]
    charges = [
        {"id": "ch_invoice", "object": "charge", "customer": "cus_monthly", "amount": 10000,
         "amount_captured": 10000, "currency": "usd", "status": "succeeded", "captured": True,
         "created": ts("2026-11-20T00:00:05")},
        {"id": "ch_standalone", "object": "charge", "customer": "cus_annual", "amount": 2500,
         "amount_captured": 2500, "currency": "usd", "status": "succeeded", "captured": True,
         "created": ts("2026-11-20T10:00:00")},
        {"id": "ch_failed", "object": "charge", "customer": "cus_past_due", "amount": 1000,
         "amount_captured": 0, "currency": "usd", "status": "failed", "captured": False,
         "failure_code": "card_declined", "created": ts("2026-11-21T08:00:00")},
    ]
    refunds = [{"id": "re_1", "object": "refund", "charge": "ch_standalone", "amount": 1000,
                "currency": "usd", "status": "succeeded", "created": ts("2026-11-20T12:00:00")}]
    events = [
        {"id": "evt_deleted", "object": "event", "type": "customer.deleted",
         "created": ts("2026-11-01T10:00:00"),
         "data": {"object": {"id": "cus_deleted", "object": "customer", "deleted": True}}},
        # sub_unpaid went from past_due to unpaid on Nov 20: counted until then
        {"id": "evt_unpaid", "object": "event", "type": "customer.subscription.updated",
         "created": ts("2026-11-20T06:00:00"),
         "data": {"object": {"id": "sub_unpaid", "object": "subscription", "status": "unpaid"},
                  "previous_attributes": {"status": "past_due"}}},
    ]

    con = raw_tables.connect(home / "warehouse.duckdb")
    try:
        raw_tables.create_raw_tables(con)
        for table, objects in (
            ("prices", prices), ("customers", customers), ("subscriptions", subs),
            ("subscription_items", items), ("coupons", coupons), ("invoices", invoices),
            ("invoice_lines", lines), ("charges", charges), ("refunds", refunds),
            ("events", events),
        ):
            raw_tables.insert_objects(con, table, PROJECT_ID, objects, LAST_SYNC)
        raw_tables.insert_sync_run(con, PROJECT_ID, WINDOW_START, LAST_SYNC)
    finally:
        con.close()


def _old_shape_subscription(eur_price: dict) -> dict:
    """A subscription as read with a 2024 API version: period on the subscription, `discount`."""
    old_item = {"id": "si_eur", "object": "subscription_item", "subscription": "sub_eur",
                "price": eur_price, "quantity": 1, "created": ts("2026-03-01")}
    return {
        "id": "sub_eur", "object": "subscription", "customer": "cus_eur", "status": "active",
        "currency": "eur", "created": ts("2026-03-01"), "start_date": ts("2026-03-01"),
        "current_period_start": ts("2026-11-01"), "current_period_end": ts("2026-12-01"),
        "trial_start": None, "trial_end": None, "canceled_at": None, "ended_at": None,
        "cancel_at_period_end": False, "pause_collection": None, "discount": None,
        "items": {"object": "list", "data": [old_item], "has_more": False},
        "api_version": "2024-06-20",
    }
