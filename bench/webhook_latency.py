"""Latency: webhook 2xx -> the change visible in ``marts.metrics_daily`` (real-time mode).

The demo-sized sandbox company is backfilled into a warehouse and built with dbt; the service
then runs as a process with ``--realtime``. Each round cancels one active subscription in the
sandbox, delivers the signed event, and waits until the inbox says the marts were refreshed
after applying it (``visible_at``; read from SQLite, so polling never takes the DuckDB lock).
At the end ``marts.metrics_daily`` must show today's active subscriptions down by the rounds.

    PYTHONPATH=. .venv/bin/python bench/webhook_latency.py [--customers 2000] [--rounds 20]
"""

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from sandbox.webhook_sender import WebhookSender
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import inbox_path
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.webhooks.process import kill_hard, start_service
from tests.webhooks.warehouse import load_backfill

RESULTS = Path(__file__).parent / "results" / "webhook_latency.txt"
PROJECT, API_KEY, SECRET = "demo", "sk_test_latency", "whsec_latency_bench"
VISIBLE_TIMEOUT = 120.0


def active_subscriptions_today(home: Path) -> float:
    """Today's ``stripe_active_subscriptions`` of the project (the last reported day)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select value from marts.metrics_daily where project_id = ? "
            "and metric = 'stripe_active_subscriptions' order by metric_date desc limit 1",
            [PROJECT]).fetchone()[0]


def wait_visible(home: Path, event_id: str) -> float:
    """The ``visible_at`` of ``event_id`` once the applier has refreshed the marts."""
    deadline = time.monotonic() + VISIBLE_TIMEOUT
    with sqlite3.connect(inbox_path(home)) as con:
        while time.monotonic() < deadline:
            found = con.execute("select visible_at from inbox_events where event_id = ?",
                                [event_id]).fetchone()
            if found and found[0]:
                return found[0]
            time.sleep(0.02)
    raise TimeoutError(f"{event_id} not visible in the marts after {VISIBLE_TIMEOUT:.0f} s")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, int(round(share * len(ordered))) - 1)]


def run(home: Path, customers: int, rounds: int) -> str:
    """Set up, measure ``rounds`` cancellations, check the marts; the report text."""
    os.environ.setdefault(SECRET_KEY_ENV, generate_key())
    company = generate_company(CompanyConfig(customers=customers, seed=42,
                                             now=int(time.time()) - 120))
    ConnectionStore(home).connect(PROJECT, "pro", API_KEY, webhook_secret=SECRET)
    load_backfill(home, PROJECT, company)
    started = time.perf_counter()
    build(home)
    full_build = time.perf_counter() - started
    before = active_subscriptions_today(home)
    targets = [s for s in company.objects["subscription"] if s["status"] == "active"][:rounds]
    latencies: list[float] = []
    with SandboxServer({API_KEY: company}) as stripe_api:
        process, url = start_service(home, "--realtime", "--api-base", stripe_api.url)
        try:
            sender = WebhookSender(f"{url}/webhooks/stripe/{PROJECT}", SECRET)
            for subscription in targets:
                [event] = company.cancel_subscription(subscription["id"], int(time.time()) - 1)
                [delivery] = sender.send([event])
                assert delivery.status == 200, delivery.body
                latencies.append(wait_visible(home, event["id"]) - delivery.answered_at)
        finally:
            kill_hard(process)
    after = active_subscriptions_today(home)
    return "\n".join([
        f"company: {customers} customers (sandbox, seed 42), {rounds} rounds, one cancellation "
        "each, sent after the previous one became visible",
        f"initial full dbt build: {full_build:.1f} s",
        "webhook 2xx -> visible in marts.metrics_daily (apply with re-fetch, then the tables "
        "between the changed raw tables and metrics_daily rebuilt from dbt's compiled SQL):",
        f"  all {len(latencies)} rounds: p50 {statistics.median(latencies):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s, "
        f"min {min(latencies):.2f} s",
        f"  first round {latencies[0]:.2f} s (may include the one-time dbt compile at start-up); "
        f"rounds 2-{len(latencies)}: p50 {statistics.median(latencies[1:]):.2f} s, "
        f"p95 {percentile(latencies[1:], 0.95):.2f} s",
        f"check: today's stripe_active_subscriptions {before:.0f} -> {after:.0f} "
        f"(expected {before - len(targets):.0f}): "
        f"{'ok' if after == before - len(targets) else 'WRONG'}",
        f"machine: {os.cpu_count()} cores, shared with other test runs",
    ])


def main() -> None:
    """Run in a temporary home and write the report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp) / "home", args.customers, args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
