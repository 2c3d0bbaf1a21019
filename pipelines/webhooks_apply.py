"""Apply webhook events from the inbox to the raw tables, in one short transaction per project,
on either warehouse target (DuckDB or PostgreSQL: the same SQL, :func:`_merge_turn` holds the
target's lock and opens its connection).

For each object the events name, the newest state wins: re-fetched from Stripe (GET only).
An object that cannot be re-fetched is never written from the event's payload: its events
wait in the inbox for the next round (a key that lost access is found by the next sync,
which marks the project ``revoked``). Only an explicit ``refetch=False`` (tests, offline
replays) writes payloads, and only for ``active`` projects, whose events were verified with
the project's signing secret at the door. Events of a disconnected or revoked project are
never applied: they are quarantined (below). A row is only replaced when the new state is at
least as recent as the stored one (``_synced_at``: when the copy was read, or for a payload
the event's ``created``), so late or reordered deliveries never put an older state on top of
a newer one. The rows follow the sync's contract (docs/architecture.md) and every applied
batch appends a ``sync_runs`` row of kind ``webhook`` so marts report "today".

Writers of one project never interleave: on DuckDB every writer takes the local writer lock; on
PostgreSQL, where syncs and appliers of several machines write, the merge holds the project's
advisory lock (:func:`stripe_warehouse.build_lock.project_write_turn`), which the sync's load of
that project holds too (``pipelines.load._writing``): without it, a merge's DELETE, not seeing
the row another transaction inserted meanwhile, could leave two rows of one key.

One bad event never stops the rest: an event that is not a storable Stripe event
(:func:`stripe_warehouse.event_shape.event_problem`), or whose batch fails on its data and
that fails again alone, is quarantined in the inbox (outcome ``failed`` with the reason, shown by
``status`` and ``doctor``) and the others are applied.
"""

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg2

from pipelines.client import StripeReader
from pipelines.event_types import WEBHOOK_APPLIED_TYPES
from pipelines.privacy import SegmentKeys, allowlist_keeping
from pipelines.settings import (
    INVOICE_LINES_ENDPOINT,
    INVOICE_PAYMENTS_ENDPOINT,
    ITEM_PAGE_EXPANSIONS,
    LINE_PAGE_EXPANSIONS,
    LIST_ENDPOINTS,
    object_to_refetch,
    retrieve_params,
)
from pipelines.source import version_hash
from stripe_warehouse.build_lock import project_write_turn
from stripe_warehouse.errors import WarehouseError, warehouse_locked
from stripe_warehouse.event_shape import event_problem
from stripe_warehouse.inbox import Inbox, InboxEvent
from stripe_warehouse.registry import Connection, ConnectionStore, UnknownProject
from stripe_warehouse.settings import RAW_DATASET
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.stripe_api import STRIPE_API_VERSION
from stripe_warehouse.warehouse_target import PostgresReader
from stripe_warehouse.writer_lock import warehouse_writer

# Event types whose object is merged into the raw tables (listed with the others).
APPLIED_TYPES = WEBHOOK_APPLIED_TYPES
DEAUTHORIZED = "account.application.deauthorized"
APPLIED_TABLES = frozenset({"subscriptions", "invoices", "customers", "charges", "refunds",
                            "disputes", "credit_notes"})
CHILD_TABLES = {  # the tables an object's rows go to
    "subscriptions": ("subscriptions", "subscription_versions", "subscription_items"),
    "invoices": ("invoices", "invoice_lines"),
}
# How long one round waits for the writer lock; the events stay in the inbox meanwhile and
# the applier tries again, so it need not wait as long as a batch writer.
LOCK_WAIT_SECONDS = 30.0
# Errors an event's content can cause (a value no column takes, a field of the wrong type);
# anything else (a locked or full disk, a WarehouseError) leaves the events for the next round.
DATA_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
               RecursionError, duckdb.DataError, duckdb.InvalidInputException,
               duckdb.InvalidTypeException, psycopg2.DataError)

