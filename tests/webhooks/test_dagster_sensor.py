"""The Dagster sensor asks for a run only when the inbox holds unapplied events; the job applies."""

import sqlite3
import time

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from orchestration.resources import WarehouseResource
from orchestration.translators import raw_table_key
from orchestration.webhooks import webhook_inbox_sensor, webhooks_job
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import build

from .conftest import API_KEY, PROJECT
from .test_realtime import METRICS_DAILY_CHECKS
from .warehouse import load_backfill


def active_subscriptions_today(home) -> float:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select value from marts.metrics_daily where metric = 'stripe_active_subscriptions' "
            "order by metric_date desc limit 1").fetchone()[0]


@pytest.mark.e2e
def test_sensor_requests_one_run_for_new_events_and_the_job_applies_them(home, service):
    company = generate_company(CompanyConfig(customers=15, seed=9, now=int(time.time()) - 120))
    load_backfill(home, PROJECT, company)
    build(home)
    active_before = active_subscriptions_today(home)
    with SandboxServer({API_KEY: company}) as stripe_api:
        resources = {"warehouse": WarehouseResource(home=str(home), api_base=stripe_api.url)}
        idle = webhook_inbox_sensor(build_sensor_context(resources=resources))
        assert isinstance(idle, SkipReason)

        sub = next(s for s in company.objects["subscription"] if s["status"] == "active")
        events = company.cancel_subscription(sub["id"], int(time.time()) - 1)
        assert [d.status for d in service.sender().send(events)] == [200]
        request = webhook_inbox_sensor(build_sensor_context(resources=resources))
        assert isinstance(request, RunRequest)
        assert request.run_key == "webhooks:1"

        instance = DagsterInstance.ephemeral()
        outcome = webhooks_job.execute_in_process(resources=resources, instance=instance)
        assert outcome.success
    with Inbox(home) as inbox:
        assert inbox.counts() == {"stored": 1, "unapplied": 0}
    # the same round as the real-time service's: the event is marked visible, the readers'
    # copy is published (the Dagster job used to skip marking it visible)
    with sqlite3.connect(StateDir(home).inbox) as con:
        [(visible_at,)] = con.execute("select visible_at from inbox_events").fetchall()
    assert visible_at is not None
    with duckdb.connect(str(StateDir(home).reporting), read_only=True) as con:
        [(published,)] = con.execute(
            "select value from marts.metrics_daily where metric = 'stripe_active_subscriptions' "
            "order by metric_date desc limit 1").fetchall()
    assert published == active_before - 1
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        [(status,)] = con.execute("select data->>'status' from stripe_raw.subscriptions "
                                  "where id = ?", [sub["id"]]).fetchall()
    assert status == "canceled"
    assert active_subscriptions_today(home) == active_before - 1
    assert isinstance(webhook_inbox_sensor(build_sensor_context(resources=resources)), SkipReason)
    # the run recorded the batch as the sync does: the project's raw tables it wrote (one
    # subscription, one event) and its sync_runs row, each a materialisation of the partition
    recorded = {table: [record.asset_materialization.metadata for record in
                        instance.fetch_materializations(AssetRecordsFilter(
                            asset_key=raw_table_key(table), asset_partitions=[PROJECT]),
                            limit=10).records]
                for table in ("subscriptions", "events", "sync_runs", "customers")}
    assert [m["rows_loaded"].value for m in recorded["subscriptions"]] == [1]
    assert [m["rows_loaded"].value for m in recorded["events"]] == [1]
    assert [m["sync_kind"].value for m in recorded["sync_runs"]] == ["webhook"]
    assert recorded["sync_runs"][0]["applied_by"].value == "Dagster"
    assert recorded["sync_runs"][0]["rows_per_table"].value["subscriptions"] == 1
    assert recorded["customers"] == []
    assert instance.get_dynamic_partitions("projects") == [PROJECT]
    # and the dbt tests of what it rebuilt ran (`dbt test` of the same selection), recorded as
    # the asset checks a build reports: metrics_daily's all there and passing
    checks = {(evaluation.asset_key, evaluation.check_name): evaluation
              for evaluation in outcome.get_asset_check_evaluations()}
    metrics_daily = {name for key, name in checks if key == AssetKey(["marts", "metrics_daily"])}
    assert METRICS_DAILY_CHECKS <= metrics_daily, sorted(metrics_daily)
    assert all(evaluation.passed for evaluation in checks.values()), [
        name for (_, name), evaluation in checks.items() if not evaluation.passed]
    assert {evaluation.metadata["refreshed_by"].value for evaluation in checks.values()} \
        == {"Dagster"}
