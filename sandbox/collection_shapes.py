"""Collection shapes of issue 15 that real accounts have: payments by delayed payment methods
(SEPA Direct Debit, ACH, BACS: a charge `pending` for days, then `succeeded` or `failed`),
invoices paid out of band (in full, or the rest of a partial payment by card; or through a
payment recorded off Stripe), credit notes (refunding money, credited to the customer's
balance, credited outside Stripe, or lowering an unpaid invoice), lost disputes, and payment
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
# credit notes, of paid invoices (a few % in all): refunding money, credited to the customer's
# balance (applied to their next invoice), or credited outside Stripe
CREDIT_NOTE_RATE = 0.01  # refunds
CREDIT_NOTE_BALANCE_RATE = 0.015
CREDIT_NOTE_OUT_OF_BAND_RATE = 0.005
PARTIAL_CARD_SHARE = 0.5  # of the invoices paid out of band: a part paid by card first
# of the invoices attempted without a payment method: Stripe's retries that follow (the
# customer never adds one), 3 days apart; of the credit-note refunds of a taxed invoice: a
# service credit (a custom line credited without tax)
NO_PAYMENT_METHOD_RETRIES = (0, 3)
SERVICE_CREDIT_SHARE = 0.3
LOST_DISPUTE_RATE = 0.003


def one_off_invoice(co: Company, customer_id: str, amount: int | None, at: int,
                    quantity: int = 1, tax_rates: list[Obj] | None = None) -> Obj:
    """An open one-off invoice of the onboarding package (`quantity` of it, or a custom
    `amount` in minor units, taxed at `tax_rates` if given) created at `at`, not yet
    attempted."""
    cust = co.get("customer", customer_id)
    if cust is None or cust.get("deleted"):
        raise KeyError(f"no customer {customer_id!r} in this company")
    price = co.price_by_key(ONE_TIME.get(cust["currency"], "setup_usd_once"))
    if amount is None:
        amount = price["unit_amount"] * quantity
    line = Line(price, quantity, amount, (at, at), description="Services")
    return create_invoice(co, customer_id, cust["currency"], at, "manual", None, [line], [],
                          Collection(), tax_rates)


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


def pay_by_card_in_part(co: Company, invoice_id: str, amount: int, at: int) -> Obj:
    """Pay `amount` of an open invoice by card (a PaymentIntent attached to it, Stripe's
    partial payments): `amount_paid` grows, the invoice stays `open` until nothing remains."""
    inv = co.get("invoice", invoice_id)
    ch = _attempt(co, inv, at, "card", amount)
    _settle(co, inv, ch, at, None)
    return ch


def pay_out_of_band(co: Company, invoice_id: str, at: int) -> None:
    """Mark the invoice paid outside Stripe (a cheque, a wire): no charge, no money collected
    by Stripe for what remained; `paid_out_of_band` is set and `amount_paid` becomes the amount
    due (since 2025-03-31 it includes the out-of-band part; a part paid by card before stays
    as its own invoice payment)."""
    inv = co.get("invoice", invoice_id)
    inv.update(status="paid", paid_out_of_band=True, amount_paid=inv["amount_due"],
               amount_remaining=0, next_payment_attempt=None,
               status_transitions={**inv["status_transitions"], "paid_at": at})
    co.emit("invoice.paid", at, inv)
    co.touch("invoice")


def record_payment_off_stripe(co: Company, invoice_id: str, amount: int, at: int) -> Obj:
    """A payment made outside Stripe, recorded with the Payment Records API and attached to
    the invoice (`attach_payment` with `payment_record`): an invoice payment of type
    `payment_record`, in `amount_paid`, with no charge and no balance transaction."""
    inv = co.get("invoice", invoice_id)
    payment = objects.invoice_payment(co.new_id("inpay"), inv["id"], "", amount,
                                      inv["currency"], at, "paid", at, co.livemode)
    payment["payment"] = {"type": "payment_record", "payment_record": co.new_id("pr")}
    inv["payments"] = objects.empty_list(inv["payments"]["url"],
                                         [*inv["payments"]["data"], payment])
    co.emit("invoice_payment.paid", at, payment)
    _credit_invoice(co, inv, amount, at)
    co.touch("invoice")
    return payment


def credit_note(co: Company, invoice_id: str, amount: int, at: int,
                settle: str = "refund", tax: int | None = None) -> Obj:
    """A credit note of `amount` on a finalized invoice, as Stripe issues it: first it lowers
    what the invoice still has to collect (`amount_due`/`amount_remaining`; its
    `pre_payment_amount`); the rest (`post_payment_amount`) is settled as `settle` says:
    `refund` (a refund of the charge that paid the invoice: the only money that moves, with
    its balance transaction), `credit` (the customer's balance, applied to their next
    invoice), or `out_of_band` (credited outside Stripe). `amount_paid` never changes.

    `amount` includes the credit note's tax, `tax` of it: by default the invoice's share
    (crediting part of its lines, whose tax rates apply); 0 for a custom line credited
    without tax (a service credit), which takes back no tax."""
    inv = co.get("invoice", invoice_id)
    if tax is None:
        tax = _tax_share(inv, amount)
    pre = min(amount, inv["amount_remaining"]) if inv["status"] == "open" else 0
    post = amount - pre
    refunds: list[Obj] = []
    out_of_band = 0
    balance_txn = None
    if post and settle == "refund":
        paid = next(p for p in inv["payments"]["data"] if p["status"] == "paid"
                    and p["payment"]["type"] != "payment_record")
        ref = refund_charge(co, _charge_of(co, paid), post, at)
        refunds = [{"amount_refunded": post, "payment_record_refund": None,
                    "refund": ref["id"], "type": "refund"}]
    elif post and settle == "credit":
        cust = co.get("customer", inv["customer"])
        # a deleted customer's object (mutations.replace_customer) carries no balance
        previous = cust.get("balance") or 0
        cust["balance"] = previous - post
        balance_txn = co.new_id("cbtxn")
        co.emit("customer.updated", at, cust, {"balance": previous})
        co.touch("customer")
    elif post:
        out_of_band = post
    if pre:
        previous = {"amount_due": inv["amount_due"], "amount_remaining": inv["amount_remaining"]}
        inv.update(amount_due=inv["amount_due"] - pre,
                   amount_remaining=inv["amount_remaining"] - pre)
        inv["pre_payment_credit_notes_amount"] += pre
        if inv["amount_remaining"] == 0:  # nothing left to collect: Stripe marks it paid
            inv.update(status="paid", next_payment_attempt=None,
                       status_transitions={**inv["status_transitions"], "paid_at": at})
    else:
        previous = {"post_payment_credit_notes_amount": inv["post_payment_credit_notes_amount"]}
    inv["post_payment_credit_notes_amount"] += post
    note = {"id": co.new_id("cn"), "object": "credit_note", "amount": amount,
            "amount_shipping": 0, "created": at, "currency": inv["currency"],
            "customer": inv["customer"], "customer_balance_transaction": balance_txn,
            "discount_amount": 0, "effective_at": at, "invoice": inv["id"],
            "livemode": co.livemode, "out_of_band_amount": out_of_band or None,
            "post_payment_amount": post, "pre_payment_amount": pre,
            "reason": "order_change", "refunds": refunds, "status": "issued",
            **_credit_note_totals(inv, amount, tax),
            "type": "mixed" if pre and post else "pre_payment" if pre else "post_payment",
            "voided_at": None}
    co.add("credit_note", note)
    co.emit("credit_note.created", at, note)
    co.emit("invoice.updated", at, inv, previous)
    if pre and inv["status"] == "paid":
        co.emit("invoice.paid", at, inv)
    co.touch("invoice")
    return note


def refund_with_credit_note(co: Company, invoice_id: str, amount: int, at: int,
                            tax: int | None = None) -> Obj:
    """A credit note on a paid invoice that refunds `amount` to the card: one refund object
    (the money) and one credit note (the document); `amount_paid` stays as it was."""
    return credit_note(co, invoice_id, amount, at, "refund", tax)


def _tax_share(inv: Obj, amount: int) -> int:
    """The tax in `amount` of the invoice's total, rounded half up (0 on an untaxed one)."""
    tax = inv["total"] - inv["total_excluding_tax"]
    if not tax or inv["total"] <= 0:
        return 0
    return (2 * amount * tax + inv["total"]) // (2 * inv["total"])


