"""`verify`'s side of Stripe: the figures recomputed in Python straight from the API.

Independent of dbt: it reads the current listings (GET only, through the project's
rate-limited StripeReader) and applies docs/metrics-spec.md itself. Nothing read is stored.
- MRR and active subscriptions now: the listed subscriptions that count (active or past_due,
  no cancellation requested or scheduled, not paused, out of trial), each licensed item's
  amount for one interval normalised to a month, less its recurring discounts;
- revenue per day: Stripe's ledger, the balance transactions of type charge, payment, refund,
  payment_refund and the dispute ones (reporting_category dispute / dispute_reversal), in the
  currency of the object that moved the money;
- failed payments per day: the failed charges;
- customers now: the customers listing (Stripe lists no deleted customer).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
EXPONENTS_CSV = SEEDS / "currency_exponents.csv"
MICRO = Decimal("0.000001")
# units of 1/4745 month per interval (the warehouse's `interval_units`): exact month fractions
INTERVAL_UNITS = {"month": 4745, "year": 56940, "week": 1095, "day": 156}
LEDGER_TYPES = {"charge", "payment", "refund", "payment_refund"}
LEDGER_CATEGORIES = {"dispute", "dispute_reversal"}
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
    ledger: list[LedgerEntry] = field(default_factory=list)
    failed_charges: dict[str, date] = field(default_factory=dict)
    customer_ids: set[str] = field(default_factory=set)


def exponents() -> dict[str, int]:
    """Minor-unit exponents that are not 2 (Stripe's zero- and three-decimal currencies)."""
    with EXPONENTS_CSV.open() as rows:
        return {row["currency"].upper(): int(row["exponent"]) for row in csv.DictReader(rows)}


def major(amount_minor: int | Decimal, currency: str, exps: dict[str, int]) -> Decimal:
    """A Stripe integer amount in the currency's major unit, exact."""
    return Decimal(amount_minor).scaleb(-exps.get(currency.upper(), 2))


def round_money(value: Decimal) -> Decimal:
    """Six decimals, half away from zero (the warehouse's one rounding rule)."""
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def utc_day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def read_figures(reader: Any, now: int, flows_from: int, flows_to: int) -> StripeFigures:
    """Everything `verify` compares: subscriptions and customers as listed now, the ledger and
    failed charges created in [flows_from, flows_to)."""
    exps = exponents()
    figures = StripeFigures()
    for page in reader.list_all("/v1/subscriptions", {
            "status": "all", "expand": ["data.discounts.source.coupon"]}):
        for sub in page:
            if counts(sub, now):
                items = _items(reader, sub)
                figures.subscription_mrr[sub["id"]] = subscription_mrr(sub, items, now, exps)
    for page in reader.list_all("/v1/balance_transactions", {"expand": ["data.source"]},
                                created_gte=flows_from, created_lt=flows_to):
        figures.ledger.extend(e for txn in page if (e := ledger_entry(txn, exps)) is not None)
    for page in reader.list_all("/v1/charges", created_gte=flows_from, created_lt=flows_to):
        for charge in page:
            if charge["status"] == "failed":
                figures.failed_charges[charge["id"]] = utc_day(charge["created"])
    for page in reader.list_all("/v1/customers"):
        figures.customer_ids.update(c["id"] for c in page if not c.get("deleted"))
    return figures


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
        "/v1/subscription_items", {"subscription": sub["id"]}) for item in page]


def item_interval_amount(price: Obj, quantity: int) -> Decimal:
    """One billing interval of a licensed item in minor units: per unit, or graduated tiers."""
    if price["billing_scheme"] == "per_unit":
        return Decimal(price["unit_amount_decimal"] or price["unit_amount"] or 0) * quantity
    total, floor = Decimal(0), 0
    for tier in price["tiers"] or []:
        ceiling = tier["up_to"] if tier["up_to"] is not None else quantity
        units = max(0, min(quantity, ceiling) - floor)
        if units:
            unit = tier.get("unit_amount_decimal") or tier.get("unit_amount") or 0
            total += units * Decimal(unit) + Decimal(tier.get("flat_amount") or 0)
        floor = ceiling
        if floor >= quantity:
            break
    return total


def subscription_mrr(sub: Obj, items: Iterable[Obj], now: int, exps: dict[str, int]) -> Money:
    """The subscription's MRR in its currency: licensed items normalised to a month, less the
    recurring discounts still running (percent of the gross, amount_off over the interval)."""
    currency = sub["currency"].upper()
    gross, units = Decimal(0), INTERVAL_UNITS["month"]
    for item in items:
        price = item["price"]
        recurring = price.get("recurring")
        if not recurring or recurring.get("usage_type") != "licensed":
            continue
        units = INTERVAL_UNITS[recurring["interval"]] * (recurring.get("interval_count") or 1)
        amount = major(item_interval_amount(price, item.get("quantity") or 1), currency, exps)
        gross += round_money(amount * 4745 / units)
    discount = Decimal(0)
    for applied in sub.get("discounts") or []:
        if isinstance(applied, str):
            continue  # not expanded: cannot happen with the listing's expansion
        coupon = applied["source"]["coupon"]
        if coupon["duration"] == "once" or (applied.get("end") and applied["end"] <= now):
            continue
        if coupon.get("percent_off"):
            discount += round_money(gross * Decimal(str(coupon["percent_off"])) / 100)
        if coupon.get("amount_off") and (coupon.get("currency") or "").upper() == currency:
            off = major(coupon["amount_off"], currency, exps)
            discount += round_money(off * 4745 / units)
    return Money(max(gross - discount, Decimal(0)), currency)


def ledger_entry(txn: Obj, exps: dict[str, int]) -> LedgerEntry | None:
    """The revenue a balance transaction moved, in the currency of its source object (the
    ledger's own amount is in the settlement currency when Stripe converted it)."""
    if txn["type"] not in LEDGER_TYPES and txn.get("reporting_category") not in LEDGER_CATEGORIES:
        return None
    source = txn.get("source")
    source_id = source["id"] if isinstance(source, dict) else str(source)
    amount, currency = txn["amount"], txn["currency"]
    if txn.get("exchange_rate") is not None and isinstance(source, dict):
        sign = -1 if txn["amount"] < 0 else 1
        original = source.get("amount_captured") or source.get("amount") or 0
        amount, currency = sign * original, source["currency"]
    return LedgerEntry(txn["id"], source_id, utc_day(txn["created"]),
                       Money(major(amount, currency, exps), currency.upper()))
