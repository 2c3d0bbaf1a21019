"""Money collected and failed payments that reconcile with Stripe (issue 15, cases 1, 4, 5;
money paid partly outside Stripe; credit notes of every settlement).

Sandbox -> real sync over HTTP -> real `dbt build`. The company has no generated customers:
only the shapes below, one customer each, so every figure is the shapes' own. Day -n is the
UTC day n days before today; each moment is at noon of its day unless said. By hand
(METRICS-SPEC `stripe_revenue`, `stripe_failed_payments`), in each shape's own currency
(`fct_revenue_daily.revenue`, `fct_failed_payments_daily.failed_attempts`):

- A, SEPA Direct Debit (EUR): a EUR 100 one-off invoice attempted at -10, its charge `pending`
  until it succeeds at -5 (invoice paid at -5). EUR revenue: -11 none, -10 none, -5 100,
  later none. EUR 100 in all, once.
- B, card (USD): a $50 invoice paid by card at -8 10:00, and a real one-off $50 charge of the
  same customer at -8 14:00. Revenue -8: $100 (the one-off is not the invoice's payment).
- C, out of band (USD): a $30 invoice created at -9, marked paid out of band at -7: no money
  collected. Revenue -7: $0; `paid_out_of_band` -7: $30.
- D, credit note (USD): an $80 invoice paid by card at -12; a credit note at -4 refunds $20.
  Revenue -12: $80, -4: -$20 (the refund, once: the credit note is not counted again).
- E, lost dispute (USD): a $60 one-off charge at -14, disputed at -9, lost at -3 ($15 dispute
  fee). Revenue -14: $60, -9: none, -3: -$75 (`dispute_losses` $75).
- F, ACH failure (USD): a $40 invoice attempted by ACH at -6, the debit returned at -2
  (`charge.failed` + `invoice.payment_failed` at -2). Failed attempts: -6 none, -2 one.
- G, no payment method, before the event window (USD): a $25 invoice created at -40,
  attempted at -40 13:00 without a charge (its `invoice.payment_failed` is older than the 30
  days Stripe keeps). Failed attempts -40: one (from the invoice's `attempt_count`).
- H, no payment method, inside the window (USD): a $35 invoice created at -3, attempted at
  -3 13:00 without a charge. Failed attempts -3: one (the event and the invoice evidence are
  the same attempt).
- I, paid partly by card, the rest out of band (USD): a $90 invoice created at -10, $50 of
  it paid by card at -10 13:00 (a partial payment: the invoice stays open), the $40 left
  marked paid out of band at -6 (`paid_out_of_band`; `amount_paid` $90). Revenue -10: $50
  (collected by Stripe, though the invoice is not paid yet), -6: none; `paid_out_of_band`
  -6: $40. The old rule booked $0 (the whole invoice out of band, its charge linked to it).
- J, a payment recorded off Stripe (USD): a $120 invoice created at -8, $20 paid by card at
  -7, $100 recorded as paid outside Stripe at -5 (an invoice payment of type
  `payment_record`; the invoice is paid then, `amount_paid` $120, no `paid_out_of_band`
  flag). Revenue -7: $20, -5: none; `paid_out_of_band` -5: $100. The old rule booked $120
  on -5.
- K, credit note to the customer's balance (USD): a $60 invoice paid by card at -13; a $15
  credit note credited to the customer's balance at -6 (no money moves); a $50 invoice at -2
  takes the $15 credit (`amount_due` $35) and is paid by card. Revenue -13: $60, -6: none,
  -2: $35.
- L, credit note on an unpaid invoice (USD): a $40 invoice created at -5, a $10 credit note at
  -4 (pre-payment: `amount_due` $30), paid by card at -3. Revenue -5: none, -4: none, -3:
  $30.
- M, credit note credited outside Stripe (USD): a $70 invoice paid by card at -11, a $70
  credit note with `out_of_band_amount` $70 at -1 (the customer was paid back outside
  Stripe; Stripe's balance does not move). Revenue -11: $70, -1: none.
- N, a partial payment arriving by webhook (EUR, 19% VAT on top): a EUR 119 invoice (EUR 100
  + 19 VAT) created at -8, EUR 59.50 of it paid by card at -7 (the invoice stays open: Stripe
  sends `charge.succeeded`, `invoice_payment.paid` and `invoice.updated`, no `invoice.paid`),
  the other EUR 59.50 paid by card at -4. EUR revenue -8: none, -7: 59.50 as an invoice
  payment holding 9.50 of VAT (59.50 x 19 / 119; 50 excluding tax), -6 and -5: none from N,
  -4: 59.50 (9.50 VAT). Before the applier read those events, the realtime marts between -7
  and -4 booked the EUR 59.50 as a standalone charge with no tax (EUR 59.50 excluding tax).
- O, twelve attempts without a payment method, all before the event window (EUR): a EUR 25
  invoice created at -45, attempted at 13:00 on each day -45 .. -34 without a charge
  (`attempt_count` 12; every `invoice.payment_failed` is older than the 30 days Stripe
  keeps). Failed attempts EUR -46: none, -45: 12 (dated at finalization, estimated), -44 and
  later: none. A series of 10 numbers capped it at 10.
- P, credit notes carrying their own tax (EUR, 19% VAT on top): a EUR 119 invoice (100 + 19
  VAT) paid by card at -8; a credit note at -6 refunds EUR 59.50 of its line (EUR 9.50 of it
  VAT, `total_taxes`); a credit note at -3 refunds a EUR 20 service credit, a custom line
  without tax (`total_taxes` empty). EUR revenue -9: none, -8: 119 (19 VAT), -6: -59.50 (-9.50
  VAT, -50 excluding tax), -3: -20 (no VAT, -20 excluding tax), -2: -11.90 (below). The invoice's
  share (the rule before credit notes were read) returned -20 x 19 / 119 = -3.193277 of VAT on
  -3, -16.806723 excluding tax. At -2, EUR 11.90 refunded without a credit note returns the
  invoice's share, EUR 1.90 of VAT (before, none: the refund's charge paid the invoice through
  its PaymentIntent, a link the tax model did not read).
Invoices in dunning (EUR, end of day): O from -45 to today (A's debit pending and N half paid
are not dunned): 1 on -45..today.
Invoices in dunning (USD, end of day): G from -40, H from -3, F from -2 (A and F while their
debit is pending are being paid, not dunned; I, J, L are open without a failed attempt):
1 on -40..-4, 2 on -3, 3 on -2..today.
EUR revenue: -8 119 (P), -7 59.50 (N), -6 -59.50 (P), -5 100 (A), -4 59.50 (N), -3 -20 (P),
-2 -11.90 (P); its tax -8 19, -7 9.50, -6 -9.50, -4 9.50, -2 -1.90; refunds -6 59.50, -3 20,
-2 11.90; the rest invoice payments. USD invoice payments: -13 60 (K), -12 80 (D), -11 70 (M),
-10 50 (I), -8 50 (B), -7 20 (J), -3 30 (L), -2 35 (K2); standalone charges: -14 60 (E),
-8 50 (B's one-off).
USD revenue: -14 60, -13 60, -12 80, -11 70, -10 50, -8 100, -7 20, -4 -20, -3 -75 + 30 =
-45, -2 35, nothing else (-7 holds C's out-of-band $30 outside revenue, -6 I's $40, -5 J's
$100, -1 M's credit note). Out of band: -7 30, -6 40, -5 100. Failed attempts: USD -40 1, -3 1,
-2 1, EUR -45 12, nothing else.

Scenarios: a backfill today; a backfill at -9 18:00 (A pending, D, K and M paid, I half paid,
E disputed, G and C's invoice there) followed by the rest and two refreshes; the same early
backfill followed by the rest as webhooks (Stripe's events, each object re-fetched; N's
partial payment first, built alone: the realtime marts between -7 and -4), then a refresh.
All must give the figures above.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.webhooks_apply import apply_inbox
from sandbox import collection_shapes as shapes
from sandbox import objects, taxes
from sandbox.api import StripeApi
from sandbox.billing import refund_charge
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of
from tests.dbt.warehouses import reading_warehouse

PROJECT_ID = "collected"
API_KEY = "sk_test_collected_revenue"
HOUR = 3600


class Timeline:
    """Moments at a given hour of day -n (unix seconds), and their UTC days."""

    def __init__(self) -> None:
        self.now = int(time.time()) - 60
        self.midnight = self.now - self.now % DAY

    def at(self, days_ago: int, hour: int = 12) -> int:
        return self.midnight - days_ago * DAY + hour * HOUR

    def day(self, days_ago: int) -> date:
        return datetime.fromtimestamp(self.at(days_ago), UTC).date()


def new_customer(co: Company, currency: str, at: int) -> str:
    n = len(co.objects["customer"]) + 1
    cust = objects.customer(co.new_id("cus"), n, at, currency, co.livemode)
    co.register_customer(cust, n)
    co.emit("customer.created", at, cust)
    return cust["id"]


class Shapes:
    """The scenario's shapes, applied in two phases: up to -9 18:00, then the rest."""

    def __init__(self, co: Company, t: Timeline) -> None:
        self.co, self.t = co, t
        self.customers = {name: new_customer(co, "eur" if name in "ANOP" else "usd", t.at(60))
                          for name in "ABCDEFGHIJKLMNOP"}
        self.invoices: dict[str, str] = {}

    def invoice(self, name: str, amount: int, at: int, tax_rates: list | None = None) -> str:
        customer = self.customers[name[0]]  # K2: K's second invoice
        self.invoices[name] = shapes.one_off_invoice(self.co, customer, amount, at,
                                                     tax_rates=tax_rates)["id"]
        return self.invoices[name]

    def before_early_backfill(self) -> None:
        co, t = self.co, self.t
        shapes.start_delayed_payment(co, self.invoice("A", 10000, t.at(10)), t.at(10))
        self.invoice("C", 3000, t.at(9))
        shapes.pay_by_card(co, self.invoice("D", 8000, t.at(12)), t.at(12))
        charge = shapes.standalone_charge(co, self.customers["E"], 6000, t.at(14))
        self.dispute = shapes.open_dispute(co, charge["id"], t.at(9))["id"]
        shapes.fail_without_payment_method(co, self.invoice("G", 2500, t.at(40)), t.at(40, 13))
        shapes.pay_by_card_in_part(co, self.invoice("I", 9000, t.at(10)), 5000, t.at(10, 13))
        shapes.pay_by_card(co, self.invoice("K", 6000, t.at(13)), t.at(13))
        shapes.pay_by_card(co, self.invoice("M", 7000, t.at(11)), t.at(11))
        self.invoice("O", 2500, t.at(45))
        for day in range(45, 33, -1):
            shapes.fail_without_payment_method(co, self.invoices["O"], t.at(day, 13))

    def partial_payment(self) -> None:
        """N's invoice and its first half paid (the realtime marts' case: no invoice.paid)."""
        co, t = self.co, self.t
        _, vat_on_top = taxes.vat_rates(co, t.at(60))
        self.invoice("N", 10000, t.at(8), tax_rates=[vat_on_top])  # EUR 100 + 19 VAT
        shapes.pay_by_card_in_part(co, self.invoices["N"], 5950, t.at(7))

    def after_early_backfill(self) -> None:
        self.partial_payment()
        self.after_partial_payment()

    def after_partial_payment(self) -> None:
        co, t = self.co, self.t
        shapes.pay_by_card(co, self.invoices["N"], t.at(4))
        _, vat_on_top = taxes.vat_rates(co, t.at(60))
        shapes.pay_by_card(co, self.invoice("P", 10000, t.at(8), [vat_on_top]), t.at(8))
        shapes.refund_with_credit_note(co, self.invoices["P"], 5950, t.at(6))  # 9.50 VAT
        shapes.refund_with_credit_note(co, self.invoices["P"], 2000, t.at(3), tax=0)
        paid_by = co.get("invoice", self.invoices["P"])["payments"]["data"][0]["payment"]
        charge = next(c for c in co.objects["charge"]
                      if c["payment_intent"] == paid_by["payment_intent"])
        refund_charge(co, charge, 1190, t.at(2))  # a refund without a credit note
        shapes.pay_by_card(co, self.invoice("B", 5000, t.at(8, 10)), t.at(8, 10))
        shapes.standalone_charge(co, self.customers["B"], 5000, t.at(8, 14))
        shapes.pay_out_of_band(co, self.invoices["C"], t.at(7))
        shapes.start_delayed_payment(co, self.invoice("F", 4000, t.at(6)), t.at(6))
        shapes.settle_delayed_payment(co, self.invoices["A"], t.at(5))
        shapes.refund_with_credit_note(co, self.invoices["D"], 2000, t.at(4))
        shapes.close_dispute(co, self.dispute, t.at(3))
        shapes.fail_without_payment_method(co, self.invoice("H", 3500, t.at(3)), t.at(3, 13))
        shapes.settle_delayed_payment(co, self.invoices["F"], t.at(2), "insufficient_funds")
        shapes.pay_out_of_band(co, self.invoices["I"], t.at(6))
        shapes.pay_by_card_in_part(co, self.invoice("J", 12000, t.at(8)), 2000, t.at(7))
        shapes.record_payment_off_stripe(co, self.invoices["J"], 10000, t.at(5))
        shapes.credit_note(co, self.invoices["K"], 1500, t.at(6), "credit")
        shapes.pay_by_card(co, self.invoice("K2", 5000, t.at(2)), t.at(2, 13))
        shapes.credit_note(co, self.invoice("L", 4000, t.at(5)), 1000, t.at(4))
        shapes.pay_by_card(co, self.invoices["L"], t.at(3, 13))
        shapes.credit_note(co, self.invoices["M"], 7000, t.at(1), "out_of_band")


