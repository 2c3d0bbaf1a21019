"""Our own writers at the same time, as real processes: each waits its turn, none fails."""

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from orchestration.definitions import defs
from pipelines.retention import apply_retention
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from sandbox.webhook_sender import WebhookSender
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.inbox import inbox_path
from tests.command_env import command_env
from tests.paths import REPO_ROOT
from tests.webhooks.process import start_service
from tests.webhooks.warehouse import load_backfill

from .holders import start_writer
from .test_writer_lock import cli

SECRET = "whsec_test_shop_0123456789"


@pytest.mark.e2e
def test_cli_transform_during_a_dagster_run_waits_for_it_then_succeeds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    load_backfill(home, "shop", generate_company(CompanyConfig(customers=15, seed=4)))
    # a Dagster step holds the lock around its dbt subprocess (orchestration.resources), until
    # the command has said it waits for it: however long the command's own run takes to start
    dagster_run = start_writer(home, "Dagster run 1a2b3c4d: dbt build", "forever")
    command = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "transform"], cwd=REPO_ROOT,
        env=command_env(STRIPE_WAREHOUSE_HOME=str(home)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert command.stderr is not None
        waiting = command.stderr.readline()  # the first line: it waits (or the stream ended)
        time.sleep(1)
        assert command.poll() is None  # still waiting while the run holds the warehouse
        dagster_run.stdin.close()  # the run's step ends: it releases the lock
        assert dagster_run.wait(timeout=30) == 0  # the run itself finished normally
        stdout, stderr = command.communicate(timeout=300)
    finally:
        dagster_run.kill()
        command.kill()
    assert command.returncode == 0, waiting + stderr
    assert stdout.strip() == "marts built and published"
    # the command's build is a Dagster run of its own (the transform job, run in process)
    assert waiting.startswith("waiting for the warehouse (Dagster run "), waiting
    assert f": dbt build): held by pid {dagster_run.pid} (python -c" in waiting
    assert "Dagster run 1a2b3c4d: dbt build) for " in waiting


@pytest.mark.e2e
def test_a_dagster_transform_run_during_a_cli_writer_waits_for_it_then_succeeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    load_backfill(home, "shop", generate_company(CompanyConfig(customers=15, seed=4)))
    # longer than the run takes to reach dbt: on its own, dbt would meet DuckDB's lock
    cli_writer = start_writer(home, "loading the sync of shop", "for", "20")
    try:
        started = time.monotonic()
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("transform").execute_in_process(
                instance=instance, raise_on_error=False)
        waited = time.monotonic() - started
        assert cli_writer.wait(timeout=30) == 0
    finally:
        cli_writer.kill()
    assert result.success  # Dagster's pool knew nothing of the CLI: the writer lock did
    assert waited > 18
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.metrics_daily "
                           "where project_id = 'shop'").fetchone()[0] > 0


def test_retention_waits_for_the_writer_holding_the_warehouse_then_deletes(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    company = generate_company(CompanyConfig(customers=10, seed=4))
    load_backfill(home, "shop", company)
    sync = start_writer(home, "loading the sync of shop", "for", "4")
    try:
        started = time.monotonic()
        result = apply_retention("shop", "starter", home=home,
                                 now=dt.datetime.fromtimestamp(company.now, dt.UTC))
        waited = time.monotonic() - started
        assert sync.wait(timeout=30) == 0
    finally:
        sync.kill()
    assert waited > 3
    assert sum(result.deleted.values()) > 0


def _applied_between(home: Path, start: float, end: float) -> int:
    with sqlite3.connect(inbox_path(home)) as con:
        return con.execute("select count(*) from inbox_events where applied_at between ? and ?",
                           [start, end]).fetchone()[0]


def _unapplied(home: Path) -> int:
    with sqlite3.connect(inbox_path(home)) as con:
        return con.execute(
            "select count(*) from inbox_events where applied_at is null").fetchone()[0]


@pytest.mark.e2e
def test_cli_sync_refresh_succeeds_while_the_realtime_applier_applies_a_steady_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", generate_key())  # the service's too
    now = int(time.time())
    company = generate_company(CompanyConfig(customers=30, seed=8, now=now - 600))
    active = [s for s in company.objects["subscription"] if s["status"] == "active"]
    # the stream, made up front: the sandbox then serves every object in its final state
    events = [event for n in range(40) for event in company.change_quantity(
        active[n % len(active)]["id"], 2 + n % 5, now - 500 + n)]
    home = tmp_path / "home"
    with SandboxServer({"sk_test_shop": company}) as stripe_api:
        env = {"STRIPE_WAREHOUSE_SECRET_KEY": os.environ["STRIPE_WAREHOUSE_SECRET_KEY"],
               "STRIPE_API_BASE": stripe_api.url,
               "SHOP_KEY": "sk_test_shop", "SHOP_WEBHOOK": SECRET}
        connected = cli(home, "connect", "shop", "--tier", "pro", "--api-key-env", "SHOP_KEY",
                        "--webhook-secret-env", "SHOP_WEBHOOK", **env)
        assert connected.returncode == 0, connected.stderr
        backfill = cli(home, "sync", "shop", "--backfill", **env)
        assert backfill.returncode == 0, backfill.stderr
        service, url = start_service(home, "--realtime", "--api-base", stripe_api.url)
        try:
            sender = WebhookSender(f"{url}/webhooks/stripe/shop", SECRET)
            statuses: list[int] = []
            stop = threading.Event()

            def steady_stream() -> None:  # 4 events a second until the syncs are done
                for event in events:
                    if stop.is_set():
                        return
                    statuses.extend(d.status for d in sender.send([event]))
                    time.sleep(0.25)

            stream = threading.Thread(target=steady_stream)
            stream.start()
            time.sleep(1.5)  # the applier is busy with the stream
            started = time.time()  # one refresh: sync, dbt build and publish, all under way
            outcomes = [(cli(home, "sync", "shop", "--refresh", **env), started, time.time())]
            stop.set()
            stream.join(timeout=60)
            deadline = time.monotonic() + 60
            while _unapplied(home) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            service.terminate()
            service.wait(timeout=30)
    for result, _, _ in outcomes:
        assert result.returncode == 0, result.stderr
        assert "\nshop: refresh loaded " in "\n" + result.stdout, result.stdout
        assert "marts built and published" in result.stdout
    assert statuses and set(statuses) == {200}
    # both made progress: events were applied while the syncs ran, and all of them in the end
    assert _applied_between(home, outcomes[0][1], outcomes[-1][2]) > 0
    assert _unapplied(home) == 0
