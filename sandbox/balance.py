"""Stripe's ledger of the sandbox company: `GET /v1/balance_transactions`, derived on demand.

As Stripe's balance moves, in the object's currency (the sandbox account settles in every
currency it charges, so `exchange_rate` is null):
- a succeeded charge moves its captured amount in (type `charge`, no fee), when the money was
  collected: a card charge on its creation, a bank debit (SEPA Direct Debit, ACH, BACS) when
  it succeeds days later (its invoice payment's `paid_at`); a pending or failed one moves
  nothing. The ids are the ones the charges name (`charge.balance_transaction`);
- a refund takes its amount out (type `refund`, negative) when it is created;
- a dispute withdraws the amount and the dispute fee when it opens (type `adjustment`,
  reporting category `dispute`, `amount` negative, `fee` the dispute fee) and, if won, gives
  both back when it closes (reporting category `dispute_reversal`): the lines the dispute
  holds in `balance_transactions`, with the dispute as their source;
- an invoice paid out of band moves nothing (no charge exists).
"""

from __future__ import annotations

from typing import Any

from sandbox.catalog import DAY
from sandbox.collection_shapes import DELAYED_METHODS

Obj = dict[str, Any]

AVAILABLE_AFTER = 2 * DAY  # Stripe's standard payout schedule in the US
BANK_DEBITS = frozenset(DELAYED_METHODS.values())


def balance_transactions(company: Any) -> list[Obj]:
    """The company's balance transactions, newest first (created, then id, descending)."""
    txns = []
    collected_at = _bank_debits_collected_at(company)
    for charge in company.objects["charge"]:
        if charge["status"] == "succeeded" and charge["amount_captured"] > 0:
            at = charge["created"]
            if charge["payment_method_details"].get("type") in BANK_DEBITS:
                at = collected_at.get(charge["payment_intent"], at)
            txns.append(_txn(charge["balance_transaction"] or f"txn_{charge['id'][3:]}",
                             charge["amount_captured"], 0, charge["currency"], at,
                             charge["id"], "charge", "charge", company.now))
    for refund in company.objects["refund"]:
        if refund["status"] in ("succeeded", "pending"):
            txns.append(_txn(refund["balance_transaction"] or f"txn_r{refund['id'][3:]}",
                             -refund["amount"], 0, refund["currency"], refund["created"],
                             refund["id"], "refund", "refund", company.now))
    for dispute in company.objects["dispute"]:
        for line in dispute["balance_transactions"]:
            category = "dispute" if line["amount"] < 0 else "dispute_reversal"
            txns.append(_txn(line["id"], line["amount"], line["fee"], line["currency"],
                             line["created"], dispute["id"], "adjustment", category,
                             company.now))
    txns.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
    return txns


def _bank_debits_collected_at(company: Any) -> dict[str, int]:
    """PaymentIntent id -> when its invoice payment was paid (a bank debit's success)."""
    paid_at = {}
    for invoice in company.objects["invoice"]:
        for payment in invoice["payments"]["data"]:
            intent = payment["payment"].get("payment_intent")
            if intent and payment["status"] == "paid":
                paid_at[intent] = payment["status_transitions"]["paid_at"]
    return paid_at


def _txn(txn_id: str, amount: int, fee: int, currency: str, created: int, source: str,
         kind: str, category: str, now: int) -> Obj:
    available_on = created + AVAILABLE_AFTER
    fee_details = [{"amount": fee, "application": None, "currency": currency,
                    "description": "Dispute fee", "type": "stripe_fee"}] if fee else []
    return {"id": txn_id, "object": "balance_transaction", "amount": amount,
            "available_on": available_on, "created": created, "currency": currency,
            "description": None, "exchange_rate": None, "fee": fee, "fee_details": fee_details,
            "net": amount - fee, "reporting_category": category, "source": source,
            "status": "available" if available_on <= now else "pending", "type": kind}
