"""A database of its own on the session's PostgreSQL server, for a module-scoped warehouse
(tests/conftest.py's ``own_postgres_database`` is the per-test fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def new_database(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on the server of ``server_url``, dropped on leaving."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
        try:
            yield f"{server_url.rsplit('/', 1)[0]}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        admin.close()
