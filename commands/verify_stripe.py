"""`verify`'s side of Stripe: the figures recomputed in Python straight from the API.

Independent of dbt: it reads the current listings (GET only, through the project's
rate-limited StripeReader) and applies docs/metrics-spec.md itself. Nothing read is stored.
- MRR and active subscriptions now: the listed subscriptions that count (active or past_due,
  no cancellation requested or scheduled, not paused, out of trial), valued from their prices
  read with tiers and currency options (verify_pricing.py), less item then subscription
  discounts. Inclusive tax is taken out with the percentages of the inclusive tax rates the
  subscription or item holds (the spec reads the same tax from the invoice lines those rates
  made); a tax-inclusive price with no tax rate (Stripe Tax fills none) is counted but left
  out of the MRR comparison on both sides, named in a note;
- revenue per day: Stripe's ledger, the balance transactions of type charge, payment, refund
  and payment_refund (a bank debit's line is dated when it succeeded); lost disputes from the
  disputes themselves (their withdrawal lines, amount and fee) on the day they closed, as the
  spec counts them (Stripe's ledger dates the withdrawal when the dispute opens);
- failed payments per day: each failed charge on the day it failed (`charge.failed` event,
  else its creation), `invoice.payment_failed` events no failed charge of the invoice accounts
  for, and the invoice evidence (`attempt_count` beyond the linked charges and those events),
  dated at finalization;
- customers now: the customers listing (Stripe lists no deleted customer).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from commands.verify_pricing import (
    INTERVAL_UNITS,
    MONTH_UNITS,
    PriceCannotSay,
    inclusive_percentage,
    is_running,
    is_tax_inclusive,
    item_interval_amount,
    monthly,
    recurring_off,
)

SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
EXPONENTS_CSV = SEEDS / "currency_exponents.csv"
LEDGER_TYPES = {"charge", "payment", "refund", "payment_refund"}
EVENTS_KEPT = 30 * 86_400  # Stripe keeps 30 days of events
FAILURE_MATCH = 3_600  # an invoice.payment_failed within an hour of a failed charge is that one
LATE_FAILURE = 14 * 86_400  # a bank debit created up to two weeks before it failed
Obj = dict[str, Any]

@dataclass(frozen=True)
class Money:
    """An amount in a currency's major unit."""

    amount: Decimal
    currency: str  # upper case


@dataclass(frozen=True)
class LedgerEntry:
    """One balance transaction counted as revenue, by the object that moved the money."""

    txn_id: str
    source_id: str
    day: date
    money: Money


@dataclass
class StripeFigures:
    """What the API says, with the objects behind each figure."""

    subscription_mrr: dict[str, Money] = field(default_factory=dict)  # counted subscriptions
    # counted subscriptions left out of the MRR comparison, with why (tax-inclusive, ...)
    mrr_left_out: dict[str, str] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    # failed attempts by day: a charge id, or "in_... (no charge)" for invoice evidence
    failed_attempts: dict[str, date] = field(default_factory=dict)
    customer_ids: set[str] = field(default_factory=set)


def exponents() -> dict[str, int]:
    """Minor-unit exponents that are not 2 (Stripe's zero- and three-decimal currencies)."""
    with EXPONENTS_CSV.open() as rows:
        return {row["currency"].upper(): int(row["exponent"]) for row in csv.DictReader(rows)}


def major(amount_minor: int | Decimal, currency: str, exps: dict[str, int]) -> Decimal:
    """A Stripe integer amount in the currency's major unit, exact."""
    return Decimal(amount_minor).scaleb(-exps.get(currency.upper(), 2))


def local_day(ts: int, zone: tzinfo = UTC) -> date:
    """The day of `zone` (the project's reporting time zone) the unix time falls on."""
    return datetime.fromtimestamp(ts, zone).date()