Row = dict[str, Any]
Outcome = tuple[str, str, str]  # (project_id, event_id, outcome or reason)


@dataclass
class AppliedBatch:
    """One project's merged batch, as its ``sync_runs`` row records it: what the Dagster
    instance shows as that partition's raw-table materialisations."""

    project_id: str
    rows_written: dict[str, int]  # per raw table, child tables included, sync_runs not
    window_start: dt.datetime  # the oldest and newest event's `created`
    window_end: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    test_mode: bool
    requests: int = 0  # the re-fetches from Stripe (GET) and their retries and 429s
    retries: int = 0
    throttled: int = 0


@dataclass
class ApplyResult:
    """What one :func:`apply_inbox` call did."""

    applied: int = 0  # events whose object was merged (or found already newer)
    ignored: int = 0  # accepted types we record but do not apply
    stale: int = 0  # events older than the stored state of their object
    failed: int = 0  # events quarantined in the inbox: never applied, reason kept
    rows_written: dict[str, int] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # project -> why its events wait
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    batches: list[AppliedBatch] = field(default_factory=list)  # one per merged transaction

    @property
    def events(self) -> int:
        """Events applied (or recorded) by this call; quarantined ones are in ``failed``."""
        return self.applied + self.ignored + self.stale


@dataclass
class _Target:
    """The state to write for one object, and the events it settles."""

    table: str
    obj: Row
    as_of: dt.datetime
    events: list[InboxEvent]


def apply_inbox(
    home: Path | str,
    project_id: str | None = None,
    api_base: str | None = None,
    refetch: bool = True,
) -> ApplyResult:
    """Apply every unapplied inbox event (of one project or all) to ``stripe_raw``."""
    started = time.perf_counter()
    state = StateDir.of(home).create().root
    result = ApplyResult()
    store = ConnectionStore(state)
    with Inbox(state) as inbox:
        pending = inbox.unapplied(project_id)
        for pid in sorted({event.project_id for event in pending}):
            events = [event for event in pending if event.project_id == pid]
            failures = [(pid, event.event_id, f"not a storable Stripe event: {problem}")
                        for event in events if (problem := event_problem(event.event))]
            bad = {event_id for _, event_id, _ in failures}
            outcomes, more = _apply_isolating(
                state, store, pid, [e for e in events if e.event_id not in bad], api_base,
                refetch, result)
            failures += more
            if failures:
                inbox.mark_failed(failures)
                result.failed += len(failures)
                result.warnings.extend(f"{pid} {eid}: quarantined, {why}"
                                       for _, eid, why in failures)
            if outcomes:
                inbox.mark_applied(outcomes)
        inbox.prune_applied()
    result.seconds = time.perf_counter() - started
    return result


def _data_error(error: Exception) -> str:
    return f"the applier failed on it ({type(error).__name__}: {' '.join(str(error).split())})"


def _apply_isolating(
    state: Path, store: ConnectionStore, project_id: str, events: list[InboxEvent],
    api_base: str | None, refetch: bool, result: ApplyResult,
) -> tuple[list[Outcome], list[Outcome]]:
    """Apply the batch; if its data breaks it, each event alone, quarantining those that fail.

    Each attempt is its own transaction, so a failed one leaves nothing behind.
    """
    if not events:
        return [], []
    try:
        return _apply_project(state, store, project_id, events, api_base, refetch, result)
    except DATA_ERRORS as error:
        if len(events) == 1:
            return [], [(project_id, events[0].event_id, _data_error(error))]
    outcomes: list[Outcome] = []
    failures: list[Outcome] = []
    for event in events:
        try:
            done, failed = _apply_project(state, store, project_id, [event], api_base, refetch,
                                          result)
        except DATA_ERRORS as error:
            done, failed = [], [(project_id, event.event_id, _data_error(error))]
        outcomes += done
        failures += failed
    return outcomes, failures


