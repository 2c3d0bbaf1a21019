"""The dbt docs site: every mart and metric documented, lineage from the raw Stripe tables."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import PRIVATE_UMASK
from stripe_warehouse.transform import REPO_ROOT, dbt_invocation, run_dbt


def generate_docs(home: Path) -> None:
    """`dbt docs generate` (offline: the catalog is read from warehouse.duckdb) into the state
    directory's dbt target, which `start_docs_server` then serves."""
    run_dbt(["docs", "generate"], home=home)


def start_docs_server(
    home: Path, host: str = "127.0.0.1", port: int = 8580
) -> subprocess.Popen[bytes]:
    """Start `dbt docs serve` and return once it answers; the caller stops the process."""
    command, environment = dbt_invocation(
        ["docs", "serve", "--host", host, "--port", str(port), "--no-browser"], home
    )
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=PRIVATE_UMASK,
    )
    try:
        _wait_until_serving(process, host, port)
    except BaseException:  # Ctrl-C or SIGTERM while waiting too: never leave the server behind
        process.terminate()
        process.wait(timeout=10)
        raise
    return process


def _wait_until_serving(process: subprocess.Popen[bytes], host: str, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WarehouseError(
                f"the docs server exited at once: is port {port} free? pick another with --port"
            )
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise WarehouseError(f"the docs server did not answer on {host}:{port} within 60 s")
