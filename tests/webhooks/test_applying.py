"""Applying inbox events to the raw tables: re-fetched, in order, once, never older over newer."""

import json
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines import webhooks_apply
from pipelines.webhooks_apply import apply_inbox
from sandbox import objects
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore

from .conftest import PROJECT, SECRET, running_service
from .events import subscription_event
from .warehouse import active_subscription, copy_home, deliver, query, raw_state


def test_cancellation_is_applied_from_a_refetch_of_the_subscription(
        backfilled, service, company, stripe_api):
    sub = active_subscription(company)
    events = company.cancel_subscription(sub["id"], company.now + 10)
    deliver(service, events)
    result = apply_inbox(backfilled, api_base=stripe_api.url)
    assert (result.applied, result.stale, result.ignored, result.waiting) == (1, 0, 0, {})
    assert stripe_api.counts().get("/v1/subscriptions/{id}") == 1
    assert query(backfilled, "select data->>'status', data->>'canceled_at' "
                 "from stripe_raw.subscriptions where id = ?", sub["id"]) == [
        ("canceled", str(company.now + 10))]
    versions = query(backfilled, "select source, data->>'status' "
                     "from stripe_raw.subscription_versions where id = ?", sub["id"])
    assert versions == [("webhook", "canceled")]
    assert query(backfilled, "select type from stripe_raw.events where id = ?",
                 events[0]["id"]) == [("customer.subscription.deleted",)]
    assert query(backfilled, "select kind, objects_loaded from stripe_raw.sync_runs "
                 "where kind = 'webhook'") == [("webhook", 3 + len(sub["items"]["data"]))]
    with Inbox(backfilled) as inbox:
        assert inbox.counts() == {"stored": 1, "unapplied": 0}


def test_refetched_subscription_keeps_its_discount_objects(
        backfilled, service, company, stripe_api):
    # the payload names discounts by id only; the refetch expands them with their coupon, as
    # the sync does, so a coupon deleted later still prices the discount
    sub = active_subscription(company)
    coupon = company.objects["coupon"][0]
    discount = objects.discount("di_webhook", coupon, sub["customer"], sub["id"],
                                company.now, None)
    company.add("discount", discount)
    sub["discounts"] = [discount]
    events = company.cancel_subscription(sub["id"], company.now + 10, at_period_end=True)
    deliver(service, events)
    apply_inbox(backfilled, api_base=stripe_api.url)
    [(discounts,)] = query(backfilled, "select data->'discounts' from stripe_raw.subscriptions "
                           "where id = ?", sub["id"])
    [stored] = json.loads(discounts)
    assert (stored["id"], stored["source"]["coupon"]["id"]) == ("di_webhook", coupon["id"])
    assert stored["source"]["coupon"]["duration"] == coupon["duration"]


def test_quantity_change_updates_item_invoice_and_charge_and_records_other_types(
        backfilled, service, company, stripe_api):
    sub = active_subscription(company)
    events = company.change_quantity(sub["id"], 7, company.now + 10)
    deliver(service, events)
    result = apply_inbox(backfilled, api_base=stripe_api.url)
    handled = [e for e in events if e["type"] in webhooks_apply.APPLIED_TYPES]
    assert result.applied == len(handled) >= 3
    assert result.ignored == len(events) - len(handled)
    item_id = sub["items"]["data"][0]["id"]
    assert query(backfilled, "select data->>'quantity' from stripe_raw.subscription_items "
                 "where id = ?", item_id) == [("7",)]
    invoice_id = sub["latest_invoice"]
    assert query(backfilled, "select data->>'billing_reason' from stripe_raw.invoices "
                 "where id = ?", invoice_id) == [("subscription_update",)]
    assert len(query(backfilled, "select id from stripe_raw.invoice_lines where invoice = ?",
                     invoice_id)) == 2
    charge = next(e for e in events if e["type"] == "charge.succeeded")["data"]["object"]
    assert query(backfilled, "select data->>'status' from stripe_raw.charges where id = ?",
                 charge["id"]) == [("succeeded",)]
    assert len(query(backfilled, "select id from stripe_raw.events")) == len(events)


