"""Apply webhook events from the inbox to the raw tables, in one short DuckDB transaction.

For each object the events name, the newest state wins: re-fetched from Stripe (GET only)
when ``refetch`` is on, else the payload of the newest event. A row is only replaced when the
new state is at least as recent as the stored one (``_synced_at``: when the copy was read, or
for a payload the event's ``created``), so late or reordered deliveries never put an older
state on top of a newer one. The rows follow the sync's contract (docs/architecture.md) and
every applied batch appends a ``sync_runs`` row of kind ``webhook`` so marts report "today".
"""

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.client import StripeReader
from pipelines.privacy import allowlist
from pipelines.settings import (
    INVOICE_LINES_ENDPOINT,
    LIST_ENDPOINTS,
    STRIPE_API_VERSION,
    retrieve_params,
)
from pipelines.source import version_hash
from service.inbox import Inbox, InboxEvent
from stripe_warehouse.errors import WarehouseError, warehouse_locked
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.settings import RAW_DATASET, home_dir, warehouse_path
from stripe_warehouse.writer_lock import warehouse_writer

# Event types whose object is merged into the raw tables.
APPLIED_TYPES = frozenset({
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "invoice.payment_succeeded", "invoice.payment_failed",
    "customer.created", "customer.updated", "customer.deleted",
    "charge.failed", "charge.succeeded", "charge.refunded",
})
DEAUTHORIZED = "account.application.deauthorized"
TABLE_OF_OBJECT = {
    "subscription": "subscriptions", "invoice": "invoices",
    "customer": "customers", "charge": "charges",
}
CHILD_TABLES = {  # the tables an object's rows go to
    "subscriptions": ("subscriptions", "subscription_versions", "subscription_items"),
    "invoices": ("invoices", "invoice_lines"),
}
# How long one round waits for the writer lock; the events stay in the inbox meanwhile and
# the applier tries again, so it need not wait as long as a batch writer.
LOCK_WAIT_SECONDS = 30.0

Row = dict[str, Any]


@dataclass
class ApplyResult:
    """What one :func:`apply_inbox` call did."""

    applied: int = 0  # events whose object was merged (or found already newer)
    ignored: int = 0  # accepted types we record but do not apply
    stale: int = 0  # events older than the stored state of their object
    rows_written: dict[str, int] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # project -> why its events wait
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        """Events marked done by this call."""
        return self.applied + self.ignored + self.stale


@dataclass
class _Target:
    """The state to write for one object, and the events it settles."""

    table: str
    obj: Row
    as_of: dt.datetime
    events: list[InboxEvent]


def apply_inbox(
    home: Path | str | None = None,
    project_id: str | None = None,
    api_base: str | None = None,
    refetch: bool = True,
) -> ApplyResult:
    """Apply every unapplied inbox event (of one project or all) to ``stripe_raw``."""
    started = time.perf_counter()
    state = home_dir(home)
    result = ApplyResult()
    store = ConnectionStore(state)
    with Inbox(state) as inbox:
        pending = inbox.unapplied(project_id)
        for pid in sorted({event.project_id for event in pending}):
            events = [event for event in pending if event.project_id == pid]
            outcomes = _apply_project(state, store, pid, events, api_base, refetch, result)
            if outcomes:
                inbox.mark_applied(outcomes)
        inbox.prune_applied()
    result.seconds = time.perf_counter() - started
    return result


def _apply_project(
    state: Path, store: ConnectionStore, project_id: str, events: list[InboxEvent],
    api_base: str | None, refetch: bool, result: ApplyResult,
) -> list[tuple[str, str, str]]:
    """Merge one project's events; the ``(project, event, outcome)`` to mark in the inbox."""
    warehouse = warehouse_path(state)
    if not warehouse.exists():
        result.waiting[project_id] = "no warehouse yet: run the first sync"
        return []
    try:
        connection = store.get(project_id)
    except WarehouseError as error:  # removed from the registry: its events wait, unapplied
        result.waiting[project_id] = str(error)
        return []
    can_fetch = refetch and connection.status == "active"
    named: dict[tuple[str, str], list[InboxEvent]] = {}
    unnamed: list[tuple[InboxEvent, str]] = []  # events settled without merging an object
    for event in events:
        obj = event.event["data"]["object"]
        table = TABLE_OF_OBJECT.get(obj.get("object", ""))
        if event.type in APPLIED_TYPES and table and obj.get("id"):
            named.setdefault((table, obj["id"]), []).append(event)
        else:
            unnamed.append((event, "applied" if event.type == DEAUTHORIZED else "ignored"))
    reader = StripeReader(store.api_key(project_id), api_base, project_id=project_id,
                          workers=2) if can_fetch and named else None
    try:
        targets = [_target(table, oid, evs, reader, result.warnings)
                   for (table, oid), evs in named.items()]
    finally:
        if reader is not None:
            reader.close()
    with warehouse_writer(state, f"applying webhook events of {project_id}",
                          wait=LOCK_WAIT_SECONDS):
        merged = _merge(warehouse, project_id, targets, events, connection.mode == "test")
    if merged is None:
        result.waiting[project_id] = "raw tables missing: run the first sync (backfill)"
        return []
    rows_written, fresh = merged
    for table, count in rows_written.items():
        result.rows_written[table] = result.rows_written.get(table, 0) + count
    settled = unnamed + [(event, "applied" if is_fresh else "stale")
                         for target, is_fresh in zip(targets, fresh, strict=True)
                         for event in target.events]
    for _, outcome in settled:
        setattr(result, outcome, getattr(result, outcome) + 1)
    outcomes = [(project_id, event.event_id, outcome) for event, outcome in settled]
    if any(event.type == DEAUTHORIZED for event in events) and connection.status != "revoked":
        _mark_revoked(store, project_id)
        result.revoked.append(project_id)
    return outcomes


