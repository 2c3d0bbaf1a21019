"""The web service: accepted events land in the inbox once; refusals store nothing."""

import json
import sqlite3
import time
import urllib.request

import pytest

from sandbox.webhook_sender import sign
from service.webhooks import MAX_BODY_BYTES
from stripe_warehouse.inbox import Inbox, inbox_path
from stripe_warehouse.registry import ConnectionStore

from .conftest import SECRET
from .events import subscription_event


def stored_event_ids(home) -> list[str]:
    with sqlite3.connect(inbox_path(home)) as con:
        return [r[0] for r in con.execute("select event_id from inbox_events order by rowid")]


def signed_headers(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict:
    return {"Content-Type": "application/json", "Stripe-Signature": sign(body, secret, timestamp)}


def test_healthz_answers_ok_with_an_empty_backlog(service):
    with urllib.request.urlopen(f"{service.url}/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.load(response) == {
            "ok": True, "applier": "off", "backlog": {"events": 0, "oldest_seconds": None},
            "failed": 0}


def test_signed_event_is_acknowledged_and_stored_in_the_inbox(service):
    [delivery] = service.sender().send([subscription_event("evt_ok_1")])
    assert (delivery.status, delivery.body) == (200, {"received": True, "duplicate": False})
    with Inbox(service.home) as inbox:
        [event] = inbox.unapplied("acme")
    assert (event.event_id, event.type, event.project_id) == (
        "evt_ok_1", "customer.subscription.updated", "acme")
    assert event.event["data"]["object"]["status"] == "active"


def test_redelivered_event_is_stored_once(service):
    event = subscription_event("evt_dup_1")
    deliveries = service.sender().send([event, event, event])
    assert [d.status for d in deliveries] == [200, 200, 200]
    assert [d.body["duplicate"] for d in deliveries] == [False, True, True]
    assert stored_event_ids(service.home) == ["evt_dup_1"]


def test_inbox_keeps_only_allowlisted_fields(service):
    event = subscription_event("evt_pii_1")
    event["data"]["object"]["description"] = "Planted Person's plan"
    event["data"]["object"]["metadata"] = {"owner": "Planted Person"}
    assert service.sender().send([event])[0].status == 200
    raw = inbox_path(service.home).read_bytes() + (
        inbox_path(service.home).with_name("inbox.sqlite-wal").read_bytes())
    assert b"evt_pii_1" in raw
    assert b"Planted Person" not in raw


def test_inbox_keeps_the_metadata_keys_the_project_named_and_no_other(service):
    """acme names subscription key `channel` for segments: its value reaches the inbox, the
    `owner` beside it does not."""
    ConnectionStore(service.home).set_segment_metadata_keys("acme", [], ["channel"])
    event = subscription_event("evt_named_1")
    event["data"]["object"]["metadata"] = {"channel": "partner", "owner": "Planted Person"}
    assert service.sender().send([event])[0].status == 200
    with Inbox(service.home) as inbox:
        [stored] = inbox.unapplied("acme")
    assert stored.event["data"]["object"]["metadata"] == {"channel": "partner"}
    raw = inbox_path(service.home).read_bytes() + (
        inbox_path(service.home).with_name("inbox.sqlite-wal").read_bytes())
    assert b"Planted Person" not in raw


def test_inbox_file_is_private(service):
    assert inbox_path(service.home).stat().st_mode & 0o777 == 0o600


def assert_refused(service, status: int, message: str, body: bytes, headers: dict,
                   project_id: str = "acme") -> None:
    sender = service.sender(project_id=project_id)
    got_status, got = sender.post(body, headers)
    assert got_status == status, got
    assert message in got["error"]
    assert "\n" not in got["error"]
    assert stored_event_ids(service.home) == []


def test_unknown_project_is_refused_with_404(service):
    body = json.dumps(subscription_event()).encode()
    assert_refused(service, 404, "no webhook endpoint for this project", body,
                   signed_headers(body), project_id="nobody")


def test_wrong_secret_is_refused_with_400(service):
    body = json.dumps(subscription_event()).encode()
    assert_refused(service, 400, "no Stripe-Signature v1 matches", body,
                   signed_headers(body, secret="whsec_wrong"))


def test_tampered_body_is_refused_with_400(service):
    body = json.dumps(subscription_event()).encode()
    headers = signed_headers(body)
    assert_refused(service, 400, "no Stripe-Signature v1 matches",
                   body.replace(b'"active"', b'"canceled"'), headers)


def test_missing_signature_is_refused_with_400(service):
    body = json.dumps(subscription_event()).encode()
    assert_refused(service, 400, "missing Stripe-Signature header", body,
                   {"Content-Type": "application/json"})


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp_is_refused_with_400(service, skew):
    body = json.dumps(subscription_event()).encode()
    assert_refused(service, 400, "tolerance 300 s", body,
                   signed_headers(body, timestamp=int(time.time()) + skew))


def test_malformed_json_is_refused_with_400(service):
    body = b'{"id": "evt_broken", "object": "event",'
    assert_refused(service, 400, "not valid JSON", body, signed_headers(body))


def test_json_that_is_not_an_event_is_refused_with_400(service):
    body = json.dumps({"id": "evt_x", "hello": "world"}).encode()
    assert_refused(service, 400, "not a Stripe event", body, signed_headers(body))


def test_oversized_body_is_refused_with_413(service):
    event = subscription_event()
    event["padding"] = "x" * MAX_BODY_BYTES
    body = json.dumps(event).encode()
    assert_refused(service, 413, "body exceeds", body, signed_headers(body))


def test_oversized_chunked_body_without_length_is_refused_with_413(service):
    chunk = b"x" * 65536
    chunks = [chunk] * (MAX_BODY_BYTES // len(chunk) + 1)
    # No Content-Length: http.client sends an iterable body with chunked transfer encoding.
    headers = {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"}
    status, got = service.sender().post(iter(chunks), headers)
    assert status == 413, got
    assert stored_event_ids(service.home) == []


def test_wrong_content_type_is_refused_with_415(service):
    body = json.dumps(subscription_event()).encode()
    headers = dict(signed_headers(body), **{"Content-Type": "application/x-www-form-urlencoded"})
    assert_refused(service, 415, "is not application/json", body, headers)


def test_applied_events_are_pruned_after_the_retention_only(home):
    with Inbox(home) as inbox:
        for n in range(3):
            inbox.store("acme", subscription_event(f"evt_prune_{n}"))
        inbox.mark_applied([("acme", "evt_prune_0", "applied"), ("acme", "evt_prune_1", "stale")])
        assert inbox.prune_applied(older_than_seconds=3600) == 0
        assert inbox.prune_applied(older_than_seconds=-1) == 2
        assert [e.event_id for e in inbox.unapplied()] == ["evt_prune_2"]
