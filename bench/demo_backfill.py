"""Time `make demo` (the `stripe-warehouse demo` command) and where its Dagster run's time goes.

Each round runs the real command in a fresh state directory, as a fresh clone does (so the dbt
manifest is parsed when the definitions load), reads the phases from its output, and the run's
breakdown from the Dagster instance it recorded: run creation to start (the planned
materialisations are stored then), the sync step, the dbt step, the freshness check, and the
events stored. Then, on the same warehouse, a plain `stripe-warehouse transform --full-refresh`
equivalent (`transform.build`, no Dagster) for comparison.

With ``--before DIR`` (another revision's tree, e.g. from `git archive <rev> | tar -x -C DIR`),
rounds alternate between that tree and this one, so a shared machine's load weighs on both;
the machine-speed marker is the pure-Python generation of the demo company (fixed seed).

Run: .venv/bin/python bench/demo_backfill.py [--before DIR] [--rounds N]
     (appends to bench/results/demo_backfill.txt)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "demo_backfill.txt"

# Run inside the measured tree, after the demo: the run's phases from the instance's events.
RUN_BREAKDOWN = """
import json, sys
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
with DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1])) as instance:
    run = instance.get_runs(limit=1)[0]
    logs = instance.all_logs(run.run_id)
    created = logs[0].timestamp
    out = {"events": len(logs)}
    for entry in logs:
        kind = entry.dagster_event.event_type_value if entry.is_dagster_event else ""
        if kind == "PIPELINE_START":
            out["to_start"] = entry.timestamp - created
        if kind in ("STEP_START", "STEP_SUCCESS"):
            out[f"{entry.step_key}:{kind}"] = entry.timestamp
    steps = {key.split(":")[0] for key in out if ":" in key}
    for step in steps:
        out[step] = out.pop(f"{step}:STEP_SUCCESS") - out.pop(f"{step}:STEP_START")
    out["total"] = logs[-1].timestamp - created
print(json.dumps(out))
"""
PLAIN_BUILD = """
import sys, time
from pathlib import Path
from stripe_warehouse.transform import build
started = time.monotonic()
build(Path(sys.argv[1]), full_refresh=True)
print(round(time.monotonic() - started, 2))
"""
DEMO_LINES = {
    "sync": r"backfill loaded [\d,]+ objects in ([\d.]+) s",
    "build": r"dbt build finished in ([\d.]+) s",
    "verify": r"took ([\d.]+) s",
    "demo": r"done in ([\d.]+) s",
}


def tree_env(tree: Path, home: Path) -> dict[str, str]:
    """Run the tree's code (not the installed one) against ``home``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRIPE_WAREHOUSE_SECRET_KEY", "DAGSTER_HOME")}
    return {**env, "PYTHONPATH": str(tree), "STRIPE_WAREHOUSE_HOME": str(home)}


def one_round(tree: Path) -> dict[str, float]:
    """The demo in a fresh state directory, its run's breakdown, then a plain build."""
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as directory:
        home = Path(directory) / "data"
        env = tree_env(tree, home)
        started = time.monotonic()
        # the CLI moved to commands/ (issue 16); an older tree has it in stripe_warehouse/
        cli = "commands.cli" if (tree / "commands" / "cli.py").exists() else "stripe_warehouse.cli"
        demo = subprocess.run([sys.executable, "-c", f"from {cli} import main; "
                               "raise SystemExit(main())", "demo"], cwd=tree, env=env,
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if demo.returncode != 0:
            raise SystemExit(f"demo failed in {tree}:\n{demo.stdout[-2000:]}{demo.stderr[-2000:]}")
        figures = {"wall": wall}
        for name, pattern in DEMO_LINES.items():
            found = re.search(pattern, demo.stdout)
            figures[name] = float(found.group(1)) if found else float("nan")
        run = subprocess.run([sys.executable, "-c", RUN_BREAKDOWN, str(home / "dagster")],
                             cwd=tree, env=env, capture_output=True, text=True, check=True)
        breakdown = json.loads(run.stdout.strip().splitlines()[-1])
        figures.update({
            "run": breakdown["total"], "to_start": breakdown.get("to_start", float("nan")),
            "sync_step": breakdown.get("stripe_raw_tables", float("nan")),
            "dbt_step": breakdown.get("stripe_dbt_models", float("nan")),
            "events": breakdown["events"],
        })
        plain = subprocess.run([sys.executable, "-c", PLAIN_BUILD, str(home)], cwd=tree,
                               env=env, capture_output=True, text=True, check=True)
        figures["plain_build"] = float(plain.stdout.strip().splitlines()[-1])
        return figures


def speed_marker() -> float:
    """Seconds to generate the demo company (pure Python, fixed seed): compare machines."""
    from sandbox.company import CompanyConfig, generate_company

    started = time.monotonic()
    generate_company(CompanyConfig(customers=2000, years=3, seed=42))
    return time.monotonic() - started


def line(label: str, runs: list[dict[str, float]]) -> str:
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return (f"{label:<8} demo {med['demo']:5.1f} s (wall {med['wall']:5.1f}) = sync "
            f"{med['sync']:4.1f} + build {med['build']:5.1f} + verify {med['verify']:4.1f} | run "
            f"{med['run']:5.1f} s: to start {med['to_start']:4.1f}, sync step "
            f"{med['sync_step']:4.1f}, dbt step {med['dbt_step']:5.1f}, {med['events']:.0f} "
            f"events | plain dbt build+publish {med['plain_build']:5.1f} s  (median of "
            f"{len(runs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="another revision's tree to compare")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {"after": REPO_ROOT} if args.before is None else {"before": args.before.resolve(),
                                                               "after": REPO_ROOT}
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=False).stdout.strip()
    lines = [f"# demo  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
             f"{platform.machine()}  {os.cpu_count()} cores  load average before "
             f"{os.getloadavg()[0]:.1f}  speed marker: generate 2,000 customers "
             f"{speed_marker():.1f} s",
             f"after = {REPO_ROOT} ({revision or 'an exported tree'})"
             + (f"; before = {args.before}" if args.before else "")]
    print("\n".join(lines), flush=True)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for round_number in range(args.rounds):
        for label, tree in trees.items():
            figures = one_round(tree)
            runs[label].append(figures)
            lines.append(f"round {round_number + 1} {label}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in figures.items()))
            print(lines[-1], flush=True)
    lines += [line(label, found) for label, found in runs.items()]
    if "before" in runs:
        ratio = (statistics.median(r["build"] for r in runs["after"])
                 / statistics.median(r["build"] for r in runs["before"]))
        total = (statistics.median(r["demo"] for r in runs["after"])
                 / statistics.median(r["demo"] for r in runs["before"]))
        lines.append(f"after/before: demo's build line {ratio:.2f}, whole demo {total:.2f}")
    lines.append(f"load average after {os.getloadavg()[0]:.1f}")
    with RESULTS.open("a") as results:  # earlier runs stay: machines differ from day to day
        results.write("\n".join(lines) + "\n")
    print("\n".join(line for line in lines[2:] if not line.startswith("round ")))


if __name__ == "__main__":
    main()
