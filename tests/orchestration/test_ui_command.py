"""`run_ui` (behind `stripe-warehouse ui`) serves Dagster and Ctrl-C takes all of it down."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.ui import wait_until_ready
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e



def restore_sigint() -> None:
    # Like a terminal would: pytest may itself run as a background job with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_run_ui_and_every_dagster_process_it_started(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys; from orchestration.ui import run_ui; sys.exit(run_ui({str(tmp_path)!r}, "
         f"port={port}))"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=restore_sigint,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", command, timeout=180)
        children = Path(f"/proc/{command.pid}/task/{command.pid}/children").read_text().split()
        assert len(children) == 1  # dagster dev, leader of its own process group
        dagster_group = int(children[0])
        assert os.getpgid(dagster_group) == dagster_group != os.getpgid(command.pid)
        command.send_signal(signal.SIGINT)
        output, _ = command.communicate(timeout=90)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 130
    assert f"Dagster UI: http://127.0.0.1:{port}" in output
    with pytest.raises(ProcessLookupError):
        os.killpg(dagster_group, 0)
    assert (tmp_path / "dagster" / "dagster.yaml").exists()


def test_sigterm_stops_the_ui_command_and_every_dagster_process_it_started(tmp_path: Path) -> None:
    """What systemd, Docker and `timeout` send: before, the CLI died at once and `dagster dev`
    with its webserver, daemon and code server stayed alive in their own process group."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "ui", "--port", str(port)],
        cwd=REPO_ROOT, env={**os.environ, "STRIPE_WAREHOUSE_HOME": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", command, timeout=180)
        (dagster_group,) = map(int, Path(
            f"/proc/{command.pid}/task/{command.pid}/children").read_text().split())
        command.send_signal(signal.SIGTERM)
        command.communicate(timeout=90)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 0  # stopped cleanly
    with pytest.raises(ProcessLookupError):
        os.killpg(dagster_group, 0)
