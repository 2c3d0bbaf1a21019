"""Pausing a subscription's payment collection (`pause_collection`), with its event.

Stripe's `POST /v1/subscriptions/{id}` with `pause_collection[behavior]=void` as a mutation of
the company object: the subscription stays `active`, its invoices are voided while paused, and
`customer.subscription.updated` carries the previous `pause_collection` (null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company


def pause_collection(co: Company, sub_id: str, at: int) -> list[Obj]:
    """Pause the subscription's collection at `at` (behavior `void`, no resume date)."""
    sub = co._require("subscription", sub_id)
    mark = len(co.objects["event"])
    previous = {"pause_collection": sub["pause_collection"]}
    sub["pause_collection"] = {"behavior": "void", "resumes_at": None}
    co.emit("customer.subscription.updated", at, sub, previous)
    co.touch("subscription")
    return co._events_since(mark)
