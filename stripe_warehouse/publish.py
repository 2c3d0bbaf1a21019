"""Publish the marts to a read-only copy that readers (BI tools, SQL sessions) can hold open.

DuckDB lets one process write a file and locks out every other process, readers included.
So readers never open `warehouse.duckdb`: after each successful build the `marts` schema is
copied into a new file, which then atomically replaces `reporting.duckdb`. A reader holding the
old file keeps its consistent snapshot (the old inode lives on until it closes); a new
connection sees the new data. The copy is written with storage compatibility v1.4.0 so
tools embedding DuckDB 1.4+ can read it.

The new file starts as a byte copy of the previous one, so the large day-grained marts are
not copied whole each time: a build rewrites only recent days (their rows carry a later
`built_as_of`), and only those days are replaced. Any doubt (a new column, a project removed,
row counts or date ranges that differ afterwards) copies that table whole instead. A full
rebuild (`--full-refresh`, e.g. after replacing the FX table) can change old days without a
later `built_as_of`, so it is published whole.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb

from stripe_warehouse.state_dir import DUCKDB_STORAGE_VERSION, StateDir
from stripe_warehouse.writer_lock import warehouse_writer

# a table with these columns is rewritten by day (see dbt_project/macros/incremental_days.sql)
DAY_GRAINED_COLUMNS = {"project_id", "metric_date", "built_as_of"}


def published_path(home: Path) -> Path:
    return StateDir.of(home).reporting


def publish_marts(home: Path, schema: str = "marts", whole: bool = False) -> Path:
    """Bring a copy of the published file up to date with `schema` and swap it in atomically.

    `whole`: copy every table whole (after a full rebuild), not only the rebuilt days.
    """
    with publication(home, schema, whole) as publish:
        return publish()


@contextmanager
def publication(
    home: Path, schema: str = "marts", whole: bool = False
) -> Iterator[Callable[[], Path]]:
    """`publish_marts` in two steps, for a caller that builds the marts in between: the byte
    copy of the published file starts at once, in the background (the build does not touch
    that file, and the copy would otherwise wait for the build), and the yielded `publish()`
    brings it up to date and swaps it in. Leaving without publishing discards the copy.
    """
    target = published_path(home)
    tmp = target.with_name(f".publishing-{os.getpid()}-{threading.get_ident()}.duckdb")
    _remove_database(tmp)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-copy")
    copying: Future[str] | None = None
    if target.exists() and not whole:
        # the published file is never written in place, so this copy is a consistent snapshot
        copying = executor.submit(shutil.copyfile, target, tmp)

    def publish() -> Path:
        if copying is not None:
            copying.result()
        # even a read-only attach conflicts with a writer: it waits its turn like one
        with warehouse_writer(home, "publishing the marts"), _open_copy(tmp) as con:
            con.execute(f"attach '{StateDir.of(home).warehouse}' as warehouse (read_only)")
            _sync_schema(con, schema)
            con.execute("detach warehouse")
            con.execute("checkpoint")
        os.chmod(tmp, 0o600)  # the marts name customers: owner-only, like the warehouse
        os.replace(tmp, target)
        return target

    try:
        yield publish
    finally:
        executor.shutdown(wait=True)
        _remove_database(tmp)


def _remove_database(path: Path) -> None:
    """Removes a DuckDB file and its write-ahead log, if present."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


def _open_copy(path: Path) -> duckdb.DuckDBPyConnection:
    """Opens the copy of the previous file; one that DuckDB cannot open is started afresh."""
    config = {"storage_compatibility_version": DUCKDB_STORAGE_VERSION}
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.Error:
        path.unlink(missing_ok=True)
        return duckdb.connect(str(path), config=config)


def _sync_schema(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Makes `schema` of the published copy hold exactly the warehouse's tables and views."""
    db = con.execute("select current_database()").fetchone()[0]
    wanted = _columns_by_relation(con, "warehouse", schema)
    present = _columns_by_relation(con, db, schema)
    con.execute(f'create schema if not exists "{db}".{schema}')
    for name in sorted(set(present) - set(wanted)):
        con.execute(f'drop table "{db}".{schema}."{name}"')
    for name, columns in sorted(wanted.items()):
        published = f'"{db}".{schema}."{name}"'
        source = f'warehouse.{schema}."{name}"'
        same_shape = present.get(name) == columns
        if not (same_shape and DAY_GRAINED_COLUMNS <= {c for c, _ in columns}
                and _replace_rebuilt_days(con, published, source)):
            # Views become tables: a view would point back into warehouse.duckdb.
            con.execute(f"create or replace table {published} as select * from {source}")


def _columns_by_relation(
    con: duckdb.DuckDBPyConnection, catalog: str, schema: str
) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? order by table_name, ordinal_position",
        [catalog, schema],
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, []).append((column, data_type))
    return columns


def _replace_rebuilt_days(con: duckdb.DuckDBPyConnection, published: str, source: str) -> bool:
    """Replaces, per project, the days from the earliest one the last builds rewrote; True when
    the copy then matches the warehouse in row count and date range for every project."""
    con.execute("begin")
    con.execute(
        f"""
        create or replace temp table rebuilt_from as
        with previous as (
            select project_id, max(built_as_of) as built_as_of from {published} group by 1
        )
        select source.project_id, min(source.metric_date) as metric_date
        from {source} as source
        left join previous on source.project_id = previous.project_id
        where previous.built_as_of is null or source.built_as_of > previous.built_as_of
        group by 1
        """
    )
    con.execute(
        f"""
        delete from {published}
        where exists (
            select 1 from rebuilt_from
            where rebuilt_from.project_id = {published}.project_id
                and {published}.metric_date >= rebuilt_from.metric_date
        )
        """
    )
    con.execute(
        f"""
        insert into {published}
        select source.* from {source} as source
        inner join rebuilt_from
            on source.project_id = rebuilt_from.project_id
            and source.metric_date >= rebuilt_from.metric_date
        order by source.metric_date, source.project_id
        """
    )
    matches = con.execute(
        f"""
        select count(*) = 0 from (
            (select project_id, count(*), min(metric_date), max(metric_date)
             from {published} group by 1
             except all
             select project_id, count(*), min(metric_date), max(metric_date)
             from {source} group by 1)
            union all
            (select project_id, count(*), min(metric_date), max(metric_date)
             from {source} group by 1
             except all
             select project_id, count(*), min(metric_date), max(metric_date)
             from {published} group by 1)
        )
        """
    ).fetchone()[0]
    con.execute("commit" if matches else "rollback")
    return bool(matches)
