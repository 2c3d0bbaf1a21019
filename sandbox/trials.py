"""Trial shapes that real Stripe accounts have and the simulated history must produce.

- A trial that ends without a payment method, with
  `trial_settings.end_behavior.missing_payment_method = pause`: Stripe ends it in status
  `paused` and never invoices a paid period.
- A trial added to a subscription that was already paying (`trial_end` set by an update):
  Stripe sets `trial_start` to the update time and the status to `trialing`; the earlier paid
  periods stay as they were.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import DAY
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company

PAUSED_TRIAL_SHARE = 0.25  # of the trials that end without a payment method
ADDED_TRIAL_SHARE = 0.03  # of the subscriptions running today
ADDED_TRIAL_DAYS = 30


def chosen(sub_id: str, salt: str, share: float) -> bool:
    """A stable draw from the subscription's id, so the generator's random stream (and every
    other shape it produces for the seed) is left as it was."""
    return zlib.crc32(f"{salt}:{sub_id}".encode()) % 10_000 < share * 10_000


def pause_at_trial_end(co: Company, sub: Obj) -> None:
    """The trial ended with no payment method and the end behaviour `pause` (returns None:
    the subscription has not ended)."""
    previous = {"status": sub["status"]}
    sub.update(status="paused", pause_collection=None,
               trial_settings={"end_behavior": {"missing_payment_method": "pause"}})
    co.emit("customer.subscription.updated", sub["trial_end"], sub, previous)
    co.touch("subscription")


def add_trial(co: Company, sub: Obj, at: int, trial_end: int) -> None:
    """A trial until `trial_end` added at `at` to a running subscription, with
    `proration_behavior=none`: its items' current period becomes the trial, billed by a $0
    trial invoice (the paid period before it is not credited)."""
    previous = {"status": sub["status"], "trial_start": sub.get("trial_start"),
                "trial_end": sub.get("trial_end")}
    sub.update(status="trialing", trial_start=at, trial_end=trial_end,
               billing_cycle_anchor=trial_end)
    lines = []
    for item in sub["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = at, trial_end
        lines.append(Line(item["price"], item["quantity"], 0, (at, trial_end), item["id"],
                          description="Trial period"))
    co.emit("customer.subscription.updated", at, sub, previous)
    inv = create_invoice(co, sub["customer"], sub["currency"], at, "subscription_update",
                         sub["id"], lines, [], Collection([Attempt(at)]))
    sub["latest_invoice"] = inv["id"]
    co.touch("subscription")


def maybe_add_trial(co: Company, sub: Obj, period_start: int) -> None:
    """For a few subscriptions running today: a trial added during the current period."""
    if sub["status"] != "active" or not chosen(sub["id"], "added-trial", ADDED_TRIAL_SHARE):
        return
    # added in the last 20 days, so that the trial is still running today
    earliest = max(period_start, co.now - 20 * DAY)
    at = earliest + zlib.crc32(sub["id"].encode()) % max(1, co.now - earliest)
    add_trial(co, sub, at, at + ADDED_TRIAL_DAYS * DAY)