def _apply_project(
    state: Path, store: ConnectionStore, project_id: str, events: list[InboxEvent],
    api_base: str | None, refetch: bool, result: ApplyResult,
) -> tuple[list[Outcome], list[Outcome]]:
    """Merge one project's events: the ``(project, event, outcome)`` to mark, and failures."""
    try:
        connection = store.get(project_id)
    except UnknownProject as error:  # removed from the registry: its events wait, unapplied
        result.waiting[project_id] = str(error)
        return [], []
    if connection.status == "active" and any(e.type == DEAUTHORIZED for e in events):
        _mark_revoked(store, project_id)
        result.revoked.append(project_id)
        connection = store.get(project_id)
    if connection.status != "active":
        return _refuse_inactive(connection, events, result)
    if not StateDir.of(state).target.is_postgres and not StateDir.of(state).warehouse.exists():
        result.waiting[project_id] = "no warehouse yet: run the first sync"
        return [], []
    named: dict[tuple[str, str], list[InboxEvent]] = {}
    unnamed: list[tuple[InboxEvent, str]] = []  # events settled without merging an object
    for event in events:
        # an invoice payment's events name its invoice: re-read with its payments
        target = object_to_refetch(event.event["data"]["object"])
        if event.type in APPLIED_TYPES and target and target[0] in APPLIED_TABLES:
            named.setdefault(target, []).append(event)
        else:
            unnamed.append((event, "ignored"))
    reader = StripeReader(store.api_key(project_id), api_base, project_id=project_id,
                          workers=2) if refetch and named else None
    targets: list[_Target] = []
    try:
        for (table, oid), evs in named.items():
            target = _target(table, oid, evs, reader, result.warnings)
            if target is None:  # Stripe no longer has it: recorded, nothing to write
                unnamed.extend((event, "ignored") for event in evs)
            elif target.obj:
                targets.append(target)
            # else: not re-fetched this time; its events wait for the next round
    finally:
        if reader is not None:
            reader.close()
    settling = [event for event, _ in unnamed] + [e for t in targets for e in t.events]
    if not settling:
        return [], []
    with _merge_turn(state, project_id) as con:
        merged = _merge(con, project_id, targets, settling, connection.mode == "test",
                        connection.segment_keys, connection.time_zone)
    if merged is None:
        result.waiting[project_id] = "raw tables missing: run the first sync (backfill)"
        return [], []
    rows_written, fresh, run_row = merged
    for table, count in rows_written.items():
        result.rows_written[table] = result.rows_written.get(table, 0) + count
    result.batches.append(AppliedBatch(
        project_id, {t: n for t, n in rows_written.items() if t != "sync_runs"},
        run_row["window_start"], run_row["window_end"], run_row["started_at"],
        run_row["finished_at"], run_row["test_mode"],
        *((reader.requests, reader.retries, reader.throttled) if reader else ())))
    settled = unnamed + [(event, "applied" if is_fresh else "stale")
                         for target, is_fresh in zip(targets, fresh, strict=True)
                         for event in target.events]
    for _, outcome in settled:
        setattr(result, outcome, getattr(result, outcome) + 1)
    return [(project_id, event.event_id, outcome) for event, outcome in settled], []


def _refuse_inactive(
    connection: Connection, events: list[InboxEvent], result: ApplyResult
) -> tuple[list[Outcome], list[Outcome]]:
    """A disconnected or revoked project: nothing can be re-fetched, nothing is applied."""
    pid = connection.project_id
    outcomes = [(pid, e.event_id, "applied") for e in events if e.type == DEAUTHORIZED]
    result.applied += len(outcomes)
    reason = (f"project {pid} is {connection.status}: its events are not applied; reconnect "
              f"with `stripe-warehouse connect {pid}` and run `stripe-warehouse sync {pid} "
              "--refresh` to catch up")
    return outcomes, [(pid, e.event_id, reason) for e in events if e.type != DEAUTHORIZED]


