"""The dbt fork server (stripe_warehouse/dbt_forkserver.py): dbt commands forked from a warmed
dbt are still processes of their own that end with their caller, and a caller without a server
spawns dbt as before."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse import dbt_forkserver, transform
from stripe_warehouse.state_dir import HOME_ENV, StateDir
from tests.paths import REPO_ROOT
from tests.processes import alive

# a query that runs for minutes on DuckDB (no sleep function): something to kill
LONG_QUERY = "select count(*) from range(100000000000) a"
NO_SUCH_OPTION = "dbt build failed: Error: No such option '--no-such-flag'"


def _ready(socket_path: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not Path(socket_path).exists():
        assert time.monotonic() < deadline, "the fork server did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server() -> str:
    """This module's own server (the session's may still be warming up)."""
    with dbt_forkserver.running() as socket_path:
        _ready(socket_path)
        yield socket_path


def _arguments(args: list[str], home: Path) -> tuple[list[str], dict[str, str]]:
    command, environment = transform.dbt_invocation(args, StateDir(home).create())
    return command[len(transform.dbt_executable()):], {**environment, HOME_ENV: "."}


def test_a_forked_dbt_gives_its_callers_output_and_exit_code_and_is_not_its_child(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dbt_forkserver.SOCKET_ENV, server)
    args, environment = _arguments(["ls", "--select", "metrics_daily", "--resource-type", "model",
                                    "--output", "name"],
                                   tmp_path)
    forked = dbt_forkserver.start_streaming(args, environment, tmp_path, 0o077)
    assert forked is not None
    output = forked.stdout.read()
    assert forked.wait() == 0
    assert output.splitlines()[-1] == "metrics_daily", output
    with pytest.raises(ChildProcessError):  # the server's child, not ours
        os.waitpid(forked.pid, os.WNOHANG)
    # a failing command: dbt's own exit code and message, through the one place dbt runs
    with pytest.raises(transform.TransformError, match=NO_SUCH_OPTION):
        transform.run_dbt(["build", "--no-such-flag"], home=tmp_path)


def test_the_dbt_of_a_killed_caller_is_killed_by_the_server(server: str, tmp_path: Path) -> None:
    """A caller holding the writer lock that dies must not leave its dbt writing."""
    args, environment = _arguments(["show", "--inline", LONG_QUERY], tmp_path)
    caller = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, json, time; from stripe_warehouse.dbt_forkserver import start_streaming\n"
         "request = json.loads(sys.stdin.readline())\n"
         "forked = start_streaming(*request)\n"
         "print(forked.pid, flush=True); time.sleep(600)"],
        cwd=REPO_ROOT, env={**os.environ, dbt_forkserver.SOCKET_ENV: server},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        import json

        caller.stdin.write(json.dumps([args, environment, str(tmp_path), 0o077]) + "\n")
        caller.stdin.flush()
        dbt = int(caller.stdout.readline())
        assert alive({dbt}, within=0) == {dbt}  # running its query
        caller.send_signal(signal.SIGKILL)
        caller.wait(timeout=30)
    finally:
        caller.kill()
    assert alive({dbt}, within=10) == set()


def test_without_a_server_dbt_is_spawned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dbt_forkserver.SOCKET_ENV, raising=False)
    assert dbt_forkserver.start_streaming(["--version"], {}, tmp_path, 0o077) is None
    # a server named but gone (stopped, or not ready yet): spawned too
    monkeypatch.setenv(dbt_forkserver.SOCKET_ENV, str(tmp_path / "gone.sock"))
    assert dbt_forkserver.start_streaming(["--version"], {}, tmp_path, 0o077) is None
    with pytest.raises(transform.TransformError, match=NO_SUCH_OPTION):
        transform.run_dbt(["build", "--no-such-flag"], home=tmp_path)


def test_a_forked_dbt_leaves_its_writes_in_the_warehouse_file_not_a_wal(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spawned dbt's exit closes DuckDB, which checkpoints its log into the file; a forked
    one must too (it ends with os._exit): a copy of warehouse.duckdb alone (as the scenario
    tests make) then holds the seeds. Without the close the seed stayed in a .wal (test fails)."""
    monkeypatch.setenv(dbt_forkserver.SOCKET_ENV, server)
    home = tmp_path / "home"
    home.mkdir()
    transform.run_dbt(["seed", "--quiet", "--select", "currency_exponents"], home=home)
    assert not (home / "warehouse.duckdb.wal").exists()
    copy = tmp_path / "copy.duckdb"
    shutil.copy(home / "warehouse.duckdb", copy)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.currency_exponents").fetchone()[0] \
            == len((REPO_ROOT / "dbt_project/seeds/currency_exponents.csv").read_text()
                   .strip().splitlines()) - 1
