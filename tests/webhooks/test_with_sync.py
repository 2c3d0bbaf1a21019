"""Webhooks on a warehouse loaded by the real sync (dlt): the next sync merges, no duplicates."""

import time

import duckdb
import pytest

from pipelines.load import sync_project
from pipelines.webhooks_apply import apply_inbox
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.registry import ConnectionStore

from .conftest import API_KEY, PROJECT


def rows(home, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.mark.e2e
def test_webhook_rows_in_a_dlt_warehouse_survive_the_next_refresh_without_duplicates(
        home, service):
    company = generate_company(CompanyConfig(customers=25, seed=11, now=int(time.time()) - 300))
    store = ConnectionStore(home)
    with SandboxServer({API_KEY: company}) as stripe_api:
        sync_project(store, PROJECT, "backfill", home=home, api_base=stripe_api.url)
        sub = next(s for s in company.objects["subscription"] if s["status"] == "active")
        events = company.change_quantity(sub["id"], 6, int(time.time()) - 20)
        events += company.cancel_subscription(sub["id"], int(time.time()) - 10)
        assert {d.status for d in service.sender().send(events)} == {200}

        result = apply_inbox(home, api_base=stripe_api.url)
        assert result.waiting == {} and result.applied >= 2
        assert rows(home, "select data->>'status' from stripe_raw.subscriptions where id = ?",
                    sub["id"]) == [("canceled",)]
        assert rows(home, "select count(*) from stripe_raw.subscription_versions "
                    "where id = ? and source = 'webhook'", sub["id"]) == [(1,)]

        sync_project(store, PROJECT, "refresh", home=home, api_base=stripe_api.url)
    for table in ("subscriptions", "subscription_items", "invoices", "invoice_lines", "charges",
                  "events"):
        assert rows(home, f"select count(*) - count(distinct id) from stripe_raw.{table}") == [
            (0,)], table
    assert rows(home, "select data->>'status' from stripe_raw.subscriptions where id = ?",
                sub["id"]) == [("canceled",)]
    item = sub["items"]["data"][0]["id"]
    assert rows(home, "select data->>'quantity' from stripe_raw.subscription_items where id = ?",
                item) == [("6",)]
    assert rows(home, "select count(*) from stripe_raw.events where id in ({})".format(
        ",".join("?" * len(events))), *[e["id"] for e in events]) == [(len(events),)]
    assert rows(home, "select kind from stripe_raw.sync_runs order by finished_at") == [
        ("backfill",), ("webhook",), ("refresh",)]
