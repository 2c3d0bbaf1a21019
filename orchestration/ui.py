"""Start the Dagster UI (`dagster dev`) for a state directory, and stop it cleanly."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import home_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")
DAGSTER = str(Path(sys.executable).parent / "dagster")


def dagster_home(home: Path | str | None) -> Path:
    """``<state dir>/dagster`` holding the instance config (pool limit) and run history."""
    path = home_dir(home).resolve() / "dagster"
    path.mkdir(mode=0o700, exist_ok=True)
    shutil.copyfile(INSTANCE_CONFIG, path / "dagster.yaml")
    return path


def _restore_sigint() -> None:
    # A process started from a background job inherits SIGINT ignored; dagster dev needs it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_ui(
    home: Path | str | None,
    host: str = "127.0.0.1",
    port: int = 3000,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Launch ``dagster dev -w workspace.yaml`` in its own process group; returns at once."""
    state = home_dir(home).resolve()
    env = {
        **os.environ,
        "STRIPE_WAREHOUSE_HOME": str(state),
        "DAGSTER_HOME": str(dagster_home(state)),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.Popen(
        [DAGSTER, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", host, "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
        preexec_fn=_restore_sigint,
    )


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Block until the UI answers at ``url``; a one-line error if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WarehouseError(
                f"dagster dev exited with code {process.returncode}: run "
                "`dagster definitions validate -w workspace.yaml` to see why"
            )
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise WarehouseError(f"the Dagster UI did not answer at {url} within {timeout:.0f} s: "
                         "check the port is free and the machine is not overloaded")


def stop_ui(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop dagster dev and its children (webserver, daemon, code server) by process group."""
    group = process.pid  # start_new_session made it the group leader
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not _signal_group(group, sig):
            return
        try:
            process.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children that outlive dagster dev (a run worker mid-step) go with the group.
    deadline = time.monotonic() + 10
    while _signal_group(group, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, sig: int) -> bool:
    """Send ``sig`` to the process group; False once the group has no process left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def run_ui(home: Path | str | None, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run the UI in the foreground until Ctrl-C; returns dagster's exit code."""
    process = start_ui(home, host, port)
    print(f"Dagster UI: http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The UI runs in its own process group, so forward the interrupt ourselves.
        stop_ui(process)
        return 130
