"""Stripe's ledger of the sandbox company: `GET /v1/balance_transactions`, derived on demand.

Every succeeded charge moves its captured amount into the balance (type `charge`) and every
refund takes its amount out (type `refund`, negative), on the object's `created` time, in the
object's currency (the sandbox account settles in every currency it charges, so
`exchange_rate` is null) and without fees. The transaction ids are the ones the charges name
(`charge.balance_transaction`), so a charge and its ledger line can be joined by id.
"""

from __future__ import annotations

from typing import Any

from sandbox.catalog import DAY

Obj = dict[str, Any]

AVAILABLE_AFTER = 2 * DAY  # Stripe's standard payout schedule in the US


def balance_transactions(company: Any) -> list[Obj]:
    """The company's balance transactions, newest first (created, then id, descending)."""
    txns = []
    for charge in company.objects["charge"]:
        if charge["status"] == "succeeded" and charge["amount_captured"] > 0:
            txns.append(_txn(charge["balance_transaction"] or f"txn_{charge['id'][3:]}",
                             charge["amount_captured"], charge["currency"], charge["created"],
                             charge["id"], "charge", company.now))
    for refund in company.objects["refund"]:
        if refund["status"] in ("succeeded", "pending"):
            txns.append(_txn(refund["balance_transaction"] or f"txn_r{refund['id'][3:]}",
                             -refund["amount"], refund["currency"], refund["created"],
                             refund["id"], "refund", company.now))
    txns.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
    return txns


def _txn(txn_id: str, amount: int, currency: str, created: int, source: str, kind: str,
         now: int) -> Obj:
    available_on = created + AVAILABLE_AFTER
    return {"id": txn_id, "object": "balance_transaction", "amount": amount,
            "available_on": available_on, "created": created, "currency": currency,
            "description": None, "exchange_rate": None, "fee": 0, "fee_details": [],
            "net": amount, "reporting_category": kind, "source": source,
            "status": "available" if available_on <= now else "pending", "type": kind}
