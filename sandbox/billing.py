"""Invoicing and payment collection shared by the history simulation and the live mutations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox import objects, taxes
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company


@dataclass
class Line:
    """One line to put on an invoice."""

    price: Obj
    quantity: int | None
    amount: int
    period: tuple[int, int]
    subscription_item: str | None = None
    proration: bool = False
    description: str = ""


@dataclass
class Attempt:
    """One payment attempt: when, and the decline code (None when it succeeds)."""

    at: int
    failure_code: str | None = None


@dataclass
class Collection:
    """How an invoice gets paid: the attempts, and what happens if all of them fail."""

    attempts: list[Attempt] = field(default_factory=list)
    next_attempt: int | None = None  # a retry still scheduled (after `now`)
    exhausted: bool = False  # dunning gave up: the invoice becomes uncollectible


def _discount_lines(lines: list[Line], discounts: list[Obj], currency: str) -> list[list[Obj]]:
    """Per line, the `discount_amounts` of each discount (percent per line, amount off top down).

    An item's own discount (`subscription_item` set) applies to that item's lines only, and
    before the subscription's discounts, as Stripe applies them."""
    per_line: list[list[Obj]] = [[] for _ in lines]
    for disc in sorted(discounts, key=lambda d: d.get("subscription_item") is None):
        cpn = disc["source"]["coupon"]
        left = cpn["amount_off"] if cpn["currency"] == currency else 0
        for i, line in enumerate(lines):
            if disc.get("subscription_item") not in (None, line.subscription_item):
                continue
            base = line.amount - sum(d["amount"] for d in per_line[i])
            if base <= 0:
                continue
            if cpn["percent_off"] is not None:
                off = round(base * cpn["percent_off"] / 100)
            else:
                off = min(left or 0, base)
                left = (left or 0) - off
            if off:
                per_line[i].append({"amount": off, "discount": disc["id"]})
    return per_line


def create_invoice(co: Company, customer_id: str, currency: str, created: int,
                   billing_reason: str, subscription_id: str | None, lines: list[Line],
                   discounts: list[Obj], collection: Collection,
                   tax_rates: list[Obj] | None = None) -> Obj:
    """Create an invoice with its lines, collect it as `collection` says, and emit its events.

    Its lines are taxed at `tax_rates`, else at the subscription's `default_tax_rates`."""
    cust = co.get("customer", customer_id) or {"id": customer_id}
    n = co.pii_number(customer_id)
    iid = co.new_id("in")
    start = min((ln.period[0] for ln in lines), default=created)
    end = max((ln.period[1] for ln in lines), default=created)
    parent = None
    if subscription_id is not None:
        parent = co.shared(("invoice_parent", subscription_id),
                           lambda: objects.invoice_parent(subscription_id))
    inv = objects.invoice(iid, cust, n, created, currency, billing_reason, parent,
                          (start, end), co.livemode)
    applied = _discount_lines(lines, discounts, currency)
    sub = co.get("subscription", subscription_id) if subscription_id else None
    rates = tax_rates if tax_rates is not None else (sub or {}).get("default_tax_rates") or []
    line_objs = []
    for ln, disc_amounts in zip(lines, applied, strict=True):
        lid = co.new_id("il")
        ii = co.new_id("ii") if ln.proration or subscription_id is None else None
        if ii is None:  # the same parent for every regular line of a subscription item
            parent = co.shared(("line_parent", ln.subscription_item), lambda ln=ln: (
                objects.line_parent(subscription_id, ln.subscription_item, False, None)))
        else:
            parent = objects.line_parent(subscription_id, ln.subscription_item, ln.proration, ii)
        pricing = co.shared(("pricing", ln.price["id"]),
                            lambda ln=ln: objects.line_pricing(ln.price))
        line_objs.append(objects.line_item(
            lid, iid, ln.amount, currency, ln.quantity, parent, pricing, ln.period, co.livemode,
            description=ln.description, discount_amounts=disc_amounts))
        if rates:
            line_objs[-1]["taxes"] = taxes.line_taxes(
                ln.amount - sum(d["amount"] for d in disc_amounts), rates)
    item_discounts = {d["id"] for d in discounts if d.get("subscription_item")}
    for line, disc_amounts in zip(line_objs, applied, strict=True):
        # an item's discount is listed on its lines, not on the invoice (Stripe's shape)
        own = [d["discount"] for d in disc_amounts if d["discount"] in item_discounts]
        if own:
            line["discounts"] = own
        co.add("line_item", line)
    inv["lines"] = objects.empty_list(f"/v1/invoices/{iid}/lines", line_objs)
    subtotal = sum(ln.amount for ln in lines)
    totals: dict[str, int] = {}
    for disc_amounts in applied:
        for d in disc_amounts:
            totals[d["discount"]] = totals.get(d["discount"], 0) + d["amount"]
    used = [d for d in discounts if d["id"] in totals and d["id"] not in item_discounts]
    tax_lines = [tax for line in line_objs for tax in line["taxes"]]
    inclusive_tax = sum(t["amount"] for t in tax_lines if t["tax_behavior"] == "inclusive")
    exclusive_tax = sum(t["amount"] for t in tax_lines if t["tax_behavior"] == "exclusive")
    total = subtotal - sum(totals.values()) + exclusive_tax
    # a credit on the customer's balance (a credit note credited to it) is applied first:
    # it lowers what is due, and no money moves for it
    balance = cust.get("balance") or 0
    credit = min(-balance, max(total, 0)) if balance < 0 else 0
    if credit:
        cust["balance"] = balance + credit
    inv.update(subtotal=subtotal, subtotal_excluding_tax=subtotal - inclusive_tax, total=total,
               total_excluding_tax=total - inclusive_tax - exclusive_tax,
               total_taxes=taxes.total_taxes(line_objs), starting_balance=balance,
               ending_balance=balance + credit,
               amount_due=max(total, 0) - credit, amount_remaining=max(total, 0) - credit,
               discounts=used,
               total_discount_amounts=[{"amount": a, "discount": k} for k, a in totals.items()])
    co.add("invoice", inv)
    co.emit("invoice.created", created, inv, status="draft")
    co.emit("invoice.finalized", created, inv, status="open")
    _collect(co, inv, cust, collection)
    return inv


