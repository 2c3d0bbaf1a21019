"""Times the test suite (or some of its modules) on two commits in one run: before and after.

Usage: .venv/bin/python bench/test_suite_time.py [--base COMMIT] [--rounds N] [-- PYTEST ARGS]
  e.g. .venv/bin/python bench/test_suite_time.py --base main -- tests/dbt/test_seat_changes.py

The base commit is exported (`git archive`) to a temporary directory and run from there with
this checkout's virtualenv (its own code first on the import path), then this checkout is run;
with --rounds 2 the order alternates (base, here, here, base) so a load change on a shared
machine hits both sides. For each run: wall seconds, CPU seconds of pytest and everything it
waited for (dbt, Chromium, Dagster: `RUSAGE_CHILDREN`), the pytest summary line, and the
1-minute load average. CPU seconds vary much less than wall time when other jobs share the
machine. `generate=` is a fixed pure-Python workload (the sandbox's company generator): compare
it between records to compare machine speed. Appends to bench/results/test_suite_time.txt.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from trees import export_tree, short_commit  # bench/, this script's own directory

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("TEST_SUITE_TIME_RESULTS",
                              REPO_ROOT / "bench" / "results" / "test_suite_time.txt"))
PYTEST = REPO_ROOT / ".venv" / "bin" / "pytest"


def machine_marker() -> float:
    """Seconds of a fixed pure-Python workload: the same code on the same seed every time."""
    sys.path.insert(0, str(REPO_ROOT))
    from sandbox.company import CompanyConfig, generate_company

    started = time.perf_counter()
    generate_company(CompanyConfig(customers=3000, years=1, seed=7, now=1_780_000_000))
    return time.perf_counter() - started


def run_suite(checkout: Path, pytest_args: list[str], basetemp: Path) -> str:
    """One pytest run in `checkout`: a result line with wall, CPU, summary and load."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.monotonic()
    finished = subprocess.run(
        [str(PYTEST), "-p", "no:cacheprovider", f"--basetemp={basetemp}", "-q", *pytest_args],
        cwd=checkout, env=environment, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in finished.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else finished.stderr.strip()[-200:]
    return (f"wall={wall:7.1f}s  cpu={cpu:7.1f}s  load_avg_1m={load:.1f}->"
            f"{os.getloadavg()[0]:.1f}  exit={finished.returncode}  {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="commit to compare with (default: none, this one only)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("pytest_args", nargs="*", default=["tests"])
    options = parser.parse_args()
    head = short_commit("HEAD")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    lines = [f"# test_suite_time  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
             f"{platform.machine()}  {os.cpu_count()} cores  python {platform.python_version()}"
             f"  generate={machine_marker():.2f}s",
             f"  pytest {' '.join(options.pytest_args)}"]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="suite-time-") as scratch:
        sides = [(f"{head}{'+changes' if dirty else ''} (this checkout)", REPO_ROOT)]
        if options.base:
            base = export_tree(options.base, Path(scratch) / "base")
            sides.insert(0, (f"{options.base} (base)", base))
        for round_ in range(options.rounds):
            for label, checkout in (sides if round_ % 2 == 0 else sides[::-1]):
                result = run_suite(checkout, options.pytest_args,
                                   Path(scratch) / f"bt-{round_}-{checkout.name}")
                line = f"  {label:<32} {result}"
                print(line, flush=True)
                lines.append(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:  # earlier runs stay: machines differ from day to day
        results.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
