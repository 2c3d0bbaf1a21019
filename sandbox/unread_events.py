"""The events a real account carries beside the ones a revenue warehouse reads (issue 18).

Stripe sends, with each payment, a PaymentIntent's `payment_intent.created` and
`.succeeded` (or `.payment_failed`) and a `charge.updated` once the balance transaction is
attached; with each invoice an `invoice.updated` at finalization and at payment; with each
new customer the card it saves (`setup_intent.*`, `payment_method.attached`, for about half a
`checkout.session.completed`); with each seat change an `invoiceitem.created` for its
proration. On real accounts these are most of the events: generated here for the events of
the last 30 days (the ones Stripe keeps), so that a sync listing every type pages through
them, as it would on Stripe, and a filtered one does not (pipelines/event_types.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sandbox.objects import Obj

# The object types of these events, stored so that every event names an existing object.
UNREAD_OBJECT_TYPES = ("payment_intent", "setup_intent", "payment_method",
                       "checkout.session", "invoiceitem")
CHECKOUT_SHARE = 0.5  # new customers who came through Checkout


def add_unread_events(company, rng: random.Random) -> None:
    """Add the companion events of every event the company keeps (see the module docstring)."""
    companions: dict[str, Callable[[Obj], None]] = {
        "charge.succeeded": lambda e: _payment(company, e, "payment_intent.succeeded"),
        "charge.failed": lambda e: _payment(company, e, "payment_intent.payment_failed"),
        "invoice.finalized": lambda e: _invoice_update(company, e),
        "invoice.paid": lambda e: _invoice_update(company, e),
        "customer.created": lambda e: _saved_card(company, e, rng.random() < CHECKOUT_SHARE),
        "customer.subscription.updated": lambda e: _proration_item(company, e),
    }
    for event in list(company.objects["event"]):
        add = companions.get(event["type"])
        if add is not None:
            add(event)


def _stored(company, object_type: str, prefix: str, at: int, **fields: object) -> Obj:
    obj: Obj = {"id": company.new_id(prefix), "object": object_type, "created": at,
                "livemode": company.livemode, **fields}
    company.add(object_type, obj)
    return obj


def _payment(company, event: Obj, outcome: str) -> None:
    charge, at = event["data"]["object"], event["created"]
    intent = _stored(company, "payment_intent", "pi", at, amount=charge["amount"],
                     currency=charge["currency"], customer=charge["customer"],
                     latest_charge=charge["id"],
                     status="succeeded" if outcome.endswith("succeeded") else
                     "requires_payment_method")
    company.emit("payment_intent.created", at, intent, status="requires_confirmation")
    company.emit(outcome, at, intent)
    if outcome.endswith("succeeded"):
        company.emit("charge.updated", at, charge, {"balance_transaction": None})


def _invoice_update(company, event: Obj) -> None:
    invoice = event["data"]["object"]
    company.emit("invoice.updated", event["created"], invoice, {"status": (
        "draft" if event["type"] == "invoice.finalized" else "open")})


def _saved_card(company, event: Obj, checkout: bool) -> None:
    customer, at = event["data"]["object"], event["created"]
    method = _stored(company, "payment_method", "pm", at, type="card",
                     customer=customer["id"])
    setup = _stored(company, "setup_intent", "seti", at, customer=customer["id"],
                    payment_method=method["id"], status="succeeded", usage="off_session")
    company.emit("setup_intent.created", at, setup, status="requires_payment_method")
    company.emit("payment_method.attached", at, method)
    company.emit("setup_intent.succeeded", at, setup)
    if checkout:
        session = _stored(company, "checkout.session", "cs", at, customer=customer["id"],
                          mode="setup", setup_intent=setup["id"], status="complete")
        company.emit("checkout.session.completed", at, session)


def _proration_item(company, event: Obj) -> None:
    if "items" not in (event["data"].get("previous_attributes") or {}):
        return
    subscription, at = event["data"]["object"], event["created"]
    item = _stored(company, "invoiceitem", "ii", at, customer=subscription["customer"],
                   currency=subscription.get("currency"), proration=True,
                   subscription=subscription["id"])
    company.emit("invoiceitem.created", at, item)
