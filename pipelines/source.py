"""The dlt source: one resource per raw table of docs/architecture.md, fed by one extraction.

A single internal resource (``stripe_objects``, not loaded itself) walks the sync plan:
it reads the listings concurrently, follows embedded lists that have more pages, and in a
refresh re-fetches what events name. It yields rows grouped by table; each table resource
is a transformer that keeps its own rows, so every Stripe object is read once.

Throughput (bench/extract_throughput.py): listing threads only fetch; a page pool turns
pages into rows; the listings that set a sync's least duration (CRITICAL_LISTINGS) get the
overall rate limit first.
"""

import datetime as dt
import functools
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import dlt
import orjson
from dlt.sources import DltSource

from pipelines.client import StripeReader
from pipelines.event_types import EVENT_TYPE_GROUPS
from pipelines.privacy import SegmentKeys, allowlist_keeping
from pipelines.settings import (
    INVOICE_LINES_ENDPOINT,
    INVOICE_PAYMENTS_ENDPOINT,
    ITEM_PAGE_EXPANSIONS,
    LINE_PAGE_EXPANSIONS,
    LIST_ENDPOINTS,
    LIST_EXPANSIONS,
    object_to_refetch,
    retrieve_params,
)
from pipelines.windows import SyncKind, SyncWindow, sync_window
from stripe_warehouse.stripe_api import STRIPE_API_VERSION

Row = dict[str, Any]
Batch = list[tuple[str, Row]]
RowsByTable = dict[str, list[Row]]

BASE_COLUMNS: dict[str, dict[str, Any]] = {
    "project_id": {"data_type": "text", "nullable": False},
    "id": {"data_type": "text", "nullable": False},
    "created": {"data_type": "bigint", "nullable": True},
    "livemode": {"data_type": "bool", "nullable": True},
    # Handed to dlt as JSON text into a JSON column made by load.ensure_warehouse: a nested
    # value would go through DuckDB's read_json, which infers one struct per file and pads
    # every object with the keys of all others (null), so `data` would lose its API shape.
    "data": {"data_type": "text", "nullable": True},
    "api_version": {"data_type": "text", "nullable": True},
    "_synced_at": {"data_type": "timestamp", "timezone": True, "nullable": True},
}
EXTRA_COLUMNS: dict[str, dict[str, dict[str, Any]]] = {
    "customers": {"deleted": {"data_type": "bool", "nullable": True}},
    "subscriptions": {},
    "subscription_items": {"subscription": {"data_type": "text", "nullable": True}},
    "invoices": {},
    "invoice_lines": {"invoice": {"data_type": "text", "nullable": True}},
    "charges": {},
    "refunds": {},
    "disputes": {},
    "credit_notes": {},
    "prices": {},
    "products": {},
    "coupons": {},
    "events": {"type": {"data_type": "text", "nullable": True}},
    "subscription_versions": {
        "version_hash": {"data_type": "text", "nullable": False},
        "observed_at": {"data_type": "timestamp", "timezone": True, "nullable": True},
        "source": {"data_type": "text", "nullable": True},
    },
}
RAW_TABLES = tuple(EXTRA_COLUMNS)
JSON_COLUMNS = frozenset({"data"})  # stored as DuckDB JSON (see BASE_COLUMNS)
# Fields that change without the subscription's state changing: not part of a version.
VOLATILE_SUBSCRIPTION_FIELDS = frozenset({"latest_invoice", "next_pending_invoice_item_invoice"})
# Objects re-listed in full by every sync: events naming them need no re-fetch.
RELISTED_TABLES = frozenset({"subscriptions"})
# The listings needing the most pages of one endpoint (30 days of events; 90 days of invoices
# and their lines, which share the invoices limit): they set the least time a sync can take,
# so they get the overall rate limit first and their per-endpoint limit sets their pace.
CRITICAL_LISTINGS = frozenset({"events", "invoices"})
QUEUE_PAGES = 32  # bounds memory: listings wait while the loader catches up
# Pages are turned into rows by a pool, not by the listing that fetched them: a listing
# that also allowlisted its pages and paged embedded lists (invoice lines, subscription items)
# sent its next request only after that work, and fell well below its endpoint's limit.
# Each listing has its own bound on pages in work: turning an invoice page into rows may wait
# on the invoices limit (its lines are paged from that endpoint), and with one shared bound
# those pages held every slot, so events and the other listings stopped sending requests and
# lost a tenth of their rate. With enough workers for every listing's slots, no listing waits
# on another's.
PAGES_IN_WORK_PER_LISTING = 8  # pages fetched but not yet turned into rows, per listing
PAGE_WORKERS = 32
ARROW_BATCH_ROWS = 5_000  # rows gathered into one batch before they become Arrow tables