def read_figures(reader: Any, now: int, flows_from: int, flows_to: int,
                 zone: tzinfo = UTC) -> StripeFigures:
    """Everything `verify` compares: subscriptions and customers as listed now, the ledger and
    failed payments of [flows_from, flows_to), dated in `zone` (the reporting time zone)."""
    exps = exponents()
    figures = StripeFigures()
    prices = _by_id(reader.list_all("/v1/prices", {
        "expand": ["data.tiers", "data.currency_options"]}))
    coupons = _by_id(reader.list_all("/v1/coupons"))
    for page in reader.list_all("/v1/subscriptions", {
            "status": "all",
            "expand": ["data.discounts.source.coupon", "data.items.data.discounts"]}):
        for sub in page:
            if counts(sub, now):
                _value(figures, sub, _items(reader, sub), prices, coupons, now, exps)
    for page in reader.list_all("/v1/balance_transactions", {"expand": ["data.source"]},
                                created_gte=flows_from, created_lt=flows_to):
        figures.ledger.extend(e for txn in page
                              if (e := ledger_entry(txn, exps, zone)) is not None)
    events_from = max(flows_from, now - EVENTS_KEPT) - FAILURE_MATCH
    figures.ledger += lost_disputes(reader, events_from, now, flows_from, flows_to, exps, zone)
    figures.failed_attempts = failed_attempts(reader, events_from, now, flows_from, flows_to,
                                              zone)
    for page in reader.list_all("/v1/customers"):
        figures.customer_ids.update(c["id"] for c in page if not c.get("deleted"))
    return figures


def _by_id(pages: Iterable[list[Obj]]) -> dict[str, Obj]:
    return {obj["id"]: obj for page in pages for obj in page}


def counts(sub: Obj, now: int) -> bool:
    """The spec's predicate for a subscription that counts now (MRR and active subscriptions):
    active or past_due, no cancellation requested (Stripe's churn-at-request rule), not
    paused, not in a trial."""
    if sub["status"] not in ("active", "past_due"):
        return False
    if sub.get("canceled_at") or sub.get("cancel_at") or sub.get("cancel_at_period_end"):
        return False
    if sub.get("pause_collection"):
        return False
    return not (sub.get("trial_end") or 0) > now


def _items(reader: Any, sub: Obj) -> list[Obj]:
    embedded = sub["items"]
    if not embedded.get("has_more"):
        return embedded["data"]
    return [item for page in reader.list_sequential(
        "/v1/subscription_items", {"subscription": sub["id"], "expand": ["data.discounts"]})
        for item in page]


def _value(figures: StripeFigures, sub: Obj, items: list[Obj], prices: dict[str, Obj],
           coupons: dict[str, Obj], now: int, exps: dict[str, int]) -> None:
    """Count the subscription; value it, or say why its MRR is not compared."""
    currency = sub["currency"]
    figures.subscription_mrr[sub["id"]] = Money(Decimal(0), currency.upper())
    inclusive: dict[str, Decimal] = {}  # item id -> inclusive tax percentage to take out
    try:
        for item in _licensed(items):
            price = prices.get(item["price"]["id"], item["price"])
            rates = [*(sub.get("default_tax_rates") or []), *(item.get("tax_rates") or [])]
            if is_tax_inclusive(price, currency, rates):
                percentage = inclusive_percentage(rates)
                if not percentage:
                    figures.mrr_left_out[sub["id"]] = (
                        "a tax-inclusive price with no tax rate (Stripe Tax): its tax is known "
                        "only from the invoice lines the warehouse reads")
                    return
                inclusive[item["id"]] = percentage
        figures.subscription_mrr[sub["id"]] = subscription_mrr(sub, items, prices, coupons,
                                                               now, exps, inclusive)
    except PriceCannotSay as reason:
        figures.mrr_left_out[sub["id"]] = str(reason)


def _licensed(items: Iterable[Obj]) -> list[Obj]:
    return [item for item in items if (item["price"].get("recurring") or {}).get("usage_type")
            == "licensed"]


def _coupon(discount: Obj | str, coupons: dict[str, Obj]) -> tuple[Obj, Obj | None]:
    """A discount and its coupon's terms (expanded, else from the coupons listing)."""
    if isinstance(discount, str):
        return {"id": discount}, None
    coupon = discount["source"]["coupon"]
    return discount, coupon if isinstance(coupon, dict) else coupons.get(coupon)


