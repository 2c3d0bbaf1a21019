"""Publish the marts to a read-only copy that readers (BI tools, SQL sessions) can hold open.

DuckDB lets one process write a file and locks out every other process, readers included.
So readers never open `warehouse.duckdb`: after each successful build the `marts` schema is
copied into a new file, which then atomically replaces `reporting.duckdb`. A reader holding the
old file keeps its consistent snapshot (the old inode lives on until it closes); a new
connection sees the new data. The copy is written with storage compatibility v1.4.0 so
tools embedding DuckDB 1.4+ can read it.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PUBLISHED_NAME = "reporting.duckdb"
STORAGE_COMPATIBILITY = "v1.4.0"


def published_path(home: Path) -> Path:
    return home / PUBLISHED_NAME


def publish_marts(home: Path, schema: str = "marts") -> Path:
    """Copy every table and view of `schema` into a fresh file and swap it in atomically."""
    warehouse = home / "warehouse.duckdb"
    target = published_path(home)
    tmp = target.with_name(f".publishing-{os.getpid()}.duckdb")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(
        str(tmp), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
    ) as con:
        con.execute(f"attach '{warehouse}' as warehouse (read_only)")
        relations = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'warehouse' and table_schema = ? order by 1",
                [schema],
            ).fetchall()
        ]
        db = con.execute("select current_database()").fetchone()[0]
        con.execute(f'create schema "{db}".{schema}')
        # Views become tables: a view would point back into warehouse.duckdb.
        for name in relations:
            con.execute(
                f'create table "{db}".{schema}."{name}" as '
                f'select * from warehouse.{schema}."{name}"'
            )
        con.execute("detach warehouse")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
