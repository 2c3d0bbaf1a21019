"""One dbt build at a time per warehouse, on every machine that builds it.

dbt's incremental models delete and re-insert the days they rebuild: two builds of the same
warehouse at once would delete each other's rows (or fail on a relation the other is
replacing). On DuckDB the warehouse is a file of this machine, and the local writer lock
(:mod:`stripe_warehouse.writer_lock`) already serialises every writer of it. A PostgreSQL
warehouse is written from several machines, where a local file lock means nothing: a build
there first takes a PostgreSQL advisory lock, ``pg_advisory_lock(BUILD_LOCK_KEY)``, on a
connection of its own held open for the build's duration. Advisory locks are per database,
so the key names "the dbt build of this warehouse"; the server releases it when that session
ends, also when the holder is killed (its connection closes with it), so a crashed build
leaves no stale lock. Loads of different projects are not held back: they merge through
per-project staging datasets (``pipelines.load``) and never take this lock.

The same mechanism, on a key per project (:func:`project_write_turn`), keeps a sync's load and
the webhook applier's merge of one project from interleaving (docs/deploy.md).

A waiter polls ``pg_try_advisory_lock`` (rather than blocking in ``pg_advisory_lock``) so that
it can say who holds the lock (the holder's ``application_name``: host, pid, purpose) and give
up after the writer lock's wait (``STRIPE_WAREHOUSE_LOCK_WAIT``) with a one-line error.

Re-entrant per thread, like the writer lock: a build holds it and calls dbt, which asks again.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.writer_lock import (
    FIRST_PROGRESS_SECONDS,
    PROGRESS_EVERY_SECONDS,
    WAIT_ENV,
    WarehouseBusy,
    default_wait_seconds,
    warehouse_writer,
)

# A fixed 64-bit key: "the dbt build of this warehouse" (b"SWdbtbld" as a signed integer).
BUILD_LOCK_KEY = int.from_bytes(b"SWdbtbld", "big", signed=True)
APPLICATION_PREFIX = "stripe-warehouse"  # the holder's application_name: prefix, host, purpose
POLL_SECONDS = 0.2
NAME_CHARS = 63  # PostgreSQL truncates application_name there

_held = threading.local()  # dsn -> depth, for this thread


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def dbt_build_turn(home: Any, purpose: str, wait: float | None = None,
                   progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the warehouse for a dbt build (and its checks): the local writer lock on DuckDB,
    the advisory lock on the server for a PostgreSQL warehouse."""
    state = StateDir.of(home)
    if not state.target.is_postgres:
        with warehouse_writer(state.root, purpose, wait=wait, progress=progress):
            yield
        return
    with postgres_build_lock(state.target.dsn, purpose, wait=wait, progress=progress):
        yield


