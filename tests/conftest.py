"""Fixtures shared by every test package.

`postgres_url`: one throwaway PostgreSQL server for the session (scripts/postgres.py), started
only when a selected test asks for it (the tests of the PostgreSQL warehouse target, marked
`postgres`) and stopped at the session's end, whatever the tests did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts import postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    server = postgres.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: postgres.PostgresServer) -> str:
    """The URL of an empty database (``warehouse``) on the session's server."""
    return postgres_server.url
