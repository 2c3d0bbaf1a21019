"""`verify`'s valuation of a subscription now, from its prices (docs/metrics-spec.md, "Monthly
amount of a counted subscription"), independent of dbt.

Each licensed item is what Stripe would invoice for one interval at its quantity, in the
subscription's currency (the price's `currency_options.<currency>` when the price's default
currency is another one): per unit, package (`transform_quantity`), graduated or volume
tiers; normalised to a month and rounded to a millionth; less the item's own recurring
discounts (never below zero). The subscription's recurring discounts then apply to what the
items leave. Prices must be read with `tiers` and `currency_options` expanded (Stripe returns
neither otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MICRO = Decimal("0.000001")
# units of 1/4745 month per interval (the warehouse's `interval_units`): exact month fractions
INTERVAL_UNITS = {"month": 4745, "year": 56940, "week": 1095, "day": 156}
MONTH_UNITS = INTERVAL_UNITS["month"]
Obj = dict[str, Any]


class PriceCannotSay(ValueError):
    """The price does not hold what values the item (no tiers, no option for the currency)."""


def round_money(value: Decimal) -> Decimal:
    """Six decimals, half away from zero (the warehouse's one rounding rule)."""
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def terms_in(price: Obj, currency: str) -> Obj:
    """The price's terms in `currency` (lower case): its own, or its currency option."""
    if price["currency"] == currency:
        return price
    option = (price.get("currency_options") or {}).get(currency)
    if option is None:
        raise PriceCannotSay(f"price {price['id']} has no currency option {currency}")
    return option


def is_tax_inclusive(price: Obj, currency: str, tax_rates: Iterable[Obj]) -> bool:
    """The spec's test: the price's (or option's) tax behavior is inclusive, or it holds an
    inclusive tax rate on a price of unspecified behavior."""
    behavior = terms_in(price, currency).get("tax_behavior") or price.get("tax_behavior")
    if behavior == "inclusive":
        return True
    return behavior in (None, "unspecified") and any(r.get("inclusive") for r in tax_rates)


def inclusive_percentage(tax_rates: Iterable[Obj]) -> Decimal:
    """The percentage of inclusive tax the rates put into an amount (0 without such a rate)."""
    return sum((Decimal(str(r["percentage"])) for r in tax_rates if r.get("inclusive")),
               Decimal(0))


def item_interval_amount(price: Obj, quantity: int, currency: str) -> Decimal:
    """One billing interval of a licensed item at `quantity`, in minor units of `currency`."""
    if quantity <= 0:
        return Decimal(0)  # a tier's flat fee is charged only once the quantity reaches it
    terms = terms_in(price, currency)
    if price["billing_scheme"] == "per_unit":
        package = price.get("transform_quantity")
        if package:
            whole, rest = divmod(quantity, package["divide_by"])
            quantity = whole + (1 if rest and package["round"] == "up" else 0)
        return _unit(terms) * quantity
    tiers = terms.get("tiers")
    if not tiers:
        raise PriceCannotSay(f"price {price['id']} is tiered but its tiers were not read")
    if price.get("tiers_mode") == "volume":
        floor = 0
        for tier in tiers:
            if tier["up_to"] is None or quantity <= tier["up_to"]:
                return _unit(tier) * quantity + Decimal(tier.get("flat_amount") or 0)
            floor = tier["up_to"]
        raise PriceCannotSay(f"price {price['id']}: {quantity} units above its last tier {floor}")
    total, floor = Decimal(0), 0
    for tier in tiers:  # graduated
        ceiling = tier["up_to"] if tier["up_to"] is not None else quantity
        units = max(0, min(quantity, ceiling) - floor)
        if units:
            total += _unit(tier) * units + Decimal(tier.get("flat_amount") or 0)
        floor = ceiling
        if floor >= quantity:
            break
    return total


def _unit(terms: Obj) -> Decimal:
    exact = terms.get("unit_amount_decimal")
    return Decimal(str(exact)) if exact is not None else Decimal(terms.get("unit_amount") or 0)


def monthly(amount: Decimal, interval_units: int) -> Decimal:
    return round_money(amount * MONTH_UNITS / interval_units)


def recurring_off(monthly_amount: Decimal, coupon: Obj, interval_units: int, currency: str,
                  major_of: Any) -> Decimal:
    """What a running recurring coupon takes off a month's amount: percent_off of it,
    amount_off (in the same currency only) spread over the billing interval."""
    off = Decimal(0)
    if coupon.get("percent_off"):
        off += round_money(monthly_amount * Decimal(str(coupon["percent_off"])) / 100)
    if coupon.get("amount_off") and (coupon.get("currency") or "").lower() == currency:
        off += monthly(major_of(coupon["amount_off"]), interval_units)
    return off


def is_running(discount: Obj, coupon: Obj | None, now: int) -> bool:
    """A discount that recurs and is in force now (`once` coupons never enter MRR)."""
    if coupon is None or coupon["duration"] == "once":
        return False
    if (discount.get("start") or 0) > now:
        return False
    return not (discount.get("end") and discount["end"] <= now)
