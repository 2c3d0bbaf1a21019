"""Mid-period seat changes of a subscription item, with and without prorations (issue 14 case 2).

Stripe's `POST /v1/subscription_items/{id}` with a new `quantity` in the middle of a billing
period, as a mutation of the company object (the sandbox API itself stays read-only):
- the item's `quantity` changes at once; `customer.subscription.updated` carries the whole
  previous item list in `previous_attributes.items` (as Stripe sends it);
- `proration_behavior=none`: nothing is invoiced for the rest of the period, the next
  renewal invoices the new quantity;
- `proration_behavior=create_prorations`: two pending invoice items (unused time on the old
  quantity, remaining time on the new one, both with `period` = [change, period end)) wait
  for the next invoice, where they become proration lines. Until then no invoice shows the
  change (the sandbox keeps them in `Company.pending_prorations`).
"""

from __future__ import annotations

import copy
import random
from typing import TYPE_CHECKING

from sandbox.billing import Line
from sandbox.catalog import line_amount
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company

# share of running subscriptions whose seat count changes during their current period
MID_PERIOD_SEAT_CHANGE_RATE = 0.04
PRORATED_SHARE = 0.5  # of those changes, the ones made with proration_behavior=create_prorations


def change_seats(co: Company, sub: Obj, item: Obj, quantity: int, at: int,
                 prorate: bool) -> tuple[Obj, list[Line]]:
    """Set the item's quantity at `at`; returns the new item and its pending proration lines.

    The item is replaced, not mutated: snapshots taken earlier (events) keep the old quantity.
    """
    old = item["quantity"] or 0
    previous = copy.deepcopy(sub["items"])
    new_item = dict(item, quantity=quantity)
    sub["items"] = dict(sub["items"], data=[new_item if i is item else i
                                            for i in sub["items"]["data"]])
    replace_item(co, item, new_item)
    co.emit("customer.subscription.updated", at, sub, {"items": previous},
            items=copy.deepcopy(sub["items"]))
    co.touch("subscription", "subscription_item")
    if not prorate:
        return new_item, []
    start, end = item["current_period_start"], item["current_period_end"]
    share = max(0.0, (end - at) / (end - start)) if end > start else 0.0
    spec = co.plan(item["price"]["lookup_key"])
    pending = [
        Line(new_item["price"], old, -round(line_amount(spec, old) * share), (at, end),
             new_item["id"], proration=True, description=f"Unused time on {old} seats"),
        Line(new_item["price"], quantity, round(line_amount(spec, quantity) * share), (at, end),
             new_item["id"], proration=True, description=f"Remaining time on {quantity} seats"),
    ]
    co.pending_prorations.setdefault(sub["id"], []).extend(pending)
    return new_item, pending


def replace_item(co: Company, old: Obj, new: Obj) -> None:
    """Put `new` in the company where `old` was (list position and lookup by id)."""
    items = co.objects["subscription_item"]
    # the item is among the newest: search from the end
    for index in range(len(items) - 1, -1, -1):
        if items[index] is old:
            items[index] = new
            break
    co._by_id["subscription_item"][old["id"]] = new


def maybe_change_seats_mid_period(co: Company, rng: random.Random, sub: Obj,
                                  items: list[tuple[Obj, int | None]], start: int) -> None:
    """For a few subscriptions running today: the base item's seats change during the current
    period (after `start`, before now), prorated or not. The simulator's `items` follow."""
    if not items or sub["status"] != "active" or rng.random() >= MID_PERIOD_SEAT_CHANGE_RATE:
        return
    item, quantity = items[0]
    if quantity is None or item["price"]["lookup_key"].startswith("starter"):
        return
    if item not in sub["items"]["data"] or co.now - start < 2:
        return
    at = rng.randint(start + 1, co.now - 1)
    new_quantity = max(1, quantity + rng.choice((-3, -2, -1, 1, 2, 3, 5)))
    if new_quantity == quantity:
        return
    new_item, _ = change_seats(co, sub, item, new_quantity, at, rng.random() < PRORATED_SHARE)
    items[0] = (new_item, new_quantity)
