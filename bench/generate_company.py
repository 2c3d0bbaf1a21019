"""Benchmark: time and memory to generate a synthetic company (default 100k customers).

Run: `.venv/bin/python bench/generate_company.py --customers 100000`
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.company import CompanyConfig, generate_company  # noqa: E402


def main() -> None:
    """Generate once and print seconds, peak memory and object counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--now", type=int, default=1_790_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    company = generate_company(CompanyConfig(customers=args.customers, years=args.years,
                                             seed=args.seed, now=args.now))
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {kind: len(objs) for kind, objs in company.objects.items()}
    print(json.dumps({"customers": args.customers, "years": args.years, "seconds":
                      round(seconds, 1), "peak_rss_mib": round(peak_mib), "objects": counts}))


if __name__ == "__main__":
    main()
