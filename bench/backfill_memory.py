"""Peak memory of a backfill, per sync phase, helper processes included (issue 18 goal 3).

Usage: .venv/bin/python bench/backfill_memory.py [--customers 100000]
Starts the bench's sandbox (bench/extract_throughput.py: 50 ms latency, live rate limits), runs
`sync_project(..., "backfill")` in a child process and samples, every 0.1 s, the child's RSS and
the PSS (proportional set size: a page shared by N processes counts 1/N to each) of the child
and all its descendants (the allowlist workers). The sum of PSS is the memory the backfill
really holds; RSS of forked workers counts pages they share with the parent again, which is
why extract_throughput.py's "+N MB per allowlist worker" (ru_maxrss of the children) overstates
the total. Appends one line to bench/results/backfill_memory.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import extract_throughput as bench  # noqa: E402  (bench/, this script's own directory)

RESULTS = BENCH / "results" / "backfill_memory.txt"


def _status_mb(pid: int | str, key: str, name: str = "status") -> float:
    try:
        for line in open(f"/proc/{pid}/{name}"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(pid: int | str) -> list[str]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in open(f"/proc/{pid}/task/{task}/children").read().split():
                found += [child, *_descendants(child)]
    except OSError:
        pass
    return found


def child_backfill(url: str) -> dict:
    from pipelines.load import sync_project
    from stripe_warehouse.crypto import generate_key
    from stripe_warehouse.registry import ConnectionStore

    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = generate_key()
    me = os.getpid()
    current, peaks, starts, stop = ["setup"], {}, {}, threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = _status_mb(me, "VmRSS")
            pss = sum(_status_mb(pid, "Pss:", "smaps_rollup") for pid in [me, *_descendants(me)])
            phase = peaks.setdefault(current[0], {"rss_mb": 0.0, "pss_total_mb": 0.0})
            phase["rss_mb"] = max(phase["rss_mb"], rss)
            phase["pss_total_mb"] = max(phase["pss_total_mb"], pss)
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as home:
        store = ConnectionStore(home)
        store.connect("bench", "scale", bench.API_KEY)
        started = time.monotonic()

        def phase(name: str) -> None:
            starts[name] = round(time.monotonic() - started, 1)
            current[0] = name

        result = sync_project(store, "bench", "backfill", api_base=url, now=bench.NOW,
                              phase=phase)
        total = time.monotonic() - started
    stop.set()
    return {"peaks": peaks, "phase_starts": starts, "seconds_total": round(total, 1),
            "objects": result.objects_loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_backfill(args.child)))
        return
    proc, url, _ = bench.start_sandbox(args.customers)
    load_before = os.getloadavg()[0]
    try:
        out = subprocess.run([sys.executable, __file__, "--child", url], capture_output=True,
                             text=True, check=True, cwd=bench.REPO,
                             env={**os.environ, "PYTHONPATH": str(bench.REPO)})
    finally:
        proc.terminate()
        proc.wait()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    phases = ", ".join(f"{name} RSS {p['rss_mb']:.0f} / total PSS {p['pss_total_mb']:.0f} MB"
                       for name, p in result["peaks"].items())
    peak = max(p["pss_total_mb"] for p in result["peaks"].values())
    line = (f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  backfill_memory  customers="
            f"{args.customers:,}  objects={result['objects']:,}  total {result['seconds_total']}"
            f" s  load_avg_1m {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n"
            f"peak total PSS {peak:.0f} MB (<= 1024: {peak <= 1024}); per phase: {phases}; "
            f"phase starts (s): {result['phase_starts']}")
    print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(line + "\n")


if __name__ == "__main__":
    main()
