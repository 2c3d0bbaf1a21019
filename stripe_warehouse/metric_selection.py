"""`stripe-warehouse metrics PROJECT --metrics a,b,...`: any of the six daily metrics, the
monthly SaaS figures and the daily ones, for one day.

The daily metrics are those of `stripe_warehouse.metrics` (the day's value and its change);
a monthly SaaS figure is that of the day's month (`stripe_warehouse.saas_metrics`), labelled
partial when the window covers only part of the month; a daily one (`daily_arpa`, the
`*_30d` rates) is the day's own, over the 30 days ending with it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from stripe_warehouse.comparison import COMPARISON_RULE
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import (
    METRIC_ORDER,
    MetricValue,
    describe_change,
    format_amount,
    load_metrics,
)
from stripe_warehouse.saas_metrics import (
    DAILY_SAAS_METRICS,
    SAAS_METRICS,
    WHY_MISSING,
    SaasDay,
    SaasMonth,
    format_saas_value,
    load_saas_day,
    load_saas_months,
    month_of,
)
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

VALID_METRICS = (*METRIC_ORDER, *SAAS_METRICS, *DAILY_SAAS_METRICS)


class UnknownMetric(WarehouseError):
    """A name given to --metrics is none of the metrics the marts publish."""


def parse_metric_names(text: str) -> list[str]:
    """The comma-separated names, in the order given, each once; unknown ones are an error
    naming every valid name."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in VALID_METRICS]
    if unknown or not names:
        given = ", ".join(unknown) if unknown else repr(text)
        raise UnknownMetric(f"unknown metric {given}: choose among {', '.join(VALID_METRICS)}")
    return names


@dataclass(frozen=True)
class Selection:
    """The chosen metrics of a day: the daily ones with their change, the SaaS ones of its
    month, the SaaS ones of the day."""

    project_id: str
    day: dt.date
    daily: list[MetricValue]
    saas_names: list[str]
    month: SaasMonth | None
    daily_saas_names: list[str]
    saas_day: SaasDay | None


def load_selection(
    warehouse: Path | WarehouseTarget, project_id: str, names: list[str],
    day: dt.date | None = None,
) -> Selection:
    """The metrics `names` of `day` (default: the latest reported day)."""
    day, daily = load_metrics(warehouse, project_id, day)
    saas_names = [n for n in names if n in SAAS_METRICS]
    month = None
    if saas_names:
        with reading(warehouse) as con:
            month = month_of(load_saas_months(con, project_id), day)
        if month is None:
            raise WarehouseError(
                f"no SaaS figures for project {project_id} in {day:%Y-%m}: build them with "
                "`stripe-warehouse transform`"
            )
    daily_saas_names = [n for n in names if n in DAILY_SAAS_METRICS]
    saas_day = None
    if daily_saas_names:
        with reading(warehouse) as con:
            saas_day = load_saas_day(con, project_id, day)
        if saas_day is None:
            raise WarehouseError(
                f"no daily SaaS figures for project {project_id} on {day}: build them with "
                "`stripe-warehouse transform`"
            )
    chosen = [v for v in daily if v.metric in names]
    chosen.sort(key=lambda v: names.index(v.metric))
    return Selection(project_id, day, chosen, saas_names, month, daily_saas_names, saas_day)


def format_selection(selection: Selection) -> str:
    """A terminal table: the daily metrics with their change, then the month's SaaS figures."""
    lines = [f"{selection.project_id} on {selection.day}"]
    if selection.daily:
        lines.append("the day's value, then the change and what it compares:")
        lines += [
            f"  {v.metric:<28} {format_amount(v.value, v.unit):>14} "
            f"{describe_change(v.comparison)}"
            for v in selection.daily
        ]
    if selection.month is not None:
        lines.append(f"SaaS figures of the month {selection.month.label()}:")
        for name in selection.saas_names:
            value = selection.month.values[name]
            text = format_saas_value(value, SAAS_METRICS[name])
            why = f"  ({WHY_MISSING[name]})" if value is None else ""
            lines.append(f"  {name:<28} {text:>14}{why}")
    if selection.saas_day is not None:
        saas_day = selection.saas_day
        lines.append(f"SaaS figures of the day {saas_day.label()}:")
        for name in selection.daily_saas_names:
            value = saas_day.values[name]
            text = format_saas_value(value, DAILY_SAAS_METRICS[name][1])
            why = f"  ({saas_day.why_missing(name)})" if value is None else ""
            lines.append(f"  {name:<28} {text:>14}{why}")
    if selection.daily:
        lines.append(f"Compared: {COMPARISON_RULE}")
    return "\n".join(lines)


def selection_json(selection: Selection) -> str:
    metrics: list[dict] = [
        {"metric": v.metric, "unit": v.unit, "value": v.value,
         "comparison": v.comparison.as_dict()}
        for v in selection.daily
    ]
    month = selection.month
    if month is not None:
        metrics += [
            {"metric": name, "unit": SAAS_METRICS[name], "value": month.values[name],
             "month": month.month.isoformat(), "first_day": month.first_day.isoformat(),
             "last_day": month.last_day.isoformat(), "is_partial_month": month.is_partial}
            for name in selection.saas_names
        ]
    saas_day = selection.saas_day
    if saas_day is not None:
        metrics += [
            {"metric": name, "unit": DAILY_SAAS_METRICS[name][1],
             "value": saas_day.values[name], "date": saas_day.day.isoformat(),
             "window_first_day": (saas_day.base_day + dt.timedelta(days=1)).isoformat(),
             "is_trailing_window_covered": saas_day.is_window_covered,
             "is_partial_day": saas_day.is_partial_day}
            for name in selection.daily_saas_names
        ]
    return json.dumps(
        {"project_id": selection.project_id, "date": selection.day.isoformat(),
         "comparison_rule": COMPARISON_RULE, "metrics": metrics},
        indent=2,
    )
