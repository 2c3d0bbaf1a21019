"""Sync windows of backfills and refreshes."""

import pytest

from pipelines.windows import DAY, sync_window

NOW = 1_750_000_000


def test_backfill_reads_90_days_of_activity_and_30_of_events() -> None:
    w = sync_window("backfill", now=NOW)
    assert w.end == NOW + 1
    assert w.activity_start == NOW - 90 * DAY
    assert w.events_start == NOW - 30 * DAY


def test_refresh_reads_7_days_and_events_since_the_last_seen_one() -> None:
    w = sync_window("refresh", now=NOW, since_event_created=NOW - 2 * DAY)
    assert w.activity_start == NOW - 7 * DAY
    assert w.events_start == NOW - 2 * DAY


def test_first_refresh_reads_events_of_7_days() -> None:
    assert sync_window("refresh", now=NOW).events_start == NOW - 7 * DAY


def test_refresh_after_a_long_pause_is_bounded_by_event_retention() -> None:
    w = sync_window("refresh", now=NOW, since_event_created=NOW - 200 * DAY)
    assert w.events_start == NOW - 30 * DAY


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        sync_window("everything", now=NOW)  # type: ignore[arg-type]


def test_refresh_soon_after_the_last_sync_reads_7_days() -> None:
    w = sync_window("refresh", now=NOW, last_sync_at=NOW - 3 * 3600)
    assert w.activity_start == NOW - 7 * DAY


def test_refresh_after_a_12_day_pause_reads_from_the_last_sync() -> None:
    """Synced 12 days ago, then not until now: the activity of days -12..now is read
    (days -12..-7 were never read; stopping at -7 would leave them empty for good)."""
    w = sync_window("refresh", now=NOW, last_sync_at=NOW - 12 * DAY)
    assert w.activity_start == NOW - 12 * DAY


def test_refresh_after_a_long_pause_reads_no_more_than_a_backfill() -> None:
    w = sync_window("refresh", now=NOW, last_sync_at=NOW - 200 * DAY)
    assert w.activity_start == NOW - 90 * DAY
