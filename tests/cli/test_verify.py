"""`stripe-warehouse verify`: the published marts against the Stripe API, recomputed in Python.

A generated company (seed 42, 80 customers, two years) is backfilled and built once; `verify`
reads the sandbox over HTTP with the project's stored key. It is green on the built warehouse.
Then inconsistencies are planted in *copies* of the state directory (the original is never
touched), each time in the published marts (reporting.duckdb) the way a wrong model would
leave them, and `verify --explain` must fail on the right line and name the right object:
- one counted subscription missing from the marts: MRR and active subscriptions differ by its
  MRR and by 1, and its id is named;
- one day's revenue short by a charge (its amount taken off metrics_daily on the charge's day):
  both the 7- and 30-day revenue lines differ by exactly that amount, and the charge is named
  among the ledger's objects of that day;
- one customer missing from the marts: customers differ by 1 and its id is named;
- a lost dispute missing from the marts: both revenue lines differ by its amount and fee and
  the dispute is named on the day it closed.
Besides the generated shapes, the company gets the collection shapes of issue 15 inside the
windows, so the green run covers them: a $100 bank debit created 6 days ago that succeeded 3
days ago (counted once, on that day), an attempt without a payment method 5 days ago (a
failed payment without a charge) and a $50 card charge disputed 15 days ago and lost 3 days
ago (-$50 - $15 fee on that day).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from commands.verify import run_verify
from sandbox import collection_shapes as shapes
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "acme"
API_KEY = "sk_test_verify"
NOW = 1_796_558_400  # Sun 2026-12-06 12:00:00 UTC


def _with_collection_shapes(company: Company) -> str:
    """Plant the bank debit, the chargeless attempt and the lost dispute; the dispute's id."""
    usd = [c["id"] for c in company.objects["customer"]
           if c["currency"] == "usd" and not c.get("deleted")]
    debit = shapes.one_off_invoice(company, usd[0], 10000, NOW - 6 * DAY)
    shapes.start_delayed_payment(company, debit["id"], NOW - 6 * DAY + 600)
    shapes.settle_delayed_payment(company, debit["id"], NOW - 3 * DAY)
    no_method = shapes.one_off_invoice(company, usd[1], 2500, NOW - 5 * DAY)
    shapes.fail_without_payment_method(company, no_method["id"], NOW - 5 * DAY + 3600)
    card = shapes.pay_by_card(company, shapes.one_off_invoice(
        company, usd[2], 5000, NOW - 20 * DAY)["id"], NOW - 20 * DAY)
    dispute = shapes.open_dispute(company, card["id"], NOW - 15 * DAY)
    shapes.close_dispute(company, dispute["id"], NOW - 3 * DAY)
    return dispute["id"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, object]]:
    """The built state directory, the running sandbox's URL and the company."""
    company = generate_company(CompanyConfig(customers=80, years=2, seed=42, now=NOW))
    _with_collection_shapes(company)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        home = tmp_path_factory.mktemp("verify_home")
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            # the run stamped at NOW too: with a wall-clock stamp the marts' last day is the
            # real today, which after midnight is a day past the frozen company's
            sync_as_of(store, PROJECT_ID, home, server.url, "backfill", NOW)
            build(home=home)
            yield home, server.url, company


def _planted_copy(home: Path, tmp_path: Path, *statements: str) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    con = duckdb.connect(str(copy / "reporting.duckdb"))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    return copy


def _line(report: str, starts: str) -> str:
    return next(line for line in report.splitlines() if line[5:].startswith(starts))


