"""Databases of their own on the session's PostgreSQL server (tests/conftest.py:
``postgres_server``), the one place tests create them:
- ``new_database``: a database for a block of a test or a module-scoped warehouse, dropped on
  leaving (tests/conftest.py's per-test ``own_postgres_database`` is this);
- ``create_database``: one kept until the server stops with the session (a scenario home's
  warehouse, tests/dbt/warehouses.py: a module's fixture builds it, its tests read it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def _on_server(server_url: str, statement: str) -> None:
    """Runs ``statement`` outside a transaction (create/drop database cannot run in one)."""
    import psycopg2

    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(statement)
    finally:
        admin.close()


def create_database(server_url: str, prefix: str) -> str:
    """The URL of a new, empty database ``<prefix>_<random>`` on the server of ``server_url``."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _on_server(server_url, f'create database "{name}"')
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


def drop_database(server_url: str, url: str) -> None:
    """Drops the database of ``url`` (its open connections closed by the server), connected
    to the one of ``server_url`` (a database cannot drop itself)."""
    _on_server(server_url, f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


@contextmanager
def new_database(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on the server of ``server_url``, dropped on leaving."""
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(server_url, url)
