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

import yaml

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import HOME_ENV, StateDir

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")
DAGSTER = str(Path(sys.executable).parent / "dagster")


# The one instance setting the project needs, whatever else a user's dagster.yaml says:
# DuckDB takes one writer at a time, so every writing asset and op is in a pool of one.
REQUIRED_SETTINGS = {("concurrency", "pools", "default_limit"): 1}


def dagster_home(home: Path | str | StateDir) -> Path:
    """``<state dir>/dagster`` holding the instance config (pool limit) and run history."""
    path = StateDir.of(home).create().dagster
    path.mkdir(mode=0o700, exist_ok=True)
    ensure_instance_config(path / "dagster.yaml")
    return path


def ensure_instance_config(config: Path) -> None:
    """Write the project's ``dagster.yaml`` only when absent; a user's own file is kept.

    An existing file only gets the required settings it lacks (said on stderr); a value the
    user set differently is left as it is, with a warning.
    """
    if not config.exists():
        shutil.copyfile(INSTANCE_CONFIG, config)
        return
    settings = yaml.safe_load(config.read_text()) or {}
    if not isinstance(settings, dict):
        raise WarehouseError(f"{config} is not a YAML mapping: fix it, or delete it to get the "
                             "project's default instance settings")
    added = []
    for keys, value in REQUIRED_SETTINGS.items():
        node = settings
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise WarehouseError(f"{config}: {key} is not a mapping: fix it, or delete "
                                     "the file to get the project's default instance settings")
        name = ".".join(keys)
        if keys[-1] not in node:
            node[keys[-1]] = value
            added.append(f"{name}: {value}")
        elif node[keys[-1]] != value:
            print(f"warning: {config} sets {name}: {node[keys[-1]]}; the project expects "
                  f"{value} (DuckDB takes one writer at a time)", file=sys.stderr)
    if added:
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
        print(f"added {', '.join(added)} to {config} (DuckDB takes one writer at a time); "
              "the rest of the file is yours and kept", file=sys.stderr)


def _restore_sigint() -> None:
    # A process started from a background job inherits SIGINT ignored; dagster dev needs it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_ui(
    home: Path | str | StateDir,
    host: str = "127.0.0.1",
    port: int = 3000,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Launch ``dagster dev -w workspace.yaml`` in its own process group; returns at once."""
    state = StateDir.of(home).create()
    env = {
        **os.environ,
        HOME_ENV: str(state.root),  # the code location's WarehouseResource resolves it
        "DAGSTER_HOME": str(dagster_home(state.root)),
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


def run_ui(home: Path | str | StateDir, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run the UI in the foreground until Ctrl-C; returns dagster's exit code."""
    process = start_ui(home, host, port)
    print(f"Dagster UI: http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The UI runs in its own process group, so forward the interrupt ourselves.
        stop_ui(process)
        return 130
