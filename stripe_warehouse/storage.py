"""Faults of the files under the state directory: a damaged DuckDB file, a full or read-only disk.

Each fault becomes a typed one-line error naming the fix. A DuckDB file is judged by opening it
read-only: a file another process holds for writing is busy, not damaged.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from stripe_warehouse.errors import WarehouseError, WarehouseLocked, warehouse_locked
from stripe_warehouse.state_dir import REPORTING_FILE
from stripe_warehouse.warehouse_target import PostgresReader, WarehouseTarget

# A DuckDB file starts with three 4 KiB headers, then its blocks.
_DUCKDB_HEADER_BYTES = 3 * 4096
# What DuckDB says when a file is not (or no longer) a whole database: overwritten, truncated,
# or with a block whose checksum does not match.
_CORRUPTION_MARKERS = (
    "not a valid duckdb database file",
    "could not read enough bytes",
    "corrupt database file",
    "does not match stored checksum",
)
# What DuckDB (and the OS) say when a write finds no room or no permission.
# SQLite (the Dagster instance's run storage) says it in its own words
_FULL_MARKERS = ("no space left on device", "disk quota exceeded", "file too large",
                 "database or disk is full")
_READ_ONLY_MARKERS = ("read-only file system", "permission denied", "readonly database")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}

WAREHOUSE_FIX = ("restore it from a backup, or move it aside and rebuild it from Stripe with "
                 "`stripe-warehouse sync PROJECT --backfill` for each project (readers keep "
                 "the published copy reporting.duckdb meanwhile)")
PUBLISHED_FIX = ("delete it and run `stripe-warehouse transform` to publish it again from "
                 "warehouse.duckdb")


class CorruptDatabase(WarehouseError):
    """A DuckDB file of the state directory is damaged; the message names the file and the fix."""


class DiskFull(WarehouseError):
    """A write found no room; nothing already stored was changed."""


class NotWritable(WarehouseError):
    """A write was refused (read-only file system or no permission)."""


def is_corruption(text: str) -> bool:
    """True when a DuckDB message says the file is damaged (not merely busy or missing)."""
    lowered = text.lower()
    return any(marker in lowered for marker in _CORRUPTION_MARKERS)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:200]


def corrupt_database(path: Path, error: BaseException | str) -> CorruptDatabase:
    """The one-line error for a damaged ``warehouse.duckdb`` or ``reporting.duckdb``."""
    fix = PUBLISHED_FIX if path.name == REPORTING_FILE else WAREHOUSE_FIX
    return CorruptDatabase(f"{path} is damaged ({_first_line(str(error))}): {fix}")


def storage_error(errors: Iterable[BaseException], what: str) -> WarehouseError | None:
    """A one-line DiskFull / NotWritable for the first disk fault among ``errors``, else None.

    ``errors`` is an exception and its causes (dlt and DuckDB wrap the OS error in their own
    types and sometimes keep only its text); ``what`` names the interrupted action.
    """
    for error in errors:
        code = error.errno if isinstance(error, OSError) else None
        text = str(error).lower()
        where = f" ({error.filename})" if isinstance(error, OSError) and error.filename else ""
        if code in _FULL_ERRNOS or any(m in text for m in _FULL_MARKERS):
            return DiskFull(f"the disk is full{where}: {what} stopped and kept everything "
                            "stored before; free space (see `df`), then run it again")
        if code in _READ_ONLY_ERRNOS or any(m in text for m in _READ_ONLY_MARKERS):
            return NotWritable(f"cannot write to the state directory{where}: {what} needs it "
                               "writable; set STRIPE_WAREHOUSE_HOME to a writable directory "
                               "or fix its permissions")
    return None


@dataclass(frozen=True)
class FileHealth:
    """What opening a DuckDB file read-only found: ``missing``, ``ok``, ``busy`` or ``damaged``."""

    state: str
    detail: str


def check_not_truncated(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise CorruptDatabase when ``path`` is shorter than the blocks in use its header lists.

    Cheap (no block is read): DuckDB itself only notices when it reads a missing block, and
    a writer that never reads those would carry on on a file that lost data. Free blocks are
    not counted: DuckDB cuts free blocks at the end of the file off at a checkpoint while
    `total_blocks` still counts them (a sound file was reported damaged after a webhook
    batch, tests/dbt/test_history_stability.py).
    """
    blocks, free_blocks, block_size = con.execute(
        "select total_blocks, free_blocks, block_size from pragma_database_size() "
        "where database_name = current_database()"
    ).fetchone()
    expected = _DUCKDB_HEADER_BYTES + (blocks - free_blocks) * block_size
    size = path.stat().st_size
    if size < expected:
        raise corrupt_database(path, f"truncated: {size} of its {expected} bytes are left")


def _read_everything(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Read every block of the file (DuckDB checks each block's checksum as it reads it) and
    return how many tables it holds; raise duckdb.Error when a block is damaged or missing."""
    check_not_truncated(con, path)
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database()"
    ).fetchall()
    for schema, table in tables:
        con.execute(f'select sum(hash(t)) from "{schema}"."{table}" as t').fetchall()
    return len(tables)


def inspect_database(path: Path) -> FileHealth:
    """Open ``path`` read-only and read it whole; never takes the write lock.

    Reading is proportional to the file's size (seconds for a few GB): ``doctor`` only.
    """
    if not path.exists():
        return FileHealth("missing", f"{path} does not exist")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = _read_everything(con, path)
    except CorruptDatabase as error:
        return FileHealth("damaged", str(error))
    except duckdb.Error as error:
        if warehouse_locked(str(error)):
            return FileHealth("busy", "in use by another process (a sync or a dbt build?): "
                              "not checked; run doctor again once it finished")
        if is_corruption(str(error)):
            return FileHealth("damaged", str(corrupt_database(path, error)))
        return FileHealth("damaged", f"{path} cannot be opened ({_first_line(str(error))}): "
                          + (PUBLISHED_FIX if path.name == REPORTING_FILE else WAREHOUSE_FIX))
    return FileHealth("ok", f"opens read-only, {tables} tables read whole")


@contextmanager
def reading(path: Path | WarehouseTarget) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``path`` whose DuckDB failures (at open or in a query) become
    one-line errors: damaged file, file held by a writer, or marts not built yet. For a
    PostgreSQL warehouse (a :class:`WarehouseTarget`), a reader on the server."""
    if isinstance(path, WarehouseTarget):
        with _reading_postgres(path) as reader:
            yield reader
        return
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            yield con
    except duckdb.Error as error:
        text = str(error)
        if is_corruption(text):
            raise corrupt_database(path, error) from None
        if warehouse_locked(text):
            raise WarehouseLocked(path, "read it") from None
        raise WarehouseError(f"cannot read the marts from {path} ({_first_line(text)}): build "
                             "them with `stripe-warehouse transform`") from None


@contextmanager
def _reading_postgres(target: WarehouseTarget) -> Iterator[Any]:
    import psycopg2

    connection = None
    try:
        connection = target.connect()
        connection.set_session(readonly=True, autocommit=True)
        yield PostgresReader(connection)
    except psycopg2.Error as error:
        raise WarehouseError(
            f"cannot read the marts from the PostgreSQL warehouse "
            f"({_first_line(str(error).strip())}): check the server named in "
            "warehouse_target.json, then build them with `stripe-warehouse transform`") from None
    finally:
        if connection is not None:
            connection.close()
