"""Time of the demo company's backfill end to end, two ways, in one run.

1. The CLI path (`stripe-warehouse sync demo --backfill`): sync_project + dbt build + publish.
2. A real Dagster `backfill` run for the project's partition (what the connect sensor launches),
   executed in its own process with the instance config of `stripe-warehouse ui`.

The sandbox serves the 2,000-customer demo company (seed 42) with 50 ms latency per request and
Stripe's live-mode rate limits (100/s overall, 25/s per endpoint), so the timings include
realistic network waits. The bound compared against: the product promise "usually 30-60 s".

Run: .venv/bin/python bench/demo_backfill.py   (writes bench/results/demo_backfill.txt)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance

from orchestration.partitions import project_partitions
from orchestration.ui import dagster_home
from pipelines.load import sync_project
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "demo_backfill.txt"
API_KEY = "sk_live_demo_bench"  # live-mode key prefix: the reader applies live rate limits
RUN_BACKFILL = """
import sys, time
from dagster import DagsterInstance
from orchestration.definitions import defs
started = time.monotonic()
result = defs.resolve_job_def("backfill").execute_in_process(
    instance=DagsterInstance.get(), partition_key=sys.argv[1], raise_on_error=False)
print(result.success, round(time.monotonic() - started, 1))
"""


def cli_path(home: Path, url: str) -> tuple[float, float, int]:
    store = ConnectionStore(home)
    store.connect("demo", "pro", API_KEY)
    started = time.monotonic()
    result = sync_project(store, "demo", "backfill", home=home, api_base=url)
    synced = time.monotonic()
    build(home=home)
    return synced - started, time.monotonic() - synced, result.objects_loaded


def dagster_path(home: Path, url: str) -> tuple[bool, float, float]:
    ConnectionStore(home).connect("demo", "pro", API_KEY)
    env = {**os.environ, "STRIPE_WAREHOUSE_HOME": str(home), "STRIPE_API_BASE": url,
           "DAGSTER_HOME": str(dagster_home(home))}
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.add_dynamic_partitions(project_partitions.name, ["demo"])
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", RUN_BACKFILL, "demo"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    success, in_run = out.stdout.split()[-2:] if out.stdout.split() else ("False", "0")
    return success == "True", wall, float(in_run)


def main() -> None:
    os.environ.setdefault(SECRET_KEY_ENV, generate_key())
    company = generate_company(CompanyConfig(customers=2000, years=3, seed=42, livemode=True))
    lines = [f"# demo backfill  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
             f"{platform.machine()}  load average before {os.getloadavg()[0]:.1f}",
             "sandbox: 2,000-customer demo company (seed 42), 50 ms latency, live limits 100/s, "
             "25/s per endpoint; product promise: usually 30-60 s"]
    with SandboxServer(accounts={API_KEY: company}, latency_ms=50, rate_limit_global=100,
                       rate_limit_per_endpoint=25) as sandbox, \
            tempfile.TemporaryDirectory() as cli_home, tempfile.TemporaryDirectory() as dg_home:
        sync_s, build_s, objects = cli_path(Path(cli_home), sandbox.url)
        lines.append(f"CLI path: sync {sync_s:.1f} s ({objects:,} objects) + dbt build and publish "
                     f"{build_s:.1f} s = {sync_s + build_s:.1f} s end to end")
        success, wall, in_run = dagster_path(Path(dg_home), sandbox.url)
        lines.append(f"Dagster backfill run: success={success}, {in_run:.1f} s inside the run, "
                     f"{wall:.1f} s including process start and definitions load")
    lines.append(f"load average after {os.getloadavg()[0]:.1f}")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
