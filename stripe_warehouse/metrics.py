"""Read the six published metrics of a project from `marts.metrics_daily`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from stripe_warehouse.errors import WarehouseError

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
    metric: str
    unit: str
    value: float
    previous: float | None

    @property
    def change(self) -> float | None:
        return None if self.previous is None else self.value - self.previous


def previous_month_day(day: dt.date) -> dt.date:
    """The same day one month earlier, clamped to the month's last day (Mar 31 -> Feb 28)."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def load_metrics(
    warehouse: Path, project_id: str, day: dt.date | None = None
) -> tuple[dt.date, list[MetricValue]]:
    """The metrics of `day` (default: the latest reported day) and of one month earlier."""
    if not warehouse.exists():
        raise WarehouseError(
            f"no warehouse at {warehouse}: "
            f"run `stripe-warehouse sync {project_id} --backfill` first"
        )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if day is None:
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
            day = row[0]
        rows = con.execute(
            "select metric_date, metric, unit, value from marts.metrics_daily "
            "where project_id = ? and metric_date in (?, ?)",
            [project_id, day, previous_month_day(day)],
        ).fetchall()
    current = {m: (u, v) for d, m, u, v in rows if d == day}
    # value is DECIMAL (exact money); the terminal table and JSON show it as a float
    previous = {m: float(v) for d, m, _u, v in rows if d != day}
    if not current:
        raise WarehouseError(
            f"no metrics for project {project_id} on {day}: pick a day inside the synced window"
        )
    values = [
        MetricValue(m, current[m][0], float(current[m][1]), previous.get(m))
        for m in METRIC_ORDER
        if m in current
    ]
    return day, values


def format_metrics(project_id: str, day: dt.date, values: list[MetricValue]) -> str:
    """A small terminal table: metric, value, change against the previous month."""
    lines = [f"{project_id} on {day} (change vs. one month earlier)"]
    for v in values:
        shown = f"${v.value:,.2f}" if v.unit == "USD" else f"{v.value:,.0f}"
        if v.change is None:
            delta = "n/a"
        else:
            sign = "+" if v.change >= 0 else "-"
            delta = (
                f"{sign}${abs(v.change):,.2f}" if v.unit == "USD" else f"{sign}{abs(v.change):,.0f}"
            )
        lines.append(f"  {v.metric:<30} {shown:>16}  {delta:>14}")
    return "\n".join(lines)


def metrics_json(project_id: str, day: dt.date, values: list[MetricValue]) -> str:
    return json.dumps(
        {
            "project_id": project_id,
            "date": day.isoformat(),
            "metrics": [asdict(v) | {"change": v.change} for v in values],
        },
        indent=2,
    )


def print_metrics(home: Path, project_id: str) -> None:
    day, values = load_metrics(home / "warehouse.duckdb", project_id)
    print(format_metrics(project_id, day, values))
