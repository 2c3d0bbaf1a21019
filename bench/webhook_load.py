"""Load: 1,000 events from 20 concurrent senders over loopback to the service as a process.

Some deliveries are duplicates and some carry a wrong signature; afterwards every valid event
must be in the inbox exactly once and no refused one at all. Prints and writes
``bench/results/webhook_load.txt``.

    PYTHONPATH=. .venv/bin/python bench/webhook_load.py [--events 1000] [--concurrency 20]
"""

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sandbox.webhook_sender import WebhookSender
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.inbox import inbox_path
from stripe_warehouse.registry import ConnectionStore
from tests.webhooks.events import subscription_event
from tests.webhooks.process import kill_hard, start_service

RESULTS = Path(__file__).parent / "results" / "webhook_load.txt"
SECRET = "whsec_load_bench"
DUPLICATE_RATE = 0.1
FORGED_SHARE = 0.05


@dataclass
class LoadReport:
    """What the load run measured."""

    events: int
    concurrency: int
    deliveries: int
    statuses: dict[int, int]
    valid_event_ids: set[str]
    stored_event_ids: list[str]
    forged_stored: int
    seconds: float
    p50_ms: float
    p95_ms: float
    max_ms: float

    @property
    def lost(self) -> int:
        """Valid events that are not in the inbox."""
        return len(self.valid_event_ids - set(self.stored_event_ids))

    @property
    def stored_twice(self) -> int:
        """Inbox rows beyond one per event."""
        return len(self.stored_event_ids) - len(set(self.stored_event_ids))

    def text(self) -> str:
        """The report, one fact a line."""
        return "\n".join([
            f"events sent: {self.events} ({len(self.valid_event_ids)} validly signed), "
            f"deliveries incl. duplicates: {self.deliveries}, concurrent senders: "
            f"{self.concurrency}",
            f"answers: {dict(sorted(self.statuses.items()))}",
            f"stored: {len(set(self.stored_event_ids))} distinct, lost: {self.lost}, "
            f"stored twice: {self.stored_twice}, forged stored: {self.forged_stored}",
            f"response time ms: p50 {self.p50_ms:.1f}, p95 {self.p95_ms:.1f}, "
            f"max {self.max_ms:.1f}",
            f"wall: {self.seconds:.2f} s, {self.deliveries / self.seconds:.0f} deliveries/s",
            f"machine: {os.cpu_count()} cores; service: 1 uvicorn process, SQLite WAL "
            "synchronous=FULL",
        ])


def run_load(home: Path, events: int = 1000, concurrency: int = 20, seed: int = 7) -> LoadReport:
    """Run the load against a fresh service process on ``home`` and check the inbox."""
    os.environ.setdefault(SECRET_KEY_ENV, generate_key())
    ConnectionStore(home).connect("loadtest", "scale", "sk_test_load", webhook_secret=SECRET)
    rng = random.Random(seed)
    base = int(time.time())
    batch = [subscription_event(f"evt_load_{n:05d}", created=base + n) for n in range(events)]
    forged = {e["id"] for e in batch if rng.random() < FORGED_SHARE}
    process, url = start_service(home)
    try:
        endpoint = f"{url}/webhooks/stripe/loadtest"
        honest = WebhookSender(endpoint, SECRET, duplicate_rate=DUPLICATE_RATE, shuffle=True,
                               concurrency=concurrency, seed=seed)
        forger = WebhookSender(endpoint, "whsec_forged", concurrency=concurrency, seed=seed)
        started = time.perf_counter()
        deliveries = honest.send([e for e in batch if e["id"] not in forged])
        deliveries += forger.send([e for e in batch if e["id"] in forged])
        seconds = time.perf_counter() - started
    finally:
        kill_hard(process)
    with sqlite3.connect(inbox_path(home)) as con:
        stored = [row[0] for row in con.execute("select event_id from inbox_events")]
    times = sorted(d.seconds * 1000 for d in deliveries)
    return LoadReport(
        events=events, concurrency=concurrency, deliveries=len(deliveries),
        statuses=dict(Counter(d.status for d in deliveries)),
        valid_event_ids={e["id"] for e in batch} - forged, stored_event_ids=stored,
        forged_stored=len(forged & set(stored)), seconds=seconds,
        p50_ms=statistics.median(times), p95_ms=times[int(len(times) * 0.95) - 1],
        max_ms=times[-1],
    )


def main() -> None:
    """Run the benchmark in a temporary home and write the report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_load(Path(tmp) / "home", args.events, args.concurrency)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report.text() + "\n")
    print(report.text())


if __name__ == "__main__":
    main()