def subscription_mrr(sub: Obj, items: Iterable[Obj], prices: dict[str, Obj],
                     coupons: dict[str, Obj], now: int, exps: dict[str, int],
                     inclusive: dict[str, Decimal] | None = None) -> Money:
    """The subscription's MRR in its currency: licensed items valued from their prices and
    normalised to a month, without the inclusive tax their tax rates hold (`inclusive`: item
    id -> percentage), each less its own running discounts (capped at its amount), then
    less the subscription's running discounts (percent of what the items leave, amount_off
    over the interval)."""
    currency = sub["currency"]

    def major_of(amount: int | Decimal) -> Decimal:
        return major(amount, currency, exps)

    net_items, units = Decimal(0), MONTH_UNITS
    for item in _licensed(items):
        price = prices.get(item["price"]["id"], item["price"])
        recurring = price["recurring"]
        units = INTERVAL_UNITS[recurring["interval"]] * (recurring.get("interval_count") or 1)
        amount = major_of(item_interval_amount(price, item.get("quantity") or 0, currency))
        if (inclusive or {}).get(item["id"]):
            amount = amount * 100 / (100 + inclusive[item["id"]])
        amount = monthly(amount, units)
        off = Decimal(0)
        for applied in item.get("discounts") or []:
            discount, coupon = _coupon(applied, coupons)
            if is_running(discount, coupon, now):
                off += recurring_off(amount, coupon, units, currency, major_of)
        net_items += max(amount - off, Decimal(0))
    off = Decimal(0)
    for applied in sub.get("discounts") or []:
        discount, coupon = _coupon(applied, coupons)
        if is_running(discount, coupon, now):
            off += recurring_off(net_items, coupon, units, currency, major_of)
    return Money(max(net_items - off, Decimal(0)), currency.upper())


def ledger_entry(txn: Obj, exps: dict[str, int], zone: tzinfo = UTC) -> LedgerEntry | None:
    """The revenue a balance transaction moved, in the currency of its source object (the
    ledger's own amount is in the settlement currency when Stripe converted it). Dispute lines
    are left to `lost_disputes` (the spec dates a lost dispute when it closes)."""
    if txn["type"] not in LEDGER_TYPES:
        return None
    source = txn.get("source")
    source_id = source["id"] if isinstance(source, dict) else str(source)
    amount, currency = txn["amount"], txn["currency"]
    if txn.get("exchange_rate") is not None and isinstance(source, dict):
        sign = -1 if txn["amount"] < 0 else 1
        original = source.get("amount_captured") or source.get("amount") or 0
        amount, currency = sign * original, source["currency"]
    return LedgerEntry(txn["id"], source_id, local_day(txn["created"], zone),
                       Money(major(amount, currency, exps), currency.upper()))


def _events(reader: Any, kind: str, since: int, until: int) -> list[Obj]:
    return [event for page in reader.list_all("/v1/events", {"type": kind},
                                              created_gte=since, created_lt=until)
            for event in page]


def lost_disputes(reader: Any, events_from: int, now: int, flows_from: int, flows_to: int,
                  exps: dict[str, int], zone: tzinfo = UTC) -> list[LedgerEntry]:
    """Each lost dispute closed in [flows_from, flows_to): its withdrawal lines' net (amount
    and fee) on the day it closed (`charge.dispute.closed`, else its evidence deadline).
    Events are read up to `now`: one closed after the window dates its dispute out of it."""
    closed_at = {event["data"]["object"]["id"]: event["created"]
                 for event in _events(reader, "charge.dispute.closed", events_from, now + 1)}
    entries = []
    for page in reader.list_all("/v1/disputes"):
        for dispute in page:
            if dispute["status"] != "lost":
                continue
            at = closed_at.get(dispute["id"], dispute["evidence_details"]["due_by"])
            if not flows_from <= at < flows_to:
                continue
            for line in dispute.get("balance_transactions") or []:
                entries.append(LedgerEntry(
                    line["id"], dispute["id"], local_day(at, zone),
                    Money(major(line["net"], line["currency"], exps), line["currency"].upper())))
    return entries


