"""One bad event never stops the others: refused at the door, or quarantined by the applier."""

import json
import sqlite3
import time
import urllib.error
import urllib.request

import pytest

from commands.cli import main
from commands.doctor import WARN, run_doctor
from orchestration.resources import WarehouseResource
from orchestration.webhooks import webhooks_job
from pipelines import webhook_round
from pipelines.webhooks_apply import apply_inbox
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from service import applier as applier_module
from service.app import create_app
from service.applier import InboxApplier
from stripe_warehouse.inbox import Inbox, inbox_path
from stripe_warehouse.transform import TransformError, build
from tests.web_service import serve_app

from .conftest import API_KEY, PROJECT, running_service
from .events import subscription_event
from .test_realtime import wait_visible
from .test_receiving import signed_headers, stored_event_ids
from .warehouse import active_subscription, load_backfill, query

YEAR_33658 = 10**12  # what a millisecond timestamp looks like as seconds


def event_with(event_id: str, **fields) -> dict:
    event = subscription_event(event_id)
    event.update(fields)
    return event


@pytest.mark.parametrize("body, reason", [
    (b'{"created": %d}' % 10**12, "not a Stripe event"),
    (json.dumps(event_with("evt_ms", created=YEAR_33658)).encode(), "created 1000000000000"),
    (json.dumps(event_with("evt_big", created=10**30)).encode(), "not a plausible Unix time"),
    (json.dumps(event_with("evt_f")).encode().replace(b'"created": ', b'"created": 1e30, "x": '),
     "created is not an integer"),
    (json.dumps(event_with("evt_bool", created=True)).encode(), "created is not an integer"),
    (json.dumps(event_with("evt_neg", created=-1)).encode(), "not a plausible Unix time"),
    (json.dumps(event_with(["evt_list"])).encode(), "the event id is not a Stripe id"),
    (json.dumps(event_with("evt_type", type={"a": 1})).encode(), "the event type is not"),
    (json.dumps(event_with("evt_obj", data={"object": [1]})).encode(), "data.object is missing"),
    (json.dumps(event_with("evt_kind", data={"object": {"object": ["subscription"]}})
                ).encode(), "data.object.object is not a Stripe type"),
    (json.dumps(event_with("evt_oid", data={"object": {"object": "subscription", "id": 7}})
                ).encode(), "data.object.id is not"),
    (json.dumps(event_with("evt_amount", data={"object": {"object": "charge",
                                                          "amount": 10**30}})).encode(),
     "beyond 64 bits"),
    (b'{"id": "evt_nan", "object": "event", "created": NaN}', "not valid JSON"),
])
def test_event_that_cannot_be_stored_is_refused_at_the_door_with_one_line(
        service, body, reason):
    status, answer = service.sender().post(body, signed_headers(body))
    assert status == 400, answer
    assert reason in answer["error"] and "\n" not in answer["error"]
    assert stored_event_ids(service.home) == []


def store_behind_the_door(home, *events: dict) -> None:
    """Events stored as an older service (without the checks at the door) stored them."""
    with Inbox(home) as inbox:
        for event in events:
            inbox.store(PROJECT, event)


def test_applier_quarantines_a_bad_event_and_applies_the_others(backfilled, company):
    sub = active_subscription(company)
    good = subscription_event("evt_good", created=company.now + 10, status="past_due")
    good["data"]["object"].update(id=sub["id"], customer=sub["customer"])
    broken = subscription_event("evt_broken", created=company.now + 11)  # items: no list
    broken["data"]["object"].update(id="sub_other", items="not a list")
    store_behind_the_door(backfilled, event_with("evt_ms", created=YEAR_33658), good, broken)

    result = apply_inbox(backfilled, refetch=False)
    assert (result.applied, result.failed) == (1, 2)
    assert query(backfilled, "select data->>'status' from stripe_raw.subscriptions "
                 "where id = ?", sub["id"]) == [("past_due",)]
    assert query(backfilled, "select count(*) from stripe_raw.subscriptions "
                 "where id = 'sub_other'") == [(0,)]
    with Inbox(backfilled) as inbox:
        reasons = {event_id: reason for _, event_id, reason in inbox.failed()}
        assert inbox.counts()["unapplied"] == 0
    assert set(reasons) == {"evt_ms", "evt_broken"}
    assert "created 1000000000000 is not a plausible Unix time" in reasons["evt_ms"]
    assert "AttributeError" in reasons["evt_broken"]
    assert apply_inbox(backfilled, refetch=False).events == 0  # settled: never retried