def _credit_note_totals(inv: Obj, amount: int, tax: int) -> Obj:
    """A credit note's totals (current API: `total_taxes[]`), its tax of the invoice's kind
    (exclusive: added to the subtotal; inclusive: inside it)."""
    rates = inv.get("total_taxes") or []
    inclusive = bool(rates) and rates[0]["tax_behavior"] == "inclusive"
    taxes = [dict(rates[0], amount=tax, taxable_amount=amount - tax)] if tax and rates else []
    return {"subtotal": amount if inclusive else amount - tax,
            "subtotal_excluding_tax": amount - tax, "total": amount,
            "total_excluding_tax": amount - tax, "total_taxes": taxes}


def _dispute_line_id(co: Company) -> str:
    """A new id for a dispute's balance transaction. Not `new_id("txn")`: a charge's line is
    `txn_` + the charge id's tail (`txn_1<tag><n>`), the same shape, so the n-th dispute line
    took the n-th charge's id, and a page of `/v1/balance_transactions` ending on it sent the
    listing on from the charge's place instead: the lines between were never listed."""
    return "txn_d" + co.new_id("txn").removeprefix("txn_")


def open_dispute(co: Company, charge_id: str, at: int) -> Obj:
    """The cardholder disputes the whole charge at `at`: Stripe withdraws the amount and its
    dispute fee from the balance then (one balance transaction), status `needs_response`."""
    ch = co.get("charge", charge_id)
    fee = DISPUTE_FEE.get(ch["currency"], 1500)
    withdrawal = {"id": _dispute_line_id(co), "object": "balance_transaction",
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
            **withdrawal, "id": _dispute_line_id(co), "amount": -withdrawal["amount"],
            "created": at, "fee": -withdrawal["fee"], "net": -withdrawal["net"]}]
    previous = {"status": dispute["status"]}
    dispute["status"] = "won" if won else "lost"
    co.emit("charge.dispute.closed", at, dispute, previous)
    co.touch("dispute")
    return dispute


