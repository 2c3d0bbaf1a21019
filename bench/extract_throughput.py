"""Backfill throughput against the sandbox at Stripe's live limits, vs a sequential loader.

    .venv/bin/python bench/extract_throughput.py [--sizes 20000 100000] [--skip-baseline]
        [--skip-every-type]

For each company size: a sandbox process (50 ms latency, live limits 100/s overall and
25/s per endpoint), then in separate processes (for clean peak-RSS figures):
  * our backfill (`sync_project`: concurrent extraction + dlt load into DuckDB),
  * the same backfill listing events of every type, as before issue 18 (the sandbox's
    companies carry the payment-intent, saved-card, Checkout and invoice-update events of
    real accounts, which the models never read; pipelines/event_types.py),
  * a plain sequential `auto_paging_iter` reader of the same listings (read only, no load).
The rate-limit bound is the least time Stripe's limits allow for the requests our backfill
needed: max(total / 100, max over endpoints of requests / 25). Results are appended to
bench/results/extract_throughput.txt.
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# EXTRACT_BENCH_RESULTS: write elsewhere (e.g. a trial run that must not enter the record)
RESULTS = Path(os.environ.get("EXTRACT_BENCH_RESULTS",
                              REPO / "bench" / "results" / "extract_throughput.txt"))
API_KEY = "sk_live_bench"
NOW = 1_780_000_000
LATENCY_MS = 50
GLOBAL_RATE, ENDPOINT_RATE = 100.0, 25.0


def start_sandbox(customers: int) -> tuple[subprocess.Popen, str, float]:
    """A sandbox process serving a company of ``customers``; returns it, its URL, start secs."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--customers", str(customers),
         "--now", str(NOW), "--port", "0", "--api-key", API_KEY,
         "--latency-ms", str(LATENCY_MS), "--rate-limit", "live"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "http://127.0.0.1:" in line:
            return proc, line[line.index("http://"):].split()[0], time.monotonic() - started
    raise RuntimeError("sandbox did not start")


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """CPU time (user + system) this process (or its finished children) has used."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(mode: str, url: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", url],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_backfill(url: str, every_type: bool = False) -> dict:
    from pipelines import source
    from pipelines.load import sync_project
    from stripe_warehouse.crypto import generate_key
    from stripe_warehouse.registry import ConnectionStore

    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = generate_key()
    if every_type:  # one listing of every event type: the extraction before issue 18
        source.EVENT_TYPE_GROUPS = [()]
    with tempfile.TemporaryDirectory() as home:
        store = ConnectionStore(home)
        store.connect("bench", "scale", API_KEY)
        extracted_at = [0.0]
        started = time.monotonic()

        def progress(counts: dict[str, int]) -> None:
            extracted_at[0] = time.monotonic()

        result = sync_project(store, "bench", "backfill", api_base=url, now=NOW,
                              progress=progress)
        total = time.monotonic() - started
    return {
        "seconds_total": total, "seconds_extract": extracted_at[0] - started,
        "objects": result.objects_loaded, "requests": result.requests,
        "retries": result.retries, "requests_by_endpoint": result.requests_by_endpoint,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_seconds": cpu_seconds(),
        # The allowlisting worker processes (pipelines.privacy.AllowlistingDecoder).
        "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "workers_cpu_seconds": cpu_seconds(resource.RUSAGE_CHILDREN),
        # extract / normalize / load seconds summed over the load packages, and the time the
        # sync went on after its extraction ended (pipelines/segments.py)
        "timings": dataclasses.asdict(result.timings),
    }


def child_sequential(url: str) -> dict:
    """The obvious loader: one list after the other with the SDK's auto_paging_iter."""
    import stripe

    from pipelines.settings import LIST_EXPANSIONS
    from stripe_warehouse.stripe_api import STRIPE_API_VERSION

    client = stripe.StripeClient(API_KEY, stripe_version=STRIPE_API_VERSION,
                                 base_addresses={"api": url}, max_network_retries=5)
    v1 = client.v1
    start90, start30 = NOW - 90 * 86_400, NOW - 30 * 86_400
    listings = [
        # the same expansions as ours (discount objects, each subscription's latest invoice)
        (v1.customers, {}),
        (v1.subscriptions, {"status": "all", "expand": LIST_EXPANSIONS["subscriptions"]}),
        (v1.invoices, {"created": {"gte": start90}, "expand": LIST_EXPANSIONS["invoices"]}),
        (v1.charges, {"created": {"gte": start90}}),
        (v1.refunds, {"created": {"gte": start90}}), (v1.prices, {}), (v1.products, {}),
        (v1.coupons, {}), (v1.events, {"created": {"gte": start30}}),
    ]
    objects = 0
    started = time.monotonic()
    for service, params in listings:
        for obj in service.list(params={**params, "limit": 100}).auto_paging_iter():
            objects += 1
            for field in ("items", "lines"):
                embedded = obj[field] if field in obj else None
                if embedded and embedded["has_more"]:
                    objects += sum(1 for _ in embedded.auto_paging_iter())
    return {"seconds_total": time.monotonic() - started, "objects": objects,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_seconds": cpu_seconds()}


def bound_seconds(requests_by_endpoint: dict[str, int]) -> float:
    total = sum(requests_by_endpoint.values())
    return max(total / GLOBAL_RATE, max(requests_by_endpoint.values()) / ENDPOINT_RATE)


def per_operation(requests_by_endpoint: dict[str, int]) -> str:
    """Requests per rate-limit bucket (an endpoint with its sub-resources), busiest first."""
    return ", ".join(f"{endpoint} {count:,}" for endpoint, count in
                     sorted(requests_by_endpoint.items(), key=lambda kv: -kv[1]))


def every_type_lines(ours: dict, before: dict) -> list[str]:
    """The backfill listing every event type (before issue 18) against ours, same company."""
    ours_rpe, before_rpe = ours["requests_by_endpoint"], before["requests_by_endpoint"]
    bound, bound_before = bound_seconds(ours_rpe), bound_seconds(before_rpe)
    events_ratio = ours_rpe.get("/v1/events", 0) / before_rpe["/v1/events"]
    return [
        f"requests per operation, events of the types in use: {per_operation(ours_rpe)}",
        f"requests per operation, events of every type (before issue 18): "
        f"{per_operation(before_rpe)}",
        f"every type: {sum(before_rpe.values()):,} requests, rate-limit bound "
        f"{bound_before:.1f} s, extraction {before['seconds_extract']:.1f} s, total with dlt "
        f"load {before['seconds_total']:.1f} s, {before['objects']:,} rows; types in use / "
        f"every type: /v1/events requests {events_ratio:.2f}, "
        f"all requests {sum(ours_rpe.values()) / sum(before_rpe.values()):.2f}, bound "
        f"{bound / bound_before:.2f}, extraction "
        f"{ours['seconds_extract'] / before['seconds_extract']:.2f}, total "
        f"{ours['seconds_total'] / before['seconds_total']:.2f}",
    ]


def overlap_lines(ours: dict, bound: float) -> list[str]:
    """Issue 18 goal 2: the whole backfill against the bound, and how much of normalize and
    load overlapped the extraction."""
    t = ours["timings"]
    return [
        f"end to end (extraction + normalize + load, no dbt): {ours['seconds_total']:.1f} s "
        f"= {bound / ours['seconds_total']:.0%} of bound speed (goal: >= 91%, within 10%); "
        f"{t['segments']} load packages: normalize {t['normalize']:.1f} s, load (writer-lock "
        f"turns) {t['load']:.1f} s summed over them, of which {t['after_extraction']:.1f} s "
        "after the extraction ended",
    ]


def report(customers: int, gen_s: float, ours: dict, seq: dict | None,
           sandbox_cpu: float, before: dict | None = None) -> str:
    bound = bound_seconds(ours["requests_by_endpoint"])
    busiest = max(ours["requests_by_endpoint"].items(), key=lambda kv: kv[1])
    lines = [
        f"== {customers:,} customers (sandbox {LATENCY_MS} ms latency, live limits "
        f"{GLOBAL_RATE:.0f}/s overall, {ENDPOINT_RATE:.0f}/s per endpoint; generated in "
        f"{gen_s:.0f} s)",
        f"requests needed: {sum(ours['requests_by_endpoint'].values()):,} (busiest endpoint "
        f"{busiest[0]}: {busiest[1]:,}); rate-limit bound {bound:.1f} s",
        f"our backfill: extraction {ours['seconds_extract']:.1f} s "
        f"= {bound / ours['seconds_extract']:.0%} of bound speed; total with dlt load "
        f"{ours['seconds_total']:.1f} s; {ours['objects'] / ours['seconds_total']:,.0f} rows/s, "
        f"{ours['requests'] / ours['seconds_extract']:.1f} requests/s during extraction "
        f"({ours['retries']} retries); peak RSS {ours['peak_rss_mb']:.0f} MB "
        f"(+ {ours['workers_peak_rss_mb']:.0f} MB per allowlist worker); "
        f"{ours['objects']:,} rows",
        *overlap_lines(ours, bound),
        f"CPU during our backfill (2 cores shared with other work): backfill process "
        f"{ours['cpu_seconds']:.0f} s + allowlist workers {ours['workers_cpu_seconds']:.0f} s, "
        f"sandbox process {sandbox_cpu:.0f} s, over "
        f"{ours['seconds_total']:.0f} s wall",
    ]
    if before:
        lines.extend(every_type_lines(ours, before))
    if seq:
        lines.append(
            f"sequential auto_paging_iter (read only, no load): {seq['seconds_total']:.1f} s, "
            f"{seq['objects'] / seq['seconds_total']:,.0f} objects/s, peak RSS "
            f"{seq['peak_rss_mb']:.0f} MB; our extraction is "
            f"{seq['seconds_total'] / ours['seconds_extract']:.1f}x faster, our whole backfill "
            f"(extraction + normalize + load) {seq['seconds_total'] / ours['seconds_total']:.1f}x "
            "faster")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-every-type", action="store_true",
                        help="do not also run the backfill listing every event type")
    parser.add_argument("--child", choices=["backfill", "backfill-every-type", "sequential"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        if args.child == "sequential":
            print(json.dumps(child_sequential(args.url)))
        else:
            print(json.dumps(child_backfill(args.url, args.child == "backfill-every-type")))
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for customers in args.sizes:
        load_before = os.getloadavg()[0]
        proc, url, gen_s = start_sandbox(customers)
        try:
            sandbox_cpu = process_cpu_seconds(proc.pid)
            ours = run_child("backfill", url)
            sandbox_cpu = process_cpu_seconds(proc.pid) - sandbox_cpu
            before = None if args.skip_every_type else run_child("backfill-every-type", url)
            seq = None if args.skip_baseline else run_child("sequential", url)
        finally:
            proc.terminate()
            proc.wait(30)
        text = report(customers, gen_s, ours, seq, sandbox_cpu, before)
        text += (f"\nmachine load average (1 min): {load_before:.1f} before, "
                 f"{os.getloadavg()[0]:.1f} after (2 cores, shared with other work)")
        print(text, flush=True)
        with RESULTS.open("a") as f:
            f.write(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n{text}\n\n")


if __name__ == "__main__":
    main()
