"""Subscription shapes of issue 14 cases 5 and 8: $0 subscriptions that still count, and
cancellations scheduled with `cancel_at` whose `canceled_at` stays null."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.catalog import DAY
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company

METERED_ONLY_RATE = 0.03  # usage-based customers: one metered item, no licensed one
SCHEDULED_CANCELLATION_RATE = 0.03  # running subscriptions scheduled to cancel on a date


def subscribe_metered_only(company: Company, customer_id: str, at: int) -> Obj:
    """A subscription whose only item is the metered API price: MRR $0, still counted."""
    company.create_subscription(customer_id, company.price_by_key("api_usd_month")["id"], at)
    return company.subscriptions_of(customer_id)[-1]


def subscribe_fully_discounted(company: Company, customer_id: str, plan_key: str,
                               at: int) -> Obj:
    """A subscription to `plan_key` with the 100%-off forever coupon: MRR $0, still counted."""
    company.create_subscription(customer_id, company.price_by_key(plan_key)["id"], at)
    sub = company.subscriptions_of(customer_id)[-1]
    coupon = company.get("coupon", "FRIENDS100")
    applied = objects.discount(company.new_id("di"), coupon, customer_id, sub["id"], at, None)
    company.add("discount", applied)
    sub["discounts"] = [applied]
    company.emit("customer.subscription.updated", at, sub, {"discounts": []})
    company.touch("subscription")
    return sub


def schedule_cancellation(company: Company, sub_id: str, at: int, cancel_at: int,
                          emit_event: bool = True) -> Obj:
    """Schedule the subscription to cancel at `cancel_at`, requested at `at`, as API versions
    that leave `canceled_at` null do. `emit_event=False`: a change no kept event shows."""
    sub = company.get("subscription", sub_id)
    if sub is None:
        raise KeyError(f"no subscription {sub_id!r} in this company")
    previous = {"cancel_at": sub["cancel_at"]}
    sub.update(cancel_at=cancel_at, canceled_at=None)
    if emit_event:
        company.emit("customer.subscription.updated", at, sub, previous)
    company.touch("subscription")
    return sub


def add_zero_mrr_and_scheduled_shapes(company: Company, rng: random.Random) -> None:
    """The generator's share of these shapes: a few percent of customers get a metered-only
    subscription, a few percent of running subscriptions a dated cancellation (the request
    inside or before the 30-day event window, `canceled_at` null)."""
    # the metered price is in USD: a customer bills in one currency
    customers = [c for c in company.objects["customer"]
                 if not c.get("deleted") and c.get("currency") == "usd"]
    for cust in customers:
        if rng.random() < METERED_ONLY_RATE and cust["created"] < company.now - DAY:
            # recent enough that its first monthly period is the current one
            signed_up = rng.randint(max(cust["created"], company.now - 25 * DAY),
                                    company.now - DAY)
            subscribe_metered_only(company, cust["id"], signed_up)
    running = [s for s in company.objects["subscription"]
               if s["status"] in ("active", "past_due") and not s["canceled_at"]
               and not s["cancel_at"] and s["start_date"] < company.now - 2 * DAY]
    for sub in running:
        if rng.random() < SCHEDULED_CANCELLATION_RATE:
            requested = rng.randint(max(sub["start_date"], company.now - 60 * DAY),
                                    company.now - DAY)
            schedule_cancellation(company, sub["id"], requested,
                                  company.now + rng.randint(1, 60) * DAY)
