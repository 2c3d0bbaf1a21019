"""Which time ranges a backfill or a refresh reads (see docs/architecture.md "Sync windows")."""

import time
from dataclasses import dataclass
from typing import Literal

DAY = 86_400
BACKFILL_DAYS = 90
EVENT_RETENTION_DAYS = 30  # Stripe keeps events for 30 days
REFRESH_DAYS = 7

SyncKind = Literal["backfill", "refresh"]


@dataclass(frozen=True)
class SyncWindow:
    """Unix-second bounds of one sync: activity created in ``[activity_start, end)``.

    ``end`` is ``now + 1`` so that objects created in the current second are included.
    """

    kind: SyncKind
    end: int
    activity_start: int
    events_start: int


def sync_window(
    kind: SyncKind,
    now: int | None = None,
    since_event_created: int | None = None,
    last_sync_at: float | None = None,
) -> SyncWindow:
    """The window of a ``backfill`` (90 days, events 30) or ``refresh`` (7 days).

    A refresh reads events from the last one seen (inclusive: events sharing that second may
    have arrived later), bounded by Stripe's 30-day retention; without one, the last 7 days.
    Its activity reaches back to the previous sync when that is older than 7 days (a project
    not synced for 12 days reads 12 days): the activity created in between was never read, and
    stopping at 7 days would leave those days without invoices or charges for good (the
    events since the last one seen bring the later changes of what the previous sync read).
    Never further back than a backfill reads.
    """
    current = int(now if now is not None else time.time())
    end = current + 1
    oldest_event = current - EVENT_RETENTION_DAYS * DAY
    if kind == "backfill":
        return SyncWindow(kind, end, current - BACKFILL_DAYS * DAY, oldest_event)
    if kind == "refresh":
        activity_start = current - REFRESH_DAYS * DAY
        if last_sync_at is not None:
            activity_start = max(min(activity_start, int(last_sync_at)),
                                 current - BACKFILL_DAYS * DAY)
        events_start = since_event_created if since_event_created is not None else activity_start
        return SyncWindow(kind, end, activity_start, max(events_start, oldest_event))
    raise ValueError(f"unknown sync kind {kind!r}")