def _mark_revoked(store: ConnectionStore, project_id: str) -> None:
    store.revoke(project_id, f"the Stripe account owner deauthorized this app for project "
                             f"{project_id}: syncs stopped; reconnect with "
                             f"`stripe-warehouse connect {project_id} --oauth`")


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _target(
    table: str, object_id: str, events: list[InboxEvent], reader: StripeReader | None,
    warnings: list[str],
) -> _Target:
    """The newest known state of one object: re-fetched if possible, else the newest payload."""
    newest = max(events, key=lambda e: (e.created, e.seq))
    payload = newest.event["data"]["object"]
    if reader is not None:
        fetched_at = _utc(time.time())
        try:
            path = f"{LIST_ENDPOINTS[table]}/{object_id}"
            current = reader.retrieve(path, retrieve_params(table))
            if current is not None and not current.get("deleted"):
                return _Target(table, _complete_lists(table, current, reader), fetched_at, events)
        except WarehouseError as error:
            # A key revoked or restricted since: the payload is the best state we can get.
            warnings.append(f"{object_id}: applied from the event payload ({error})")
        else:
            if table == "customers":
                # Stripe keeps only a stub of a deleted customer: keep what we knew, flagged.
                return _Target(table, dict(payload, deleted=True), fetched_at, events)
    if table == "customers" and newest.type == "customer.deleted":
        payload = dict(payload, deleted=True)
    return _Target(table, payload, _utc(newest.created), events)


def _complete_lists(table: str, obj: Row, reader: StripeReader) -> Row:
    """Page embedded lists (≤10 entries) that have more, as the sync does."""
    if table == "subscriptions":
        key, path = "items", LIST_ENDPOINTS["subscription_items"]
        params: dict[str, Any] = {"subscription": obj["id"]}
    elif table == "invoices":
        key, path, params = "lines", INVOICE_LINES_ENDPOINT.format(id=obj["id"]), {}
    else:
        return obj
    embedded = obj.get(key) or {}
    items = list(embedded.get("data") or [])
    if embedded.get("has_more") and items:
        for page in reader.list_sequential(path, params, starting_after=items[-1]["id"]):
            items.extend(page)
    return dict(obj, **{key: dict(embedded, data=items, has_more=False)})


def _rows(project_id: str, target: _Target) -> Iterator[tuple[str, Row]]:
    """The raw-table rows of one object, shaped like the sync's (pipelines/source.py)."""
    obj = target.obj

    def row(item: Row, data: Row, **extra: Any) -> Row:
        return {"project_id": project_id, "id": item["id"], "created": item.get("created"),
                "livemode": item.get("livemode"), "data": data,
                "api_version": STRIPE_API_VERSION, "_synced_at": target.as_of, **extra}

    data = allowlist(obj)
    if target.table == "customers":
        yield "customers", row(obj, data, deleted=bool(obj.get("deleted")))
    elif target.table == "charges":
        data.pop("refunds", None)
        yield "charges", row(obj, data)
    elif target.table == "invoices":
        data.pop("lines", None)
        yield "invoices", row(obj, data)
        for line in (obj.get("lines") or {}).get("data") or []:
            yield "invoice_lines", dict(row(line, allowlist(line), invoice=obj["id"]),
                                        created=obj.get("created"))
    else:
        latest = obj.get("latest_invoice")
        if isinstance(latest, dict):
            obj = dict(obj, latest_invoice=latest["id"])
            data = allowlist(obj)
        yield "subscriptions", row(obj, data)
        yield "subscription_versions", row(obj, data, version_hash=version_hash(data),
                                           observed_at=target.as_of, source="webhook")
        for item in (obj.get("items") or {}).get("data") or []:
            yield "subscription_items", row(item, allowlist(item), subscription=obj["id"])


