"""An acknowledged event survives kill -9 of the service and is applied after the restart."""

import signal

import duckdb
import pytest

from pipelines.webhooks_apply import apply_inbox
from sandbox.webhook_sender import WebhookSender
from stripe_warehouse.inbox import Inbox
from tests.dbt.raw_tables import connect, create_raw_tables

from .conftest import SECRET
from .events import subscription_event
from .process import kill_hard, start_service


@pytest.mark.e2e
def test_event_acknowledged_before_kill_9_is_kept_and_applied_after_restart(home):
    with connect(home / "warehouse.duckdb") as con:
        create_raw_tables(con)
    process, url = start_service(home)
    try:
        sender = WebhookSender(f"{url}/webhooks/stripe/acme", SECRET)
        [delivery] = sender.send([subscription_event("evt_durable_1", status="past_due")])
        kill_hard(process)  # right after the 2xx: no graceful shutdown, no checkpoint
        assert delivery.status == 200
        assert process.returncode == -signal.SIGKILL
        process, url = start_service(home)
        with Inbox(home) as inbox:
            assert [e.event_id for e in inbox.unapplied("acme")] == ["evt_durable_1"]
        result = apply_inbox(home, refetch=False)
        assert (result.applied, result.waiting) == (1, {})
    finally:
        if process.poll() is None:
            kill_hard(process)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        status = con.execute(
            "select data->>'status' from stripe_raw.subscriptions where project_id = 'acme'"
        ).fetchall()
    assert status == [("past_due",)]
