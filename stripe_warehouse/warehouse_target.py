"""Which database holds the warehouse: the one place that says so.

DuckDB (`warehouse.duckdb` in the state directory) is the embedded default. A state directory
whose `warehouse_target.json` says `{"target": "postgres", "dsn": "postgresql://..."}` keeps
its warehouse on that PostgreSQL server instead; the file is owner-only (0600) like the
registry, because the DSN may hold a password. Everything that reaches the warehouse asks the
state directory (`StateDir.target`): the sync (dlt's `duckdb` or `postgres` destination,
`pipelines.load`), dbt (`StateDir.dbt_env()` selects profiles.yml's `local` or `postgres`
output and hands it the server's address) and the readers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import make_private

TARGET_FILE = "warehouse_target.json"
DUCKDB, POSTGRES = "duckdb", "postgres"
# profiles.yml's output for each target (dbt's --target, passed as DBT_TARGET)
DBT_OUTPUTS = {DUCKDB: "local", POSTGRES: "postgres"}


# What dbt_env sets for a PostgreSQL warehouse (PGOPTIONS aside: the user's own, extended)
POSTGRES_DBT_ENV = frozenset({
    "DBT_TARGET", "STRIPE_WAREHOUSE_PG_HOST", "STRIPE_WAREHOUSE_PG_PORT",
    "STRIPE_WAREHOUSE_PG_USER", "DBT_ENV_SECRET_STRIPE_WAREHOUSE_PG_PASSWORD",
    "STRIPE_WAREHOUSE_PG_DATABASE",
})


class InvalidWarehouseTarget(WarehouseError):
    """warehouse_target.json is unreadable or names no supported target."""


@dataclass(frozen=True)
class WarehouseTarget:
    """A warehouse database: ``kind`` `duckdb` (no ``dsn``) or `postgres` (``dsn`` its URL)."""

    kind: Literal["duckdb", "postgres"] = DUCKDB
    dsn: str | None = None

    @classmethod
    def postgres(cls, dsn: str) -> WarehouseTarget:
        return cls(POSTGRES, dsn)

    @classmethod
    def read(cls, root: Path) -> WarehouseTarget:
        """The state directory's target: DuckDB unless ``warehouse_target.json`` says else."""
        path = Path(root) / TARGET_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        fix = (f'write {{"target": "duckdb"}} or {{"target": "postgres", "dsn": '
               f'"postgresql://user:password@host:port/database"}} into {path}')
        try:
            settings = json.loads(text)
            kind = settings.get("target", DUCKDB)
        except (ValueError, AttributeError):
            raise InvalidWarehouseTarget(f"{path} is not a JSON object: {fix}") from None
        if kind == DUCKDB:
            return cls()
        if kind == POSTGRES and isinstance(settings.get("dsn"), str) and \
                settings["dsn"].startswith(("postgresql://", "postgres://")):
            return cls.postgres(settings["dsn"])
        raise InvalidWarehouseTarget(f"{path} names no supported warehouse: {fix}")

    def save(self, root: Path) -> Path:
        """Write this target into the state directory ``root`` (0600)."""
        path = Path(root) / TARGET_FILE
        settings: dict[str, Any] = {"target": self.kind}
        if self.dsn:
            settings["dsn"] = self.dsn
        path.write_text(json.dumps(settings) + "\n")
        make_private(path)
        return path

    @property
    def is_postgres(self) -> bool:
        return self.kind == POSTGRES

    def describe(self) -> str:
        """The target in one line, without the password."""
        if not self.is_postgres:
            return "duckdb (warehouse.duckdb in the state directory)"
        parts = urlsplit(self.dsn)
        user = f"{parts.username}@" if parts.username else ""
        return f"postgres {user}{parts.hostname}:{parts.port or 5432}{parts.path or '/postgres'}"

    def dbt_process_env(self, inherited: Mapping[str, str]) -> dict[str, str]:
        """The environment of a dbt process started from ``inherited`` (this process's):
        this target's settings (:meth:`dbt_env`) over the inherited ones, without another
        state directory's PostgreSQL settings. A process that ran a PostgreSQL home's Dagster
        build (``export_home``) kept them in its environment, and the next DuckDB home's dbt
        inherited DBT_TARGET=postgres and tried that home's server (the test suite's workers)."""
        return {**{key: value for key, value in inherited.items()
                   if key not in POSTGRES_DBT_ENV}, **self.dbt_env()}

    def dbt_env(self) -> dict[str, str]:
        """The environment profiles.yml reads, for PostgreSQL: the output (DBT_TARGET) and
        the server's address; the password in a DBT_ENV_SECRET_ variable, which dbt keeps
        out of its logs."""
        # DuckDB gets nothing: profiles.yml's default output is `local`, and a DBT_TARGET the
        # parse at definitions load (dbt_command, no state directory) lacks changes dbt's
        # profile hash, so every Dagster build re-parsed the project (test_private_files)
        environment: dict[str, str] = {}
        if self.is_postgres:
            parts = urlsplit(self.dsn)
            environment.update({
                "DBT_TARGET": DBT_OUTPUTS[POSTGRES],
                "STRIPE_WAREHOUSE_PG_HOST": parts.hostname or "127.0.0.1",
                "STRIPE_WAREHOUSE_PG_PORT": str(parts.port or 5432),
                "STRIPE_WAREHOUSE_PG_USER": unquote(parts.username or ""),
                "DBT_ENV_SECRET_STRIPE_WAREHOUSE_PG_PASSWORD": unquote(parts.password or ""),
                "STRIPE_WAREHOUSE_PG_DATABASE": parts.path.lstrip("/") or "postgres",
                # libpq's session options: no JIT. The staging models' expressions are large
                # (dozens of JSON paths), so the planner's cost passes jit_above_cost on any
                # table size and each model paid seconds of LLVM compilation: a 6-customer
                # company's int_subscription_item_prices took 9 s, 0.2 s without (200
                # customers: 16.1 s, 0.2 s)
                "PGOPTIONS": _without_jit(os.environ.get("PGOPTIONS", "")),
            })
        return environment

    def connect(self) -> Any:
        """A psycopg2 connection to the PostgreSQL warehouse (autocommit off)."""
        if not self.is_postgres:
            raise TypeError("connect() is for the PostgreSQL target; DuckDB is a file")
        import psycopg2  # only the PostgreSQL target needs the driver

        return psycopg2.connect(self.dsn)

    def fetch_all(self, sql: str, parameters: list[Any] | None = None) -> list[tuple]:
        """The rows of one query on the PostgreSQL warehouse (``%s`` parameters)."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(sql, parameters)
                return cur.fetchall()
        finally:
            con.close()


def _without_jit(options: str) -> str:
    """libpq's PGOPTIONS with JIT and nested-loop joins off, unless they already say.

    Nested loops: the warehouse's tables have no indexes and dbt's fresh tables no statistics
    yet, so the planner guesses 1 row for the range joins of a subscription's days to its
    states and item spans and then loops over every removal and estimated change for each of
    millions of item-days: int_subscription_item_mrr_daily of 10 bench projects (5,000
    customers) ran for over 13 minutes, 4.7 s with hash joins (a join that has no other way
    still loops: this only makes the planner prefer the others)."""
    for setting, value in (("jit", "off"), ("enable_nestloop", "off")):
        if f"{setting}=" not in options:
            options = f"{options} -c {setting}={value}".strip()
    return options


class PostgresReader:
    """The part of DuckDB's connection API the readers and the SQL writers (purge, retention)
    use, on a PostgreSQL connection: ``execute(sql, params)`` returning something to
    ``fetchone``/``fetchall``, and transactions. Their SQL is written for both, with ``?``
    placeholders or DuckDB's ``$name`` ones (a mapping of parameters); a statement without
    rows (a DELETE, an UPDATE) answers its row count, as DuckDB does."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: list[Any] | tuple | dict[str, Any] = ()) -> Any:
        cursor = self._connection.cursor()
        if isinstance(parameters, dict):
            cursor.execute(re.sub(r"\$(\w+)\b", r"%(\1)s", sql), parameters)
        else:
            cursor.execute(sql.replace("?", "%s"), list(parameters))
        return cursor if cursor.description is not None else _RowCount(cursor.rowcount)

    def begin(self) -> None:
        """psycopg2 opens a transaction at the first statement: nothing to do."""

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class _RowCount:
    """A DML statement's answer: one row holding the rows it changed (DuckDB's shape)."""

    count: int

    def fetchone(self) -> tuple[int]:
        return (self.count,)

    def fetchall(self) -> list[tuple[int]]:
        return [(self.count,)]
