"""`stripe-warehouse verify` on a bench-sized sandbox company: generate, backfill over HTTP,
build, verify (issue 15: verify must be green on the demo and bench companies).

The sandbox runs as its own process (`python -m sandbox serve`, no latency, no rate limit:
this checks the figures, not the extraction speed; see extract_throughput.py for that).

Usage: .venv/bin/python bench/verify_company.py [--customers 20000] [--seed 42]
Appends the timings and verify's report (with --explain) to bench/results/verify_company.txt.
`generate=` (the sandbox's own log) is pure Python on a fixed seed: compare it between runs to
compare machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from commands.demo import DEMO_API_KEY, SandboxProcess  # noqa: E402
from commands.verify import run_verify  # noqa: E402
from pipelines.load import sync_project  # noqa: E402
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key  # noqa: E402
from stripe_warehouse.registry import ConnectionStore  # noqa: E402
from stripe_warehouse.transform import build  # noqa: E402

RESULTS = Path(os.environ.get("VERIFY_BENCH_RESULTS",
                              REPO_ROOT / "bench" / "results" / "verify_company.txt"))
PROJECT = "bench"


def main() -> int:
    """Run once; print and append the report. Exit code: verify's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the state directory (warehouse) here to look into a DIFF")
    args = parser.parse_args()
    lines = [f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.machine()}  load average "
             f"before {os.getloadavg()[0]:.1f}",
             f"command: .venv/bin/python bench/verify_company.py --customers {args.customers} "
             f"--seed {args.seed}"]
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["STRIPE_WAREHOUSE_HOME"] = str(home)
        os.environ.setdefault(SECRET_KEY_ENV, generate_key())
        t0 = time.monotonic()
        with SandboxProcess(args.customers, seed=args.seed) as sandbox:
            generated = time.monotonic() - t0
            store = ConnectionStore(home)
            store.connect(PROJECT, "pro", DEMO_API_KEY)
            t0 = time.monotonic()
            sync_project(store, PROJECT, "backfill", home=home, api_base=sandbox.url)
            synced = time.monotonic() - t0
            t0 = time.monotonic()
            warnings = build(home=home)
            built = time.monotonic() - t0
            t0 = time.monotonic()
            report, code = run_verify(home, PROJECT, explain=True, api_base=sandbox.url)
            verified = time.monotonic() - t0
    lines += [f"{args.customers:,} customers (seed {args.seed}): generate+serve={generated:.1f}s "
              f"backfill={synced:.1f}s build={built:.1f}s verify={verified:.1f}s "
              f"exit={code}; load average after {os.getloadavg()[0]:.1f}",
              *(f"build warning: {w}" for w in warnings), report, ""]
    text = "\n".join(lines)
    print(text)
    with RESULTS.open("a") as f:
        f.write(text + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
