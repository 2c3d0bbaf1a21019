"""Run one benchmark on two revisions back to back, in one run, for a before/after ratio.

Each revision is exported with ``git archive`` into a temporary directory and the benchmark
runs there with this checkout's virtualenv (its code comes first on the path). The output
of both runs is printed and saved with the load average before, between and after each (the
machine-speed marker: the machine is shared).

    .venv/bin/python bench/before_after.py BASE_REV HEAD bench/webhook_latency.py -- --rounds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trees import export_tree, short_commit  # bench/, this script's own directory

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def run(tree: Path, script: str, args: list[str]) -> tuple[float, str]:
    """The benchmark's wall time and output, run from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("STRIPE_WAREHOUSE_HOME", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, script, *args], cwd=tree, env=env,
                          capture_output=True, text=True)
    output = done.stdout + (f"\nexit {done.returncode}: {done.stderr[-2000:]}"
                            if done.returncode else "")
    return time.monotonic() - started, output.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("script", help="the benchmark, relative to the repository")
    parser.add_argument("args", nargs="*", help="after --: the benchmark's own arguments")
    options = parser.parse_args()
    lines = [f"# {Path(options.script).stem}: {options.before} vs {options.after}  "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  {platform.machine()}  "
             f"{os.cpu_count()} cores (shared)",
             f"arguments: {' '.join(options.args) or '(defaults)'}"]
    with tempfile.TemporaryDirectory() as tmp:
        for label, revision in (("before", options.before), ("after", options.after)):
            tree = Path(tmp) / label
            export_tree(revision, tree)
            commit = short_commit(revision)
            lines.append(f"\n## {label} ({commit}), load average before {load_average()}")
            seconds, output = run(tree, options.script, options.args)
            lines += [output, f"wall time {seconds:.1f} s, load average after {load_average()}"]
    report = "\n".join(lines)
    out = RESULTS / f"{Path(options.script).stem}_before_after.txt"
    out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
