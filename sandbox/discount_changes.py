"""Discounts removed or replaced during a subscription's life (issue 14 case 7).

Customers renegotiate: a promotion is swapped for another or taken off in the middle of a
period (Stripe's `POST /v1/subscriptions/{id}` with new `discounts`, or an item's), without
proration: `customer.subscription.updated` lists the removed discounts in
`previous_attributes` (`discounts`, or the item list for an item's own), and the next invoice
applies the new terms. The generator does it now and then over the life of the discounted
subscriptions, from random streams of its own (everything else it generates stays as it was):
- the history's subscription discounts (sandbox/history.py), in any billing period;
- the item-discount shapes (sandbox/pricing_shapes.py), at any moment since they started, with
  the renewals before and after the change (sandbox/renewals.py).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.catalog import add_months
from sandbox.objects import Obj
from sandbox.renewals import renew_until_now

if TYPE_CHECKING:
    from sandbox.company import Company

# per billing period of a subscription whose recurring discount is in force
SUBSCRIPTION_DISCOUNT_CHANGE_RATE = 0.02
ITEM_DISCOUNT_CHANGE_RATE = 0.4  # of the item-discount shapes, once in their life
REPLACED_SHARE = 0.5  # of the changes, a replacement by another coupon (else a removal)
# never FOREVER20: its promotion ends with its last redemption (sandbox/retired_coupons.py)
REPLACEMENT_COUPONS = ("LAUNCH25", "SAVE5")


def _replacement(co: Company, rng: random.Random) -> Obj | None:
    """The coupon a change puts in place (None: the discount is just removed)."""
    if rng.random() >= REPLACED_SHARE:
        return None
    return co.get("coupon", rng.choice(REPLACEMENT_COUPONS))


def maybe_change_discount(co: Company, rng: random.Random, sub: Obj, discount: Obj | None,
                          start: int, end: int) -> Obj | None:
    """Now and then remove the subscription's recurring discount in force, or replace it by
    another coupon's, at a moment of the period [start, end) before now; returns the discount
    in force afterwards (`discount` itself when nothing changed)."""
    if discount is None or sub["discounts"] != [discount]:
        return discount  # none in force (a `once` coupon is not kept on the subscription)
    if rng.random() >= SUBSCRIPTION_DISCOUNT_CHANGE_RATE:
        return discount
    last = min(end, co.now, discount["end"] or end) - 1
    if last <= start + 1:
        return discount
    at = rng.randint(start + 1, last)
    terms = _replacement(co, rng)
    replacement = None
    if terms is not None and terms["currency"] in (None, sub["currency"]):
        months = terms["duration_in_months"]
        replacement = objects.discount(co.new_id("di"), terms, sub["customer"], sub["id"], at,
                                       add_months(at, months) if months else None)
        co.add("discount", replacement)
    previous = {"discounts": list(sub["discounts"])}
    co.discount_changes.append({"subscription": sub["id"], "item": None, "at": at,
                                "removed": previous["discounts"]})
    sub["discounts"] = [replacement] if replacement else []
    co.emit("customer.subscription.updated", at, sub, previous)
    return replacement


def renew_changing_item_discount(co: Company, rng: random.Random, sub: Obj) -> None:
    """Renew the item-discount shape `sub` up to now; for a share of them, its item's own
    discount is removed or replaced at a moment before its natural end, mid-period."""
    discounted = next(i for i in sub["items"]["data"] if i.get("discounts"))
    discount_end = discounted["discounts"][0]["end"] or co.now
    last = min(co.now, discount_end) - 1
    if rng.random() >= ITEM_DISCOUNT_CHANGE_RATE or last <= sub["start_date"] + 1:
        renew_until_now(co, sub)
        return
    at = rng.randint(sub["start_date"] + 1, last)
    renew_until_now(co, sub, until=at)
    terms = _replacement(co, rng)
    co.replace_item_discounts(sub["id"], discounted["id"], at,
                              terms["id"] if terms is not None else None)
    renew_until_now(co, sub)