def version_hash(subscription: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an allowlisted subscription minus volatile fields."""
    stable = {k: v for k, v in subscription.items() if k not in VOLATILE_SUBSCRIPTION_FIELDS}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _already_allowlisted(value: Any) -> Any:
    return value


def json_text(value: Any) -> str:
    """Compact JSON text of a Stripe object."""
    return orjson.dumps(value).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Stopped(Exception):
    """The consumer went away: listings stop quietly."""


class StripeExtraction:
    """The objects one sync reads, as rows grouped by table (see the module docstring)."""

    def __init__(self, project_id: str, reader: StripeReader, window: SyncWindow,
                 segment_keys: SegmentKeys | None = None) -> None:
        self.project_id = project_id
        self.reader = reader
        # Pages the reader already allowlisted (in worker processes, with the project's named
        # metadata keys) are not walked again here: on a large backfill that second pass was a
        # tenth of the syncing process's CPU.
        self._allowlist: Callable[[Any], Any] = (
            _already_allowlisted if getattr(reader, "delivers_allowlisted", False)
            else functools.partial(allowlist_keeping, segment_keys=segment_keys)
        )
        self.window = window
        self._seen: dict[str, set[str]] = {table: set() for table in RAW_TABLES}
        self._seen_lock = threading.Lock()
        # (table, id) -> (created of the newest event naming it, its payload)
        self._named_by_events: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_PAGES)
        self._stop = threading.Event()
        self._page_pool: ThreadPoolExecutor | None = None

    def batches(self) -> Iterator[RowsByTable]:
        """Run the plan, yielding batches as listings deliver them."""
        jobs = self._listing_jobs()
        with (
            ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="listing") as pool,
            ThreadPoolExecutor(PAGE_WORKERS, thread_name_prefix="pages") as page_pool,
        ):
            self._page_pool = page_pool
            try:
                yield from self._drain([pool.submit(self._run, job) for job in jobs])
                if self.window.kind == "refresh":
                    yield from self._drain([pool.submit(self._run, self._refetch_named)])
            finally:
                self._stop.set()

    def _drain(self, futures: list) -> Iterator[RowsByTable]:
        remaining = len(futures)
        while remaining:
            message = self._queue.get()
            if message is None:
                remaining -= 1
            elif isinstance(message, BaseException):
                raise message
            else:
                yield message
        for future in futures:
            future.result()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except _Stopped:
            pass
        except BaseException as error:  # handed to the consumer thread, which raises it
            self._put_quietly(error)
            return
        self._put_quietly(None)

    def _put_quietly(self, message: Any) -> None:
        try:
            self._put(message)
        except _Stopped:
            pass

    def _put(self, message: Any) -> None:
        while True:
            if self._stop.is_set():  # nobody reads the queue any more
                raise _Stopped
            try:
                self._queue.put(message, timeout=0.2)
                return
            except queue.Full:
                continue

    def _emit(self, batch: Batch) -> None:
        # Grouped here, in the listing threads, so each table resource just picks its rows.
        grouped: RowsByTable = {}
        for table, row in batch:
            grouped.setdefault(table, []).append(row)
        if grouped:
            self._put(grouped)

    def _first_sighting(self, table: str, object_id: str) -> bool:
        with self._seen_lock:
            if object_id in self._seen[table]:
                return False
            self._seen[table].add(object_id)
            return True

    def _sighted(self, table: str, object_id: str) -> None:
        """Note an object a refresh need not re-fetch (_refetch_named, the only reader of these
        ids). A backfill re-fetches nothing: keeping every customer's, charge's... id until
        its end cost ~110 MB per million objects, at its peak (issue 18 goal 3)."""
        if self.window.kind == "refresh" and table not in RELISTED_TABLES:
            with self._seen_lock:
                self._seen[table].add(object_id)

    # The plan -------------------------------------------------------------------------

    def _listing_jobs(self) -> list[Callable[[], None]]:
        w = self.window
        everything: tuple[int | None, int | None] = (None, None)
        recent = (w.activity_start, w.end)
        backfill = w.kind == "backfill"
        # Events usually need the most pages of one endpoint (the per-endpoint limit makes
        # them the critical path): start them first, one listing per group of at most 20
        # types (pipelines/event_types.py).
        return [
            *(partial(self._list_events, types) for types in EVENT_TYPE_GROUPS),
            lambda: self._list_simple("customers", everything if backfill else recent),
            self._list_subscriptions,
            lambda: self._list_invoices(recent),
            lambda: self._list_simple("charges", recent),
            lambda: self._list_simple("refunds", recent),
            lambda: self._list_simple("disputes", recent),
            lambda: self._list_simple("credit_notes", recent),
            lambda: self._list_simple("prices", everything if backfill else recent),
            lambda: self._list_simple("products", everything if backfill else recent),
            lambda: self._list_simple("coupons", everything if backfill else recent),
        ]

    def _pages(
        self, table: str, bounds: tuple[int | None, int | None], params: dict | None = None,
        shares: int = 1,
    ) -> Iterator[list[dict[str, Any]]]:
        gte, lt = bounds
        return self.reader.list_all(
            LIST_ENDPOINTS[table], params, created_gte=gte, created_lt=lt,
            priority=table in CRITICAL_LISTINGS, shares=shares,
        )

    def _list_simple(self, table: str, bounds: tuple[int | None, int | None]) -> None:
        expand = LIST_EXPANSIONS.get(table)
        self._rows_of_pages(
            self._pages(table, bounds, {"expand": expand} if expand else None),
            lambda page: [self._object_row(table, o) for o in page],
        )

    def _list_subscriptions(self) -> None:
        params = {"status": "all", "expand": LIST_EXPANSIONS["subscriptions"]}
        kind = self.window.kind
        self._rows_of_pages(
            self._pages("subscriptions", (None, None), params),
            lambda page: [row for sub in page for row in self._subscription_rows(sub, kind)],
        )

    def _list_invoices(self, bounds: tuple[int | None, int | None]) -> None:
        self._rows_of_pages(
            self._pages("invoices", bounds, {"expand": LIST_EXPANSIONS["invoices"]}),
            lambda page: [row for invoice in page for row in self._invoice_rows(invoice)],
        )

    def _list_events(self, types: tuple[str, ...]) -> None:
        """The events of `types` (exact names, 20 at most: Stripe's `types[]`); with none,
        of every type (the listing before issue 18, which bench/extract_throughput.py runs
        for comparison)."""
        self._rows_of_pages(
            self._pages("events", (self.window.events_start, self.window.end),
                        {"types": list(types)} if types else None,
                        shares=len(EVENT_TYPE_GROUPS)),
            self._event_rows,
        )

    def _event_rows(self, page: list[dict[str, Any]]) -> Batch:
        batch: Batch = []
        for event in page:
            if self._first_sighting("events", event["id"]):
                batch.append(("events", self._event_row(event)))
            if self.window.kind == "refresh":
                self._note_named_object(event)
        return batch

    def _rows_of_pages(
        self, pages: Iterator[list[dict[str, Any]]], rows_of: Callable[[list[Any]], Batch]
    ) -> None:
        """Fetch pages here and turn them into rows in the page pool (see PAGE_WORKERS)."""
        assert self._page_pool is not None, "only called from batches()"
        pending: list[Future] = []
        slots = threading.BoundedSemaphore(PAGES_IN_WORK_PER_LISTING)
        for page in pages:
            slots.acquire()  # released once the page's rows are emitted
            pending = [f for f in pending if not _finished(f)]
            pending.append(self._page_pool.submit(self._emit_rows_of, rows_of, page, slots))
        for future in pending:
            future.result()  # raises what the pool raised (_Stopped included)

    def _emit_rows_of(
        self, rows_of: Callable[[list[Any]], Batch], page: list[Any],
        slots: threading.BoundedSemaphore,
    ) -> None:
        try:
            self._emit(rows_of(page))
        finally:
            slots.release()

    def _note_named_object(self, event: dict[str, Any]) -> None:
        obj = (event.get("data") or {}).get("object") or {}
        named = object_to_refetch(obj)
        if named and named[0] not in RELISTED_TABLES:
            key, created = named, int(event.get("created") or 0)
            with self._seen_lock:
                # Keep the newest payload (for deleted customers): pages come in any order,
                # events within a page newest first.
                if created > self._named_by_events.get(key, (-1, {}))[0]:
                    self._named_by_events[key] = (created, obj)

    def _refetch_named(self) -> None:
        """Re-read each object events named that the listings did not already deliver."""
        with self._seen_lock:
            missing = [
                (table, object_id, payload)
                for (table, object_id), (_, payload) in self._named_by_events.items()
                if object_id not in self._seen[table]
            ]
        for table, object_id, payload in missing:
            current = self.reader.retrieve(
                f"{LIST_ENDPOINTS[table]}/{object_id}", retrieve_params(table)
            )
            if table == "customers" and (current is None or current.get("deleted")):
                # Stripe keeps only a stub of a deleted customer: keep what we knew, flagged.
                current = dict(payload, deleted=True)
            if current is None:
                continue
            if table == "invoices":
                self._emit(self._invoice_rows(current))
            else:
                self._emit([self._object_row(table, current)])

    # Rows -------------------------------------------------------------------------------

    def _row(self, obj: dict[str, Any], data: dict[str, Any], **extra: Any) -> Row:
        return {
            "project_id": self.project_id,
            "id": obj["id"],
            "created": obj.get("created"),
            "livemode": obj.get("livemode"),
            "data": json_text(data),
            "api_version": STRIPE_API_VERSION,
            "_synced_at": _now(),
            **extra,
        }

    def _object_row(self, table: str, obj: dict[str, Any]) -> tuple[str, Row]:
        self._sighted(table, obj["id"])
        data = self._allowlist(obj)
        extra: dict[str, Any] = {}
        if table == "customers":
            extra["deleted"] = bool(obj.get("deleted"))
        elif table == "charges":
            data = {k: v for k, v in data.items() if k != "refunds"}
        return table, self._row(obj, data, **extra)

    def _subscription_rows(self, subscription: dict[str, Any], source: str) -> Batch:
        rows: Batch = []
        latest = subscription.get("latest_invoice")
        if isinstance(latest, dict):
            # The covering invoice of a long plan may predate the window: load it too. One in
            # the window is the invoice listing's to load: the listing expands its lines'
            # discounts (here five levels deep, beyond Stripe's limit), and whichever way read
            # it first would decide the row.
            if not self._listed_invoice(latest):
                rows.extend(self._covering_invoice_rows(latest))
            subscription = dict(subscription, latest_invoice=latest["id"])
        embedded = subscription.get("items")
        items = self._embedded_or_paged(
            embedded, LIST_ENDPOINTS["subscription_items"],
            {"subscription": subscription["id"], "expand": ITEM_PAGE_EXPANSIONS},
        )
        if embedded and embedded.get("has_more"):
            # the subscription's row and version hold every item, as the webhook's re-fetch
            # writes them: a version cut at ten items would show the rest as gone, and their
            # changes and discounts could not be dated from the versions
            subscription = dict(subscription, items=dict(embedded, data=items, has_more=False))
        data = self._allowlist(subscription)
        rows.append(("subscriptions", self._row(subscription, data)))
        digest = version_hash(data)
        if self._first_sighting("subscription_versions", f"{subscription['id']}:{digest}"):
            row = self._row(subscription, data, version_hash=digest, source=source)
            row["observed_at"] = row["_synced_at"]
            rows.append(("subscription_versions", row))
        for item in items:
            if self._first_sighting("subscription_items", item["id"]):
                row = self._row(item, self._allowlist(item), subscription=subscription["id"])
                rows.append(("subscription_items", row))
        return rows

    def _covering_invoice_rows(self, latest: dict[str, Any]) -> Batch:
        """A subscription's latest invoice older than the invoice listing's window.

        Read with the subscription, its discounts' coupon and its lines' discounts are ids
        (five levels deep, beyond Stripe's limit), and a removed discount's terms may be on
        this invoice only (a deleted coupon is not listed). One without discounts is loaded as
        read; one with them is re-read whole in a backfill, and left as an earlier sync loaded
        it in a refresh (whose window starts at the last sync: that sync loaded it; a change
        since comes with its events, re-fetched whole), so that no refresh overwrites its
        expanded row with ids.
        """
        lines = latest.get("lines") or {}
        discounted = bool(latest.get("discounts")) or bool(lines.get("has_more")) or any(
            line.get("discounts") for line in lines.get("data") or [])
        if discounted and self.window.kind != "backfill":
            return []
        if not self._first_sighting("invoices", latest["id"]):
            return []
        if discounted:
            latest = self.reader.retrieve(f"{LIST_ENDPOINTS['invoices']}/{latest['id']}",
                                          retrieve_params("invoices"))
            if latest is None:
                return []
        return self._invoice_rows(latest, seen=True)

    def _listed_invoice(self, invoice: dict[str, Any]) -> bool:
        """Whether the invoice listing of this sync reads `invoice` (created in its window)."""
        created = invoice.get("created")
        return created is not None and self.window.activity_start <= created < self.window.end

    def _invoice_rows(self, invoice: dict[str, Any], seen: bool = False) -> Batch:
        if not seen and not self._first_sighting("invoices", invoice["id"]):
            return []
        data = {k: v for k, v in self._allowlist(invoice).items() if k != "lines"}
        payments = invoice.get("payments")
        if isinstance(payments, dict) and payments.get("has_more"):
            every = self._embedded_or_paged(payments, INVOICE_PAYMENTS_ENDPOINT,
                                            {"invoice": invoice["id"]})
            data["payments"] = dict(data["payments"], data=self._allowlist(every),
                                    has_more=False)
        rows: Batch = [("invoices", self._row(invoice, data))]
        lines_path = INVOICE_LINES_ENDPOINT.format(id=invoice["id"])
        for line in self._embedded_or_paged(invoice.get("lines"), lines_path,
                                            {"expand": LINE_PAGE_EXPANSIONS}):
            row = self._row(line, self._allowlist(line), invoice=invoice["id"])
            row["created"] = invoice.get("created")
            rows.append(("invoice_lines", row))
        return rows

    def _embedded_or_paged(
        self, embedded: dict[str, Any] | None, path: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """An embedded list (10 entries at most), completed from its endpoint if it has more."""
        items = list((embedded or {}).get("data") or [])
        if embedded and embedded.get("has_more") and items:
            for page in self.reader.list_sequential(path, params, starting_after=items[-1]["id"]):
                items.extend(page)
        return items

    def _event_row(self, event: dict[str, Any]) -> Row:
        row = self._row(event, self._allowlist(event), type=event.get("type"))
        row["api_version"] = event.get("api_version")
        return row


def table_columns(table: str) -> dict[str, dict[str, Any]]:
    """The declared columns of a raw table."""
    return {**BASE_COLUMNS, **EXTRA_COLUMNS[table]}


def _finished(future: Future) -> bool:
    """Whether a future is done; raises what it raised."""
    if future.done():
        future.result()
        return True
    return False


def _table_resource(table: str, parent: Any, arrow: bool) -> Any:
    columns = table_columns(table)
    if table == "subscription_versions":
        key = ["project_id", "id", "version_hash"]
        # A version seen again keeps its first observed_at: insert what is new, never update.
        disposition: Any = {"disposition": "merge", "strategy": "insert-only"}
    else:
        key = ["project_id", "id"]
        disposition = "merge"
    to_items: Callable[[list[Row]], Any] = lambda rows: rows  # noqa: E731
    if arrow:  # imported here: processes that load no rows (the web service) need no pyarrow
        from pipelines.arrow_rows import arrow_schema, rows_to_arrow

        to_items = partial(rows_to_arrow, schema=arrow_schema(columns))

    @dlt.transformer(
        name=table, data_from=parent, primary_key=key, write_disposition=disposition,
        columns=columns,
    )
    def rows_of_table(batch: RowsByTable) -> Iterator[Any]:
        rows = batch.get(table)
        if rows:
            yield to_items(rows)

    return rows_of_table


def stripe_batches(
    project_id: str,
    reader: StripeReader,
    kind: SyncKind,
    now: int | None = None,
    since_event_created: int | None = None,
    last_sync_at: float | None = None,
    segment_keys: SegmentKeys | None = None,
) -> Iterator[RowsByTable]:
    """The rows of one project's ``backfill`` or ``refresh`` (see windows.py), grouped by
    table, as the listings deliver them; ``segment_keys``: the metadata keys it keeps."""
    window = sync_window(kind, now=now, since_event_created=since_event_created,
                         last_sync_at=last_sync_at)
    return StripeExtraction(project_id, reader, window, segment_keys).batches()


def coalesced(batches: Iterator[RowsByTable], rows: int) -> Iterator[RowsByTable]:
    """``batches`` joined, in order, into batches of at least ``rows`` rows (the last one,
    fewer)."""
    joined: RowsByTable = {}
    count = 0
    for batch in batches:
        for table, table_rows in batch.items():
            joined.setdefault(table, []).extend(table_rows)
            count += len(table_rows)
        if count >= rows:
            yield joined
            joined, count = {}, 0
    if joined:
        yield joined


def rows_source(batches: Iterator[RowsByTable], arrow: bool = False) -> DltSource:
    """The raw tables' dlt source over ``batches`` (all of a sync's rows, or one segment of
    them: pipelines/segments.py). ``arrow``: hand dlt each table's rows as an Arrow table
    (for parquet load files: pipelines/arrow_rows.py), else as dicts."""
    if arrow:
        # dlt computes and checks a table's schema for every Arrow item it gets (~4 ms): one
        # table per page of rows made that half of the syncing process's CPU
        batches = coalesced(batches, ARROW_BATCH_ROWS)

    @dlt.source(name="stripe", max_table_nesting=0, root_key=False)
    def stripe() -> list[Any]:
        parent = dlt.resource(batches, name="stripe_objects", selected=False)
        return [parent, *(_table_resource(table, parent, arrow) for table in RAW_TABLES)]

    return stripe()


def stripe_source(
    project_id: str,
    reader: StripeReader,
    kind: SyncKind,
    now: int | None = None,
    since_event_created: int | None = None,
    last_sync_at: float | None = None,
) -> DltSource:
    """The raw tables of one project for a ``backfill`` or ``refresh`` (see windows.py)."""
    return rows_source(stripe_batches(project_id, reader, kind, now, since_event_created,
                                      last_sync_at))