def sync_at(store: ConnectionStore, home, url: str, kind: str, at: int | None) -> None:
    """A real sync; with `at`, as if run at that moment (its rows and run stamped then)."""
    sync_as_of(store, PROJECT_ID, home, url, kind, at)


def figures(home: Path) -> dict[str, dict[tuple[str, date], Decimal | int]]:
    """The marts' non-zero figures by (currency, day): revenue, out-of-band payments, dispute
    losses, refunds, failed attempts; and the published failed-payment count by day."""
    with reading_warehouse(home) as con:
        def by_day(sql: str) -> dict[tuple[str, date], Decimal | int]:
            return {(cur, day): value for cur, day, value in con.execute(sql, [PROJECT_ID])
                    .fetchall() if value}

        revenue = ("select currency, metric_date, {} from marts.fct_revenue_daily "
                   "where project_id = ?")
        return {
            "revenue": by_day(revenue.format("revenue")),
            "invoice_payments": by_day(revenue.format("invoice_payments")),
            "standalone_charges": by_day(revenue.format("standalone_charges")),
            "tax_amount": by_day(revenue.format("tax_amount")),
            "paid_out_of_band": by_day(revenue.format("paid_out_of_band")),
            "dispute_losses": by_day(revenue.format("dispute_losses")),
            "refunds": by_day(revenue.format("refunds")),
            "failed_attempts": by_day(
                "select currency, metric_date, failed_attempts from marts.fct_failed_payments_daily"
                " where project_id = ?"),
            "estimated_attempts": by_day(
                "select currency, metric_date, estimated_attempts "
                "from marts.fct_failed_payments_daily where project_id = ?"),
            "invoices_in_dunning": by_day(
                "select currency, metric_date, invoices_in_dunning "
                "from marts.fct_failed_payments_daily where project_id = ?"),
            "published_failures": by_day(
                "select 'all', metric_date, value from marts.metrics_daily "
                "where project_id = ? and metric = 'stripe_failed_payments'"),
        }