@contextmanager
def postgres_build_lock(dsn: str, purpose: str, wait: float | None = None,
                        progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """``pg_advisory_lock(BUILD_LOCK_KEY)`` on its own connection to ``dsn``, for the block."""
    with postgres_advisory_lock(dsn, BUILD_LOCK_KEY, BUILD_LOCK, purpose, wait, progress):
        yield


@contextmanager
def project_write_turn(home: Any, project_id: str, purpose: str, wait: float | None = None,
                       progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold one project's raw rows of a PostgreSQL warehouse for the block (nothing on DuckDB,
    whose writers all take the local writer lock): the sync's load and the webhook applier's
    merge of that project take it, on any machine, so that neither deletes and re-inserts the
    same keys while the other does (``docs/deploy.md``). Other projects are not held back."""
    state = StateDir.of(home)
    if not state.target.is_postgres:
        yield
        return
    with postgres_advisory_lock(state.target.dsn, project_lock_key(project_id),
                                LockKind(f"the raw rows of project {project_id}",
                                         "another writer of that project"),
                                purpose, wait, progress):
        yield


def project_lock_key(project_id: str) -> int:
    """The advisory lock key of one project's raw rows: the same on every machine (a digest,
    not Python's salted ``hash``), a signed 64-bit integer as PostgreSQL's bigint keys are."""
    digest = hashlib.blake2b(f"stripe_warehouse.project:{project_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


@dataclass(frozen=True)
class LockKind:
    """How a lock's messages name what it guards and who else holds it."""

    guarded: str  # "the warehouse's dbt build": waited "to take <guarded>"
    other: str  # "another dbt build": "<other> still holds it"


BUILD_LOCK = LockKind("the warehouse for a dbt build", "another dbt build")


@contextmanager
def postgres_advisory_lock(dsn: str, key: int, kind: LockKind, purpose: str,
                           wait: float | None = None,
                           progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """``pg_advisory_lock(key)`` on its own connection to ``dsn``, for the block."""
    depths: dict[tuple[str, int], int] = _held.__dict__.setdefault("depths", {})
    if depths.get((dsn, key)):  # nested in this thread: the outer block holds (and frees) it
        depths[dsn, key] += 1
        try:
            yield
        finally:
            depths[dsn, key] -= 1
        return
    import psycopg2  # only the PostgreSQL target needs the driver

    name = f"{APPLICATION_PREFIX}: {socket.gethostname()} pid {os.getpid()}: {purpose}"[:NAME_CHARS]
    # keepalives: a holder whose machine vanishes (no FIN) is noticed by the server's own
    # tcp_keepalives_* settings; these make the client side notice a dead server
    connection = psycopg2.connect(dsn, application_name=name, keepalives=1,
                                  keepalives_idle=30, keepalives_interval=10,
                                  keepalives_count=3)
    connection.autocommit = True  # the lock is the session's, not a transaction's
    try:
        _acquire(connection, key, kind, purpose,
                 default_wait_seconds() if wait is None else wait, progress or _print_progress)
        depths[dsn, key] = 1
        try:
            yield
        finally:
            depths[dsn, key] = 0
            with connection.cursor() as cur:
                cur.execute("select pg_advisory_unlock(%s)", [key])
    finally:
        connection.close()  # ends the session: the server frees the lock in any case


def _acquire(connection: Any, key: int, kind: LockKind, purpose: str, seconds: float,
             progress: Callable[[str], None]) -> None:
    started = time.monotonic()
    next_progress = started + min(FIRST_PROGRESS_SECONDS, PROGRESS_EVERY_SECONDS)
    with connection.cursor() as cur:
        while True:
            cur.execute("select pg_try_advisory_lock(%s)", [key])
            if cur.fetchone()[0]:
                return
            now = time.monotonic()
            if now - started >= seconds:
                raise WarehouseBusy(
                    f"waited {seconds:.0f} s to take {kind.guarded} ({purpose}) but "
                    f"{kind.other} still holds it "
                    f"({holder(cur, key) or 'a session that ended'}): "
                    f"try again when it finishes, or set {WAIT_ENV}=SECONDS to wait longer")
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_SECONDS
                progress(f"waiting for {kind.guarded} ({purpose}): {kind.other} holds "
                         f"it ({holder(cur, key) or 'just finishing'})")
            time.sleep(POLL_SECONDS)


def holder(cursor: Any, key: int = BUILD_LOCK_KEY) -> str | None:
    """Who holds the advisory lock ``key`` now: the holder's application_name and since when."""
    high, low = divmod(key % (1 << 64), 1 << 32)
    cursor.execute(
        "select a.application_name, extract(epoch from now() - a.backend_start)::int "
        "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s "
        "and l.objsubid = 1 and l.database = (select oid from pg_database "
        "where datname = current_database())", [high, low])
    row = cursor.fetchone()
    if row is None:
        return None
    name, seconds = row
    return f"{name.removeprefix(APPLICATION_PREFIX + ': ')}, connected {seconds} s ago"
