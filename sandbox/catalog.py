"""The synthetic company's fixed catalog: products, prices and coupons, plus billing arithmetic."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

DAY = 86_400

# Minor units per currency: Stripe amounts are integers in the smallest unit (JPY has none,
# KWD has three decimals).
CURRENCY_EXPONENT = {"usd": 2, "eur": 2, "gbp": 2, "jpy": 0, "kwd": 3}

# A price tier: (up_to, unit_amount, flat_amount); up_to None is the last, unbounded tier.
Tier = tuple[int | None, int, int]


@dataclass(frozen=True)
class PlanSpec:
    """A price of the catalog, described before it is rendered as a Stripe price."""

    key: str
    product: str
    currency: str
    unit_amount: int | None
    interval: str | None  # None for one-time prices
    interval_count: int = 1
    usage_type: str = "licensed"
    billing_scheme: str = "per_unit"
    tiers: tuple[Tier, ...] = ()
    tiers_mode: str = "graduated"  # or "volume": the tier the whole quantity falls in
    # package pricing: (divide_by, round), e.g. (5, "up"): $10 per 5 seats, 12 seats -> 3 packs
    transform_quantity: tuple[int, str] | None = None
    # other currencies the price is sold in (Stripe's `currency_options`): currency -> unit_amount
    currency_options: tuple[tuple[str, int], ...] = ()
    tax_behavior: str = "exclusive"  # "inclusive": the unit amount already holds the tax


PRODUCTS = {
    "starter": "Starter",
    "pro": "Pro (per seat)",
    "enterprise": "Enterprise (tiered seats)",
    "api": "API usage",
    "support": "Priority support add-on",
    "setup": "Onboarding package",
    **{f"module{n}": f"Module {n} add-on" for n in range(1, 13)},
    # issue 14 case 6 and issue 15 case 3 (sandbox/pricing_shapes.py)
    "seatpack": "Seat packs (per 5 seats)",
    "team": "Team (graduated tiers with a flat first tier)",
    "platform": "Platform (volume tiers with flat fees)",
    "global": "Global (priced in several currencies)",
}

PLANS: tuple[PlanSpec, ...] = (
    PlanSpec("starter_usd_month", "starter", "usd", 1900, "month"),
    PlanSpec("starter_usd_year", "starter", "usd", 19000, "year"),
    PlanSpec("starter_usd_week", "starter", "usd", 500, "week"),
    PlanSpec("starter_usd_quarter", "starter", "usd", 5400, "month", 3),
    PlanSpec("starter_eur_month", "starter", "eur", 1700, "month"),
    PlanSpec("starter_gbp_month", "starter", "gbp", 1500, "month"),
    PlanSpec("starter_jpy_month", "starter", "jpy", 2500, "month"),
    PlanSpec("starter_kwd_month", "starter", "kwd", 6500, "month"),
    PlanSpec("pro_usd_month", "pro", "usd", 1200, "month"),
    PlanSpec("pro_usd_year", "pro", "usd", 12000, "year"),
    PlanSpec("pro_eur_month", "pro", "eur", 1100, "month"),
    PlanSpec("pro_gbp_year", "pro", "gbp", 9000, "year"),
    PlanSpec("pro_jpy_month", "pro", "jpy", 1500, "month"),
    PlanSpec(
        "enterprise_usd_month", "enterprise", "usd", None, "month",
        billing_scheme="tiered", tiers=((10, 5000, 0), (None, 4000, 0)),
    ),
    PlanSpec("api_usd_month", "api", "usd", 2, "month", usage_type="metered"),
    PlanSpec("support_usd_month", "support", "usd", 900, "month"),
    PlanSpec("support_usd_year", "support", "usd", 9000, "year"),
    PlanSpec("support_eur_month", "support", "eur", 800, "month"),
    PlanSpec("setup_usd_once", "setup", "usd", 50000, None),
    PlanSpec("setup_eur_once", "setup", "eur", 45000, None),
    *(PlanSpec(f"module{n}_usd_month", f"module{n}", "usd", 300 + 100 * n, "month")
      for n in range(1, 13)),
    # $10 per pack of 5 seats, a started pack is billed whole: 12 seats -> 3 packs -> $30
    PlanSpec("seatpack_usd_month", "seatpack", "usd", 1000, "month",
             transform_quantity=(5, "up")),
    # $100 a year per full pack of 10 seats (a started pack is free): 25 seats -> 2 packs
    PlanSpec("seatpack_usd_year", "seatpack", "usd", 10000, "year",
             transform_quantity=(10, "down")),
    # first 5 seats $49 flat, seats 6-20 $9 each, seats beyond 20 $7 each
    PlanSpec("team_usd_month", "team", "usd", None, "month", billing_scheme="tiered",
             tiers=((5, 0, 4900), (20, 900, 0), (None, 700, 0))),
    # the whole quantity at its tier's price: up to 10 units $8 + $20, up to 50 $6 + $40,
    # beyond $5
    PlanSpec("platform_usd_month", "platform", "usd", None, "month", billing_scheme="tiered",
             tiers_mode="volume", tiers=((10, 800, 2000), (50, 600, 4000), (None, 500, 0))),
    # $29 a month, sold at EUR 27 and INR 1,999 (currency_options)
    PlanSpec("global_usd_month", "global", "usd", 2900, "month",
             currency_options=(("eur", 2700), ("inr", 199900))),
    # after the others, so that adding it moved no other price's id (sandbox/taxes.py uses it)
    PlanSpec("starter_eur_month_vat_incl", "starter", "eur", 11900, "month",
             tax_behavior="inclusive"),
)

# Base plans a new customer may pick, by currency: (plan key, weight).
BASE_PLANS = {
    "usd": (("starter_usd_month", 30), ("starter_usd_year", 10), ("starter_usd_week", 3),
            ("starter_usd_quarter", 4), ("pro_usd_month", 25), ("pro_usd_year", 8),
            ("enterprise_usd_month", 4)),
    "eur": (("starter_eur_month", 5), ("pro_eur_month", 4)),
    "gbp": (("starter_gbp_month", 3), ("pro_gbp_year", 2)),
    "jpy": (("starter_jpy_month", 2), ("pro_jpy_month", 1)),
    "kwd": (("starter_kwd_month", 1),),
}
CURRENCY_WEIGHTS = (("usd", 74), ("eur", 12), ("gbp", 8), ("jpy", 5), ("kwd", 1))
ADD_ONS = {("usd", "month"): "support_usd_month", ("usd", "year"): "support_usd_year",
           ("eur", "month"): "support_eur_month"}
ONE_TIME = {"usd": "setup_usd_once", "eur": "setup_eur_once"}


@dataclass(frozen=True)
class CouponSpec:
    """A coupon of the catalog."""

    id: str
    name: str
    duration: str
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration_in_months: int | None = None


COUPONS: tuple[CouponSpec, ...] = (
    CouponSpec("FOREVER20", "20% forever", "forever", percent_off=20.0),
    CouponSpec("LAUNCH25", "25% for 3 months", "repeating", percent_off=25.0, duration_in_months=3),
    CouponSpec("WELCOME10", "$10 off first invoice", "once", amount_off=1000, currency="usd"),
    CouponSpec("HALFOFF", "50% off first invoice", "once", percent_off=50.0),
    CouponSpec("SAVE5", "$5 off for 6 months", "repeating", amount_off=500, currency="usd",
               duration_in_months=6),
    CouponSpec("FRIENDS100", "100% off forever", "forever", percent_off=100.0),
)
COUPON_WEIGHTS = (("FOREVER20", 3), ("LAUNCH25", 4), ("WELCOME10", 3), ("HALFOFF", 2),
                  ("SAVE5", 2), ("FRIENDS100", 1))


def add_months(ts: int, months: int) -> int:
    """`ts` moved by whole calendar months, keeping the day (clamped to the month's end)."""
    d = datetime.fromtimestamp(ts, UTC)
    total = d.month - 1 + months
    year, month = d.year + total // 12, total % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def period_end(start: int, interval: str, interval_count: int) -> int:
    """End of the billing period that starts at `start`."""
    if interval == "week":
        return start + 7 * DAY * interval_count
    if interval == "day":
        return start + DAY * interval_count
    months = interval_count * (12 if interval == "year" else 1)
    return add_months(start, months)


def line_amount(plan: PlanSpec, quantity: int, currency: str | None = None) -> int:
    """Amount of one billing period of `plan` at `quantity`, in `currency` (default: the plan's;
    another one is priced from its currency option): per unit, per package (the quantity
    divided and rounded as the plan says), or tiered (graduated: each tier's units at its price
    plus the flat fee of every tier reached; volume: the whole quantity at the price of the
    tier it falls in, plus that tier's flat fee)."""
    unit_amount = plan.unit_amount
    if currency is not None and currency != plan.currency:
        unit_amount = dict(plan.currency_options)[currency]
    if plan.billing_scheme != "tiered":
        if plan.transform_quantity is not None:
            divide_by, rounding = plan.transform_quantity
            packs, rest = divmod(quantity, divide_by)
            quantity = packs + (1 if rest and rounding == "up" else 0)
        return (unit_amount or 0) * quantity
    if plan.tiers_mode == "volume":
        for up_to, unit, flat in plan.tiers:
            if up_to is None or quantity <= up_to:
                return quantity * unit + flat
    total, floor = 0, 0
    for up_to, unit, flat in plan.tiers:
        top = quantity if up_to is None else min(quantity, up_to)
        if top > floor:
            total += (top - floor) * unit + flat
            floor = top
    return total