def deliver_as_webhooks(home: Path, company: Company, events: list[dict], url: str) -> None:
    """Stripe's webhook deliveries of `events` (rendered as sent: no includable or expanded
    field), applied as the web service does: each named object re-fetched from the API."""
    api = StripeApi(company)
    with Inbox(home) as inbox:
        for event in events:
            inbox.store(PROJECT_ID, api.render(event))
    applied = apply_inbox(home, api_base=url)
    assert applied.failed == 0 and applied.waiting == {}


@pytest.fixture(scope="module")
def scenarios(new_home) -> tuple[Timeline, dict[str, dict]]:
    """The figures of each scenario (one warehouse each) after each sync and build."""
    t = Timeline()
    results: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        for scenario in ("backfill", "early_backfill_then_refreshes",
                         "early_backfill_then_webhooks"):
            home = new_home(scenario)
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
            company = generate_company(CompanyConfig(customers=0, years=1, seed=15, now=t.now))
            scenario_shapes = Shapes(company, t)
            scenario_shapes.before_early_backfill()
            with SandboxServer(accounts={API_KEY: company}) as server:
                store = ConnectionStore(home)
                store.connect(PROJECT_ID, "pro", API_KEY)
                if scenario == "backfill":
                    scenario_shapes.after_early_backfill()
                    sync_at(store, home, server.url, "backfill", None)
                    build(home=home)
                    results[scenario] = figures(home)
                    continue
                sync_at(store, home, server.url, "backfill", t.at(9, 18))
                build(home=home)
                results["early_backfill"] = figures(home)
                sent = len(company.objects["event"])
                if scenario == "early_backfill_then_webhooks":
                    # N's partial payment alone first: re-fetched, the invoice is half paid
                    scenario_shapes.partial_payment()
                    deliver_as_webhooks(home, company, company.objects["event"][sent:],
                                        server.url)
                    build(home=home)
                    results["webhooks_partial_payment"] = figures(home)
                    sent = len(company.objects["event"])
                    scenario_shapes.after_partial_payment()
                    deliver_as_webhooks(home, company, company.objects["event"][sent:],
                                        server.url)
                    build(home=home)
                    results["webhooks"] = figures(home)
                    sync_at(store, home, server.url, "refresh", None)
                    build(home=home)
                    results["webhooks_then_refresh"] = figures(home)
                    continue
                scenario_shapes.after_early_backfill()
                for refresh in (1, 2):
                    sync_at(store, home, server.url, "refresh", None)
                    build(home=home)
                    results[f"refresh_{refresh}"] = figures(home)
    return t, results


