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
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import postgres
from tests import scheduling
from tests.newcomer import run_demo
from tests.postgres_databases import new_database

_held: list[int] = []  # the basetemp lock's descriptor, held until the process exits


class _ExtendedMarker:
    """Marks `extended` before pytest's `-m` deselects (the ordering hook below runs last)."""

    @staticmethod
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
        scheduling.mark_extended(items)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_ExtendedMarker(), "stripe_warehouse_extended_marker")
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


@pytest.fixture(scope="session", autouse=True)
def shared_dbt_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One dbt parse per test process (each xdist worker its own), read by the dbt runs of
    every state directory (DBT_PARTIAL_PARSE_FILE_PATH: dbt reads the cache there and writes
    its own into the run's target directory): each test's new state directory would otherwise
    parse the project from scratch at its first build (27 s against 9-14 s from a cache, load
    6-10; tests/dbt/test_time_zone.py 52.7 s -> 38.8 s). The parse runs as a DuckDB home's
    build runs dbt (transform.dbt_invocation, the state directory as "."); dbt checks the cache
    against the project, profile and vars and parses again where they differ (a PostgreSQL
    home), so nothing stale is used. Dagster's own parse keeps its cache beside its manifest
    (orchestration.resources.ensure_dbt_manifest)."""
    import subprocess

    from stripe_warehouse.state_dir import HOME_ENV, StateDir
    from stripe_warehouse.transform import dbt_invocation

    state = StateDir.resolve(tmp_path_factory.mktemp("dbt_parse_cache")).create()
    command, environment = dbt_invocation(["parse", "--quiet"], state)
    parsed = subprocess.run(command, cwd=state.root, env={**environment, HOME_ENV: "."},
                            capture_output=True, text=True)
    cache = state.dbt_target / "partial_parse.msgpack"
    if parsed.returncode != 0 or not cache.exists():  # each build parses on its own, as before
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_PARTIAL_PARSE_FILE_PATH", str(cache))
        yield


@pytest.fixture(scope="session", autouse=True)
def dbt_fork_server(shared_dbt_parse_cache: None) -> Iterator[None]:
    """One dbt fork server per test process (stripe_warehouse/dbt_forkserver.py): every dbt
    command of the session's builds, in this process and in the CLI and Dagster processes it
    starts (they inherit the variable), is forked from a process that has imported dbt instead
    of starting cold: about 2 s of CPU less per command (the suite runs hundreds).
    Modules about process lifetimes use `spawned_dbt` to keep dbt a child of its caller."""
    from stripe_warehouse.dbt_forkserver import SOCKET_ENV, running

    with running() as socket_path, pytest.MonkeyPatch.context() as patch:
        patch.setenv(SOCKET_ENV, socket_path)
        yield


@pytest.fixture
def spawned_dbt(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt spawned by its caller, as in production (no fork server): for tests of which
    processes a command leaves behind or what its dbt is."""
    from stripe_warehouse.dbt_forkserver import SOCKET_ENV

    monkeypatch.delenv(SOCKET_ENV, raising=False)


@pytest.hookimpl(trylast=True)  # after pytest's own grouping of tests by fixture
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    scheduling.order_slowest_first(items)


@pytest.hookimpl(optionalhook=True)  # only with pytest-xdist (`make test`: -n 2 --dist loadfile)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return scheduling.make_scheduler(config, log)


@pytest.fixture(scope="session")
def newcomers_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The session's `stripe-warehouse demo` (tests/newcomer.py): its state directory and its
    completed process. Read it as it is; copy the directory to change anything in it."""
    home = tmp_path_factory.mktemp("demo")
    return home, run_demo(home)


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
