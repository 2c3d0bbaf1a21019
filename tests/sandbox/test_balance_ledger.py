"""The sandbox's ledger (`GET /v1/balance_transactions`) follows the collection shapes of
issue 15 as Stripe's does, read through the real SDK:
- a bank debit (ACH) created on day 1 that succeeds on day 4: one `charge` line of its amount
  created on day 4 (nothing while it is pending);
- a bank debit that fails: no line at all;
- an invoice paid out of band: no line (no money moved through Stripe); one paid $60 by card
  and the rest out of band, or the rest by a payment recorded off Stripe: the card's line only;
- credit notes: one refunding $25 adds a `refund` line of -$25; one credited to the customer's
  balance or outside Stripe adds nothing, and the next invoice, lowered by the balance, is
  charged (and enters the ledger) for what is left;
- a dispute: one `adjustment` line of reporting category `dispute` when it opens, its amount
  negative and the dispute fee apart (net = -amount - fee), source the dispute; a won dispute
  adds a `dispute_reversal` line giving both back when it closes; a lost one adds nothing.
"""

from __future__ import annotations

import pytest
import stripe

from sandbox import collection_shapes as shapes
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer

NOW = 1_790_000_000
API_KEY = "sk_test_ledger"
DAY1 = NOW - 20 * DAY


@pytest.fixture(scope="module")
def ledger() -> tuple[Company, dict[str, dict], list]:
    co = generate_company(CompanyConfig(customers=40, years=1, seed=5, now=NOW))
    usd = [c for c in co.objects["customer"] if c["currency"] == "usd" and not c.get("deleted")]
    debited = shapes.one_off_invoice(co, usd[0]["id"], 10000, DAY1)
    debit = shapes.start_delayed_payment(co, debited["id"], DAY1)
    shapes.settle_delayed_payment(co, debited["id"], DAY1 + 3 * DAY)
    returned = shapes.one_off_invoice(co, usd[1]["id"], 4000, DAY1)
    failed = shapes.start_delayed_payment(co, returned["id"], DAY1)
    shapes.settle_delayed_payment(co, returned["id"], DAY1 + 3 * DAY, "insufficient_funds")
    cheque = shapes.one_off_invoice(co, usd[2]["id"], 7000, DAY1)
    shapes.pay_out_of_band(co, cheque["id"], DAY1 + DAY)
    card_lost = shapes.pay_by_card(co, shapes.one_off_invoice(co, usd[3]["id"], 5000, DAY1)["id"],
                                   DAY1)
    lost = shapes.open_dispute(co, card_lost["id"], DAY1 + 2 * DAY)
    shapes.close_dispute(co, lost["id"], DAY1 + 9 * DAY)
    card_won = shapes.pay_by_card(co, shapes.one_off_invoice(co, usd[4]["id"], 3000, DAY1)["id"],
                                  DAY1)
    won = shapes.open_dispute(co, card_won["id"], DAY1 + 2 * DAY)
    shapes.close_dispute(co, won["id"], DAY1 + 9 * DAY, won=True)
    partial = shapes.one_off_invoice(co, usd[5]["id"], 10000, DAY1)
    part_card = shapes.pay_by_card_in_part(co, partial["id"], 6000, DAY1 + DAY)
    shapes.pay_out_of_band(co, partial["id"], DAY1 + 2 * DAY)
    recorded = shapes.one_off_invoice(co, usd[6]["id"], 10000, DAY1)
    recorded_card = shapes.pay_by_card_in_part(co, recorded["id"], 6000, DAY1 + DAY)
    shapes.record_payment_off_stripe(co, recorded["id"], 4000, DAY1 + 2 * DAY)
    noted = shapes.one_off_invoice(co, usd[7]["id"], 8000, DAY1)
    noted_card = shapes.pay_by_card(co, noted["id"], DAY1)
    refunded = shapes.credit_note(co, noted["id"], 2500, DAY1 + DAY, "refund")
    shapes.credit_note(co, noted["id"], 1500, DAY1 + DAY, "credit")
    shapes.credit_note(co, noted["id"], 1000, DAY1 + DAY, "out_of_band")
    next_invoice = shapes.one_off_invoice(co, usd[7]["id"], 5000, DAY1 + 2 * DAY)
    next_card = shapes.pay_by_card(co, next_invoice["id"], DAY1 + 2 * DAY)
    ids = {"debit": debit, "failed": failed, "lost": lost, "won": won, "part_card": part_card,
           "recorded_card": recorded_card, "noted_card": noted_card, "refunded": refunded,
           "next_invoice": next_invoice, "next_card": next_card}
    with SandboxServer(accounts={API_KEY: co}) as server:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": server.url},
                                     max_network_retries=0)
        listed = list(client.v1.balance_transactions.list(params={
            "limit": 100, "created": {"gte": DAY1 - DAY, "lt": NOW},
            "expand": ["data.source"]}).auto_paging_iter())
    return co, ids, listed