def _event_row(project_id: str, event: InboxEvent) -> Row:
    return {"project_id": project_id, "id": event.event_id, "created": event.created,
            "livemode": event.event.get("livemode"), "data": event.event,
            "api_version": event.event.get("api_version"),
            "_synced_at": _utc(event.received_at), "type": event.type}


def connect_when_free(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection; call it holding the writer lock (stripe_warehouse.writer_lock).

    Every writer of ours waits for that lock instead, so a DuckDB lock error here means a
    process outside it (a BI tool, the DuckDB CLI) holds the file.
    """
    try:
        return duckdb.connect(str(warehouse))
    except duckdb.IOException as error:
        if not warehouse_locked(str(error)):
            raise
        raise WarehouseError(
            f"the warehouse {warehouse} is open in another process (a BI tool, the DuckDB "
            "CLI?): webhook events stay in the inbox and are applied once it is closed "
            "(readers should open reporting.duckdb, which is never locked)") from None


class _Writer:
    """Inserts contract rows into whatever columns a raw table has (dlt adds its own)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, load_id: str) -> None:
        self.con = con
        self.load_id = load_id
        found = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = ?", [RAW_DATASET]
        ).fetchall()
        self.columns: dict[str, list[str]] = {}
        for table, column in found:
            self.columns.setdefault(table, []).append(column)
        self.written: dict[str, int] = {}

    def has(self, *tables: str) -> bool:
        return all(table in self.columns for table in tables)

    def stored_as_of(self, table: str, project_id: str, object_id: str) -> float | None:
        found = self.con.execute(
            f"select max(epoch(_synced_at)) from {RAW_DATASET}.{table} "
            "where project_id = ? and id = ?", [project_id, object_id]
        ).fetchone()
        return found[0] if found else None

    def upsert(self, table: str, row: Row, key: tuple[str, ...] = ("project_id", "id")) -> None:
        self.con.execute(
            f"delete from {RAW_DATASET}.{table} where "
            + " and ".join(f"{column} = ?" for column in key), [row[c] for c in key]
        )
        self.insert(table, row)

    def insert_new(self, table: str, row: Row, key: tuple[str, ...]) -> None:
        exists = self.con.execute(
            f"select 1 from {RAW_DATASET}.{table} where "
            + " and ".join(f"{column} = ?" for column in key), [row[c] for c in key]
        ).fetchone()
        if not exists:
            self.insert(table, row)

    def insert(self, table: str, row: Row) -> None:
        values = dict(row, _dlt_load_id=self.load_id, _dlt_id=uuid.uuid4().hex[:14])
        columns = [c for c in self.columns[table] if c in values]
        encoded = [json.dumps(values[c]) if c == "data" else values[c] for c in columns]
        self.con.execute(
            f"insert into {RAW_DATASET}.{table} ({', '.join(columns)}) "
            f"values ({', '.join('?' for _ in columns)})", encoded
        )
        self.written[table] = self.written.get(table, 0) + 1


def _merge(
    warehouse: Path, project_id: str, targets: list[_Target], events: list[InboxEvent],
    test_mode: bool,
) -> tuple[dict[str, int], list[bool]] | None:
    """Write the targets, the events and a ``sync_runs`` row in one transaction.

    Returns rows written per table and, per target, whether it was newer than the stored
    state; None if the raw tables do not exist yet (no sync ran).
    """
    started = _utc(time.time())
    con = connect_when_free(warehouse)
    try:
        con.execute("set TimeZone = 'UTC'")
        writer = _Writer(con, f"{time.time():.6f}")
        needed = {"events", "sync_runs"} | {
            child for t in targets for child in CHILD_TABLES.get(t.table, (t.table,))}
        if not writer.has(*needed):
            return None
        fresh: list[bool] = []
        con.execute("begin transaction")
        for target in targets:
            stored = writer.stored_as_of(target.table, project_id, target.obj["id"])
            is_fresh = stored is None or target.as_of.timestamp() >= stored
            fresh.append(is_fresh)
            if not is_fresh:
                continue
            for table, row in _rows(project_id, target):
                if table == "subscription_versions":
                    writer.insert_new(table, row, ("project_id", "id", "version_hash"))
                else:
                    writer.upsert(table, row)
        for event in events:
            writer.upsert("events", _event_row(project_id, event))
        created = [event.created for event in events]
        writer.insert("sync_runs", {
            "project_id": project_id, "run_id": uuid.uuid4().hex, "kind": "webhook",
            "window_start": _utc(min(created)), "window_end": _utc(max(created)),
            "started_at": started, "finished_at": _utc(time.time()), "status": "succeeded",
            "objects_loaded": sum(writer.written.values()), "api_version": STRIPE_API_VERSION,
            "test_mode": test_mode or any(e.event.get("livemode") is False for e in events),
        })
        con.execute("commit")
        return writer.written, fresh
    finally:
        con.close()  # closing rolls back a transaction left open by an error
