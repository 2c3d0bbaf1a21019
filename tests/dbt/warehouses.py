"""The two warehouses the marts suites run on (issue 17): DuckDB and a real PostgreSQL server.

A scenario fixture asks for `warehouse_kind` (tests/dbt/conftest.py: parametrized, so each of
its tests runs once per target) and makes its state directories with `new_home`: on
PostgreSQL, each home gets a database of its own on the session's server (two homes of one
module hold the same project). The tests read the marts with `reading_warehouse(home)`: a
DuckDB connection or a reader on the server, both with ``?`` placeholders, so the SQL and the
assertions are the same on both (portable SQL: no ``group by all``, no list parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import DUCKDB, POSTGRES, PostgresReader, WarehouseTarget
from tests.postgres_databases import create_database

TARGETS = [pytest.param(DUCKDB, id=DUCKDB),
           pytest.param(POSTGRES, id=POSTGRES, marks=pytest.mark.postgres)]

NewHome = Callable[[str], Path]


def home_factory(tmp_path_factory: pytest.TempPathFactory, kind: str,
                 server_url: str | None) -> NewHome:
    """``new_home(name)``: a fresh state directory whose warehouse is of ``kind``."""
    def new_home(name: str) -> Path:
        home = tmp_path_factory.mktemp(f"{name}_{kind}")
        if kind == POSTGRES:
            # kept until the session's server stops: the module's tests read it after its fixture
            WarehouseTarget.postgres(create_database(server_url, "home")).save(home)
        return home
    return new_home


@contextmanager
def reading_warehouse(home: Path) -> Iterator[Any]:
    """A read-only connection to ``home``'s warehouse (not the published copy): DuckDB's, or a
    reader on the PostgreSQL server; ``execute(sql, parameters)`` with ``?`` placeholders."""
    target = StateDir.of(home).target
    if not target.is_postgres:
        with duckdb.connect(str(StateDir.of(home).warehouse), read_only=True) as con:
            yield con
        return
    connection = target.connect()
    try:
        connection.set_session(readonly=True, autocommit=True)
        yield PostgresReader(connection)
    finally:
        connection.close()


def query(home: Path, sql: str, parameters: list[Any] | tuple = ()) -> list[tuple]:
    """The rows of one query on ``home``'s warehouse (``?`` placeholders)."""
    with reading_warehouse(home) as con:
        return con.execute(sql, list(parameters)).fetchall()
