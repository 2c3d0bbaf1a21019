"""Peak memory of a backfill, per sync phase, helper processes included (issue 18 goal 3).

Usage: .venv/bin/python bench/backfill_memory.py [--customers 100000] [--trace FILE]
Starts the bench's sandbox (bench/extract_throughput.py: 50 ms latency, live rate limits), runs
`sync_project(..., "backfill")` in a child process and samples, every 0.1 s, the child's RSS and
the PSS (proportional set size: a page shared by N processes counts 1/N to each) of the child
and all its descendants (the allowlist workers). The sum of PSS is the memory the backfill
really holds; RSS of forked workers counts pages they share with the parent again, which is
why extract_throughput.py's "+N MB per allowlist worker" (ru_maxrss of the children) overstates
the total. Appends its lines to bench/results/backfill_memory.txt: the peaks, the end-to-end
time against the rate-limit bound of the requests made (extract_throughput.bound_seconds) and
the machine-speed marker of bench/demo_backfill.py. ``--trace FILE`` writes every sample, and
when each lane's dlt extract, normalize and load and each turn of the writer lock start and
end, to place a peak (the loads overlap the extraction).
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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _trace_dlt_steps(samples: Any, began: float) -> None:
    """Write a line to ``samples`` when each lane's dlt extract, normalize and load start and
    end: the loads overlap the extraction, so the phase names alone do not place a peak."""
    import dlt

    def traced(step: str) -> None:
        original = getattr(dlt.Pipeline, step)

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            samples.write(f"{time.monotonic() - began:.1f} {self.pipeline_name} {step} start\n")
            try:
                return original(self, *args, **kwargs)
            finally:
                samples.write(f"{time.monotonic() - began:.1f} {self.pipeline_name} {step} end\n")
        setattr(dlt.Pipeline, step, run)

    for step in ("extract", "normalize", "load"):
        traced(step)

    from pipelines import load
    writing = load._writing

    @contextmanager
    def traced_writing(state: Any, project_id: str, purpose: str) -> Iterator[Any]:
        # the turn of the writer lock around each load: its DuckDB connection is opened
        # before and closed (checkpointed) after dlt's load
        samples.write(f"{time.monotonic() - began:.1f} writer waiting\n")
        with writing(state, project_id, purpose) as con:
            samples.write(f"{time.monotonic() - began:.1f} writer in\n")
            yield con
            samples.write(f"{time.monotonic() - began:.1f} writer closing\n")
        samples.write(f"{time.monotonic() - began:.1f} writer out\n")
    load._writing = traced_writing


def child_backfill(url: str, trace: str | None = None) -> dict:
    from pipelines.load import sync_project
    from stripe_warehouse.crypto import generate_key
    from stripe_warehouse.registry import ConnectionStore

    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = generate_key()
    me = os.getpid()
    current, peaks, starts, stop = ["setup"], {}, {}, threading.Event()
    # --trace: every sample as a line (seconds, phase, the sync's RSS and PSS, its helpers'
    # PSS), to see when in a phase the peak comes
    samples = open(trace, "w") if trace else None  # noqa: SIM115 (closed below)
    began = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            rss = _status_mb(me, "VmRSS")
            own = _status_mb(me, "Pss:", "smaps_rollup")
            helpers = [_status_mb(pid, "Pss:", "smaps_rollup") for pid in _descendants(me)]
            pss = own + sum(helpers)
            if samples:
                samples.write(f"{time.monotonic() - began:.1f} {current[0]} rss {rss:.0f} "
                              f"pss {own:.0f} helpers {sum(helpers):.0f} ({len(helpers)}) "
                              f"total {pss:.0f}\n")
            phase = peaks.setdefault(current[0], {"rss_mb": 0.0, "pss_total_mb": 0.0})
            phase["rss_mb"] = max(phase["rss_mb"], rss)
            phase["pss_total_mb"] = max(phase["pss_total_mb"], pss)
            time.sleep(0.1)

    if samples:
        _trace_dlt_steps(samples, began)
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
    if samples:
        time.sleep(0.2)  # the sampler's last write
        samples.close()
    return {"peaks": peaks, "phase_starts": starts, "seconds_total": round(total, 1),
            "objects": result.objects_loaded,
            "requests_by_endpoint": result.requests_by_endpoint}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--trace", help="write every 0.1 s sample to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_backfill(args.child, args.trace)))
        return
    from demo_backfill import speed_marker  # bench/, this script's own directory

    marker = speed_marker()
    proc, url, _ = bench.start_sandbox(args.customers)
    load_before = os.getloadavg()[0]
    try:
        trace = ["--trace", str(Path(args.trace).resolve())] if args.trace else []
        out = subprocess.run([sys.executable, __file__, "--child", url, *trace],
                             capture_output=True,
                             text=True, check=True, cwd=bench.REPO,
                             env={**os.environ, "PYTHONPATH": str(bench.REPO)})
    finally:
        proc.terminate()
        proc.wait()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    phases = ", ".join(f"{name} RSS {p['rss_mb']:.0f} / total PSS {p['pss_total_mb']:.0f} MB"
                       for name, p in result["peaks"].items())
    peak = max(p["pss_total_mb"] for p in result["peaks"].values())
    bound = bench.bound_seconds(result["requests_by_endpoint"])
    line = (f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  backfill_memory  customers="
            f"{args.customers:,}  objects={result['objects']:,}  total {result['seconds_total']}"
            f" s  load_avg_1m {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n"
            f"peak total PSS {peak:.0f} MB (<= 1024: {peak <= 1024}); per phase: {phases}; "
            f"phase starts (s): {result['phase_starts']}\n"
            f"rate-limit bound {bound:.1f} s: end to end {bound / result['seconds_total']:.0%} of "
            f"bound speed; speed marker: generate the 2,000-customer demo company {marker:.1f} s")
    print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(line + "\n")


if __name__ == "__main__":
    main()