def expected(t: Timeline) -> dict[str, dict]:
    usd = {-n: t.day(n) for n in (2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 40)}
    eur_invoice_payments = {("EUR", t.day(8)): Decimal("119"), ("EUR", t.day(7)): Decimal("59.50"),
                            ("EUR", t.day(5)): Decimal("100"), ("EUR", t.day(4)): Decimal("59.50")}
    return {
        "invoice_payments": {**eur_invoice_payments,
                             **{("USD", usd[-n]): Decimal(v) for n, v in (
                                 (13, 60), (12, 80), (11, 70), (10, 50), (8, 50), (7, 20),
                                 (3, 30), (2, 35))}},
        "standalone_charges": {("USD", usd[-14]): Decimal("60"), ("USD", usd[-8]): Decimal("50")},
        # P's second refund (-3) returns no tax: its credit note holds none
        "tax_amount": {("EUR", t.day(8)): Decimal("19"), ("EUR", t.day(7)): Decimal("9.50"),
                       ("EUR", t.day(6)): Decimal("-9.50"), ("EUR", t.day(4)): Decimal("9.50"),
                       ("EUR", t.day(2)): Decimal("-1.90")},
        "revenue": {**eur_invoice_payments, ("EUR", t.day(6)): Decimal("-59.50"),
                    ("EUR", t.day(3)): Decimal("-20"), ("EUR", t.day(2)): Decimal("-11.90"),
                    ("USD", usd[-14]): Decimal("60"),
                    ("USD", usd[-13]): Decimal("60"), ("USD", usd[-12]): Decimal("80"),
                    ("USD", usd[-11]): Decimal("70"), ("USD", usd[-10]): Decimal("50"),
                    ("USD", usd[-8]): Decimal("100"), ("USD", usd[-7]): Decimal("20"),
                    ("USD", usd[-4]): Decimal("-20"), ("USD", usd[-3]): Decimal("-45"),
                    ("USD", usd[-2]): Decimal("35")},
        "paid_out_of_band": {("USD", usd[-7]): Decimal("30"), ("USD", usd[-6]): Decimal("40"),
                             ("USD", usd[-5]): Decimal("100")},
        "dispute_losses": {("USD", usd[-3]): Decimal("75")},
        "refunds": {("USD", usd[-4]): Decimal("20"), ("EUR", t.day(6)): Decimal("59.50"),
                    ("EUR", t.day(3)): Decimal("20"), ("EUR", t.day(2)): Decimal("11.90")},
        "failed_attempts": {("USD", usd[-40]): 1, ("USD", usd[-3]): 1, ("USD", usd[-2]): 1,
                            ("EUR", t.day(45)): 12},
        # G's attempt and O's twelve are known from their invoice only, dated at finalization
        "estimated_attempts": {("USD", usd[-40]): 1, ("EUR", t.day(45)): 12},
        "published_failures": {("all", t.day(45)): 12, ("all", usd[-40]): 1,
                               ("all", usd[-3]): 1, ("all", usd[-2]): 1},
        # G from -40, H from -3, F from -2 (its debit was pending, not failing, before); O
        "invoices_in_dunning": {**{("USD", t.day(n)): 1 + (n <= 3) + (n <= 2)
                                   for n in range(40, -1, -1)},
                                **{("EUR", t.day(n)): 1 for n in range(45, -1, -1)}},
    }


