"""The writer lock between real processes: bounded waits, the holder named, fair turns."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stripe_warehouse.writer_lock import WarehouseBusy, read_holder, warehouse_writer
from tests.command_env import command_env
from tests.paths import REPO_ROOT

from .holders import holding_writer, start_writer


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = command_env(STRIPE_WAREHOUSE_HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env=environment,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_a_writer_that_never_releases_is_named_by_pid_and_command_after_the_bounded_wait(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with holding_writer(home, "Dagster run 1a2b3c4d: dbt build") as holder:
        started = time.monotonic()
        result = cli(home, "transform", STRIPE_WAREHOUSE_LOCK_WAIT="3")
        waited = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    *progress, error = lines
    assert error.startswith("error: waited 3 s to write the warehouse"), result.stderr
    assert f"held by pid {holder.pid} (python -c {home} Dagster run 1a2b3c4d" in error
    assert f"`kill {holder.pid}`" in error and "STRIPE_WAREHOUSE_LOCK_WAIT" in error
    assert "Traceback" not in result.stderr and "BI tool" not in result.stderr
    # progress while waiting: who holds the warehouse, and for how long
    assert progress and all(line.startswith("waiting for the warehouse (") for line in progress)
    assert f"held by pid {holder.pid} (" in progress[0] and progress[0].endswith(" s")
    assert 3 <= waited < 60


def test_a_writer_retaking_the_lock_at_once_cannot_starve_a_waiter(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # the real-time applier under a steady stream: a short write, release, take it again
    applier = start_writer(home, "applying webhook events", "loop", "6")
    try:
        time.sleep(0.5)
        turns: list[float] = []
        for _ in range(5):
            started = time.monotonic()
            with warehouse_writer(home, "loading the sync of shop", wait=5):
                turns.append(time.monotonic() - started)
                time.sleep(0.1)
        output, _ = applier.communicate(timeout=30)
    finally:
        applier.kill()
    # each of our turns came after at most a turn or two of the other writer's
    assert max(turns) < 1.0, turns
    assert int(output.strip()) > 20  # and the other writer kept making progress too


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    events: list[str] = []

    def other_thread() -> None:
        with warehouse_writer(home, "second thread", wait=10):
            events.append("other")

    with warehouse_writer(home, "build"):
        with warehouse_writer(home, "publish"):  # nested: no deadlock with itself
            holder = read_holder(home)
            assert holder is not None and holder.pid == os.getpid()
            assert holder.purpose == "build"
        thread = threading.Thread(target=other_thread)
        thread.start()
        time.sleep(0.3)
        events.append("first")
    thread.join(timeout=10)
    assert events == ["first", "other"]
    assert read_holder(home) is None  # released: nobody recorded as holder


def test_a_bad_wait_setting_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WAREHOUSE_LOCK_WAIT", "soon")
    with pytest.raises(Exception, match="STRIPE_WAREHOUSE_LOCK_WAIT='soon' is not a number"), \
            warehouse_writer(tmp_path, "build"):
        pass
    monkeypatch.setenv("STRIPE_WAREHOUSE_LOCK_WAIT", "0")
    with holding_writer(tmp_path, "sync"), pytest.raises(WarehouseBusy), \
            warehouse_writer(tmp_path, "build"):
        pass
