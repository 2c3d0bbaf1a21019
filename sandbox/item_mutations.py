"""Subscription item changes of a `Company` (several items, removing one), with their events.

Stripe's `DELETE /v1/subscription_items/{id}` (or `items[][deleted]=true` on a subscription
update) as a mutation of the company object: the sandbox API itself stays read-only.
"""

from __future__ import annotations

import copy
import random
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import add_months, line_amount, period_end
from sandbox.objects import Obj
from sandbox.seat_changes import change_seats, replace_item

if TYPE_CHECKING:
    from sandbox.company import Company


class ItemMutations:
    """Mutations of a `Company`'s subscription items: each returns the events it emitted."""

    def create_subscription_with_items(self: Company, customer_id: str,
                                       items: list[tuple[str, int]], at: int) -> list[Obj]:
        """Subscribe the customer to several (price id, quantity) items at `at`, paid at once."""
        cust = self._require("customer", customer_id)
        prices = [self._require("price", price_id) for price_id, _ in items]
        mark = len(self.objects["event"])
        recurring = prices[0]["recurring"]
        end = period_end(at, recurring["interval"], recurring["interval_count"])
        sub = objects.subscription(self.new_id("sub"), customer_id, prices[0]["currency"], at,
                                   self.livemode)
        created = [objects.subscription_item(self.new_id("si"), sub["id"], price, quantity,
                                             at, at, end)
                   for price, (_, quantity) in zip(prices, items, strict=True)]
        sub["items"] = objects.empty_list(sub["items"]["url"], created)
        for item in created:
            self.add("subscription_item", item)
        self.add("subscription", sub)
        self.emit("customer.subscription.created", at, sub)
        lines = [Line(item["price"], item["quantity"],
                      line_amount(self.plan(item["price"]["lookup_key"]), item["quantity"]),
                      (at, end), item["id"]) for item in created]
        inv = create_invoice(self, cust["id"], sub["currency"], at, "subscription_create",
                             sub["id"], lines, [], Collection([Attempt(at)]))
        sub["latest_invoice"] = inv["id"]
        self.touch("subscription")
        return self._events_since(mark)

    def remove_subscription_item(self: Company, sub_id: str, item_id: str, at: int) -> list[Obj]:
        """Delete one item of the subscription at `at` (`proration_behavior=none`).

        As Stripe: the item is gone from the subscription's `items` and from the API (404), and
        `customer.subscription.updated` carries the whole previous item list in
        `previous_attributes.items`.
        """
        sub = self._require("subscription", sub_id)
        item = self._require("subscription_item", item_id)
        if item not in sub["items"]["data"]:
            raise KeyError(f"subscription item {item_id!r} is not on {sub_id!r}")
        mark = len(self.objects["event"])
        previous = copy.deepcopy(sub["items"])
        drop_item(self, sub, item)
        self.removed_items[item_id] = dict(item, removed_at=at)
        self.emit("customer.subscription.updated", at, sub, {"items": previous})
        self.touch("subscription", "subscription_item")
        return self._events_since(mark)

    def change_item_quantity(self: Company, sub_id: str, item_id: str, quantity: int, at: int,
                             prorate: bool = False) -> list[Obj]:
        """Change one item's quantity at `at` mid-period (`proration_behavior=none`, or with
        `prorate` `create_prorations`: pending until the next invoice; sandbox.seat_changes)."""
        sub = self._require("subscription", sub_id)
        item = self._require("subscription_item", item_id)
        if item not in sub["items"]["data"]:
            raise KeyError(f"subscription item {item_id!r} is not on {sub_id!r}")
        mark = len(self.objects["event"])
        change_seats(self, sub, item, quantity, at, prorate)
        return self._events_since(mark)

    def replace_item_discounts(self: Company, sub_id: str, item_id: str, at: int,
                               coupon_id: str | None = None) -> list[Obj]:
        """Remove the item's own discounts (`subscription_item.discounts`) at `at`, replaced by
        one made from `coupon_id` if given: `customer.subscription.updated` carries the whole
        previous item list (with the item's previous discount ids) in `previous_attributes`."""
        sub = self._require("subscription", sub_id)
        item = self._require("subscription_item", item_id)
        if item not in sub["items"]["data"]:
            raise KeyError(f"subscription item {item_id!r} is not on {sub_id!r}")
        mark = len(self.objects["event"])
        previous = copy.deepcopy(sub["items"])
        self.discount_changes.append({"subscription": sub_id, "item": item_id, "at": at,
                                      "removed": list(item.get("discounts") or [])})
        replacements = []
        if coupon_id is not None:
            terms = self._require("coupon", coupon_id)
            months = terms["duration_in_months"]
            applied = objects.discount(self.new_id("di"), terms, sub["customer"], sub_id, at,
                                       add_months(at, months) if months else None,
                                       subscription_item=item_id)
            self.add("discount", applied)
            replacements.append(applied)
        # a new item dict (not set in place): earlier event snapshots keep the old discounts
        replace_item(self, item, dict(item, discounts=replacements))
        sub["items"] = dict(sub["items"], data=[self.get("subscription_item", item_id)
                                                if i is item else i
                                                for i in sub["items"]["data"]])
        self.emit("customer.subscription.updated", at, sub, {"items": previous})
        self.touch("subscription", "subscription_item")
        return self._events_since(mark)


def drop_item(co: Company, sub: Obj, item: Obj) -> None:
    """Take the item off the subscription (a new `items` dict: earlier event snapshots keep
    theirs) and out of the company (retrieving it is then a 404, as in Stripe)."""
    sub["items"] = dict(sub["items"], data=[i for i in sub["items"]["data"] if i is not item])
    items = co.objects["subscription_item"]
    # the item is among the newest: search from the end (the generator calls this often)
    for index in range(len(items) - 1, -1, -1):
        if items[index] is item:
            del items[index]
            break
    del co._by_id["subscription_item"][item["id"]]


ADD_ON_REMOVAL_RATE = 0.03  # per billing period of a subscription with add-ons


def maybe_remove_add_on(co: Company, rng: random.Random, sub: Obj,
                        items: list[tuple[Obj, int | None]], start: int, end: int) -> None:
    """Now and then remove one licensed add-on (never the base item) mid-period, without
    proration, as `customer.subscription.updated` with the previous item list; `items` (the
    simulator's list, billed from the next period on) loses it too. About 2% of subscriptions.
    Metered items stay: their usage draws from the history's random stream."""
    add_ons = [n for n, (si, quantity) in enumerate(items) if n and quantity is not None]
    if not add_ons or rng.random() >= ADD_ON_REMOVAL_RATE:
        return
    item = items.pop(rng.choice(add_ons))[0]
    previous = sub["items"]
    drop_item(co, sub, item)
    at = rng.randint(start + 1, end - 1)
    co.removed_items[item["id"]] = dict(item, removed_at=at)
    co.emit("customer.subscription.updated", at, sub, {"items": previous})