@pytest.mark.parametrize("refetch", [False, True])
def test_reversed_and_repeated_delivery_gives_the_raw_state_of_one_clean_delivery(
        backfilled, service, company, stripe_api, tmp_path, refetch):
    first = active_subscription(company)
    second = next(s for s in company.objects["subscription"]
                  if s["status"] == "active" and s["id"] != first["id"])
    events = (company.change_quantity(first["id"], 4, company.now + 5)
              + company.cancel_subscription(first["id"], company.now + 9)
              + company.cancel_subscription(second["id"], company.now + 7, at_period_end=True))
    messy_home = copy_home(backfilled, tmp_path / "messy")

    deliver(service, events)  # clean: in order, once, one apply
    apply_inbox(backfilled, api_base=stripe_api.url, refetch=refetch)

    with running_service(messy_home) as messy:  # reversed, each twice, applied one by one
        for event in reversed(events):
            deliver(messy, [event], duplicate_rate=1.0)
            apply_inbox(messy_home, api_base=stripe_api.url, refetch=refetch)
    read_times = not refetch  # a re-fetch is stamped with the time it was read
    assert raw_state(messy_home, PROJECT, read_times) == raw_state(backfilled, PROJECT, read_times)
    assert query(backfilled, "select data->>'status' from stripe_raw.subscriptions "
                 "where id = ?", first["id"]) == [("canceled",)]


def test_event_delivered_again_after_it_was_applied_is_not_applied_twice(
        backfilled, service, company, stripe_api):
    events = company.cancel_subscription(active_subscription(company)["id"], company.now + 10)
    deliver(service, events)
    assert apply_inbox(backfilled, api_base=stripe_api.url).applied == 1
    [again] = service.sender().send(events)
    assert again.body == {"received": True, "duplicate": True}
    second = apply_inbox(backfilled, api_base=stripe_api.url)
    assert (second.events, second.rows_written) == (0, {})
    assert len(query(backfilled, "select * from stripe_raw.sync_runs where kind = 'webhook'")) == 1


def test_payload_older_than_the_synced_state_is_not_applied(backfilled, service, company):
    sub = active_subscription(company)
    late = subscription_event("evt_late_1", created=company.now - 3600, status="past_due")
    late["data"]["object"].update(id=sub["id"], customer=sub["customer"])
    deliver(service, [late])
    result = apply_inbox(backfilled, refetch=False)
    assert (result.applied, result.stale) == (0, 1)
    assert query(backfilled, "select data->>'status' from stripe_raw.subscriptions "
                 "where id = ?", sub["id"]) == [("active",)]
    with Inbox(backfilled) as inbox:
        assert inbox.counts() == {"stored": 1, "unapplied": 0}


def test_deleted_customer_stays_in_the_warehouse_flagged_deleted(
        backfilled, service, company, stripe_api):
    customer = next(c for c in company.objects["customer"] if c.get("email"))
    email = customer["email"]
    events = company.delete_customer(customer["id"], company.now + 10)
    deliver(service, events)
    apply_inbox(backfilled, api_base=stripe_api.url)
    assert query(backfilled, "select deleted, data->>'email' from stripe_raw.customers "
                 "where id = ?", customer["id"]) == [(True, email)]


def test_deauthorization_marks_the_connection_revoked(backfilled, service, company):
    event = subscription_event("evt_deauth_1", event_type="account.application.deauthorized")
    event["data"]["object"] = {"id": "ca_sandbox", "object": "application", "name": None}
    deliver(service, [event])
    result = apply_inbox(backfilled)
    assert (result.applied, result.revoked) == (1, [PROJECT])
    assert ConnectionStore(backfilled).get(PROJECT).status == "revoked"


