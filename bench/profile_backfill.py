"""Where a backfill's CPU goes: py-spy samples of the syncing process and its allowlist workers.

    .venv/bin/python bench/profile_backfill.py [--customers 20000] [--rate 50]

Starts the sandbox of bench/extract_throughput.py (same company, latency and limits), runs
its backfill child under ``py-spy record --subprocesses`` (py-spy is a profiling tool, not a
project dependency: ``pip install py-spy`` into the virtualenv first) and sums the samples
(on-CPU only: py-spy leaves idle threads out) into the stages of a backfill. A sample counts
for the innermost stage its stack passes through, so a row's JSON text counts for row
building, not for whatever called it. The summary is appended to
bench/results/profile_backfill.txt; the raw stacks are left in a temporary directory when
``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from extract_throughput import REPO, bound_seconds, process_cpu_seconds, start_sandbox

RESULTS = REPO / "bench" / "results" / "profile_backfill.txt"

# (stage, marker in a frame's "function (file:line)"), in order of precedence: a sample
# counts for the first stage any frame of its stack matches (an invoice's lines paged while
# its rows are built count as HTTP; dlt's JSON helpers count for the dlt step calling them).
STAGES: list[tuple[str, str]] = [
    ("allowlist worker: parse + allowlist + dump", "allowlisted_json"),
    ("allowlist worker: process pool plumbing", "_process_worker"),
    ("allowlist: pages to/from workers (pickling, pipes)", "multiprocessing/"),
    ("allowlist: pages to/from workers (pickling, pipes)", "AllowlistingDecoder"),
    ("HTTP + SDK (stripe, requests, urllib3)", "stripe/"),
    ("HTTP + SDK (stripe, requests, urllib3)", "requests/"),
    ("HTTP + SDK (stripe, requests, urllib3)", "urllib3/"),
    ("row building (pipelines/source.py)", "StripeExtraction._emit_rows_of"),
    ("dlt normalize", "Pipeline.normalize"),
    ("dlt load (incl. DuckDB under the GIL)", "Pipeline.load"),
    ("dlt load (incl. DuckDB under the GIL)", "load_turn"),
    ("dlt extract (resources, buffered jsonl writers)", "Pipeline.extract"),
    ("dlt pipeline set-up (lanes, state, schema)", "dlt/"),
    ("reader: rate limiter, pagination", "pipelines/ratelimit.py"),
    ("reader: rate limiter, pagination", "pipelines/client.py"),
    ("segments (routing batches to lanes)", "pipelines/segments.py"),
    ("imports and start-up", "importlib"),
    ("threads and queues", "threading.py"),
    ("threads and queues", "queue.py"),
    ("threads and queues", "concurrent/futures/"),
]


def stage_of(frames: list[str]) -> str:
    for stage, marker in STAGES:
        if any(marker in frame for frame in frames):
            return stage
    return "other"


def leaf(frames: list[str]) -> str:
    """The innermost frame, its path shortened to what follows site-packages, the standard
    library or the repository."""
    frame = frames[-1].replace(str(REPO) + "/", "")
    return re.sub(r"\([^()]*/(site-packages|lib/python3\.\d+)/", "(", frame)


SYNCING, WORKERS = "syncing process", "allowlist workers"


def summarize(raw: Path, rate: int, cpu: dict[str, float]) -> list[str]:
    """The summary, per process: samples per stage and the innermost frames.

    py-spy samples the wall clock: on a loaded machine a GIL holder waiting for a core is
    sampled too, so sample seconds exceed CPU seconds. Each stage's share of its process's
    samples is therefore also given as CPU seconds: that share of ``cpu`` (rusage) for the
    process. The syncing process's native time without the GIL (DuckDB) is in ``cpu`` only,
    which makes its estimates high by that much."""
    stages: dict[str, Counter[str]] = {SYNCING: Counter(), WORKERS: Counter()}
    leaves: dict[str, Counter[str]] = {SYNCING: Counter(), WORKERS: Counter()}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        # with --subprocesses the first frame names the process (a worker's, the second)
        worker = any(f.startswith("process ") and "multiprocessing" in f for f in frames[1:3])
        process = WORKERS if worker else SYNCING
        stages[process][stage_of(frames)] += int(count)
        leaves[process][leaf(frames)] += int(count)
    lines = []
    for process in (SYNCING, WORKERS):
        total = sum(stages[process].values()) or 1
        lines.append(f"{process}: {total / rate:.1f} s of GIL-holding samples at {rate}/s, "
                     f"{cpu[process]:.1f} CPU s by rusage")
        lines += [f"  {n / total:6.1%}  ~{cpu[process] * n / total:5.1f} CPU s  {stage}"
                  for stage, n in stages[process].most_common()]
        lines.append(f"  {process}: top innermost frames (self time, share of its samples)")
        lines += [f"    {n / total:6.1%}  {frame}" for frame, n in leaves[process].most_common(15)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--all-threads", action="store_true",
                        help="sample every thread py-spy sees running, not only the one "
                        "holding the GIL (py-spy counted threads blocked on sockets and "
                        "locks here: 283 CPU s against 73 s by rusage)")
    parser.add_argument("--keep", action="store_true", help="keep the raw stacks")
    parser.add_argument("--note", default="", help="a line saying what was profiled")
    options = parser.parse_args()
    py_spy = Path(sys.executable).with_name("py-spy")
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="profile-backfill-"))
    raw = work / "stacks.txt"
    proc, url, _ = start_sandbox(options.customers)
    try:
        sandbox_cpu = process_cpu_seconds(proc.pid)
        started = time.monotonic()
        done = subprocess.run(
            [str(py_spy), "record", "--subprocesses", "--format", "raw", "--rate",
             str(options.rate), "--nonblocking", *([] if options.all_threads else ["--gil"]),
             "-o", str(raw), "--", sys.executable,
             str(REPO / "bench" / "extract_throughput.py"), "--child", "backfill", "--url", url],
            cwd=REPO, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.monotonic() - started
        sandbox_cpu = process_cpu_seconds(proc.pid) - sandbox_cpu
    finally:
        proc.terminate()
        proc.wait(30)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    # py-spy prints its own lines after the child's
    ours = json.loads(next(line for line in reversed(done.stdout.splitlines())
                           if line.startswith("{")))
    lines = summarize(raw, options.rate, {SYNCING: ours["cpu_seconds"],
                                          WORKERS: ours["workers_cpu_seconds"]})
    bound = bound_seconds(ours["requests_by_endpoint"])
    text = "\n".join([
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} `.venv/bin/python "
        f"bench/profile_backfill.py {' '.join(sys.argv[1:])}`",
        *([f"# {options.note}"] if options.note else []),
        f"{options.customers:,} customers: total {ours['seconds_total']:.1f} s under py-spy "
        f"(wall {wall:.1f} s with start-up), bound {bound:.1f} s; CPU by rusage: syncing "
        f"process {ours['cpu_seconds']:.1f} s + allowlist workers "
        f"{ours['workers_cpu_seconds']:.1f} s, sandbox {sandbox_cpu:.1f} s; "
        f"{ours['objects']:,} rows; load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after",
        *lines,
    ])
    print(text)
    with RESULTS.open("a") as f:
        f.write(text + "\n\n")
    if options.keep:
        print(f"raw stacks: {raw}")
    else:
        raw.unlink(missing_ok=True)
        work.rmdir()


if __name__ == "__main__":
    main()