def failed_attempts(reader: Any, events_from: int, now: int, flows_from: int,
                    flows_to: int, zone: tzinfo = UTC) -> dict[str, date]:
    """Each failed payment attempt of [flows_from, flows_to) once, on the day it failed.
    `charge.failed` events are read up to `now`: a bank debit created inside the window that
    failed after it failed then, not on its creation day."""
    failed_at = {event["data"]["object"]["id"]: event["created"]
                 for event in _events(reader, "charge.failed", events_from, now + 1)}
    failed = {}  # charge id -> (failed at, customer, payment intent)
    for page in reader.list_all("/v1/charges", created_gte=flows_from - LATE_FAILURE,
                                created_lt=flows_to):
        for charge in page:
            if charge["status"] == "failed":
                at = failed_at.get(charge["id"], charge["created"])
                failed[charge["id"]] = (at, charge.get("customer"), charge.get("payment_intent"))
    attempts = {cid: local_day(at, zone) for cid, (at, _, _) in failed.items()
                if flows_from <= at < flows_to}
    attempts.update(_attempts_without_charge(reader, failed, events_from, flows_from, flows_to,
                                             zone))
    return attempts


def _attempts_without_charge(reader: Any, failed: dict[str, tuple[int, Any, Any]],
                             events_from: int, flows_from: int, flows_to: int,
                             zone: tzinfo = UTC) -> dict[str, date]:
    """`invoice.payment_failed` events no failed charge accounts for (a failed charge paying
    the invoice, or paying no invoice and of the same customer, failed within an hour), and
    the invoice evidence: `attempt_count` beyond its linked charges and those events, dated at
    its finalization."""
    events = _events(reader, "invoice.payment_failed", events_from, flows_to)
    invoices = _by_id(reader.list_all("/v1/invoices", {"expand": ["data.payments"]},
                                      created_gte=flows_from - LATE_FAILURE,
                                      created_lt=flows_to))
    for event in events:
        invoice_id = event["data"]["object"]["id"]
        if invoice_id not in invoices:
            found = reader.retrieve(f"/v1/invoices/{invoice_id}", {"expand": ["payments"]})
            if found is not None:
                invoices[invoice_id] = found
    charges_of: dict[str, set[str]] = {}
    paying_an_invoice: set[str] = set()
    by_intent = {intent: cid for cid, (_, _, intent) in failed.items() if intent}
    for invoice in invoices.values():
        linked = set()
        for payment in (invoice.get("payments") or {}).get("data") or []:
            ref = payment.get("payment") or {}
            linked.add(ref.get("charge") or by_intent.get(ref.get("payment_intent"))
                       or ref.get("payment_intent") or payment["id"])
        charges_of[invoice["id"]] = linked
        paying_an_invoice |= linked
    attempts: dict[str, date] = {}
    chargeless = defaultdict(int)
    for event in events:
        invoice = event["data"]["object"]
        linked = charges_of.get(invoice["id"], set())
        if any(abs(at - event["created"]) <= FAILURE_MATCH
               and (cid in linked or (cid not in paying_an_invoice
                                      and customer == invoice.get("customer")))
               for cid, (at, customer, _) in failed.items()):
            continue
        chargeless[invoice["id"]] += 1
        if flows_from <= event["created"] < flows_to:
            attempts[f"{invoice['id']} ({event['id']}, no charge)"] = local_day(
                event["created"], zone)
    for invoice in invoices.values():
        if invoice.get("payments") is None:
            continue  # its charges are unknown: no evidence
        rest = (invoice.get("attempt_count") or 0) - len(charges_of[invoice["id"]]) \
            - chargeless[invoice["id"]]
        finalized = (invoice.get("status_transitions") or {}).get("finalized_at")
        if rest > 0 and finalized and flows_from <= finalized < flows_to:
            for n in range(rest):
                attempts[f"{invoice['id']} (attempt without charge {n + 1}, estimated)"] = \
                    local_day(finalized, zone)
    return attempts
