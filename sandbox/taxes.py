"""Sales tax of the synthetic company (issue 15, case 2): VAT rates, taxed invoice lines.

EU customers are charged VAT through tax rates (`/v1/tax_rates`), set as a subscription's
`default_tax_rates`. A rate is `inclusive` (the price already holds the tax, B2C: EUR 119 is
EUR 100 + 19 VAT) or exclusive (added on top: EUR 100 + 19 VAT = EUR 119 paid). Invoice lines
carry the tax in `taxes[]` (current API: `amount`, `taxable_amount`, `tax_behavior`,
`tax_rate_details.tax_rate`), computed after the line's discounts as Stripe does; the invoice
sums them in `total_taxes` and `total_excluding_tax`.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.catalog import DAY
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company

VAT_PERCENTAGE = 19  # Germany's standard rate
# Share of EUR customers that take one more subscription with VAT (half inclusive, half not).
VAT_SUBSCRIPTION_RATE = 0.4
INCLUSIVE_PLAN = "starter_eur_month_vat_incl"  # EUR 119 a month, VAT included
EXCLUSIVE_PLAN = "pro_eur_month"  # EUR 11 a seat, VAT added on top


def tax_rate(trid: str, percentage: int, inclusive: bool, created: int, livemode: bool) -> Obj:
    """A Stripe tax rate (German VAT), as `/v1/tax_rates` renders it."""
    return {"id": trid, "object": "tax_rate", "active": True, "country": "DE",
            "created": created, "description": "VAT Germany", "display_name": "VAT",
            "effective_percentage": percentage, "flat_amount": None, "inclusive": inclusive,
            "jurisdiction": "DE", "jurisdiction_level": "country", "livemode": livemode,
            "metadata": {}, "percentage": percentage, "rate_type": "percentage", "state": None,
            "tax_type": "vat"}


def _round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


def line_taxes(amount_after_discounts: int, rates: list[Obj]) -> list[Obj]:
    """The `taxes[]` of a line worth `amount_after_discounts` (minor units) under `rates`.

    Inclusive rates take their share out of the amount (119 at 19%: taxable 100, tax 19);
    exclusive ones add theirs on top (100 at 19%: taxable 100, tax 19).
    """
    inclusive = [r for r in rates if r["inclusive"]]
    share = sum((Fraction(r["percentage"]) for r in inclusive), Fraction(0))
    base = _round_half_up(Fraction(amount_after_discounts) * 100 / (100 + share))
    taxes = []
    for rate in rates:
        amount = _round_half_up(Fraction(base) * Fraction(rate["percentage"]) / 100)
        taxes.append({"amount": amount, "tax_behavior":
                      "inclusive" if rate["inclusive"] else "exclusive",
                      "tax_rate_details": {"tax_rate": rate["id"]},
                      "taxability_reason": "standard_rated", "taxable_amount": base,
                      "type": "tax_rate_details"})
    if inclusive:  # the inclusive taxes and the base add up to the amount exactly
        gap = amount_after_discounts - base - sum(
            t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
        next(t for t in taxes if t["tax_behavior"] == "inclusive")["amount"] += gap
    return taxes


def total_taxes(line_objs: list[Obj]) -> list[Obj]:
    """An invoice's `total_taxes`: its lines' taxes summed per tax rate."""
    totals: dict[str, Obj] = {}
    for line in line_objs:
        for tax in line["taxes"]:
            rate = tax["tax_rate_details"]["tax_rate"]
            total = totals.setdefault(rate, dict(tax, amount=0, taxable_amount=0))
            total["amount"] += tax["amount"]
            total["taxable_amount"] += tax["taxable_amount"]
    return list(totals.values())


def vat_rates(company: Company, at: int) -> tuple[Obj, Obj]:
    """The company's German VAT rates (inclusive, exclusive), created at `at` the first time."""
    rates = company.objects["tax_rate"]
    if not rates:
        for inclusive in (True, False):
            company.add("tax_rate", tax_rate(company.new_id("txr"), VAT_PERCENTAGE, inclusive,
                                             at, company.livemode))
    return rates[0], rates[1]


def new_eu_customer(company: Company, at: int) -> Obj:
    """A new customer in Germany billed in EUR, signed up at `at` (for scenarios)."""
    n = len(company.objects["customer"]) + 1
    cust = objects.customer(company.new_id("cus"), n, at, "eur", company.livemode, "DE")
    company.register_customer(cust, n)
    company.emit("customer.created", at, cust)
    return cust


def subscribe_with_vat(company: Company, customer_id: str, at: int, inclusive: bool,
                       quantity: int = 1) -> Obj:
    """A subscription with German VAT: EUR 119 VAT included, or `quantity` x EUR 11 + VAT."""
    included, excluded = vat_rates(company, at)
    plan = INCLUSIVE_PLAN if inclusive else EXCLUSIVE_PLAN
    company.create_subscription(customer_id, company.price_by_key(plan)["id"], at,
                                tax_rates=[included if inclusive else excluded],
                                quantity=quantity)
    return company.subscriptions_of(customer_id)[-1]


def add_vat_subscriptions(company: Company, rng: random.Random) -> None:
    """The generator's share of taxed subscriptions: some EUR customers take one more
    subscription with VAT at any moment of their life, renewed up to now
    (sandbox/renewals.py), half with a VAT-inclusive price, half with VAT on top."""
    from sandbox.renewals import renew_until_now  # renewals -> billing -> taxes
    customers = [c for c in company.objects["customer"]
                 if not c.get("deleted") and c.get("currency") == "eur"
                 and c["created"] < company.now - 2 * DAY]
    for cust in customers:
        if rng.random() < VAT_SUBSCRIPTION_RATE:
            at = rng.randint(cust["created"], company.now - DAY)
            renew_until_now(company, subscribe_with_vat(
                company, cust["id"], at, inclusive=rng.random() < 0.5,
                quantity=rng.randint(1, 5)))
