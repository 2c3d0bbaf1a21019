"""Read the six published metrics of a project from `marts.metrics_daily`, with their change.

The change follows the rule of `stripe_warehouse.comparison` (complete periods for flows,
end-of-day values for stocks), the same as the overview report's.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from stripe_warehouse.comparison import (
    COMPARISON_RULE,
    FLOW_PERIOD_DAYS,
    Comparison,
    compare,
)
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

METRIC_ORDER = (
    "stripe_mrr",
    "stripe_arr",
    "stripe_revenue",
    "stripe_active_subscriptions",
    "stripe_customers",
    "stripe_failed_payments",
)


@dataclass(frozen=True)
class MetricValue:
    """A metric's published value on the chosen day and its like-with-like comparison."""

    metric: str
    unit: str
    value: float
    comparison: Comparison


def load_metrics(
    warehouse: Path | WarehouseTarget, project_id: str, day: dt.date | None = None
) -> tuple[dt.date, list[MetricValue]]:
    """The metrics of `day` (default: the latest reported day), each with its comparison.
    `warehouse`: a DuckDB file, or a PostgreSQL warehouse (read on the server)."""
    if isinstance(warehouse, Path) and not warehouse.exists():
        raise WarehouseError(
            f"no warehouse at {warehouse}: "
            f"run `stripe-warehouse sync {project_id} --backfill` first"
        )
    with reading(warehouse) as con:
        row = con.execute(
            "select max(metric_date) from marts.metrics_daily where project_id = ?",
            [project_id],
        ).fetchone()
        if row is None or row[0] is None:
            raise WarehouseError(
                f"no metrics for project {project_id}: check the name with "
                "`stripe-warehouse status`, then run "
                f"`stripe-warehouse sync {project_id} --backfill`"
            )
        last_reported_day: dt.date = row[0]
        day = day or last_reported_day
        # Two flow periods, or a month of stock history, end at `day` at the latest. In day
        # order: a period's figure is a float sum, whose last digit follows the order of its
        # terms (DuckDB and PostgreSQL return unordered rows in different orders).
        rows = con.execute(
            "select metric_date, metric, unit, value from marts.metrics_daily "
            "where project_id = ? and metric_date between ? and ? order by metric_date",
            [project_id, day - dt.timedelta(days=2 * FLOW_PERIOD_DAYS + 1), day],
        ).fetchall()
    daily: dict[str, dict[dt.date, float]] = {}
    units: dict[str, str] = {}
    for d, m, u, v in rows:
        daily.setdefault(m, {})[d] = float(v)
        units[m] = u
    if not any(day in values for values in daily.values()):
        raise WarehouseError(
            f"no metrics for project {project_id} on {day}: pick a day inside the synced window"
        )
    values = [
        MetricValue(
            m, units[m], daily[m][day], compare(m, units[m], daily[m], day, last_reported_day)
        )
        for m in METRIC_ORDER
        if day in daily.get(m, {})
    ]
    return day, values


def format_amount(value: float, unit: str, signed: bool = False) -> str:
    """Exact amounts for tables and cards: $1,234.56, 1,234; `signed` always shows + or -."""
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    return f"{sign}${abs(value):,.2f}" if unit == "USD" else f"{sign}{abs(value):,.0f}"


def describe_change(c: Comparison) -> str:
    """The change, then what was compared with what (n/a outside the synced window)."""
    if c.is_flow:
        compared = (f"{c.current_period.label()} ({format_amount(c.current, c.unit)}) vs "
                    f"{c.previous_period.label()}")
        if c.previous is not None:
            compared += f" ({format_amount(c.previous, c.unit)})"
    else:
        compared = f"vs end of {c.previous_period.label()}"
    if c.change is None:
        return f"{'n/a':>14} {'':>7}  {compared}: outside the synced window"
    rate = f"{c.growth_rate:+.1%}" if c.growth_rate is not None else ""
    return f"{format_amount(c.change, c.unit, signed=True):>14} {rate:>7}  {compared}"


def format_metrics(project_id: str, day: dt.date, values: list[MetricValue]) -> str:
    """A small terminal table: metric, the day's value, its change; then the rule."""
    lines = [f"{project_id} on {day}: the day's value, then the change and what it compares"]
    lines += [
        f"  {v.metric:<28} {format_amount(v.value, v.unit):>14} {describe_change(v.comparison)}"
        for v in values
    ]
    lines.append(f"Compared: {COMPARISON_RULE}")
    return "\n".join(lines)


def metrics_json(project_id: str, day: dt.date, values: list[MetricValue]) -> str:
    return json.dumps(
        {
            "project_id": project_id,
            "date": day.isoformat(),
            "comparison_rule": COMPARISON_RULE,
            "metrics": [
                {"metric": v.metric, "unit": v.unit, "value": v.value,
                 "comparison": v.comparison.as_dict()}
                for v in values
            ],
        },
        indent=2,
    )


def marts_source(home: Path) -> Path | WarehouseTarget:
    """Where readers find the marts: the published read-only copy when there is one (never
    blocked by a running sync), else the DuckDB warehouse; the server of a PostgreSQL one."""
    state = StateDir.of(home)
    if state.target.is_postgres:
        return state.target
    return state.reporting if state.reporting.exists() else state.warehouse


def print_metrics(home: Path, project_id: str) -> None:
    day, values = load_metrics(marts_source(home), project_id)
    print(format_metrics(project_id, day, values))