def _mark_revoked(store: ConnectionStore, project_id: str) -> None:
    store.revoke(project_id, f"the Stripe account owner deauthorized this app for project "
                             f"{project_id}: syncs stopped; reconnect with "
                             f"`stripe-warehouse connect {project_id} --oauth`")


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _target(
    table: str, object_id: str, events: list[InboxEvent], reader: StripeReader | None,
    warnings: list[str],
) -> _Target | None:
    """The newest state of one object: re-fetched (``reader``), else the newest payload.

    None if Stripe no longer has the object; a target with an empty ``obj`` if the re-fetch
    failed (the events wait: a payload is never written in its place).
    """
    # the newest payload that is the object itself (an invoice payment's is not its invoice)
    own = [e for e in events if e.event["data"]["object"].get("id") == object_id] or events
    newest = max(own, key=lambda e: (e.created, e.seq))
    payload = newest.event["data"]["object"]
    if reader is None and payload.get("id") != object_id:
        return None  # refetch=False and only invoice payments name it: nothing to write
    if reader is None:  # refetch=False: verified payloads of an active project
        if table == "customers" and newest.type == "customer.deleted":
            payload = dict(payload, deleted=True)
        return _Target(table, payload, _utc(newest.created), events)
    fetched_at = _utc(time.time())
    try:
        current = reader.retrieve(f"{LIST_ENDPOINTS[table]}/{object_id}", retrieve_params(table))
        if current is not None and not current.get("deleted"):
            return _Target(table, _complete_lists(table, current, reader), fetched_at, events)
    except WarehouseError as error:
        warnings.append(f"{object_id}: not applied, it could not be re-fetched ({error}); "
                        "its events wait for the next round")
        return _Target(table, {}, fetched_at, events)
    if current is not None and table == "customers":
        # Stripe confirms the deletion and keeps only a stub: keep what we knew, flagged.
        return _Target(table, dict(payload, deleted=True), fetched_at, events)
    warnings.append(f"{object_id}: Stripe no longer has it; its events are recorded only")
    return None


def _complete_lists(table: str, obj: Row, reader: StripeReader) -> Row:
    """Page embedded lists (≤10 entries) that have more, as the sync does: a subscription's
    items, an invoice's lines and its payments (an invoice retried by bank debit can name more
    than 10; the one that paid it may be past the 10th)."""
    if table == "subscriptions":
        lists: list[tuple[str, str, dict[str, Any]]] = [
            ("items", LIST_ENDPOINTS["subscription_items"],
             {"subscription": obj["id"], "expand": ITEM_PAGE_EXPANSIONS})]
    elif table == "invoices":
        lists = [("lines", INVOICE_LINES_ENDPOINT.format(id=obj["id"]),
                  {"expand": LINE_PAGE_EXPANSIONS}),
                 ("payments", INVOICE_PAYMENTS_ENDPOINT, {"invoice": obj["id"]})]
    else:
        return obj
    completed = dict(obj)
    for key, path, params in lists:
        embedded = obj.get(key)
        if not isinstance(embedded, dict):
            continue
        items = list(embedded.get("data") or [])
        if embedded.get("has_more") and items:
            for page in reader.list_sequential(path, params, starting_after=items[-1]["id"]):
                items.extend(page)
        completed[key] = dict(embedded, data=items, has_more=False)
    return completed


def _rows(project_id: str, target: _Target, segment_keys: SegmentKeys | None = None
          ) -> Iterator[tuple[str, Row]]:
    """The raw-table rows of one object, shaped like the sync's (pipelines/source.py), with
    the project's named metadata keys (``segment_keys``)."""
    obj = target.obj

    def allowlist(value: Any) -> Any:
        return allowlist_keeping(value, segment_keys)

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
    elif target.table != "subscriptions":  # refunds, disputes, credit notes: the object
        yield target.table, row(obj, data)
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


