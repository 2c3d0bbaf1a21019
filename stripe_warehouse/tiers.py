"""What each tier promises: refresh schedule and freshness (one place, read without Dagster)."""

import datetime as dt

from croniter import croniter

# Pro refreshes every 3 hours, Scale every 30 minutes; Starter and Basic sync on demand.
REFRESH_CRON_BY_TIER: dict[str, str] = {"pro": "0 */3 * * *", "scale": "*/30 * * * *"}

# How old a project's last sync may be: two missed schedule ticks. Starter and Basic have no
# scheduled refresh, so they promise no freshness.
FRESHNESS_BY_TIER: dict[str, dt.timedelta | None] = {
    "scale": dt.timedelta(hours=1),
    "pro": dt.timedelta(hours=6),
    "basic": None,
    "starter": None,
}


def next_scheduled_sync(tier: str, now: dt.datetime) -> dt.datetime | None:
    """The next refresh tick (UTC) of ``tier`` after ``now``; None if the tier has no schedule."""
    cron = REFRESH_CRON_BY_TIER.get(tier)
    if cron is None:
        return None
    return croniter(cron, now.astimezone(dt.UTC)).get_next(dt.datetime)