@pytest.mark.e2e
def test_collected_money_and_failed_attempts_after_a_backfill(scenarios):
    t, results = scenarios
    assert results["backfill"] == expected(t)


@pytest.mark.e2e
def test_a_pending_bank_debit_counts_nothing_until_it_succeeds(scenarios):
    """At the early backfill (-9 18:00) A's debit is pending: no EUR revenue on -10 or -9."""
    t, results = scenarios
    early = results["early_backfill"]
    assert {key: v for key, v in early["revenue"].items() if key[0] == "EUR"} == {}
    # I's $50 card payment counts at -10 though I is still open
    assert early["revenue"] == {("USD", t.day(14)): Decimal("60"),
                                ("USD", t.day(13)): Decimal("60"),
                                ("USD", t.day(12)): Decimal("80"),
                                ("USD", t.day(11)): Decimal("70"),
                                ("USD", t.day(10)): Decimal("50")}
    assert early["failed_attempts"] == {("USD", t.day(40)): 1, ("EUR", t.day(45)): 12}
    # a debit in progress is not dunning: only G, from -40, and O, from -45, to the sync's day
    assert early["invoices_in_dunning"] == {
        **{("USD", t.day(n)): 1 for n in range(40, 8, -1)},
        **{("EUR", t.day(n)): 1 for n in range(45, 8, -1)}}


