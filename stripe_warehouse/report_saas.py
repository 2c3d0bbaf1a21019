"""The overview report's SaaS part: NRR, GRR, customer churn and ARPA cards, and the
retention-cohort heat maps.

The cards show the latest whole month of `fct_saas_metrics_monthly` (a partial month's rates
cover only its reported days, so they are not the headline), and the month of the last sync,
labelled partial, under it. The heat maps are HTML tables from `fct_cohort_retention`: a row
per cohort (month of first MRR), a column per month since its start, each cell's percentage
written in it and explained in its title, its background a colour scale; no script, no image,
so the page stays self-contained and readable by a screen reader.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from stripe_warehouse.saas_metrics import (
    RATE,
    SAAS_METRICS,
    WHY_MISSING,
    SaasMonth,
    format_saas_value,
    latest_whole_month,
)

CARD_METRICS = (
    ("net_revenue_retention_1m", "Net revenue retention (1 month)"),
    ("gross_revenue_retention_1m", "Gross revenue retention (1 month)"),
    ("customer_churn_rate", "Customer churn rate"),
    ("arpa", "ARPA (MRR per paying customer)"),
)


@dataclass(frozen=True)
class SaasCard:
    metric: str
    label: str
    value: float | None
    value_text: str
    period_text: str
    partial_text: str  # the partial month of the last sync, when it is not the card's month


def saas_cards(months: list[SaasMonth]) -> list[SaasCard]:
    """The cards of the latest whole month (or, without one, of the partial month)."""
    if not months:
        return []
    shown = latest_whole_month(months) or months[-1]
    current = months[-1]
    cards = []
    for metric, label in CARD_METRICS:
        value = shown.values[metric]
        unit = SAAS_METRICS[metric]
        text = format_saas_value(value, unit)
        if shown.is_partial:
            period = f"{shown.label()}: no whole month in the window yet"
        else:
            period = f"{shown.label()}, the latest whole month"
        if value is None:
            period += f" ({WHY_MISSING[metric]})"
        partial = ""
        if current is not shown and current.is_partial:
            partial = (f"{current.month:%Y-%m} so far (partial month, {current.first_day} to "
                       f"{current.last_day}): {format_saas_value(current.values[metric], unit)}")
        cards.append(SaasCard(metric, label, value, text, period, partial))
    return cards


@dataclass(frozen=True)
class CohortCell:
    """One cohort in one month of `fct_cohort_retention` (retention as fractions)."""

    cohort_month: dt.date
    metric_month: dt.date
    months_since_start: int
    is_partial: bool
    cohort_customers: int
    cohort_starting_mrr: float
    retained_customers: int
    retained_mrr: float
    logo_retention: float | None
    mrr_retention: float | None


def load_cohort_cells(con: Any, project_id: str) -> list[CohortCell]:
    """The project's cohort rows, from a reader connection (`reading`)."""
    rows = con.execute(
        "select cohort_month, metric_month, months_since_start, is_partial_month, "
        "cohort_customers, cohort_starting_mrr, retained_customers, retained_mrr, "
        "logo_retention, mrr_retention from marts.fct_cohort_retention "
        "where project_id = ? order by cohort_month, metric_month",
        [project_id],
    ).fetchall()
    return [
        CohortCell(cohort, month, int(since), bool(partial), int(customers), float(start_mrr),
                   int(retained), float(retained_mrr),
                   None if logo is None else float(logo), None if mrr is None else float(mrr))
        for (cohort, month, since, partial, customers, start_mrr, retained, retained_mrr,
             logo, mrr) in rows
    ]


@dataclass(frozen=True)
class HeatCell:
    months_since_start: int
    value: float | None
    text: str
    title: str
    style: str
    is_partial: bool


@dataclass(frozen=True)
class HeatRow:
    cohort: str
    size: str
    cells: list[HeatCell | None]  # None: a month after the window's end


@dataclass(frozen=True)
class HeatMap:
    measure: str  # "logo" or "mrr"
    title: str
    size_header: str
    columns: list[int]
    rows: list[HeatRow]
    floor: float  # the retention the palest colour stands for


def scale_floor(values: list[float | None]) -> float:
    """Where a heat map's colour scale starts: the lowest retention rounded down to a tenth,
    at most 90 %. Retention mostly sits between 80 and 100 %: a scale from 0 would paint
    every cell the same dark colour."""
    known = [v for v in values if v is not None]
    lowest = min(known, default=0.0)
    return max(0.0, min(math.floor(round(lowest * 10, 9)) / 10, 0.9))


def cell_style(value: float | None, floor: float = 0.0) -> str:
    """The colour scale: pale at `floor` and below, dark at 100 % and above (MRR retention
    can pass 100 %); white text on the dark half, so every number stays readable."""
    if value is None:
        return "background:#f6f8fa;color:#697386"
    share = min(max((value - floor) / (1.0 - floor), 0.0), 1.0)
    lightness = round(96 - 56 * share)
    text = "#fff" if lightness < 62 else "#1a1f36"
    return f"background:hsl(243,75%,{lightness}%);color:{text}"


def _percent(value: float | None) -> str:
    return format_saas_value(value, RATE).replace(".0%", "%") if value is not None else "n/a"


def heat_map(cells: list[CohortCell], measure: str) -> HeatMap:
    """Logo (`logo`) or MRR (`mrr`) retention by cohort and month since its start."""
    columns = sorted({c.months_since_start for c in cells})
    floor = scale_floor([c.logo_retention if measure == "logo" else c.mrr_retention
                         for c in cells])
    by_cohort: dict[dt.date, list[CohortCell]] = {}
    for cell in cells:
        by_cohort.setdefault(cell.cohort_month, []).append(cell)
    rows = []
    for cohort, members in sorted(by_cohort.items()):
        first = members[0]
        size = (f"{first.cohort_customers:,}" if measure == "logo"
                else format_saas_value(first.cohort_starting_mrr, "USD"))
        known = {c.months_since_start: c for c in members}
        rows.append(HeatRow(f"{cohort:%Y-%m}", size,
                            [_heat_cell(known[m], measure, floor) if m in known else None
                             for m in columns]))
    if measure == "logo":
        title, size_header = "Logo retention by cohort (% of customers still paying)", "customers"
    else:
        title, size_header = "MRR retention by cohort (% of starting MRR, FX taken out)", "MRR"
    return HeatMap(measure, title, size_header, columns, rows, floor)


def _heat_cell(cell: CohortCell, measure: str, floor: float) -> HeatCell:
    if measure == "logo":
        value = cell.logo_retention
        detail = f"{cell.retained_customers:,} of {cell.cohort_customers:,} customers paying"
    else:
        value = cell.mrr_retention
        detail = (f"{format_saas_value(cell.retained_mrr, 'USD')} of "
                  f"{format_saas_value(cell.cohort_starting_mrr, 'USD')} MRR")
    partial = " (partial month: at the last sync)" if cell.is_partial else ""
    title = (f"cohort {cell.cohort_month:%Y-%m}, month {cell.months_since_start} "
             f"({cell.metric_month:%Y-%m}{partial}): {_percent(value)}, {detail}")
    text = _percent(value) + ("*" if cell.is_partial else "")
    return HeatCell(cell.months_since_start, value, text, title, cell_style(value, floor),
                    cell.is_partial)
