"""Read the monthly SaaS figures of a project from `marts.fct_saas_metrics_monthly`, and the
daily ones (ARPA, trailing-30-day churn and quick ratio) from `marts.fct_saas_metrics_daily`.

A SaaS figure belongs to a calendar month (docs/metrics-spec.md "SaaS metrics"): asked for a
day, the reader gives the figures of that day's month, and says when the window covers only
part of that month (the window's first month, and the month of the last sync), whose rates
cover only the reported days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

RATE, RATIO, USD = "rate", "ratio", "USD"

# name (the mart's column) -> its unit; in the order `metrics --metrics` lists them
SAAS_METRICS: dict[str, str] = {
    "customer_churn_rate": RATE,
    "gross_mrr_churn_rate": RATE,
    "net_mrr_churn_rate": RATE,
    "net_revenue_retention_1m": RATE,
    "gross_revenue_retention_1m": RATE,
    "net_revenue_retention_12m": RATE,
    "gross_revenue_retention_12m": RATE,
    "arpa": USD,
    "ltv": USD,
    "quick_ratio": RATIO,
    "trial_conversion_rate": RATE,
}

# why a figure can be missing (null in the mart): its base is 0 or its period is not covered
WHY_MISSING = {
    "customer_churn_rate": "no paying customer when the month opened",
    "gross_mrr_churn_rate": "no MRR when the month opened",
    "net_mrr_churn_rate": "no MRR when the month opened",
    "net_revenue_retention_1m": "no MRR when the month opened",
    "gross_revenue_retention_1m": "no MRR when the month opened",
    "net_revenue_retention_12m": "the window does not cover the month 11 months earlier whole",
    "gross_revenue_retention_12m": "the window does not cover the month 11 months earlier whole",
    "arpa": "no paying customer at the month's end",
    "ltv": "no customer churned in the month",
    "quick_ratio": "no contraction or churn in the month",
    "trial_conversion_rate": "no trial started in the month",
}


# the figures of a single day (docs/metrics-spec.md "SaaS metrics per day"): `metrics --metrics`
# name -> (the column of fct_saas_metrics_daily, its unit)
DAILY_SAAS_METRICS: dict[str, tuple[str, str]] = {
    "daily_arpa": ("arpa", USD),
    "customer_churn_rate_30d": ("customer_churn_rate_30d", RATE),
    "gross_mrr_churn_rate_30d": ("gross_mrr_churn_rate_30d", RATE),
    "net_mrr_churn_rate_30d": ("net_mrr_churn_rate_30d", RATE),
    "quick_ratio_30d": ("quick_ratio_30d", RATIO),
}

WHY_MISSING_DAILY = {
    "daily_arpa": "no paying customer at the day's end",
    "customer_churn_rate_30d": "no paying customer 30 days before",
    "gross_mrr_churn_rate_30d": "no MRR 30 days before",
    "net_mrr_churn_rate_30d": "no MRR 30 days before",
    "quick_ratio_30d": "no contraction or churn in the 30 days",
}
NOT_COVERED = "the history does not reach 30 days before the day"


@dataclass(frozen=True)
class SaasDay:
    """One day's SaaS figures (None where the mart has null) and their trailing window."""

    day: dt.date
    base_day: dt.date
    is_window_covered: bool
    is_partial_day: bool
    values: dict[str, float | None]

    def label(self) -> str:
        """`2026-10-20 (trailing 30 days: 2026-09-21 to 2026-10-20)`, saying so when the day is
        today (read at the last sync) or the history does not cover the window."""
        window = f"trailing 30 days: {self.base_day + dt.timedelta(days=1)} to {self.day}"
        if self.is_partial_day:
            window += ", today up to the last sync"
        if not self.is_window_covered:
            window += ", not covered by the history"
        return f"{self.day} ({window})"

    def why_missing(self, name: str) -> str:
        if not self.is_window_covered and name != "daily_arpa":
            return NOT_COVERED
        return WHY_MISSING_DAILY[name]


def load_saas_day(con: Any, project_id: str, day: dt.date) -> SaasDay | None:
    """The project's daily SaaS figures of `day`, if built, from a reader connection."""
    columns = ", ".join(column for column, _ in DAILY_SAAS_METRICS.values())
    row = con.execute(
        f"select metric_date, base_day, is_trailing_window_covered, is_partial_day, {columns} "
        "from marts.fct_saas_metrics_daily where project_id = ? and metric_date = ?",
        [project_id, day],
    ).fetchone()
    if row is None:
        return None
    metric_date, base_day, covered, partial, *values = row
    return SaasDay(metric_date, base_day, bool(covered), bool(partial), {
        name: None if value is None else float(value)
        for name, value in zip(DAILY_SAAS_METRICS, values, strict=True)
    })


@dataclass(frozen=True)
class SaasMonth:
    """One month's SaaS figures (None where the mart has null), and the days they cover."""

    month: dt.date
    first_day: dt.date
    last_day: dt.date
    is_partial: bool
    values: dict[str, float | None]

    def label(self) -> str:
        """`2026-10` for a whole month; `2026-11 (partial month: 2026-11-01 to 2026-11-10)`."""
        name = f"{self.month:%Y-%m}"
        if not self.is_partial:
            return name
        return f"{name} (partial month: {self.first_day} to {self.last_day})"


def load_saas_months(con: Any, project_id: str) -> list[SaasMonth]:
    """Every month of the project's window in order, from a reader connection (`reading`)."""
    names = ", ".join(SAAS_METRICS)
    rows = con.execute(
        f"select metric_month, first_day, last_day, is_partial_month, {names} "
        "from marts.fct_saas_metrics_monthly where project_id = ? order by metric_month",
        [project_id],
    ).fetchall()
    return [
        SaasMonth(month, first, last, bool(partial), {
            name: None if value is None else float(value)
            for name, value in zip(SAAS_METRICS, values, strict=True)
        })
        for month, first, last, partial, *values in rows
    ]


def month_of(months: list[SaasMonth], day: dt.date) -> SaasMonth | None:
    """The month holding `day`, if the window has it."""
    return next((m for m in months if m.month == day.replace(day=1)), None)


def latest_whole_month(months: list[SaasMonth]) -> SaasMonth | None:
    return next((m for m in reversed(months) if not m.is_partial), None)


def format_saas_value(value: float | None, unit: str) -> str:
    """25.0%, 2.63, $26.75; n/a for a missing figure."""
    if value is None:
        return "n/a"
    if unit == RATE:
        return f"{value:.1%}"
    if unit == RATIO:
        return f"{value:,.2f}"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
