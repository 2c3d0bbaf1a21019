"""The demo: a seeded sandbox company, synced into DuckDB, transformed, metrics printed.

The sandbox runs as a separate process (`python -m sandbox serve`) and is reached over HTTP,
exactly as Stripe would be: production code never imports the sandbox package.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from stripe_warehouse.crypto import DEMO_KEY_FILE, SECRET_KEY_ENV
from stripe_warehouse.demo_project import mark_demo
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.purge import DLT_DIR
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.state_dir import HOME_ENV, WAREHOUSE_FILE, StateDir

DEMO_PROJECT = "demo"
DEMO_API_KEY = "sk_test_demo"
DEMO_CUSTOMERS = 2000


def ensure_secret_key(home: Path) -> None:
    """Use STRIPE_WAREHOUSE_SECRET_KEY, or generate one into the state dir (0600) and say so."""
    if os.environ.get(SECRET_KEY_ENV):
        return
    key_file = home / DEMO_KEY_FILE
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode())
        print(
            f"demo: generated an encryption key in {key_file} (0600); the other commands "
            "use it while STRIPE_WAREHOUSE_SECRET_KEY is unset (and say so); "
            "in production export STRIPE_WAREHOUSE_SECRET_KEY instead"
        )
    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = key_file.read_text().strip()


class SandboxProcess:
    """A `python -m sandbox serve` child process on a free loopback port."""

    def __init__(self, customers: int, seed: int = 42) -> None:
        self.customers = customers
        self.seed = seed
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "serve",
                "--customers",
                str(self.customers),
                "--seed",
                str(self.seed),
                "--port",
                "0",
                "--api-key",
                DEMO_API_KEY,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            if "http://127.0.0.1:" in line:
                self.url = line[line.index("http://") :].split()[0]
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.__exit__()
            raise RuntimeError(
                "the demo sandbox did not start: run `python -m sandbox serve` to see why"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_afresh(home: Path, store: ConnectionStore) -> None:
    """Remove the previous demo's warehouse: each run generates its sandbox company anew.

    Only a state directory that holds nothing but the demo project is wiped; a real user's
    data is never touched.
    """
    others = [c.project_id for c in store.list() if c.project_id != DEMO_PROJECT]
    if others:
        raise WarehouseError(
            f"{home} holds other projects ({', '.join(others)}): run the demo with "
            "STRIPE_WAREHOUSE_HOME set to an empty directory"
        )
    state = StateDir.of(home)
    for path in (state.warehouse, state.warehouse.with_name(f"{WAREHOUSE_FILE}.wal"),
                 state.reporting, state.inbox, state.alerts):
        path.unlink(missing_ok=True)
    shutil.rmtree(home / DLT_DIR, ignore_errors=True)


def _load_job_definitions(home: Path) -> threading.Thread:
    """Import the Dagster definitions (on a fresh clone, `dbt parse` too: seconds) in a thread
    while the sandbox generates its company in its own process. An error is left for the
    backfill, whose import of them raises it again with the command's one-line message."""
    # where the definitions keep the dbt manifest, as run_sync_job sets it
    os.environ[HOME_ENV] = str(StateDir.of(home).root)

    def load() -> None:
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Dagster's preview notices, as run_sync_job
            importlib.import_module("orchestration.definitions")

    thread = threading.Thread(target=load, name="load-definitions", daemon=True)
    thread.start()
    return thread


# What a team would start with; evaluated by the backfill's build (Dagster's revenue_alerts).
DEMO_ALERT_RULES = (("mrr_change", "5%", "day"), ("mrr_change", "10%", "week"),
                    ("failed_payments", "3x", None), ("churned_mrr", "$500", None),
                    ("customer_loss", "$200", None), ("stale_data", None, None))


def add_demo_alert_rules(store: ConnectionStore) -> None:
    """The demo project's alert rules, unless the user gave it some already."""
    if store.alert_rules(DEMO_PROJECT):
        return
    for kind, threshold, period in DEMO_ALERT_RULES:
        store.add_alert_rule(DEMO_PROJECT, kind, threshold, period)


def print_demo_alerts(home: Path, store: ConnectionStore) -> None:
    """The alerts the demo's build raised: sent to the project's channels, if it has any."""
    from stripe_warehouse.alert_state import AlertStore

    alerts = AlertStore(home).recent(DEMO_PROJECT)
    channels = store.get(DEMO_PROJECT).alert_channels
    where = ("sent to its channels" if channels else
             "delivered to no channel: add one with `stripe-warehouse alerts channel "
             f"{DEMO_PROJECT} ...`")
    rules = ", ".join(rule.describe() for rule in store.alert_rules(DEMO_PROJECT))
    print(f"demo: {len(alerts)} alert(s) from the rules {rules} ({where}):")
    for alert in reversed(alerts):
        print(f"  {alert['message']}")


def run_demo(home: Path, customers: int = DEMO_CUSTOMERS) -> None:
    """Seed a sandbox company, connect it, backfill, build the marts and print the metrics."""
    from commands.verify import run_verify
    from orchestration.in_process import run_sync_job
    from stripe_warehouse.metrics import print_metrics
    from stripe_warehouse.publish import published_path
    from stripe_warehouse.report import write_report

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_secret_key(home)
    store = ConnectionStore(home)
    start_afresh(home, store)
    started = time.monotonic()
    print(f"demo: starting the Stripe sandbox with a {customers:,}-customer company ...")
    loading = _load_job_definitions(home)
    with SandboxProcess(customers) as sandbox:
        print(f"demo: sandbox at {sandbox.url}")
        connection = store.connect(DEMO_PROJECT, "pro", DEMO_API_KEY)
        add_demo_alert_rules(store)
        t0 = time.monotonic()
        loading.join()
        try:
            # the backfill job, recorded in the state dir's Dagster instance (`ui` shows it)
            result = run_sync_job(home, DEMO_PROJECT, "backfill", api_base=sandbox.url,
                                  started_by="demo")
        finally:  # marked after its sync: a demo project is never synced again
            mark_demo(home, connection, sandbox.url)
        seconds = (result.finished_at - result.started_at).total_seconds()
        print(f"demo: backfill loaded {result.objects_loaded:,} objects in {seconds:.1f} s")
        print(f"demo: dbt build finished in {time.monotonic() - t0 - seconds:.1f} s; the run "
              "is in the Dagster UI (`stripe-warehouse ui`)")
        print_metrics(home, DEMO_PROJECT)
        # while the sandbox still runs: the figures recomputed from its API must reconcile
        t0 = time.monotonic()
        verification, _ = run_verify(home, DEMO_PROJECT, explain=True, api_base=sandbox.url)
        print(verification)
        print(f"demo: verify (`stripe-warehouse verify {DEMO_PROJECT}`) took "
              f"{time.monotonic() - t0:.1f} s")
    report = write_report(published_path(home), DEMO_PROJECT, home / "reports" / "demo.html")
    print(f"demo: overview report written to {report}")
    print(
        f"demo: BI tools and SQL sessions read {published_path(home)} "
        "(read-only, replaced after each build)"
    )
    print_demo_alerts(home, store)
    print(
        f"demo: done in {time.monotonic() - started:.1f} s; "
        f"warehouse at {StateDir.of(home).warehouse}"
    )
    print(
        f"demo: the sandbox has stopped; project {DEMO_PROJECT} is marked as the demo's "
        "(status and doctor say so; syncing it again means running the demo again)"
    )
