"""`stripe-warehouse metrics PROJECT --by SEGMENT`: a month's MRR, movements and rates split by a
segment, read from `marts.fct_mrr_by_segment_monthly` (docs/metrics-spec.md "Segments").

Segments are customer-level (each customer in one value of each segment), so the values of a
segment add up to the month's totals.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import format_amount
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

# Always built; a project's metadata segments (customer.<key>, subscription.<key>) follow them.
FIXED_SEGMENTS = ("plan", "price", "billing_interval", "currency", "country")
VALUE_WIDTH = 40  # longer labels are cut in the table (never in --json)
SEGMENT_COLUMNS = (
    "segment_value", "closing_mrr", "customers_at_end", "new_mrr", "expansion_mrr",
    "reactivation_mrr", "contraction_mrr", "churn_mrr", "customer_churn_rate",
    "net_revenue_retention_1m", "gross_revenue_retention_1m", "arpa",
)


@dataclass(frozen=True)
class SegmentRow:
    """One value of the segment in the month: its MRR, movements and rates (None: no base)."""

    segment_value: str
    closing_mrr: Decimal
    customers_at_end: int
    new_mrr: Decimal
    expansion_mrr: Decimal
    reactivation_mrr: Decimal
    contraction_mrr: Decimal
    churn_mrr: Decimal
    customer_churn_rate: Decimal | None
    net_revenue_retention_1m: Decimal | None
    gross_revenue_retention_1m: Decimal | None
    arpa: Decimal | None


@dataclass(frozen=True)
class SegmentMonth:
    """The segment's rows of one month (largest MRR first) and how much of it is reported."""

    segment: str
    month: dt.date
    last_day: dt.date
    is_partial_month: bool
    rows: list[SegmentRow]


def load_segment_month(warehouse: Path | WarehouseTarget, project_id: str, segment: str,
                       day: dt.date | None = None) -> SegmentMonth:
    """The month holding `day` (default: the latest reported month), split by `segment`.
    A segment the project does not have is a one-line error naming the ones it has."""
    if isinstance(warehouse, Path) and not warehouse.exists():
        raise WarehouseError(f"no warehouse at {warehouse}: "
                             f"run `stripe-warehouse sync {project_id} --backfill` first")
    with reading(warehouse) as con:
        known = [name for (name,) in con.execute(
            "select distinct segment from marts.fct_mrr_by_segment_monthly "
            "where project_id = ?", [project_id]).fetchall()]
        if not known:
            raise WarehouseError(
                f"no segments for project {project_id}: check the name with "
                f"`stripe-warehouse status`, then run `stripe-warehouse sync {project_id} "
                "--backfill`")
        if segment not in known:
            raise WarehouseError(f"no segment {segment!r} for project {project_id}: use one of "
                                 f"{', '.join(segment_names(known))}")
        month = _month_of(con, project_id, day)
        result = con.execute(
            f"select last_day, is_partial_month, {', '.join(SEGMENT_COLUMNS)} "
            "from marts.fct_mrr_by_segment_monthly "
            "where project_id = ? and segment = ? and metric_month = ? "
            "order by closing_mrr desc, segment_value",
            [project_id, segment, month]).fetchall()
    if not result:
        return SegmentMonth(segment, month, month, True, [])
    last_day, is_partial = result[0][0], bool(result[0][1])
    return SegmentMonth(segment, month, last_day, is_partial,
                        [SegmentRow(*row[2:]) for row in result])


def segment_names(known: list[str]) -> list[str]:
    """The fixed segments in their order, then the project's metadata segments by name."""
    return [s for s in FIXED_SEGMENTS if s in known] + sorted(
        s for s in known if s not in FIXED_SEGMENTS)


def _month_of(con, project_id: str, day: dt.date | None) -> dt.date:
    """The reported month holding `day`, or the latest one; outside the window an error."""
    first, last = con.execute(
        "select min(first_day), max(last_day) from marts.fct_mrr_by_segment_monthly "
        "where project_id = ?", [project_id]).fetchone()
    day = day or last
    if not first <= day <= last:
        raise WarehouseError(f"no segments for project {project_id} on {day}: pick a day "
                             f"inside the synced window ({first} to {last})")
    return day.replace(day=1)


def _rate(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def format_segment_month(project_id: str, result: SegmentMonth) -> str:
    """A terminal table: each value's month-end MRR and customers, movements and rates."""
    period = f"{result.month:%Y-%m}" + (
        f" (to {result.last_day}, partial)" if result.is_partial_month else "")
    width = min(max([len(result.segment), *(len(r.segment_value) for r in result.rows)]),
                VALUE_WIDTH)
    header = (f"  {result.segment:<{width}} {'MRR':>13} {'customers':>9} {'new':>11} "
              f"{'expansion':>11} {'reactivation':>12} {'contraction':>11} {'churn':>11} "
              f"{'cust. churn':>11} {'NRR 1m':>7} {'GRR 1m':>7} {'ARPA':>11}")
    lines = [f"{project_id} by {result.segment}, {period}: MRR and paying customers at the "
             "month's end, the month's MRR movements and rates", header]
    for r in result.rows:
        lines.append(
            f"  {r.segment_value[:width]:<{width}} "
            f"{format_amount(float(r.closing_mrr), 'USD'):>13} "
            f"{r.customers_at_end:>9,} {format_amount(float(r.new_mrr), 'USD'):>11} "
            f"{format_amount(float(r.expansion_mrr), 'USD'):>11} "
            f"{format_amount(float(r.reactivation_mrr), 'USD'):>12} "
            f"{format_amount(float(r.contraction_mrr), 'USD'):>11} "
            f"{format_amount(float(r.churn_mrr), 'USD'):>11} "
            f"{_rate(r.customer_churn_rate):>11} {_rate(r.net_revenue_retention_1m):>7} "
            f"{_rate(r.gross_revenue_retention_1m):>7} "
            f"{'n/a' if r.arpa is None else format_amount(float(r.arpa), 'USD'):>11}")
    if not result.rows:
        lines.append("  (no customer had MRR in this month)")
    lines.append("Each customer is counted in one value of the segment (the plan, price, interval, "
                 "currency or subscription label it pays most for; its own country and customer "
                 "labels), so the values add up to the month's totals.")
    return "\n".join(lines)


def segment_month_json(project_id: str, result: SegmentMonth) -> str:
    """The same as JSON: money and rates as strings of their exact decimals."""
    return json.dumps({
        "project_id": project_id,
        "segment": result.segment,
        "month": result.month.isoformat(),
        "last_day": result.last_day.isoformat(),
        "is_partial_month": result.is_partial_month,
        "values": [{k: (str(v) if isinstance(v, Decimal) else v)
                    for k, v in asdict(row).items()} for row in result.rows],
    }, indent=2)
