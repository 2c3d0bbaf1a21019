"""1,000 events from 20 concurrent senders: every valid one stored once, none lost."""

import pytest

from bench.webhook_load import run_load


@pytest.mark.e2e
def test_thousand_events_from_twenty_senders_are_stored_once_with_none_lost(home):
    report = run_load(home / "load", events=1000, concurrency=20)
    assert report.lost == 0
    assert report.stored_twice == 0
    assert report.forged_stored == 0
    assert len(report.stored_event_ids) == len(report.valid_event_ids) > 900
    assert set(report.statuses) == {200, 400}
    assert report.statuses[400] == report.events - len(report.valid_event_ids)
    assert report.p95_ms < 2000  # bounded: a loaded shared 2-core box, not a target