def _attempt(co: Company, inv: Obj, at: int, method: str, amount: int | None = None) -> Obj:
    """A charge through a new PaymentIntent for what the invoice still has to collect (or
    `amount` of it), linked to the invoice by an `invoice_payment` of type `payment_intent`
    (status `open` until it settles)."""
    amount = inv["amount_remaining"] if amount is None else amount
    cust = co.get("customer", inv["customer"])
    ch = objects.charge(co.new_id("ch"), cust, co.payer(cust), amount, inv["currency"], at,
                        co.livemode)
    ch.update(payment_intent=co.new_id("pi"),
              payment_method_details={"type": method, method: {"last4": "3000"}})
    co.add("charge", ch)
    # remembered: Stripe finds a PaymentIntent's charge by id, the company would scan
    co.shared(("charge_of_payment_intent", ch["payment_intent"]), lambda: ch)
    payment = objects.invoice_payment(co.new_id("inpay"), inv["id"], ch["id"], amount,
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
        co.emit("charge.succeeded", at, ch)
        co.emit("invoice_payment.paid", at, payment)
        _credit_invoice(co, inv, payment["amount_requested"], at)
        if inv["status"] == "paid":
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


def _credit_invoice(co: Company, inv: Obj, amount: int, at: int) -> None:
    """A payment of `amount` is credited to the invoice: paid when nothing remains."""
    inv.update(amount_paid=inv["amount_paid"] + amount,
               amount_remaining=max(inv["amount_remaining"] - amount, 0))
    if inv["amount_remaining"] == 0:
        inv.update(status="paid", next_payment_attempt=None,
                   status_transitions={**inv["status_transitions"], "paid_at": at})
        co.emit("invoice.paid", at, inv)
    else:
        co.emit("invoice.updated", at, inv, {"amount_paid": inv["amount_paid"] - amount})


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
    band (half of them partly by card first), or attempted without a payment method; credit
    notes on paid invoices (refunds, customer balance credits, credits outside Stripe); and
    lost disputes of card charges."""
    now = company.now
    start = now - 80 * DAY
    # the draws of the shapes added later come from their own stream (seeded from the
    # generator's state, without drawing from it), so the earlier shapes stay as they were
    later = random.Random(rng.getstate()[1][0])
    newest = random.Random(rng.getstate()[1][1])  # likewise, for the shapes added after those
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
            if later.random() < PARTIAL_CARD_SHARE:
                pay_by_card_in_part(company, inv["id"], inv["amount_due"] // 2, at + 3600)
            pay_out_of_band(company, inv["id"], at + rng.randint(1, 10) * DAY)
        elif (roll < DELAYED_PAYMENT_RATE + OUT_OF_BAND_RATE + NO_PAYMENT_METHOD_RATE
              and cust["currency"] in ONE_TIME):
            inv = one_off_invoice(company, cust["id"], None, at, quantity)
            for retry in range(newest.randint(*NO_PAYMENT_METHOD_RETRIES) + 1):
                if at + 3600 + retry * 3 * DAY < now:
                    fail_without_payment_method(company, inv["id"], at + 3600 + retry * 3 * DAY)
    paid = [i for i in company.objects["invoice"]
            if i["status"] == "paid" and start <= (i["status_transitions"]["paid_at"] or 0)
            and not i["paid_out_of_band"]
            and any(p["status"] == "paid" for p in i["payments"]["data"])]
    for inv in paid:
        if rng.random() < CREDIT_NOTE_RATE:
            at = inv["status_transitions"]["paid_at"] + rng.randint(1, 10) * DAY
            if at < now:
                taxed = inv["total"] != inv["total_excluding_tax"]
                untaxed = taxed and newest.random() < SERVICE_CREDIT_SHARE
                refund_with_credit_note(company, inv["id"], max(1, inv["amount_paid"] // 2), at,
                                        0 if untaxed else None)
    for inv in paid:
        roll = later.random()
        if roll < CREDIT_NOTE_BALANCE_RATE + CREDIT_NOTE_OUT_OF_BAND_RATE and not (
                inv["post_payment_credit_notes_amount"]):
            at = inv["status_transitions"]["paid_at"] + later.randint(1, 10) * DAY
            if at < now:
                settle = "credit" if roll < CREDIT_NOTE_BALANCE_RATE else "out_of_band"
                credit_note(company, inv["id"], max(1, inv["amount_paid"] // 2), at, settle)
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
