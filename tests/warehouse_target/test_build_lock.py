"""dbt builds of one PostgreSQL warehouse, one at a time on every machine (stripe_warehouse.
build_lock): the server's advisory lock, held on a connection of its own for the build.

Two processes (two "machines": nothing local is shared, only the server) start `dbt seed`
through the one place that runs dbt (transform.run_dbt) at the same moment: their dbt
processes run one after the other. A holder killed with SIGKILL frees the lock at once (its
session ends), and a waiter that runs out of patience gets one line naming the holder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stripe_warehouse.build_lock import dbt_build_turn
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import WarehouseTarget
from stripe_warehouse.writer_lock import WarehouseBusy
from tests.paths import REPO_ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("spawned_dbt")]

# A "machine": its own state directory on the shared server; dbt seed through run_dbt, the
# dbt process's start and end recorded (inside the lock, around the subprocess).
SEED_BUILD = """
import json, sys, time
from stripe_warehouse import transform
run = transform.run_dbt_process
spans = []
def timed(*args, **kwargs):
    started = time.time()
    try:
        return run(*args, **kwargs)
    finally:
        spans.append((started, time.time()))
transform.run_dbt_process = timed
transform.run_dbt(["seed", "--quiet"], home=sys.argv[1])
print(json.dumps(spans[0]))
"""
# Holds the build lock until killed.
HOLDER = """
import sys, time
from stripe_warehouse.build_lock import dbt_build_turn
with dbt_build_turn(sys.argv[1], "a build that hangs"):
    print("held", flush=True)
    time.sleep(600)
"""

# Runs a stand-in for dbt the way run_dbt does (run_dbt_process), holding the build lock; the
# child writes its pid, then sleeps.
HOLDER_RUNNING_DBT = """
import sys
from pathlib import Path
from stripe_warehouse import transform
from stripe_warehouse.build_lock import dbt_build_turn
child = "import os, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
with dbt_build_turn(sys.argv[1], "a build whose dbt hangs"):
    transform.run_dbt_process([sys.executable, "-c", "import sys\\n" + child,
                              str(Path(sys.argv[1]) / "dbt.pid")], {}, None, Path(sys.argv[1]))
"""


def _machine(parent: Path, name: str, url: str) -> Path:
    home = parent / name
    home.mkdir()
    WarehouseTarget.postgres(url).save(home)
    return home


def _python(script: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, str(home)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_machines_builds_run_one_after_the_other(
        tmp_path: Path, own_postgres_database: str) -> None:
    builds = [_python(SEED_BUILD, _machine(tmp_path, name, own_postgres_database))
              for name in ("machine_a", "machine_b")]
    outputs = [build.communicate(timeout=300) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], [err for _, err in outputs]
    (first_start, first_end), (second_start, second_end) = sorted(
        json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert first_end <= second_start, (first_start, first_end, second_start, second_end)
    # both built the seeds: the second one's are there too
    target = WarehouseTarget.postgres(own_postgres_database)
    (seeded,) = target.fetch_all("select count(*) > 0 from intermediate.currency_exponents")[0]
    assert seeded is True


def test_a_killed_holder_frees_the_lock_and_a_waiter_names_it(
        tmp_path: Path, postgres_url: str) -> None:
    home = _machine(tmp_path, "machine_a", postgres_url)
    holder = _python(HOLDER, home)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy) as busy, dbt_build_turn(
                _machine(tmp_path, "machine_b", postgres_url), "dbt build", wait=0.5,
                progress=lambda line: None):
            pass
        message = str(busy.value)
        assert f"pid {holder.pid}: a build that hangs" in message
        assert "\n" not in message
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        with dbt_build_turn(StateDir(home), "dbt build", wait=10, progress=lambda line: None):
            taken = time.monotonic() - started
        assert taken < 2.0  # the server ended the killed session: no stale lock
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_killed_holders_dbt_dies_with_it(tmp_path: Path, postgres_url: str) -> None:
    """Else the holder's dbt would go on writing after the server freed the lock."""
    home = _machine(tmp_path, "machine_a", postgres_url)
    holder = _python(HOLDER_RUNNING_DBT, home)
    pid_file = home / "dbt.pid"
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert holder.poll() is None and time.monotonic() < deadline, holder.stderr.read()
            time.sleep(0.1)
        dbt = int(pid_file.read_text())
        os.kill(dbt, 0)  # running
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{dbt}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{dbt}").exists() or \
            Path(f"/proc/{dbt}/stat").read_text().split()[2] == "Z"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_dagsters_dbt_dies_with_its_holder_too(tmp_path: Path) -> None:
    """dagster-dbt starts dbt itself, through orchestration.resources' wrapper: killed with
    the process that started it (here a stand-in for dbt records its pid and sleeps)."""
    from orchestration.resources import DBT_EXECUTABLE_ENV, DBT_WRAPPER, dbt_resource

    assert dbt_resource().dbt_executable == str(DBT_WRAPPER)
    stand_in = tmp_path / "dbt"
    stand_in.write_text(f"#!{sys.executable}\nimport os, sys, time\n"
                        "open(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    stand_in.chmod(0o755)
    pid_file = tmp_path / "dbt.pid"
    starter = subprocess.Popen(  # as dagster-dbt does: Popen, then wait for the output
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])",
         str(DBT_WRAPPER), str(pid_file)],
        env={**os.environ, DBT_EXECUTABLE_ENV: str(stand_in)})
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert starter.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        dbt = int(pid_file.read_text())
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{dbt}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{dbt}").exists() or \
            Path(f"/proc/{dbt}/stat").read_text().split()[2] == "Z"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