@contextmanager
def _merge_turn(state: Path, project_id: str) -> Iterator[Any]:
    """The project's turn to write, and a connection to write it with (``execute`` with ``?``
    placeholders, ``begin``, ``commit``; closing it rolls back what was not committed).

    DuckDB: the local writer lock and a connection to the file. PostgreSQL: the project's
    advisory lock on the server (every machine's syncs and appliers of the project take it)
    and a connection of the server's (:class:`PostgresReader`). Either waits at most
    :data:`LOCK_WAIT_SECONDS`, then the round fails and its events wait for the next one.
    """
    state_dir = StateDir.of(state)
    purpose = f"applying webhook events of {project_id}"
    if state_dir.target.is_postgres:
        with project_write_turn(state, project_id, purpose, wait=LOCK_WAIT_SECONDS):
            con: Any = PostgresReader(state_dir.target.connect())
            try:
                yield con
            finally:
                con.close()
        return
    with warehouse_writer(state, purpose, wait=LOCK_WAIT_SECONDS):
        con = connect_when_free(state_dir.warehouse)
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()  # closing rolls back a transaction left open by an error


class _Writer:
    """Inserts contract rows into whatever columns a raw table has (dlt adds its own)."""

    def __init__(self, con: Any, load_id: str) -> None:
        self.con = con
        self.load_id = load_id
        # seconds since the epoch of a timestamp column (DuckDB's epoch() is not PostgreSQL's)
        self.epoch = "epoch({})" if isinstance(con, duckdb.DuckDBPyConnection) \
            else "extract(epoch from {})"
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
            f"select max({self.epoch.format('_synced_at')}) from {RAW_DATASET}.{table} "
            "where project_id = ? and id = ?", [project_id, object_id]
        ).fetchone()
        return float(found[0]) if found and found[0] is not None else None

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
    con: Any, project_id: str, targets: list[_Target], events: list[InboxEvent],
    test_mode: bool, segment_keys: SegmentKeys | None = None, time_zone: str = "UTC",
) -> tuple[dict[str, int], list[bool], dict[str, Any]] | None:
    """Write the targets, the events and a ``sync_runs`` row in one transaction of ``con``
    (:func:`_merge_turn`'s connection).

    Returns rows written per table, per target whether it was newer than the stored
    state, and the ``sync_runs`` row; None if the raw tables do not exist yet (no sync ran).
    """
    started = _utc(time.time())
    writer = _Writer(con, f"{time.time():.6f}")
    needed = {"events", "sync_runs"} | {
        child for t in targets for child in CHILD_TABLES.get(t.table, (t.table,))}
    if not writer.has(*needed):
        return None
    fresh: list[bool] = []
    con.begin()
    for target in targets:
        stored = writer.stored_as_of(target.table, project_id, target.obj["id"])
        is_fresh = stored is None or target.as_of.timestamp() >= stored
        fresh.append(is_fresh)
        if not is_fresh:
            continue
        for table, row in _rows(project_id, target, segment_keys):
            if table == "subscription_versions":
                writer.insert_new(table, row, ("project_id", "id", "version_hash"))
            else:
                writer.upsert(table, row)
    for event in events:
        writer.upsert("events", _event_row(project_id, event))
    created = [event.created for event in events]
    run_row = {
        "project_id": project_id, "run_id": uuid.uuid4().hex, "kind": "webhook",
        "window_start": _utc(min(created)), "window_end": _utc(max(created)),
        "started_at": started, "finished_at": _utc(time.time()), "status": "succeeded",
        "objects_loaded": sum(writer.written.values()), "api_version": STRIPE_API_VERSION,
        "test_mode": test_mode or any(e.event.get("livemode") is False for e in events),
        "reporting_time_zone": time_zone,
    }
    writer.insert("sync_runs", run_row)
    con.commit()
    return writer.written, fresh, run_row