def _of(listed: list, source_id: str) -> list:
    return sorted((t for t in listed if t.source.id == source_id), key=lambda t: t.created)


def test_a_bank_debit_enters_the_ledger_when_it_succeeds_and_a_returned_one_never(ledger):
    _, ids, listed = ledger
    (line,) = _of(listed, ids["debit"]["id"])
    assert (line.type, line.amount, line.fee, line.net) == ("charge", 10000, 0, 10000)
    assert line.created == DAY1 + 3 * DAY  # the day it succeeded, not the day it was created
    assert line.id == ids["debit"]["balance_transaction"]
    assert _of(listed, ids["failed"]["id"]) == []


def test_an_invoice_paid_out_of_band_moves_no_money(ledger):
    co, _, listed = ledger
    cheques = {i["id"] for i in co.objects["invoice"] if i.get("paid_out_of_band")}
    assert cheques
    charges_of_cheques = {c["id"] for c in co.objects["charge"] if c.get("invoice") in cheques}
    assert not charges_of_cheques & {t.source.id for t in listed}
    assert {t.type for t in listed} <= {"charge", "refund", "adjustment"}


def test_disputes_withdraw_amount_and_fee_and_a_won_one_is_reinstated(ledger):
    _, ids, listed = ledger
    (withdrawal,) = _of(listed, ids["lost"]["id"])
    assert (withdrawal.type, withdrawal.reporting_category, withdrawal.amount, withdrawal.fee,
            withdrawal.net, withdrawal.created) == (
        "adjustment", "dispute", -5000, 1500, -6500, DAY1 + 2 * DAY)
    assert withdrawal.source.object == "dispute" and withdrawal.source.status == "lost"
    opened, reinstated = _of(listed, ids["won"]["id"])
    assert (opened.reporting_category, opened.net) == ("dispute", -4500)
    assert (reinstated.type, reinstated.reporting_category, reinstated.amount, reinstated.fee,
            reinstated.net, reinstated.created) == (
        "adjustment", "dispute_reversal", 3000, -1500, 4500, DAY1 + 9 * DAY)


def test_only_the_part_paid_through_stripe_enters_the_ledger(ledger):
    _, ids, listed = ledger
    for name in ("part_card", "recorded_card"):
        (line,) = _of(listed, ids[name]["id"])
        assert (line.type, line.amount, line.created) == ("charge", 6000, DAY1 + DAY)


def test_credit_notes_move_money_only_by_their_refund(ledger):
    co, ids, listed = ledger
    (charge_line,) = _of(listed, ids["noted_card"]["id"])
    assert charge_line.amount == 8000
    (refund_id,) = [r["refund"] for r in ids["refunded"]["refunds"]]
    (refund_line,) = _of(listed, refund_id)
    assert (refund_line.type, refund_line.amount, refund_line.created) == (
        "refund", -2500, DAY1 + DAY)
    notes = [n for n in co.objects["credit_note"] if n["invoice"] == ids["refunded"]["invoice"]]
    assert [(n["refunds"] != [], n["customer_balance_transaction"] is not None,
             n["out_of_band_amount"]) for n in notes] == [
        (True, False, None), (False, True, None), (False, False, 1000)]
    # the $15 balance credit lowers the next invoice: $50 - $15 charged
    assert (ids["next_invoice"]["starting_balance"], ids["next_invoice"]["amount_due"]) == (
        -1500, 3500)
    (next_line,) = _of(listed, ids["next_card"]["id"])
    assert next_line.amount == 3500
    invoice = co.get("invoice", ids["refunded"]["invoice"])
    assert (invoice["amount_paid"], invoice["post_payment_credit_notes_amount"]) == (8000, 5000)
