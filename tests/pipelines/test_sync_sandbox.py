"""Backfills and refreshes against the sandbox over real HTTP into a real DuckDB file."""

import json
import re
from pathlib import Path

import pytest

from pipelines import source as extraction_source
from pipelines.event_types import LISTED_EVENT_TYPES
from pipelines.load import sync_all, sync_project
from pipelines.privacy import KEPT_FIELDS
from pipelines.source import RAW_TABLES
from sandbox.collection_shapes import refund_with_credit_note
from sandbox.company import PLANTED_PII_MARKERS, Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore
from tests.pipelines.conftest import NOW, TEST_KEY, query, table_ids
from tests.pipelines.expected import DAY, expected_backfill_ids

pytestmark = pytest.mark.e2e


def snapshot(home: Path, project_id: str = "acme") -> dict[str, list[tuple]]:
    """Every raw table's (id, data) rows of a project, sorted: what a sync produced."""
    return {
        table: query(home, f"select id, data::text from stripe_raw.{table} "
                           "where project_id = ? order by id, data::text", [project_id])
        for table in RAW_TABLES
    }


def test_backfill_loads_exactly_the_sandbox_objects_of_the_window(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    result = sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    expected = expected_backfill_ids(company, NOW)
    for table, ids in expected.items():
        assert table_ids(store.home, table) == sorted(ids), table
    assert result.rows_per_table == {t: len(ids) for t, ids in expected.items()}
    # Listings were sliced by `created` and paged; embedded lists with more were completed.
    assert sandbox.counts()["/v1/invoices/{id}/lines"] > 0
    assert sandbox.counts()["/v1/subscription_items"] > 0
    assert sandbox.counts()["/v1/customers"] >= 2
    assert sandbox.refused_writes == []


def test_backfill_rows_carry_the_contract_columns(
    sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    home = store.home
    invoice = query(home, "select created, livemode, api_version, data from stripe_raw.invoices"
                          " limit 1")[0]
    assert invoice[1] is False and invoice[2] == "2025-09-30.clover"
    assert "lines" not in json.loads(invoice[3])
    line = query(home, "select l.created, i.created from stripe_raw.invoice_lines l "
                       "join stripe_raw.invoices i on l.invoice = i.id limit 1")[0]
    assert line[0] == line[1]  # invoice lines carry their invoice's created
    event = query(home, "select type, api_version from stripe_raw.events limit 1")[0]
    assert event[0] and event[1]
    assert query(home, "select count(*) from stripe_raw.charges "
                       "where json_exists(data, '$.refunds')")[0][0] == 0
    # `data` keeps each object's own keys: no padding with keys of other rows' shapes.
    customer_events = query(home, "select data->'data'->'object' from stripe_raw.events "
                                  "where type = 'customer.created'")
    assert customer_events and all(
        set(json.loads(d)) <= KEPT_FIELDS["customer"] for (d,) in customer_events)
    charge_keys = {k for (d,) in query(home, "select data from stripe_raw.charges")
                   for k in json.loads(d)}
    assert charge_keys <= KEPT_FIELDS["charge"] and "email" not in charge_keys
    runs = query(home, "select kind, status, objects_loaded, test_mode, "
                       "epoch(window_end) - epoch(window_start) from stripe_raw.sync_runs")
    assert runs == [("backfill", "succeeded", sum(len(table_ids(home, t)) for t in RAW_TABLES),
                     True, 90 * DAY)]
    assert store.get("acme").last_event_created == query(
        home, "select max(created) from stripe_raw.events")[0][0]


def _raw_discounts(home: Path, table: str) -> dict[str, list]:
    rows = query(home, f"select id, data->'discounts' from stripe_raw.{table}")
    return {object_id: json.loads(discounts) for object_id, discounts in rows if discounts}


def test_backfill_loads_discounts_as_objects_naming_their_coupon(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    # Stripe returns discounts[] as ids unless expanded; an id alone names no coupon. A
    # subscription's and an invoice's discounts bring their coupon's terms too (a deleted
    # coupon is not listed), a subscription's latest invoice older than the window included
    # (re-read whole: from the subscription listing it would be five levels deep).
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    seen, older = 0, 0
    for table, object_type in (("subscriptions", "subscription"), ("invoices", "invoice")):
        for object_id, discounts in _raw_discounts(store.home, table).items():
            stored = company.get(object_type, object_id)
            coupons = [(c["id"], c["duration"], c["percent_off"])
                       for d in discounts for c in [d["source"]["coupon"]]]
            assert list(zip([d["id"] for d in discounts], coupons, strict=True)) == [
                (d["id"], (c["id"], c["duration"], c["percent_off"]))
                for d in stored["discounts"] for c in [d["source"]["coupon"]]], object_id
            seen += len(discounts)
            older += table == "invoices" and stored["created"] < NOW - 90 * DAY
    assert seen >= 10 and older >= 1
    # events are never expanded: their payloads keep the ids, which staging resolves
    payloads = query(store.home, "select data->'data'->'object'->'discounts' from "
                                 "stripe_raw.events where type like 'customer.subscription.%'")
    assert {type(d) for (raw,) in payloads if raw for d in json.loads(raw)} <= {str}


def test_backfill_loads_invoice_line_discounts_as_objects(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    """An item's own discounts are on its invoice lines: the invoice listing expands them
    (`data.lines.data.discounts`), so a removed one is still found as an object there. A
    subscription's latest invoice older than the window is re-read whole when it carries
    discounts (expanding them from the subscription listing would take five levels, one beyond
    Stripe's limit); one without keeps its empty lists."""
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    rows = query(store.home, "select id, invoice, data->'discounts' from stripe_raw.invoice_lines")
    listed = objects = 0
    for line_id, invoice_id, raw in rows:
        stored = next(ln for ln in company.get("invoice", invoice_id)["lines"]["data"]
                      if ln["id"] == line_id)["discounts"]
        discounts = json.loads(raw) if raw else []
        assert [d["id"] for d in discounts] == stored, line_id
        listed += bool(stored)
        objects += sum(d["object"] == "discount" and d["subscription_item"] is not None
                       for d in discounts)
    assert listed >= 3 and objects >= listed


def test_two_backfills_leave_no_duplicates(
    sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    first = snapshot(store.home)
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    for table in RAW_TABLES:
        count, distinct = query(store.home, f"select count(*), count(distinct id) "
                                            f"from stripe_raw.{table}")[0]
        assert count == distinct == len(first[table]), table
    assert snapshot(store.home) == first
    assert query(store.home, "select count(*) from stripe_raw.sync_runs")[0][0] == 2


def test_rate_limits_and_server_errors_are_retried_to_the_same_rows(
    company: Company, tmp_path: Path
) -> None:
    clean_store = ConnectionStore(tmp_path / "clean")
    clean_store.connect("acme", "pro", TEST_KEY)
    with SandboxServer(accounts={TEST_KEY: company}) as srv:
        sync_project(clean_store, "acme", "backfill", api_base=srv.url, now=NOW)
    flaky_store = ConnectionStore(tmp_path / "flaky")
    flaky_store.connect("acme", "pro", TEST_KEY)
    with SandboxServer(accounts={TEST_KEY: company}, rate_limit_global=8,
                       rate_limit_per_endpoint=4, failure_rate=0.05, seed=7) as srv:
        result = sync_project(flaky_store, "acme", "backfill", api_base=srv.url, now=NOW)
        statuses = [status for _, _, status in srv.request_log]
    assert 429 in statuses and 500 in statuses  # both failure kinds really happened
    assert result.retries == statuses.count(429) + statuses.count(500)
    assert snapshot(flaky_store.home) == snapshot(clean_store.home)


def test_sync_sends_only_get_requests(sandbox: SandboxServer, store: ConnectionStore) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 3600)
    assert sandbox.refused_writes == []
    assert {method for method, _, _ in sandbox.request_log} == {"GET"}


def test_no_planted_personal_data_reaches_the_warehouse(
    sandbox: SandboxServer, store: ConnectionStore, company: Company
) -> None:
    # Deleting a customer puts its full record into an event payload: that must be cleaned too.
    company.delete_customer(company.objects["customer"][0]["id"], at=NOW - 60)
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW)
    columns = query(store.home, "select table_schema, table_name, column_name "
                                "from information_schema.columns")
    dumped = []
    for schema, table, column in columns:
        dumped.extend(str(r[0]) for r in query(
            store.home, f'select "{column}"::text from "{schema}"."{table}"'))
    text = "\n".join(dumped)
    assert len(text) > 100_000  # the dump really holds the loaded data
    for marker in PLANTED_PII_MARKERS:
        assert marker not in text
    # A customer's address keeps its country code only (issue 22): no other address remains.
    country_only = re.compile(r'"address":\s*(\{"country":\s*("[A-Z]{2}"|null)\}|null)')
    assert len(country_only.findall(text)) > 100
    for key in ('"billing_details"', '"payment_method_details"', '"last4"', '"address"'):
        assert key not in country_only.sub("", text)


def test_refresh_picks_up_cancellation_of_old_subscription(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    old = next(s for s in company.objects["subscription"]
               if s["status"] == "active" and s["created"] < NOW - 365 * DAY)
    later = NOW + 2 * DAY
    company.cancel_subscription(old["id"], at=later - 60, at_period_end=False)
    result = sync_project(store, "acme", "refresh", api_base=sandbox.url, now=later)
    status = query(store.home, "select data->>'status' from stripe_raw.subscriptions "
                               "where id = ?", [old["id"]])
    assert status == [("canceled",)]
    versions = query(store.home, "select data->>'status', source from "
                                 "stripe_raw.subscription_versions where id = ? "
                                 "order by observed_at", [old["id"]])
    assert versions == [("active", "backfill"), ("canceled", "refresh")]
    assert result.rows_per_table["events"] >= 1
    deleted_events = query(
        store.home, "select count(*) from stripe_raw.events where type = "
                    "'customer.subscription.deleted' and data->'data'->'object'->>'id' = ?",
        [old["id"]])
    assert deleted_events == [(1,)]


def test_refresh_keeps_deleted_customers_flagged(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    customer = next(c for c in company.objects["customer"]
                    if not c.get("deleted") and c["created"] < NOW - 100 * DAY)
    email_before = query(store.home, "select data->>'email' from stripe_raw.customers "
                                     "where id = ?", [customer["id"]])[0][0]
    company.delete_customer(customer["id"], at=NOW + 600)
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 3600)
    row = query(store.home, "select deleted, created, data->>'email' from stripe_raw.customers "
                            "where id = ?", [customer["id"]])
    assert row == [(True, customer["created"], email_before)]


def test_refresh_reads_only_recent_activity_and_changes(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    before = sum(sandbox.counts().values())
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 3600)
    refresh_requests = sum(sandbox.counts().values()) - before
    assert refresh_requests < before
    windows = query(store.home, "select kind, epoch(window_end) - epoch(window_start) "
                                "from stripe_raw.sync_runs order by started_at")
    assert windows == [("backfill", 90 * DAY), ("refresh", 7 * DAY)]
    assert store.get("acme").last_sync_kind == "refresh"


def test_projects_never_mix_and_one_bad_key_does_not_stop_another(
    company: Company, tmp_path: Path
) -> None:
    other = generate_company(CompanyConfig(customers=60, years=2, seed=7, now=NOW))
    store = ConnectionStore(tmp_path / "home")
    store.connect("acme", "pro", TEST_KEY)
    store.connect("broken", "pro", "sk_test_revoked")
    store.connect("globex", "basic", "sk_test_globex")
    with SandboxServer(accounts={TEST_KEY: company, "sk_test_globex": other}) as srv:
        outcomes = sync_all(store, "backfill", api_base=srv.url, now=NOW)
    assert isinstance(outcomes["broken"], WarehouseError)
    assert "401" in str(outcomes["broken"])
    assert outcomes["acme"].objects_loaded > 0 and outcomes["globex"].objects_loaded > 0
    for project_id, source in (("acme", company), ("globex", other)):
        expected = expected_backfill_ids(source, NOW)
        for table, ids in expected.items():
            assert table_ids(store.home, table, project_id) == sorted(ids), (project_id, table)
    assert query(store.home, "select distinct project_id from stripe_raw.customers "
                             "order by 1") == [("acme",), ("globex",)]
    assert query(store.home, "select project_id from stripe_raw.sync_runs order by 1") == [
        ("acme",), ("globex",)]
    assert store.get("broken").last_sync_at is None


def test_restricted_key_without_a_permission_fails_naming_it(
    company: Company, tmp_path: Path
) -> None:
    store = ConnectionStore(tmp_path / "home")
    store.connect("acme", "pro", "rk_test_limited")
    allowed = {"customers", "subscriptions", "invoices", "events", "prices", "products"}
    with SandboxServer(accounts={"rk_test_limited": company},
                       permissions={"rk_test_limited": allowed}) as srv:
        with pytest.raises(WarehouseError) as error:
            sync_project(store, "acme", "backfill", api_base=srv.url, now=NOW)
    message = str(error.value)
    assert "403" in message and "grant it read permission" in message
    denied = message.split("may not read ", 1)[1].split(" ", 1)[0]
    assert denied not in allowed and f"GET /v1/{denied}" in message  # names what is missing
    assert "\n" not in message
    assert store.get("acme").last_sync_at is None


def test_backfill_lists_only_the_event_types_in_use_with_fewer_requests(
    company: Company, sandbox: SandboxServer, store: ConnectionStore,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Against the same company, the filtered listing (two `types[]` groups of 20) loads just
    the listed types and needs fewer requests than listing every type, as before issue 18."""
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    filtered = sandbox.counts()["/v1/events"]
    loaded = dict(query(store.home, "select type, count(*) from stripe_raw.events group by 1"))
    in_window = [e for e in company.objects["event"] if e["created"] >= NOW - 30 * DAY]
    assert set(loaded) == {e["type"] for e in in_window} & set(LISTED_EVENT_TYPES)
    assert sum(loaded.values()) < 0.7 * len(in_window)  # many events are of unread types

    monkeypatch.setattr(extraction_source, "EVENT_TYPE_GROUPS", [()])  # one listing of every type
    every = ConnectionStore(tmp_path / "every")
    every.connect("acme", "pro", TEST_KEY)
    sync_project(every, "acme", "backfill", api_base=sandbox.url, now=NOW)
    unfiltered = sandbox.counts()["/v1/events"] - filtered
    assert query(every.home, "select count(*) from stripe_raw.events") == [(len(in_window),)]
    assert filtered < unfiltered


def test_refresh_picks_up_a_credit_note_on_an_old_invoice(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    """A credit note changes an invoice older than the refresh's window: `invoice.updated`
    names it (listed for that reason, though no model reads it).

    An invoice paid 20 days before the backfill gets a credit note 2 days after it, for half
    its amount: the refresh must store post_payment_credit_notes_amount = amount_paid // 2
    (it was 0 after the backfill), though the invoice is older than the refresh's window."""
    old = next(i for i in company.objects["invoice"]
               if i["status"] == "paid" and NOW - 25 * DAY < i["created"] < NOW - 20 * DAY
               and i["amount_paid"] > 1 and i["post_payment_credit_notes_amount"] == 0
               and any(p["status"] == "paid" for p in i["payments"]["data"]))
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    amount = old["amount_paid"] // 2
    stored = ("select (data->>'post_payment_credit_notes_amount')::int "
              "from stripe_raw.invoices where id = ?")
    assert query(store.home, stored, [old["id"]]) == [(0,)]
    later = NOW + 2 * DAY
    refund_with_credit_note(company, old["id"], amount, later - 60)
    sync_project(store, "acme", "refresh", api_base=sandbox.url, now=later)
    assert query(store.home, stored, [old["id"]]) == [(amount,)]


def test_a_dispute_keeps_its_evidence_deadline(
    company: Company, sandbox: SandboxServer, store: ConnectionStore
) -> None:
    # `evidence_details.due_by` dates a lost dispute whose closing event is older than the 30
    # days Stripe keeps (METRICS-SPEC "Lost disputes"); the allowlist used to drop it
    from sandbox import collection_shapes

    charge = next(c for c in company.objects["charge"] if c["status"] == "succeeded"
                  and c["created"] >= NOW - 60 * DAY)
    dispute = collection_shapes.open_dispute(company, charge["id"], charge["created"] + DAY)
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    assert query(store.home, "select data->'evidence_details'->>'due_by' from "
                             "stripe_raw.disputes where id = ?", [dispute["id"]]) == [
        (str(dispute["evidence_details"]["due_by"]),)]
