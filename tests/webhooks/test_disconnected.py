"""Disconnected or revoked means no webhook is verified, stored or applied any more."""

import json

import pytest

from pipelines.revocation import disconnect_project
from pipelines.webhooks_apply import apply_inbox
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore

from .conftest import PROJECT
from .events import subscription_event
from .test_receiving import signed_headers, stored_event_ids
from .warehouse import active_subscription, deliver, query


def end_access(home, how: str) -> None:
    store = ConnectionStore(home)
    if how == "disconnected":
        disconnect_project(store, PROJECT)
    else:
        store.revoke(PROJECT, "Stripe rejected the key (401)")


@pytest.mark.parametrize("how", ["disconnected", "revoked"])
def test_ending_access_deletes_the_webhook_signing_secret(home, how):
    assert ConnectionStore(home).get(PROJECT).webhook_secret is not None
    end_access(home, how)
    connection = ConnectionStore(home).get(PROJECT)
    assert (connection.status, connection.webhook_secret, connection.api_key) == (how, None, None)
    assert ConnectionStore(home).webhook_secret(PROJECT) is None


@pytest.mark.parametrize("how", ["disconnected", "revoked"])
def test_signed_event_for_a_project_without_access_gets_404_and_is_not_stored(
        service, how):
    end_access(service.home, how)
    body = json.dumps(subscription_event("evt_after_end")).encode()
    status, answer = service.sender().post(body, signed_headers(body))  # the old secret
    assert status == 404, answer
    assert "no webhook endpoint for this project" in answer["error"]
    assert stored_event_ids(service.home) == []


@pytest.mark.parametrize("refetch", [True, False])
def test_events_stored_before_disconnect_are_quarantined_not_applied_from_their_payload(
        backfilled, service, company, stripe_api, refetch):
    sub = active_subscription(company)
    deliver(service, company.cancel_subscription(sub["id"], company.now + 10))
    disconnect_project(ConnectionStore(backfilled), PROJECT)
    result = apply_inbox(backfilled, api_base=stripe_api.url, refetch=refetch)
    assert (result.applied, result.failed, result.rows_written) == (0, 1, {})
    assert query(backfilled, "select data->>'status' from stripe_raw.subscriptions "
                 "where id = ?", sub["id"]) == [("active",)]
    assert query(backfilled, "select count(*) from stripe_raw.events") == [(0,)]
    with Inbox(backfilled) as inbox:
        [(_, _, reason)] = inbox.failed(PROJECT)
        assert inbox.counts()["unapplied"] == 0
    assert f"project {PROJECT} is disconnected: its events are not applied" in reason
