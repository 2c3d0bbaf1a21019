"""The single-project command-line flow, before and after a change, in one run.

    .venv/bin/python bench/cli_flow.py --before REV [--customers 2000] [--rounds 2]

A newcomer's commands on one project, each timed as its own process, as a user runs them:
`connect` (the key checked against the account), `sync --backfill` (90 days, its dbt build
and publish), `sync --refresh` (7 days plus changes, its build and publish), `metrics` and
`report`. The account is a sandbox company (``--customers``, 50 ms latency, Stripe's live
limits), served once for every round. Each round runs the flow in a fresh state directory
with REV's code (``git archive``, this checkout's virtualenv, REV's code first on the path)
and with this checkout's, alternately, so the machine's load weighs on both; the medians and
their ratio per command are printed and appended to bench/results/cli_flow.txt with the
machine-speed marker of bench/demo_backfill.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("CLI_FLOW_RESULTS", REPO / "bench" / "results" / "cli_flow.txt"))
API_KEY = "sk_live_bench"
PROJECT = "shop"
STEPS = ("connect", "sync --backfill", "sync --refresh", "metrics", "report")


def start_sandbox(customers: int) -> tuple[subprocess.Popen, str]:
    """A sandbox process serving one company at 50 ms latency and live limits; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--customers", str(customers), "--port", "0",
         "--api-key", API_KEY, "--latency-ms", "50", "--rate-limit", "live"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "http://127.0.0.1:" in line:
            return proc, line[line.index("http://"):].split()[0]
    raise RuntimeError("sandbox did not start")


def flow(tree: Path, url: str, scratch: Path) -> dict[str, float]:
    """The five commands with ``tree``'s code in a fresh state directory: seconds each."""
    from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key

    home = Path(tempfile.mkdtemp(prefix="state-", dir=scratch))
    env = {**os.environ, "PYTHONPATH": str(tree), "STRIPE_WAREHOUSE_HOME": str(home),
           "STRIPE_API_BASE": url, SECRET_KEY_ENV: generate_key(), "BENCH_STRIPE_KEY": API_KEY}
    cli = [sys.executable, "-c", "from commands.cli import main; main()"]
    arguments = {
        "connect": ["connect", PROJECT, "--tier", "pro", "--api-key-env", "BENCH_STRIPE_KEY"],
        "sync --backfill": ["sync", PROJECT, "--backfill"],
        "sync --refresh": ["sync", PROJECT, "--refresh"],
        "metrics": ["metrics", PROJECT],
        "report": ["report", PROJECT, "--out", str(home / "report.html")],
    }
    seconds = {}
    for step in STEPS:
        started = time.monotonic()
        done = subprocess.run([*cli, *arguments[step]], cwd=tree, env=env,
                              capture_output=True, text=True)
        seconds[step] = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"{tree}: `{step}` failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the revision to compare with")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from demo_backfill import speed_marker  # bench/, this script's own directory
    from trees import export_tree, short_commit

    before, after = short_commit(options.before), short_commit("HEAD")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    lines = [f"# cli_flow  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  {platform.machine()}  "
             f"{os.cpu_count()} cores (shared)  python {platform.python_version()}",
             f"command: .venv/bin/python bench/cli_flow.py {' '.join(sys.argv[1:])}",
             f"before {before}, after {after}{' (uncommitted changes)' if dirty else ''}; "
             f"{options.customers}-customer company, 50 ms latency, live limits; load average "
             f"before {' '.join(f'{v:.1f}' for v in os.getloadavg())}; speed marker: generate "
             f"the 2,000-customer demo company {speed_marker():.1f} s"]
    print("\n".join(lines), flush=True)
    sandbox, url = start_sandbox(options.customers)
    times: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        with tempfile.TemporaryDirectory(prefix="cli-flow-") as tmp:
            scratch = Path(tmp)
            trees = {"before": export_tree(options.before, scratch / "before"), "after": REPO}
            for round_ in range(1, options.rounds + 1):
                for label in ("before", "after"):
                    seconds = flow(trees[label], url, scratch)
                    times[label].append(seconds)
                    lines.append(f"round {round_} {label}: " + ", ".join(
                        f"{step} {seconds[step]:.1f}" for step in STEPS))
                    print(lines[-1], flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    medians = {label: {step: statistics.median(r[step] for r in rounds) for step in STEPS}
               for label, rounds in times.items()}
    for label in ("before", "after"):
        lines.append(f"{label:6s} (median of {options.rounds}): " + ", ".join(
            f"{step} {medians[label][step]:.1f} s" for step in STEPS)
            + f"; whole flow {sum(medians[label].values()):.1f} s")
    lines.append("after/before: " + ", ".join(
        f"{step} {medians['after'][step] / medians['before'][step]:.2f}" for step in STEPS)
        + f"; whole flow {sum(medians['after'].values()) / sum(medians['before'].values()):.2f}")
    lines.append(f"load average after {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\n".join(lines[-4:]))
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
