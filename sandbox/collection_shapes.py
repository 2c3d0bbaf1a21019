"""Collection shapes of issue 15 that real accounts have: payments by delayed payment methods
(SEPA Direct Debit, ACH, BACS: a charge `pending` for days, then `succeeded` or `failed`),
invoices paid out of band, credit notes that refund money, lost disputes, and payment
attempts without a charge (no payment method). Each helper changes the company as Stripe
would and emits the events Stripe sends.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.billing import Collection, Line, create_invoice, refund_charge
from sandbox.catalog import DAY, ONE_TIME
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company

# The delayed (bank debit) payment method of each currency.
DELAYED_METHODS = {"eur": "sepa_debit", "usd": "us_bank_account", "gbp": "bacs_debit"}
DISPUTE_FEE = {"usd": 1500, "eur": 1500, "gbp": 1500}  # Stripe's fee per dispute, minor units

# The generator's rates (of the customers billing in a currency with a delayed method, of
# paid invoices, of succeeded charges): small, as on real accounts.
DELAYED_PAYMENT_RATE = 0.04
DELAYED_FAILURE_SHARE = 0.15  # of the delayed payments: returned (R01, insufficient funds)
OUT_OF_BAND_RATE = 0.01
NO_PAYMENT_METHOD_RATE = 0.01
CREDIT_NOTE_RATE = 0.01
LOST_DISPUTE_RATE = 0.003


def one_off_invoice(co: Company, customer_id: str, amount: int | None, at: int,
                    quantity: int = 1) -> Obj:
    """An open one-off invoice of the onboarding package (`quantity` of it, or a custom
    `amount` in minor units) created at `at`, not yet attempted."""
    cust = co.get("customer", customer_id)
    if cust is None or cust.get("deleted"):
        raise KeyError(f"no customer {customer_id!r} in this company")
    price = co.price_by_key(ONE_TIME.get(cust["currency"], "setup_usd_once"))
    if amount is None:
        amount = price["unit_amount"] * quantity
    line = Line(price, quantity, amount, (at, at), description="Services")
    return create_invoice(co, customer_id, cust["currency"], at, "manual", None, [line], [],
                          Collection())


def standalone_charge(co: Company, customer_id: str, amount: int, at: int) -> Obj:
    """A succeeded charge that pays no invoice (a one-off payment)."""
    cust = co.get("customer", customer_id)
    ch = objects.charge(co.new_id("ch"), cust, co.payer(cust), amount, cust["currency"], at,
                        co.livemode)
    co.add("charge", ch)
    co.emit("charge.succeeded", at, ch)
    return ch


def pay_by_card(co: Company, invoice_id: str, at: int) -> Obj:
    """Pay an open invoice at once by card (through a PaymentIntent, as Billing does)."""
    inv = co.get("invoice", invoice_id)
    ch = _attempt(co, inv, at, "card")
    _settle(co, inv, ch, at, None)
    return ch


def start_delayed_payment(co: Company, invoice_id: str, at: int) -> Obj:
    """Attempt an open invoice by bank debit at `at`: the charge stays `pending` (SEPA Direct
    Debit, ACH and BACS take days to confirm); `settle_delayed_payment` ends it."""
    inv = co.get("invoice", invoice_id)
    method = DELAYED_METHODS.get(inv["currency"], "us_bank_account")
    ch = _attempt(co, inv, at, method)
    ch.update(status="pending", paid=False)
    co.emit("charge.pending", at, ch)
    co.touch("charge", "invoice")
    return ch


def settle_delayed_payment(co: Company, invoice_id: str, at: int,
                           failure_code: str | None = None) -> Obj:
    """The pending bank debit of the invoice succeeds (or, with `failure_code`, fails) at `at`."""
    inv = co.get("invoice", invoice_id)
    pending = next(p for p in inv["payments"]["data"] if p["status"] == "open")
    ch = _charge_of(co, pending)
    _settle(co, inv, ch, at, failure_code)
    return ch


def fail_without_payment_method(co: Company, invoice_id: str, at: int) -> None:
    """An automatic attempt on an invoice whose customer has no payment method: Stripe counts
    the attempt (`attempt_count`) and sends `invoice.payment_failed`, but creates no charge."""
    inv = co.get("invoice", invoice_id)
    inv.update(attempt_count=inv["attempt_count"] + 1, attempted=True,
               next_payment_attempt=at + 3 * DAY)
    co.emit("invoice.payment_failed", at, inv)
    co.touch("invoice")


def pay_out_of_band(co: Company, invoice_id: str, at: int) -> None:
    """Mark the invoice paid outside Stripe (a cheque, a wire): no charge, no money collected
    by Stripe; `paid_out_of_band` is set and `amount_paid` is the amount due."""
    inv = co.get("invoice", invoice_id)
    inv.update(status="paid", paid_out_of_band=True, amount_paid=inv["amount_due"],
               amount_remaining=0, next_payment_attempt=None,
               status_transitions={**inv["status_transitions"], "paid_at": at})
    co.emit("invoice.paid", at, inv)
    co.touch("invoice")


def refund_with_credit_note(co: Company, invoice_id: str, amount: int, at: int) -> Obj:
    """A credit note on a paid invoice that refunds `amount` to the card: one refund object
    (the money) and one credit note (the document); `amount_paid` stays as it was."""
    inv = co.get("invoice", invoice_id)
    paid = next(p for p in inv["payments"]["data"] if p["status"] == "paid")
    ch = _charge_of(co, paid)
    ref = refund_charge(co, ch, amount, at)
    note = {"id": co.new_id("cn"), "object": "credit_note", "amount": amount,
            "created": at, "currency": inv["currency"], "customer": inv["customer"],
            "effective_at": at, "invoice": inv["id"], "livemode": co.livemode,
            "refunds": [{"amount_refunded": amount, "refund": ref["id"]}],
            "status": "issued", "subtotal": amount, "total": amount, "type": "post_payment",
            "reason": "order_change"}
    co.add("credit_note", note)
    inv["post_payment_credit_notes_amount"] += amount
    co.emit("credit_note.created", at, note)
    co.emit("invoice.updated", at, inv, {"post_payment_credit_notes_amount":
                                         inv["post_payment_credit_notes_amount"] - amount})
    co.touch("invoice")
    return note


def open_dispute(co: Company, charge_id: str, at: int) -> Obj:
    """The cardholder disputes the whole charge at `at`: Stripe withdraws the amount and its
    dispute fee from the balance then (one balance transaction), status `needs_response`."""
    ch = co.get("charge", charge_id)
    fee = DISPUTE_FEE.get(ch["currency"], 1500)
    withdrawal = {"id": co.new_id("txn"), "object": "balance_transaction",
                  "amount": -ch["amount"], "created": at, "currency": ch["currency"],
                  "fee": fee, "net": -ch["amount"] - fee, "reporting_category": "dispute",
                  "status": "available", "type": "adjustment"}
    dispute = {"id": co.new_id("dp"), "object": "dispute", "amount": ch["amount"],
               "balance_transactions": [withdrawal], "charge": ch["id"], "created": at,
               "currency": ch["currency"],
               "evidence_details": {"due_by": at + 14 * DAY, "has_evidence": False,
                                    "past_due": False, "submission_count": 0},
               "is_charge_refundable": False, "livemode": co.livemode, "metadata": {},
               "payment_intent": ch["payment_intent"], "reason": "fraudulent",
               "status": "needs_response"}
    co.add("dispute", dispute)
    ch["disputed"] = True
    co.emit("charge.dispute.created", at, dispute)
    co.touch("charge")
    return dispute


def close_dispute(co: Company, dispute_id: str, at: int, won: bool = False) -> Obj:
    """The dispute closes at `at`: lost (the withdrawal stands) or won (amount and fee
    reinstated by a second balance transaction)."""
    dispute = co.get("dispute", dispute_id)
    if won:
        withdrawal = dispute["balance_transactions"][0]
        dispute["balance_transactions"] = [*dispute["balance_transactions"], {
            **withdrawal, "id": co.new_id("txn"), "amount": -withdrawal["amount"],
            "created": at, "fee": -withdrawal["fee"], "net": -withdrawal["net"]}]
    previous = {"status": dispute["status"]}
    dispute["status"] = "won" if won else "lost"
    co.emit("charge.dispute.closed", at, dispute, previous)
    co.touch("dispute")
    return dispute


def _attempt(co: Company, inv: Obj, at: int, method: str) -> Obj:
    """A charge through a new PaymentIntent for the invoice's amount, linked to the invoice by
    an `invoice_payment` of type `payment_intent` (status `open` until it settles)."""
    cust = co.get("customer", inv["customer"])
    ch = objects.charge(co.new_id("ch"), cust, co.payer(cust), inv["amount_due"],
                        inv["currency"], at, co.livemode)
    ch.update(payment_intent=co.new_id("pi"),
              payment_method_details={"type": method, method: {"last4": "3000"}})
    co.add("charge", ch)
    # remembered: Stripe finds a PaymentIntent's charge by id, the company would scan
    co.shared(("charge_of_payment_intent", ch["payment_intent"]), lambda: ch)
    payment = objects.invoice_payment(co.new_id("inpay"), inv["id"], ch["id"], inv["amount_due"],
                                      inv["currency"], at, "open", None, co.livemode)
    payment["payment"] = {"type": "payment_intent", "payment_intent": ch["payment_intent"]}
    inv["payments"] = objects.empty_list(inv["payments"]["url"],
                                         [*inv["payments"]["data"], payment])
    inv.update(attempt_count=inv["attempt_count"] + 1, attempted=True)
    return ch


def _settle(co: Company, inv: Obj, ch: Obj, at: int, failure_code: str | None) -> None:
    payment = next(p for p in inv["payments"]["data"]
                   if p["payment"].get("payment_intent") == ch["payment_intent"])
    if failure_code is None:
        ch.update(status="succeeded", paid=True)
        payment.update(status="paid", amount_paid=payment["amount_requested"],
                       status_transitions={"canceled_at": None, "paid_at": at})
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0,
                   next_payment_attempt=None,
                   status_transitions={**inv["status_transitions"], "paid_at": at})
        co.emit("charge.succeeded", at, ch)
        co.emit("invoice.paid", at, inv)
        co.emit("invoice.payment_succeeded", at, inv)
    else:
        ch.update(status="failed", paid=False, captured=False, amount_captured=0,
                  balance_transaction=None, failure_code=failure_code,
                  failure_message="The bank account has insufficient funds.")
        payment.update(status="canceled",
                       status_transitions={"canceled_at": at, "paid_at": None})
        co.emit("charge.failed", at, ch)
        co.emit("invoice.payment_failed", at, inv)
    co.touch("charge", "invoice")


def _charge_of(co: Company, payment: Obj) -> Obj:
    """The charge an invoice payment names, or the one of its PaymentIntent."""
    ref = payment["payment"]
    if ref.get("charge"):
        return co.get("charge", ref["charge"])
    return co.shared(("charge_of_payment_intent", ref["payment_intent"]), _no_charge)


def _no_charge() -> Obj:
    raise KeyError("no charge of this PaymentIntent in the company")


def add_collection_shapes(company: Company, rng: random.Random) -> None:
    """The generator's share of these shapes, over the last 80 days (inside a backfill), for
    customers still there: one-off invoices paid by bank debit (some returned), paid out of
    band, or attempted without a payment method; credit-note refunds of paid invoices; and
    lost disputes of card charges."""
    now = company.now
    start = now - 80 * DAY
    customers = [c for c in company.objects["customer"]
                 if not c.get("deleted") and c["created"] < start]
    for cust in customers:
        roll = rng.random()
        at = rng.randint(start, now - 2 * DAY)
        quantity = rng.randint(1, 3)
        if roll < DELAYED_PAYMENT_RATE and cust["currency"] in ONE_TIME:
            inv = one_off_invoice(company, cust["id"], None, at, quantity)
            start_delayed_payment(company, inv["id"], at + 600)
            settles = at + rng.randint(3, 6) * DAY
            if settles < now:
                failed = rng.random() < DELAYED_FAILURE_SHARE
                settle_delayed_payment(company, inv["id"], settles,
                                       "insufficient_funds" if failed else None)
        elif roll < DELAYED_PAYMENT_RATE + OUT_OF_BAND_RATE and cust["currency"] in ONE_TIME:
            inv = one_off_invoice(company, cust["id"], None, at, quantity)
            pay_out_of_band(company, inv["id"], at + rng.randint(1, 10) * DAY)
        elif (roll < DELAYED_PAYMENT_RATE + OUT_OF_BAND_RATE + NO_PAYMENT_METHOD_RATE
              and cust["currency"] in ONE_TIME):
            inv = one_off_invoice(company, cust["id"], None, at, quantity)
            fail_without_payment_method(company, inv["id"], at + 3600)
    paid = [i for i in company.objects["invoice"]
            if i["status"] == "paid" and start <= (i["status_transitions"]["paid_at"] or 0)
            and any(p["status"] == "paid" for p in i["payments"]["data"])]
    for inv in paid:
        if rng.random() < CREDIT_NOTE_RATE:
            at = inv["status_transitions"]["paid_at"] + rng.randint(1, 10) * DAY
            if at < now:
                refund_with_credit_note(company, inv["id"], max(1, inv["amount_paid"] // 2), at)
    cards = [c for c in company.objects["charge"]
             if c["status"] == "succeeded" and start <= c["created"] and not c["amount_refunded"]
             and c["payment_method_details"].get("type") == "card"]
    for ch in cards:
        if rng.random() < LOST_DISPUTE_RATE:
            opened = ch["created"] + rng.randint(2, 20) * DAY
            closed = opened + rng.randint(10, 40) * DAY
            if closed < now:
                dispute = open_dispute(company, ch["id"], opened)
                close_dispute(company, dispute["id"], closed, won=rng.random() < 0.3)
