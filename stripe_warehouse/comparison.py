"""Which periods a metric's change compares: the one rule the report and `metrics` share.

Stocks (MRR, ARR, active subscriptions, customers) are levels: a day's value is the level at
the end of that day (for the day of the last sync, at the sync) and is compared with the level
at the end of the same day one month earlier. Flows (revenue, failed payments) are amounts per
day: they are summed over complete days only (of the project's reporting time zone), the last
30 complete days against the 30 days before them. The day of the last sync is still in progress
(it holds only what happened until the sync), so it never enters a flow comparison: comparing it
with a full day made revenue look like it had collapsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

FLOW_METRICS = frozenset({"stripe_revenue", "stripe_failed_payments"})
FLOW_PERIOD_DAYS = 30

COMPARISON_RULE = (
    "MRR, ARR, active subscriptions and customers: the value at the end of the day (the last "
    "day: at the last sync) against the end of the same day one month earlier. Revenue and "
    f"failed payments: the sum over the last {FLOW_PERIOD_DAYS} complete days against the "
    f"{FLOW_PERIOD_DAYS} days before them; the day of the last sync is incomplete and left out."
)


def previous_month_day(day: dt.date) -> dt.date:
    """The same day one month earlier, clamped to the month's last day (Mar 31 -> Feb 28)."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Period:
    """The days `first` to `last`, both included (one day when they are equal)."""

    first: dt.date
    last: dt.date

    def label(self) -> str:
        if self.first > self.last:
            return "no complete day yet"
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class Comparison:
    """A metric over one period against the same metric over the period before it."""

    metric: str
    unit: str
    current_period: Period
    current: float
    previous_period: Period
    previous: float | None  # None when the previous period is not inside the synced window

    @property
    def is_flow(self) -> bool:
        return self.metric in FLOW_METRICS

    @property
    def change(self) -> float | None:
        return None if self.previous is None else self.current - self.previous

    @property
    def growth_rate(self) -> float | None:
        return None if not self.previous else (self.current - self.previous) / self.previous

    def as_dict(self) -> dict[str, object]:
        return {
            "current_period": [self.current_period.first.isoformat(),
                               self.current_period.last.isoformat()],
            "current": self.current,
            "previous_period": [self.previous_period.first.isoformat(),
                                self.previous_period.last.isoformat()],
            "previous": self.previous,
            "change": self.change,
            "growth_rate": self.growth_rate,
        }


def compare(
    metric: str,
    unit: str,
    daily: Mapping[dt.date, float],
    day: dt.date,
    last_reported_day: dt.date,
) -> Comparison:
    """The comparison for `metric` as of `day`, following the rule in the module docstring.

    `daily` holds the metric's value per reported day; `last_reported_day` is the day of the
    last sync (the only incomplete day).
    """
    if metric not in FLOW_METRICS:
        before = previous_month_day(day)
        return Comparison(
            metric, unit, Period(day, day), daily[day], Period(before, before), daily.get(before)
        )
    last_complete = min(day, last_reported_day - dt.timedelta(days=1))
    first_reported = min(daily)
    current = _days(last_complete, FLOW_PERIOD_DAYS)
    previous = _days(current.first - dt.timedelta(days=1), FLOW_PERIOD_DAYS)
    # A window shorter than two periods: sum what there is, with nothing to compare against.
    current = Period(max(current.first, first_reported), current.last)
    return Comparison(
        metric,
        unit,
        current,
        _sum(daily, current),
        previous,
        _sum(daily, previous) if previous.first >= first_reported else None,
    )


def _days(last: dt.date, count: int) -> Period:
    return Period(last - dt.timedelta(days=count - 1), last)


def _sum(daily: Mapping[dt.date, float], period: Period) -> float:
    return sum(v for d, v in daily.items() if period.first <= d <= period.last)