def test_status_and_doctor_show_quarantined_events(backfilled, stripe_api, capsys):
    store_behind_the_door(backfilled, event_with("evt_ms", created=YEAR_33658))
    apply_inbox(backfilled, refetch=False)
    assert main(["status"]) == 0
    line = "acme: 1 webhook event could not be applied and was quarantined in the inbox"
    assert line in capsys.readouterr().out
    [check] = [c for c in run_doctor(PROJECT, backfilled, api_base=stripe_api.url)
               if c.name == "webhook events"]
    assert check.outcome == WARN and line in check.detail
    assert "created 1000000000000" in check.detail


def test_dagster_webhooks_run_succeeds_with_a_bad_event_in_the_inbox(backfilled):
    store_behind_the_door(backfilled, event_with("evt_ms", created=YEAR_33658,
                                                 type="invoice.created"))
    resources = {"warehouse": WarehouseResource(home=str(backfilled))}
    assert webhooks_job.execute_in_process(resources=resources, raise_on_error=False).success
    with Inbox(backfilled) as inbox:
        assert [event_id for _, event_id, _ in inbox.failed()] == ["evt_ms"]
    # and the next run has nothing left to trip on
    assert webhooks_job.execute_in_process(resources=resources, raise_on_error=False).success


def healthz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def no_warm_up(home):
    raise TransformError("no dbt in this test")


def test_applier_thread_survives_an_unexpected_error_in_a_round(home, monkeypatch):
    monkeypatch.setattr(applier_module.CompiledMetrics, "compile", no_warm_up)
    monkeypatch.setattr(applier_module, "RETRY_SECONDS", 0.05)
    rounds = []
    real_apply = webhook_round.apply_inbox

    def flaky_apply(*args, **kwargs):
        rounds.append(time.monotonic())
        if len(rounds) == 1:
            raise RuntimeError("a bug in the first round")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(webhook_round, "apply_inbox", flaky_apply)
    applier = InboxApplier(home, poll_seconds=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(rounds) >= 3
        assert applier._thread.is_alive()
    finally:
        applier.stop()


def test_healthz_fails_when_the_applier_thread_is_dead(home, monkeypatch):
    # the thread ends at once, as after a crash nothing caught
    monkeypatch.setattr(InboxApplier, "_loop", lambda self: None)
    with running_service(home, realtime=True) as service:
        deadline = time.monotonic() + 10
        while healthz(service.url)[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, report = healthz(service.url)
    assert (status, report["ok"], report["applier"]) == (503, False, "dead")


def test_healthz_reports_the_backlog_and_its_oldest_age(home):
    store_behind_the_door(home, subscription_event("evt_wait_1"))
    time.sleep(0.3)
    with serve_app(create_app(home)) as url:
        status, report = healthz(url)
    assert status == 200
    assert report["backlog"]["events"] == 1
    assert 0.2 <= report["backlog"]["oldest_seconds"] < 60


@pytest.mark.e2e
def test_realtime_applier_goes_on_after_a_bad_stored_event(home):
    company = generate_company(CompanyConfig(customers=15, seed=7, now=int(time.time()) - 120))
    load_backfill(home, PROJECT, company)
    build(home)
    store_behind_the_door(home, event_with("evt_ms", created=YEAR_33658))
    with SandboxServer({API_KEY: company}) as stripe_api, \
            running_service(home, realtime=True, api_base=stripe_api.url) as service:
        events = company.cancel_subscription(active_subscription(company)["id"],
                                             int(time.time()) - 1)
        assert {d.status for d in service.sender().send(events)} == {200}
        wait_visible(home, [e["id"] for e in events])
        status, report = healthz(service.url)
    assert (status, report["applier"], report["failed"]) == (200, "running", 1)
    assert report["backlog"]["events"] == 0


def test_inbox_written_before_quarantine_existed_gains_the_reason_column(home):
    home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(inbox_path(home)) as con:  # the schema before quarantine
        con.execute("create table inbox_events (project_id text not null, event_id text not "
                    "null, type text not null, created integer not null, payload text not "
                    "null, received_at real not null, applied_at real, outcome text, "
                    "visible_at real, primary key (project_id, event_id))")
    store_behind_the_door(home, event_with("evt_old_inbox", created=YEAR_33658))
    apply_inbox(home, refetch=False)
    with Inbox(home) as inbox:
        [(_, event_id, reason)] = inbox.failed()
    assert event_id == "evt_old_inbox" and "not a plausible Unix time" in reason
