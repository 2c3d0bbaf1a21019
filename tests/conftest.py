"""Fixtures shared by every test package, and a session-wide guard.

`postgres_url`: one throwaway PostgreSQL server for the session (scripts/postgres.py), started
only when a selected test asks for it (the tests of the PostgreSQL warehouse target, marked
`postgres`) and stopped at the session's end, whatever the tests did.

One pytest run per ``--basetemp`` at a time: pytest empties a given ``--basetemp`` when a run
first needs it. A second run started on the same directory while the first is still going
deletes the first's files mid-test: that run then reports a spurious failure plus an error
(e.g. ``FileNotFoundError`` renaming ``home/.alerts-test.duckdb`` in tests/alerts). The second
run is refused instead.

The collected tests are ordered, and `make test`'s xdist workers get them in work units, as
tests/scheduling.py says (slowest first; the change modules of tests/dbt as one unit per target).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import postgres
from tests import scheduling
from tests.postgres_databases import new_database

_held: list[int] = []  # the basetemp lock's descriptor, held until the process exits


def pytest_configure(config: pytest.Config) -> None:
    basetemp = config.option.basetemp
    if not basetemp or hasattr(config, "workerinput"):  # xdist workers live inside it
        return
    path = Path(basetemp).resolve()
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)  # pytest makes basetemp's parents later
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise pytest.UsageError(
            f"another pytest run is using --basetemp {basetemp} right now: give each "
            "concurrent run its own --basetemp (it empties that directory)") from None
    _held.append(fd)


@pytest.hookimpl(trylast=True)  # after pytest's own grouping of tests by fixture
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    scheduling.order_slowest_first(items)


@pytest.hookimpl(optionalhook=True)  # only with pytest-xdist (`make test`: -n 2 --dist loadfile)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return scheduling.make_scheduler(config, log)


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


@pytest.fixture
def own_postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a new database on the session's server, dropped after the test: for a test
    whose tables (``stripe_raw``, ``marts``) would otherwise meet another test's in
    ``warehouse`` (e.g. a raw ``customers`` table with other columns and other projects)."""
    with new_database(postgres_url, "test") as url:
        yield url