def test_events_wait_in_the_inbox_until_the_first_sync(home, service, company):
    deliver(service, company.cancel_subscription(active_subscription(company)["id"],
                                                 company.now + 10))
    result = apply_inbox(home)
    assert result.events == 0
    assert "run the first sync" in result.waiting[PROJECT]
    with Inbox(home) as inbox:
        assert inbox.counts() == {"stored": 1, "unapplied": 1}


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("begin transaction")
print("locked", flush=True)
sys.stdin.readline()
"""


def test_service_accepts_while_the_warehouse_is_locked_and_events_apply_afterwards(
        backfilled, service, company, stripe_api, monkeypatch):
    monkeypatch.setattr(webhooks_apply, "LOCK_WAIT_SECONDS", 0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(backfilled / "warehouse.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        deliver(service, company.cancel_subscription(active_subscription(company)["id"],
                                                     company.now + 10))
        assert time.perf_counter() - started < 2
        with pytest.raises(WarehouseError, match="stay in the inbox"):
            apply_inbox(backfilled, api_base=stripe_api.url)
        with Inbox(backfilled) as inbox:
            assert inbox.counts() == {"stored": 1, "unapplied": 1}
    finally:
        holder.communicate("\n", timeout=10)
    assert apply_inbox(backfilled, api_base=stripe_api.url).applied == 1


def test_object_that_cannot_be_refetched_is_not_written_from_the_payload(
        backfilled, service, company, stripe_api):
    ConnectionStore(backfilled).connect(PROJECT, "starter", "sk_test_revoked_key",
                                        webhook_secret=SECRET)
    sub = active_subscription(company)
    deliver(service, company.cancel_subscription(sub["id"], company.now + 10))
    result = apply_inbox(backfilled, api_base=stripe_api.url)
    assert (result.applied, result.failed, result.rows_written) == (0, 0, {})
    assert len(result.warnings) == 1 and "could not be re-fetched" in result.warnings[0]
    assert query(backfilled, "select data->>'status' from stripe_raw.subscriptions "
                 "where id = ?", sub["id"]) == [("active",)]
    with Inbox(backfilled) as inbox:  # it waits: the next round, with access back, applies it
        assert inbox.counts() == {"stored": 1, "unapplied": 1}


def test_events_wait_while_the_warehouse_has_no_raw_tables(home, service, company):
    duckdb.connect(str(home / "warehouse.duckdb")).close()
    deliver(service, company.change_quantity(active_subscription(company)["id"], 3,
                                             company.now + 10))
    result = apply_inbox(home, refetch=False)
    assert (result.applied, result.ignored, result.stale) == (0, 0, 0)
    assert "raw tables missing" in result.waiting[PROJECT]
    with Inbox(home) as inbox:
        assert inbox.counts()["unapplied"] == inbox.counts()["stored"] > 1


def test_refetched_invoice_with_more_than_ten_payments_keeps_every_payment(
        backfilled, service, company, stripe_api):
    """An invoice attempted 11 times by bank debit (each returned) and then paid by card names
    12 payments; Stripe embeds 10 (`has_more`), so the webhook's re-fetch pages
    `/v1/invoice_payments?invoice=` for the other 2, as the sync does: the paid one, the 12th,
    is what links the invoice to its charge."""
    from sandbox import collection_shapes as shapes

    customer = next(c for c in company.objects["customer"] if c["currency"] == "usd")
    start = len(company.objects["event"])
    invoice = shapes.one_off_invoice(company, customer["id"], 4200, company.now - 3600)
    for attempt in range(11):
        shapes.start_delayed_payment(company, invoice["id"], company.now - 3000 + attempt * 10)
        shapes.settle_delayed_payment(company, invoice["id"], company.now - 2995 + attempt * 10,
                                      "insufficient_funds")
    card = shapes.pay_by_card(company, invoice["id"], company.now - 100)
    deliver(service, company.objects["event"][start:])

    apply_inbox(backfilled, api_base=stripe_api.url)

    [(payments,)] = query(backfilled, "select data->'payments' from stripe_raw.invoices "
                          "where id = ?", invoice["id"])
    payments = json.loads(payments)
    assert payments["has_more"] is False
    assert len(payments["data"]) == 12
    assert [p["status"] for p in payments["data"]] == ["canceled"] * 11 + ["paid"]
    assert payments["data"][-1]["payment"]["payment_intent"] == card["payment_intent"]
    assert stripe_api.counts().get("/v1/invoice_payments", 0) >= 1
