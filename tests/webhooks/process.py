"""The web service as a separate process (``python -m commands.serve``), as in production."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]


def start_service(
    home: Path, *options: str, stderr: IO[bytes] | None = None
) -> tuple[subprocess.Popen, str]:
    """``python -m commands.serve [options]`` on a free port; returns the process and its base URL.

    ``stderr``: a file for the service's log (default: the test's own stderr).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # freed for the child to bind: a tiny race, fine on loopback
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.serve", "--home", str(home), "--port", str(port),
         *options],
        cwd=REPO, env=env, start_new_session=True, stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return process, url
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the service exited at start-up") from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the service did not answer /healthz within 20 s")


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL: no graceful shutdown, nothing flushed on the way out."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)




def stop(process: subprocess.Popen) -> None:
    """SIGTERM, as a service manager stops it; the log is flushed on the way out."""
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        kill_hard(process)