@pytest.mark.e2e
def test_refreshes_give_the_figures_of_a_backfill(scenarios):
    t, results = scenarios
    assert results["refresh_1"] == expected(t)
    assert results["refresh_2"] == expected(t)


@pytest.mark.e2e
def test_a_partial_payment_by_webhook_is_an_invoice_payment_at_once(scenarios):
    """After the early backfill, N's invoice and its first EUR 59.50 arrive by webhook alone
    (no `invoice.paid`): built, the realtime marts book it as N's invoice payment on -7 with
    its EUR 9.50 of VAT, not as a standalone charge without tax (before `invoice_payment.paid`
    and `invoice.updated` were applied: standalone_charges EUR 59.50, tax_amount none)."""
    t, results = scenarios
    partial = results["webhooks_partial_payment"]
    eur = {name: {key: v for key, v in figures.items() if key[0] == "EUR"}
           for name, figures in partial.items()}
    assert eur["revenue"] == {("EUR", t.day(7)): Decimal("59.50")}
    assert eur["invoice_payments"] == {("EUR", t.day(7)): Decimal("59.50")}
    assert eur["standalone_charges"] == {}
    assert eur["tax_amount"] == {("EUR", t.day(7)): Decimal("9.50")}
    # N is open and half paid: not in dunning; only O is
    assert eur["invoices_in_dunning"] == {("EUR", t.day(n)): 1 for n in range(45, -1, -1)}


@pytest.mark.e2e
def test_webhooks_give_the_figures_of_a_backfill(scenarios):
    t, results = scenarios
    assert results["webhooks"] == expected(t)
    assert results["webhooks_then_refresh"] == expected(t)


def test_a_warehouse_of_an_older_release_builds_and_keeps_its_revenue(
        scenario_home: Path, tmp_path: Path):
    """A warehouse last synced before disputes and credit notes were read has no
    `stripe_raw.disputes` nor `stripe_raw.credit_notes` (macro optional_source), and its staged
    invoices lack `are_payments_listed`: the next build (no sync) still succeeds, with the same
    revenue (credit notes only split a refund's tax)."""
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    revenue = ("select project_id, metric_date, currency, revenue, is_estimated "
               "from marts.fct_revenue_daily order by all")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        current = con.execute(revenue).fetchall()
        con.execute("drop table stripe_raw.disputes")
        con.execute("drop table stripe_raw.credit_notes")
        con.execute("alter table staging.stg_stripe__invoices drop column are_payments_listed")

    build(home=tmp_path)

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(revenue).fetchall() == current
    assert len(current) >= 3


@pytest.mark.e2e
def test_a_credit_note_refund_returns_the_credit_notes_own_tax(scenarios):
    """P: the EUR 20 service credit refunded at -3 holds no VAT (its credit note has none), so
    it is EUR -20 excluding tax in every scenario; the invoice's share would return 3.19."""
    t, results = scenarios
    for name in ("backfill", "refresh_1", "refresh_2", "webhooks", "webhooks_then_refresh"):
        figures_of = results[name]
        assert figures_of["refunds"][("EUR", t.day(3))] == Decimal("20"), name
        assert ("EUR", t.day(3)) not in figures_of["tax_amount"], name
        assert figures_of["tax_amount"][("EUR", t.day(6))] == Decimal("-9.50"), name
        # a refund without a credit note: the invoice's share, its charge linked to the
        # invoice through its PaymentIntent
        assert figures_of["tax_amount"][("EUR", t.day(2))] == Decimal("-1.90"), name