def _collect(co: Company, inv: Obj, cust: Obj, collection: Collection) -> None:
    """Run the payment attempts against the invoice, creating charges and events."""
    created = inv["created"]
    transitions = {"finalized_at": created, "marked_uncollectible_at": None, "paid_at": None,
                   "voided_at": None}
    amount = inv["amount_due"]
    if amount == 0:
        transitions["paid_at"] = created
        inv.update(status="paid", status_transitions=transitions, attempted=True)
        co.emit("invoice.paid", created, inv)
        return
    payments = []
    inv["status"] = "open"
    for attempt in collection.attempts:
        ch = objects.charge(co.new_id("ch"), cust, co.payer(cust), amount, inv["currency"],
                            attempt.at, co.livemode, attempt.failure_code)
        co.add("charge", ch)
        inv["attempt_count"] += 1
        inv["attempted"] = True
        if attempt.failure_code is None:
            transitions["paid_at"] = attempt.at
            payments.append(objects.invoice_payment(
                co.new_id("inpay"), inv["id"], ch["id"], amount, inv["currency"], attempt.at,
                "paid", attempt.at, co.livemode))
            inv.update(status="paid", amount_paid=amount, amount_remaining=0,
                       next_payment_attempt=None)
            co.emit("charge.succeeded", attempt.at, ch)
            co.emit("invoice_payment.paid", attempt.at, payments[-1])
            co.emit("invoice.paid", attempt.at, inv)
            co.emit("invoice.payment_succeeded", attempt.at, inv)
        else:
            payments.append(objects.invoice_payment(
                co.new_id("inpay"), inv["id"], ch["id"], amount, inv["currency"], attempt.at,
                "canceled", None, co.livemode))
            co.emit("charge.failed", attempt.at, ch)
            co.emit("invoice.payment_failed", attempt.at, inv)
    if inv["status"] == "open":
        inv["next_payment_attempt"] = collection.next_attempt
        if collection.exhausted:
            last = collection.attempts[-1].at if collection.attempts else created
            transitions["marked_uncollectible_at"] = last
            inv.update(status="uncollectible", next_payment_attempt=None)
            co.emit("invoice.marked_uncollectible", last, inv)
    inv["status_transitions"] = transitions
    inv["payments"] = objects.empty_list(f"/v1/invoice_payments?invoice={inv['id']}", payments)


def refund_charge(co: Company, ch: Obj, amount: int, at: int) -> Obj:
    """Refund `amount` of a succeeded charge at `at`, updating the charge and emitting events."""
    ref = objects.refund(co.new_id("re"), ch, amount, at)
    co.add("refund", ref)
    refunded = ch["amount_refunded"] + amount
    refunds = objects.empty_list(ch["refunds"]["url"], [*ch["refunds"]["data"], ref])
    ch.update(amount_refunded=refunded, refunded=refunded >= ch["amount"], refunds=refunds)
    co.emit("charge.refunded", at, ch)
    co.emit("refund.created", at, ref)
    return ref
