"""Issue 14, case 10: one tenant's late rows do not hide behind another tenant's sync.

Two projects share one warehouse. Rows a webhook applies from its payload carry the event's
time as ``_synced_at``, which can be older than rows already staged (another project's later
sync, or this project's own backfill): the incremental staging models must still read them.
Everything is real: sandbox API, dlt syncs, the webhook applier, incremental ``dbt build``.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.load import sync_project
from pipelines.webhooks_apply import apply_inbox
from sandbox.api import unexpanded
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

ALPHA, BETA = "alpha", "beta"
KEYS = {ALPHA: "sk_test_alpha_key", BETA: "sk_test_beta_key"}


def revenue_by_day(home: Path, project_id: str, currency: str) -> dict[dt.date, Decimal]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute(
            "select metric_date, revenue from marts.fct_revenue_daily "
            "where project_id = ? and currency = ?", [project_id, currency]).fetchall()
    return {day: Decimal(revenue) for day, revenue in found}


def staged_invoice(home: Path, project_id: str, invoice_id: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select status, amount_paid from staging.stg_stripe__invoices "
            "where project_id = ? and invoice_id = ?", [project_id, invoice_id]).fetchall()


def plain_price(company) -> dict:
    """A licensed per-unit recurring price without package or tiers: quantity 1 costs its
    unit_amount."""
    return next(p for p in company.objects["price"]
                if p.get("recurring") and p["recurring"]["usage_type"] == "licensed"
                and p.get("billing_scheme", "per_unit") == "per_unit"
                and not p.get("transform_quantity") and p.get("unit_amount"))


@pytest.mark.e2e
def test_late_webhook_rows_of_one_project_are_built_after_another_projects_sync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dbt_target_path: Path) -> None:
    """Beta's late rows reach beta's marts on the next incremental build.

    Timeline: both companies' present is now - 10 min. Beta is backfilled, then alpha (rows
    stamped later), then a build. Beta's customer C subscribes at t = now - 9 min to price P
    (licensed, per unit, quantity 1, no trial, no discount): the first invoice is paid at t
    for exactly P.unit_amount minor units. Its events reach the inbox and are applied from
    their payloads (``refetch=False``), so the invoice, its lines and its charge carry
    ``_synced_at`` = t: older than every row already staged (alpha's and beta's own backfill).

    By hand, for beta in P's currency, D = t's UTC day:
      - day before D: unchanged by the late rows;
      - day D: revenue(D) = revenue(D) of the first build + P.unit_amount / 100;
      - today (the last day): unchanged unless D is today (then the D figure).
    The same figures must hold after a later refresh (sync --refresh + build), and equal a
    full-refresh build of the same data; alpha's marts do not move.
    On `lead` the global ``max(_synced_at)`` filter skips the rows: D stays at the old figure.
    """
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", generate_key())
    home = tmp_path / "home"
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    store = ConnectionStore(home)
    for project_id, key in KEYS.items():
        store.connect(project_id, "starter", key, webhook_secret=f"whsec_{project_id}_0123456789")
    present = int(time.time()) - 600
    alpha = generate_company(CompanyConfig(customers=6, seed=21, now=present))
    beta = generate_company(CompanyConfig(customers=6, seed=22, now=present))
    price = plain_price(beta)
    currency = price["currency"].upper()
    customer = beta.objects["subscription"][0]["customer"]

    with SandboxServer({KEYS[ALPHA]: alpha, KEYS[BETA]: beta}) as stripe_api:
        sync_project(store, BETA, "backfill", home=home, api_base=stripe_api.url)
        sync_project(store, ALPHA, "backfill", home=home, api_base=stripe_api.url)
        build(home=home)
        before = revenue_by_day(home, BETA, currency)
        alpha_before = revenue_by_day(home, ALPHA, alpha.objects["price"][0]["currency"].upper())

        late = present + 60
        events = beta.create_subscription(customer, price["id"], late)
        invoice_id = next(e["data"]["object"]["id"] for e in events
                          if e["type"] == "invoice.payment_succeeded")
        with Inbox(home) as inbox:
            for event in events:
                inbox.store(BETA, unexpanded(event))  # as Stripe sends it (webhook_sender)
        applied = apply_inbox(home, refetch=False)
        assert applied.waiting == {} and applied.failed == applied.stale == 0
        assert applied.rows_written["invoices"] == 1
        build(home=home)

        day = dt.datetime.fromtimestamp(late, dt.UTC).date()
        today = dt.datetime.now(dt.UTC).date()
        paid = Decimal(price["unit_amount"]) / 100
        expected = dict(before)
        expected[day] = before.get(day, Decimal(0)) + paid
        assert staged_invoice(home, BETA, invoice_id) == [("paid", paid)]
        after_webhook = revenue_by_day(home, BETA, currency)
        assert after_webhook.get(day) == expected[day]
        assert after_webhook.get(day - dt.timedelta(days=1)) == before.get(
            day - dt.timedelta(days=1))
        assert after_webhook.get(today) == expected.get(today)
        assert after_webhook == expected

        sync_project(store, BETA, "refresh", home=home, api_base=stripe_api.url)
        build(home=home)
        assert revenue_by_day(home, BETA, currency) == expected

    build(home=home, full_refresh=True)
    assert revenue_by_day(home, BETA, currency) == expected
    assert revenue_by_day(home, ALPHA, alpha.objects["price"][0]["currency"].upper()) == (
        alpha_before)
