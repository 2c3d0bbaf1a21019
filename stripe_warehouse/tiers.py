"""What each tier promises: refresh schedule and freshness (one place, read without Dagster).

A self-hosted project may also have its own cron (``stripe-warehouse schedule``), which
replaces its tier's refresh schedule; the tier still sets retention.
"""

import datetime as dt

from croniter import CroniterBadDateError, croniter

from stripe_warehouse.errors import WarehouseError

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
CRON_EXAMPLE = '"*/15 * * * *" (every 15 minutes, UTC)'


class InvalidCron(WarehouseError):
    """A project's cron is not a five-field cron expression."""


def validate_cron(expression: str) -> str:
    """``expression`` normalised (single spaces) if it is a five-field cron, else InvalidCron.

    Five fields only (minute hour day month weekday, in UTC): croniter also accepts a sixth
    (seconds) and a seventh (year) field, which Dagster's schedules do not.
    """
    fields = expression.split()
    if len(fields) != 5 or not croniter.is_valid(" ".join(fields)):
        raise InvalidCron(
            f"invalid cron {expression!r}: use five fields, minute hour day-of-month month "
            f"day-of-week, e.g. {CRON_EXAMPLE}")
    cron = " ".join(fields)
    try:  # "0 0 31 2 *" parses but never comes
        next_cron_tick(cron, dt.datetime.now(dt.UTC))
    except CroniterBadDateError:
        raise InvalidCron(f"cron {expression!r} never fires (no such date): "
                          f"choose days that exist, e.g. {CRON_EXAMPLE}") from None
    return cron


def refresh_cron(tier: str, own_cron: str | None = None) -> str | None:
    """The cron a project refreshes on: its own if set, else its tier's (None: on demand)."""
    return own_cron or REFRESH_CRON_BY_TIER.get(tier)


def next_cron_tick(cron: str, now: dt.datetime) -> dt.datetime:
    """The first tick of ``cron`` (UTC) after ``now``."""
    return croniter(cron, now.astimezone(dt.UTC)).get_next(dt.datetime)


def last_cron_tick(cron: str, now: dt.datetime) -> dt.datetime:
    """The last tick of ``cron`` (UTC) at or before ``now``."""
    # croniter's get_prev is strictly before: start one second later so ``now`` itself counts
    return croniter(cron, now.astimezone(dt.UTC) + dt.timedelta(seconds=1)).get_prev(dt.datetime)


def freshness_allowed(
    tier: str, now: dt.datetime, own_cron: str | None = None
) -> dt.timedelta | None:
    """How old a project's last sync may be at ``now``: two missed ticks of its own cron (the
    two latest ticks' interval, doubled) if it has one, else its tier's promise."""
    if own_cron is None:
        return FRESHNESS_BY_TIER.get(tier)
    latest = last_cron_tick(own_cron, now)
    before = croniter(own_cron, latest).get_prev(dt.datetime)
    return 2 * (latest - before)


def next_scheduled_sync(
    tier: str, now: dt.datetime, own_cron: str | None = None
) -> dt.datetime | None:
    """The next refresh tick (UTC) after ``now``: the project's own cron's if it has one, else
    its tier's; None if neither schedules it."""
    cron = refresh_cron(tier, own_cron)
    return None if cron is None else next_cron_tick(cron, now)
