"""Start the Dagster UI (`dagster dev`) for a state directory, and stop it cleanly."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import make_private
from stripe_warehouse.state_dir import HOME_ENV, StateDir
from stripe_warehouse.warehouse_target import WarehouseTarget

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")
DAGSTER = str(Path(sys.executable).parent / "dagster")


# The instance settings the project needs, whatever else a user's dagster.yaml says (keys,
# value, whether another value is wrong). DuckDB takes one writer at a time, so every writing
# asset and op is in a pool of one. On PostgreSQL the pool only bounds how many writing steps
# run at once across every worker (the instance is shared): loads of different projects merge
# through their own staging datasets, and dbt builds take the server's advisory lock
# (stripe_warehouse.build_lock), so any limit is correct; the instance's storage is the
# warehouse's server (schema `dagster`), which every machine's webserver, daemon and run
# workers reach.
DUCKDB_POOL_LIMIT = 1
POSTGRES_POOL_LIMIT = 4
DAGSTER_SCHEMA = "dagster"
REQUIRED_SETTINGS = {("concurrency", "pools", "default_limit"): DUCKDB_POOL_LIMIT}


def required_settings(target: WarehouseTarget) -> dict[tuple[str, ...], tuple[Any, bool]]:
    """What :func:`ensure_instance_config` adds to an instance config lacking it, for the
    state directory's warehouse ``target``, and whether a different value is a mistake."""
    if not target.is_postgres:
        return {keys: (value, True) for keys, value in REQUIRED_SETTINGS.items()}
    return {("concurrency", "pools", "default_limit"): (POSTGRES_POOL_LIMIT, False),
            ("storage",): ({"postgres": {"postgres_url": instance_storage_url(target)}}, True)}


def instance_storage_url(target: WarehouseTarget) -> str:
    """The URL of the Dagster instance's storage: the warehouse's database, schema ``dagster``
    (first on the search path, so that Dagster's tables never meet dbt's or dlt's)."""
    assert target.dsn is not None
    parts = urlsplit(target.dsn)
    query = "&".join(filter(None, [parts.query, f"options=-csearch_path%3D{DAGSTER_SCHEMA}"]))
    # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3, not installed: name psycopg2
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2", query=query))


def dagster_home(home: Path | str | StateDir) -> Path:
    """``<state dir>/dagster`` holding the instance config (pool limit, and for a PostgreSQL
    warehouse the storage on its server) and, on DuckDB, the run history (SQLite)."""
    state = StateDir.of(home).create()
    path = state.dagster
    path.mkdir(mode=0o700, exist_ok=True)
    ensure_instance_config(path / "dagster.yaml", state.target)
    return path


def ensure_instance_config(config: Path, target: WarehouseTarget | None = None) -> None:
    """Write the project's ``dagster.yaml`` only when absent; a user's own file is kept.

    An existing file only gets the required settings it lacks (said on stderr); a value the
    user set differently is left as it is, with a warning.
    """
    target = target or WarehouseTarget()
    required = required_settings(target)
    if not config.exists():
        text = INSTANCE_CONFIG.read_text()
        if target.is_postgres:
            text = postgres_instance_config(text, required)
        config.write_text(text)
        make_private(config)  # a PostgreSQL instance's URL holds the password
        return
    settings = yaml.safe_load(config.read_text()) or {}
    if not isinstance(settings, dict):
        raise WarehouseError(f"{config} is not a YAML mapping: fix it, or delete it to get the "
                             "project's default instance settings")
    added = []
    for keys, (value, exact) in required.items():
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
            added.append(name if isinstance(value, dict) else f"{name}: {value}")
        elif node[keys[-1]] != value and exact:
            if isinstance(value, dict):  # another server, or an old password
                print(f"warning: {config} stores Dagster's runs elsewhere than the "
                      f"warehouse's server ({target.describe()}): delete its storage section "
                      "to have it written again", file=sys.stderr)
            else:
                print(f"warning: {config} sets {name}: {node[keys[-1]]}; the project expects "
                      f"{value} ({_why(target)})", file=sys.stderr)
    if not target.is_postgres and "postgres" in (settings.get("storage") or {}):
        print(f"warning: {config} stores Dagster's runs on PostgreSQL while the warehouse is "
              "DuckDB: delete its storage section to keep them in the state directory again",
              file=sys.stderr)
    if added:
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
        make_private(config)
        print(f"added {', '.join(added)} to {config} ({_why(target)}); "
              "the rest of the file is yours and kept", file=sys.stderr)
    if target.is_postgres and "storage" in added:
        create_dagster_schema(target)


def _why(target: WarehouseTarget) -> str:
    return ("the warehouse is on PostgreSQL: so are the runs, for every machine"
            if target.is_postgres else "DuckDB takes one writer at a time")


def postgres_instance_config(shipped: str, required: dict[tuple[str, ...], tuple[Any, bool]]
                             ) -> str:
    """The shipped dagster.yaml (its comments kept) for a PostgreSQL warehouse: the pool's
    limit raised, and the storage on the warehouse's server (whose schema it creates)."""
    limit = required[("concurrency", "pools", "default_limit")][0]
    storage = required[("storage",)][0]
    text = shipped.replace(
        "    # DuckDB takes one writer at a time: every writing asset and op is in the `duckdb` "
        "pool.\n    default_limit: 1\n",
        "    # PostgreSQL: loads of different projects run at once (their own staging datasets);\n"
        "    # dbt builds wait for each other on the server's advisory lock. The `duckdb` pool\n"
        "    # only bounds the writing steps running at once across every worker.\n"
        f"    default_limit: {limit}\n")
    url = storage["postgres"]["postgres_url"]
    create_dagster_schema(WarehouseTarget.postgres(url.split("?")[0].replace("+psycopg2", "")))
    return text + ("# Runs, events and schedules on the warehouse's PostgreSQL server (schema "
                   f"{DAGSTER_SCHEMA}):\n# every machine's webserver, daemon and run workers "
                   "share them. Holds the password: 0600.\n"
                   + yaml.safe_dump({"storage": storage}, sort_keys=False))


def create_dagster_schema(target: WarehouseTarget) -> None:
    """Create the schema Dagster's tables go in (Dagster creates its tables, not the schema)."""
    connection = target.connect()
    try:
        with connection, connection.cursor() as cur:
            cur.execute(f"create schema if not exists {DAGSTER_SCHEMA}")
    finally:
        connection.close()


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
    _wait_until_gone(group, seconds=10)
    if _signal_group(group, signal.SIGKILL):
        # a killed process stays in its group until it is reaped (init adopts dagster dev's
        # children): return once they are gone, not while the kill is on its way (a loaded
        # machine's clean-clone run saw the group still there right after)
        _wait_until_gone(group, seconds=10)


def _wait_until_gone(group: int, seconds: float) -> None:
    """Wait at most ``seconds`` for the process group to have no process left."""
    deadline = time.monotonic() + seconds
    while _signal_group(group, 0) and time.monotonic() < deadline:
        time.sleep(0.05)


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
