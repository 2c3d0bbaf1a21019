"""Long-running commands stop their whole process tree on SIGTERM and on Ctrl-C (SIGINT).

systemd, Docker and `timeout` send SIGTERM. Before, `stripe-warehouse docs` died at once on it
and left `dbt docs serve` running, still holding its port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.paths import REPO_ROOT
from tests.processes import alive, descendants

from .conftest import BuiltWarehouse

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("spawned_dbt")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the command exited before it served"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"nothing answered at {url} within {timeout:.0f} s")


def _restore_sigint() -> None:
    # As a terminal would: pytest may itself run as a background job with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("command", ["docs", "serve"])
def test_long_running_command_stops_its_whole_process_tree(
    built: BuiltWarehouse, command: str, stop: signal.Signals
) -> None:
    port = _free_port()
    extra = ["--realtime"] if command == "serve" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", command, "--port", str(port), *extra],
        cwd=REPO_ROOT, env={**os.environ, "STRIPE_WAREHOUSE_HOME": str(built.home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=_restore_sigint,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/" + ("healthz" if command == "serve" else ""),
                  process)
        tree = descendants(process.pid)
        process.send_signal(stop)
        _, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode in (0, 130, 143), errors
    assert "Traceback" not in errors
    assert not alive(tree, within=10), f"{command} left processes behind"