@pytest.mark.e2e
def test_verify_is_green_on_the_built_company(built):
    home, url, _ = built
    report, code = run_verify(home, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 0, report
    assert "DIFF" not in report
    for check in ("MRR", "active subscriptions", "customers", "revenue 7 days",
                  "revenue 30 days", "failed payments 7 days"):
        assert _line(report, check).startswith("ok")


@pytest.mark.e2e
def test_a_subscription_missing_from_the_marts_is_named(built, tmp_path):
    home, url, _ = built
    today = datetime.fromtimestamp(NOW, UTC).date()
    con = duckdb.connect(str(home / "reporting.duckdb"), read_only=True)
    try:
        sub_id, mrr = con.execute(
            "select subscription_id, sum(net_mrr_usd) from marts.fct_subscription_mrr_daily "
            "where project_id = ? and metric_date = ? group by subscription_id "
            "having sum(net_mrr_usd) > 0 order by subscription_id limit 1",
            [PROJECT_ID, today]).fetchone()
    finally:
        con.close()
    copy = _planted_copy(
        home, tmp_path,
        f"delete from marts.fct_subscription_mrr_daily where subscription_id = '{sub_id}'",
        f"update marts.metrics_daily set value = value - {mrr} where metric = 'stripe_mrr' "
        f"and metric_date = '{today}'",
        "update marts.metrics_daily set value = value - 1 "
        f"where metric = 'stripe_active_subscriptions' and metric_date = '{today}'",
    )
    report, code = run_verify(copy, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 1
    assert _line(report, "MRR").startswith("DIFF")
    assert f"difference -{mrr:,.2f}" in _line(report, "MRR")
    assert _line(report, "active subscriptions").endswith("difference -1")
    assert f"{sub_id}: Stripe " in report and f"{sub_id}: counted by Stripe's listing" in report
    assert _line(report, "revenue 30 days").startswith("ok")


@pytest.mark.e2e
def test_a_charge_missing_from_a_days_revenue_is_named(built, tmp_path):
    home, url, company = built
    yesterday = datetime.fromtimestamp(NOW, UTC).date() - timedelta(days=1)
    charge = max(
        (c for c in company.objects["charge"] if c["status"] == "succeeded"
         and c["currency"] == "usd"
         and 0 < (yesterday - datetime.fromtimestamp(c["created"], UTC).date()).days < 7),
        key=lambda c: c["created"])
    day = datetime.fromtimestamp(charge["created"], UTC).date()
    amount = Decimal(charge["amount_captured"]) / 100
    copy = _planted_copy(
        home, tmp_path,
        f"update marts.metrics_daily set value = value - {amount} "
        f"where metric = 'stripe_revenue' and metric_date = '{day}'",
    )
    report, code = run_verify(copy, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 1
    for window in ("revenue 7 days", "revenue 30 days"):
        assert _line(report, window).startswith("DIFF")
        assert _line(report, window).endswith(f"difference -{amount:,.2f}")
    assert f"  {charge['id']} (" in report
    assert _line(report, "MRR").startswith("ok")


@pytest.mark.e2e
def test_a_customer_missing_from_the_marts_is_named(built, tmp_path):
    home, url, company = built
    today = datetime.fromtimestamp(NOW, UTC).date()
    customer = next(c for c in company.objects["customer"] if not c.get("deleted"))
    copy = _planted_copy(
        home, tmp_path,
        f"delete from marts.dim_customers where customer_id = '{customer['id']}'",
        "update marts.metrics_daily set value = value - 1 "
        f"where metric = 'stripe_customers' and metric_date = '{today}'",
    )
    report, code = run_verify(copy, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 1
    assert _line(report, "customers").endswith("difference -1")
    assert f"{customer['id']}: listed by Stripe, not existing in the warehouse" in report


@pytest.mark.e2e
def test_the_command_exits_0_when_green_and_1_naming_the_object_when_not(
        built, tmp_path, monkeypatch, capsys):
    """`stripe-warehouse verify` as users run it: the key from the project's store, the API
    base from STRIPE_API_BASE; `--date` moves the flow windows and leaves the stocks out."""
    home, url, company = built
    monkeypatch.setenv("STRIPE_API_BASE", url)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    assert main(["verify", PROJECT_ID]) == 0
    assert "ok   revenue 30 days" in capsys.readouterr().out

    assert main(["verify", PROJECT_ID, "--date", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "ok   revenue 7 days 2026-11-14..2026-11-20" in out
    assert "ok   MRR" not in out and "note: MRR, active subscriptions and customers" in out

    customer = next(c for c in company.objects["customer"] if not c.get("deleted"))
    copy = _planted_copy(
        home, tmp_path,
        f"delete from marts.dim_customers where customer_id = '{customer['id']}'",
        "update marts.metrics_daily set value = value - 1 where metric = 'stripe_customers' "
        f"and metric_date = '{datetime.fromtimestamp(NOW, UTC).date()}'",
    )
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(copy))
    assert main(["verify", PROJECT_ID]) == 1
    assert "run with --explain" in capsys.readouterr().out
    assert main(["verify", PROJECT_ID, "--explain"]) == 1
    assert f"{customer['id']}: listed by Stripe" in capsys.readouterr().out


@pytest.mark.e2e
def test_a_lost_dispute_missing_from_the_revenue_is_named(built, tmp_path):
    home, url, company = built
    (dispute,) = [d for d in company.objects["dispute"] if d["status"] == "lost"]
    closed = datetime.fromtimestamp(NOW - 3 * DAY, UTC).date()
    copy = _planted_copy(
        home, tmp_path,
        "update marts.metrics_daily set value = value + 65 "
        f"where metric = 'stripe_revenue' and metric_date = '{closed}'",
    )
    report, code = run_verify(copy, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 1
    for window in ("revenue 7 days", "revenue 30 days"):
        assert _line(report, window).endswith("difference +65.00")
    assert f"{closed}: Stripe's ledger" in report
    assert f"  {dispute['id']} ({dispute['balance_transactions'][0]['id']}) -65.00 USD" \
        in report


@pytest.mark.e2e
def test_a_failed_attempt_without_a_charge_is_recomputed_and_named(built, tmp_path):
    """The attempt without a payment method 5 days ago has no charge: Stripe's side counts it
    from the invoice's `invoice.payment_failed`; taken out of the marts, it is named."""
    home, url, company = built
    (invoice,) = [i for i in company.objects["invoice"] if i["created"] == NOW - 5 * DAY
                  and i["attempt_count"] and not i["payments"]["data"]]
    day = datetime.fromtimestamp(NOW - 5 * DAY, UTC).date()
    copy = _planted_copy(
        home, tmp_path,
        "update marts.metrics_daily set value = value - 1 "
        f"where metric = 'stripe_failed_payments' and metric_date = '{day}'",
    )
    report, code = run_verify(copy, PROJECT_ID, explain=True, api_base=url)
    print(report)
    assert code == 1
    assert _line(report, "failed payments 7 days").endswith("difference -1")
    assert f"{day}: Stripe " in report and f"{invoice['id']} (evt_" in report
    assert "no charge)" in report
