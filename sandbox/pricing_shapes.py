"""Subscriptions valued from richer prices (issue 14 case 6 and the rest of case 7, issue 15
case 3): package prices (`transform_quantity`), graduated and volume tiers with flat fees,
discounts on one item only (`subscription_item.discounts`), and subscriptions billed in
another currency than their price's default one (`currency_options`).

Added after the rest of the history, from their own random stream, so every object the
generator made before keeps its id and its numbers.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import DAY, add_months, line_amount, period_end
from sandbox.discount_changes import renew_changing_item_discount
from sandbox.objects import Obj
from sandbox.renewals import renew_until_now

if TYPE_CHECKING:
    from sandbox.company import Company

# shares of the live customers who also take such a subscription (billed in their currency)
PACKAGE_RATE = 0.03
GRADUATED_RATE = 0.02
VOLUME_RATE = 0.02
ITEM_DISCOUNT_RATE = 0.03
CURRENCY_OPTION_RATE = 0.15  # of EUR customers, on the price whose default is USD
INR_CUSTOMERS_PER_HUNDRED = 2  # new customers billed in INR on that same price
ITEM_COUPONS = ("LAUNCH25", "SAVE5", "FRIENDS100")


def subscribe_priced(company: Company, customer_id: str, items: list[tuple[str, int]], at: int,
                     currency: str | None = None, item_coupons: dict[int, str] | None = None,
                     coupon: str | None = None) -> Obj:
    """Subscribe the customer at `at` to (price lookup key, quantity) items, billed in
    `currency` (default: the first price's; another one is priced from the price's
    `currency_options`), with `item_coupons` {item index: coupon id} discounting that item
    only and `coupon` the whole subscription; the first period is invoiced and paid at once.
    Returns the subscription."""
    customer = company.get("customer", customer_id)
    if customer is None or customer.get("deleted"):
        raise KeyError(f"no customer {customer_id!r} in this company")
    prices = [company.price_by_key(key) for key, _ in items]
    currency = currency or prices[0]["currency"]
    recurring = prices[0]["recurring"]
    end = period_end(at, recurring["interval"], recurring["interval_count"])
    sub = objects.subscription(company.new_id("sub"), customer_id, currency, at,
                               company.livemode)
    created = [objects.subscription_item(company.new_id("si"), sub["id"], price, quantity, at,
                                         at, end)
               for price, (_, quantity) in zip(prices, items, strict=True)]
    discounts = []
    for index, coupon_id in (item_coupons or {}).items():
        terms = company.get("coupon", coupon_id)
        months = terms["duration_in_months"]
        applied = objects.discount(company.new_id("di"), terms, customer_id, sub["id"], at,
                                   add_months(at, months) if months else None,
                                   subscription_item=created[index]["id"])
        company.add("discount", applied)
        created[index]["discounts"] = [applied]
        discounts.append(applied)
    if coupon is not None:
        terms = company.get("coupon", coupon)
        months = terms["duration_in_months"]
        applied = objects.discount(company.new_id("di"), terms, customer_id, sub["id"], at,
                                   add_months(at, months) if months else None)
        company.add("discount", applied)
        sub["discounts"] = [applied]
        discounts.append(applied)
    sub["items"] = objects.empty_list(sub["items"]["url"], created)
    for item in created:
        company.add("subscription_item", item)
    company.add("subscription", sub)
    company.emit("customer.subscription.created", at, sub)
    lines = [Line(item["price"], item["quantity"],
                  line_amount(company.plan(key), quantity, currency), (at, end), item["id"])
             for item, (key, quantity) in zip(created, items, strict=True)]
    invoice = create_invoice(company, customer_id, currency, at, "subscription_create",
                             sub["id"], lines, discounts, Collection([Attempt(at)]))
    sub["latest_invoice"] = invoice["id"]
    company.touch("subscription")
    return sub


def new_customer(company: Company, currency: str, at: int, country: str | None = "US") -> Obj:
    """A new customer billing in `currency` from `country` (None: no address), signed up at
    `at`."""
    number = len(company.objects["customer"]) + 1
    customer = objects.customer(company.new_id("cus"), number, at, currency, company.livemode,
                                country)
    company.register_customer(customer, number)
    company.emit("customer.created", at, customer)
    return customer


def add_pricing_shapes(company: Company, rng: random.Random) -> None:
    """The generator's share of these shapes, each a subscription started at any moment of its
    customer's life (new INR customers: of the company's), renewed up to now
    (sandbox/renewals.py), so that they do not all count as new MRR in the last month."""
    now = company.now
    live = [c for c in company.objects["customer"]
            if not c.get("deleted") and c["created"] < now - DAY]

    # the item discounts' removals and replacements draw from their own stream
    changes = random.Random(f"item-discount-changes:{now}")

    def subscribe(customer: Obj, items: list[tuple[str, int]], **terms: object) -> None:
        at = rng.randint(customer["created"], now - DAY)
        sub = subscribe_priced(company, customer["id"], items, at, **terms)
        if terms.get("item_coupons"):
            renew_changing_item_discount(company, changes, sub)
        else:
            renew_until_now(company, sub)

    for customer in live:
        if customer.get("currency") == "eur":
            if rng.random() < CURRENCY_OPTION_RATE:
                subscribe(customer, [("global_usd_month", 1)], currency="eur")
            continue
        if customer.get("currency") != "usd":
            continue
        roll = rng.random()
        if roll < PACKAGE_RATE:
            plan = "seatpack_usd_month" if rng.random() < 0.8 else "seatpack_usd_year"
            subscribe(customer, [(plan, rng.randint(3, 40))])
        elif roll < PACKAGE_RATE + GRADUATED_RATE:
            subscribe(customer, [("team_usd_month", rng.randint(2, 30))])
        elif roll < PACKAGE_RATE + GRADUATED_RATE + VOLUME_RATE:
            subscribe(customer, [("platform_usd_month", rng.randint(1, 80))])
        elif roll < PACKAGE_RATE + GRADUATED_RATE + VOLUME_RATE + ITEM_DISCOUNT_RATE:
            subscribe(customer, [("pro_usd_month", rng.randint(1, 20)), ("support_usd_month", 1)],
                      item_coupons={rng.randint(0, 1): rng.choice(ITEM_COUPONS)})
    # at least one in any company with customers; none in an empty one (a scenario's own)
    first_signup = min((c["created"] for c in live), default=now - DAY)
    for _ in range(-(-len(live) * INR_CUSTOMERS_PER_HUNDRED // 100)):
        customer = new_customer(company, "inr", rng.randint(first_signup, now - DAY), "IN")
        subscribe(customer, [("global_usd_month", 1)], currency="inr")
