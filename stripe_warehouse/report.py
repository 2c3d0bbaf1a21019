"""The overview report: one self-contained HTML page, readable offline.

It mirrors the product's overview: the MRR card with its change, revenue over the loaded
window, active subscriptions, customers, failed payments, MRR movements by month and the
month-over-month comparison. Every figure comes from the marts; nothing is recomputed here.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

from stripe_warehouse.charts import format_value, line_chart, stacked_bar_chart
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import METRIC_ORDER, previous_month_day
from stripe_warehouse.storage import reading

MOVEMENT_KINDS = ("new", "expansion", "reactivation", "contraction", "churn", "fx")
LABELS = {
    "stripe_mrr": "MRR",
    "stripe_arr": "ARR",
    "stripe_revenue": "Revenue",
    "stripe_active_subscriptions": "Active subscriptions",
    "stripe_customers": "Customers",
    "stripe_failed_payments": "Failed payments",
}


@dataclass
class ReportData:
    project_id: str
    days: list[dt.date]
    series: dict[str, list[float]]  # metric -> value per day
    units: dict[str, str]
    movement_months: list[str]
    movements: dict[str, list[float]]  # kind -> USD per month (churn/contraction negative)


def load_report_data(db: Path, project_id: str) -> ReportData:
    """Read the daily metrics and the monthly movements of one project."""
    if not db.exists():
        raise WarehouseError(
            f"no warehouse at {db}: run `stripe-warehouse sync {project_id} --backfill` first"
        )
    with reading(db) as con:
        rows = con.execute(
            "select metric_date, metric, unit, value from marts.metrics_daily "
            "where project_id = ? order by metric_date",
            [project_id],
        ).fetchall()
        movement_rows = con.execute(
            "select strftime(metric_month, '%Y-%m'), new_mrr, expansion_mrr, reactivation_mrr, "
            "contraction_mrr, churn_mrr, fx_mrr from marts.fct_mrr_movements_monthly "
            "where project_id = ? order by metric_month",
            [project_id],
        ).fetchall()
    if not rows:
        raise WarehouseError(
            f"no metrics for project {project_id}: check the name with `stripe-warehouse status`"
        )
    days = sorted({r[0] for r in rows})
    index = {d: i for i, d in enumerate(days)}
    series = {m: [0.0] * len(days) for m in METRIC_ORDER}
    units: dict[str, str] = {}
    for day, metric, unit, value in rows:
        series[metric][index[day]] = float(value)
        units[metric] = unit
    signs = {"contraction": -1, "churn": -1}
    movements = {
        kind: [signs.get(kind, 1) * float(r[1 + k] or 0) for r in movement_rows]
        for k, kind in enumerate(MOVEMENT_KINDS)
    }
    return ReportData(project_id, days, series, units, [r[0] for r in movement_rows], movements)


def _card(data: ReportData, metric: str) -> str:
    values, unit = data.series[metric], data.units.get(metric, "count")
    last_day = data.days[-1]
    current = values[-1]
    previous_day = previous_month_day(last_day)
    shown = f"${current:,.2f}" if unit == "USD" else format_value(current, unit)
    change = ""
    if previous_day in data.days:
        before = values[data.days.index(previous_day)]
        delta = current - before
        pct = f" ({delta / before:+.1%})" if before else ""
        sign = "+" if delta >= 0 else "-"
        change = f"{sign}{format_value(abs(delta), unit)}{pct} vs {previous_day.isoformat()}"
    return (
        f'<div class="card" data-metric="{metric}" data-value="{current:.2f}">'
        f'<div class="card-label">{LABELS[metric]}</div>'
        f'<div class="card-value">{shown}</div>'
        f'<div class="card-change">{html.escape(change)}</div></div>'
    )


# Flows (money collected, failed attempts) compare sums over 30 days;
# stocks (MRR, counts) compare end-of-day values.
FLOW_METRICS = {"stripe_revenue", "stripe_failed_payments"}
COMPARISON_DAYS = 30


def _exact(value: float, unit: str) -> str:
    return f"${value:,.2f}" if unit == "USD" else f"{value:,.0f}"


def _comparison_table(data: ReportData) -> str:
    """This period against the previous one: the last 30 days vs the 30 before (flows), and
    the last day vs the same day a month earlier (stocks)."""
    last_day = data.days[-1]
    previous_day = previous_month_day(last_day)
    rows = []
    for metric in METRIC_ORDER:
        unit = data.units.get(metric, "count")
        values = data.series[metric]
        if metric in FLOW_METRICS:
            period = f"last {COMPARISON_DAYS} days vs the {COMPARISON_DAYS} before"
            current = sum(values[-COMPARISON_DAYS:])
            earlier = values[-2 * COMPARISON_DAYS : -COMPARISON_DAYS]
            before = sum(earlier) if len(earlier) == COMPARISON_DAYS else None
        else:
            period = f"{last_day} vs {previous_day}"
            current = values[-1]
            before = (
                values[data.days.index(previous_day)] if previous_day in data.days else None
            )
        if before is None:
            before_text, growth = "outside the window", "n/a"
        else:
            before_text = _exact(before, unit)
            growth = f"{(current - before) / before:+.1%}" if before else "n/a"
        rows.append(
            f"<tr><td>{LABELS[metric]}</td><td>{period}</td><td>{_exact(current, unit)}</td>"
            f"<td>{before_text}</td><td>{growth}</td></tr>"
        )
    return (
        "<table class='comparison'><thead><tr><th>metric</th><th>periods</th>"
        "<th>this period</th><th>previous period</th><th>change</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
  margin:24px;color:#1a1f36;background:#f6f8fa}
h1{font-size:22px;margin:0 0 4px} .sub{color:#697386;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;
  box-shadow:0 1px 3px #0002}
.card-label{color:#697386;font-size:13px} .card-value{font-size:22px;font-weight:600}
.card-change{font-size:12px;color:#3c4257}
section{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:16px;
  box-shadow:0 1px 3px #0002}
.chart text{font-size:11px;fill:#3c4257} .axis-title{font-weight:600}
.grid{stroke:#e3e8ee} .axis{stroke:#8792a2} .series{fill:none;stroke:#635bff;stroke-width:2}
.point{fill:#635bff}
.bar.new{fill:#2e9e6b}
.bar.expansion{fill:#74c69d}
.bar.reactivation{fill:#4dabf7}
.bar.contraction{fill:#f59f00} .bar.churn{fill:#e03131} .bar.fx{fill:#adb5bd}
table{border-collapse:collapse}
td,th{padding:4px 12px;border-bottom:1px solid #e3e8ee;text-align:right}
td:first-child,th:first-child{text-align:left}
"""


def render_report(data: ReportData, generated_at: dt.datetime) -> str:
    """The report page as one HTML string with inline CSS and SVG (no external resources)."""
    cards = "".join(_card(data, m) for m in METRIC_ORDER)
    charts = [
        line_chart("Revenue per day (USD)", data.days, data.series["stripe_revenue"], "USD"),
        line_chart("MRR (USD)", data.days, data.series["stripe_mrr"], "USD"),
        line_chart(
            "Active subscriptions", data.days, data.series["stripe_active_subscriptions"], "count"
        ),
        line_chart("Customers", data.days, data.series["stripe_customers"], "count"),
        line_chart(
            "Failed payments per day", data.days, data.series["stripe_failed_payments"], "count"
        ),
    ]
    movements = (
        stacked_bar_chart(
            "MRR movements by month (USD)", data.movement_months, data.movements, "USD"
        )
        if data.movement_months
        else "<p>No MRR movements in the window.</p>"
    )
    sections = "".join(f"<section>{c}</section>" for c in charts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Revenue overview: {html.escape(data.project_id)}</title>
<style>{STYLE}</style></head>
<body>
<h1>Revenue overview: {html.escape(data.project_id)}</h1>
<div class="sub">{data.days[0]} to {data.days[-1]} (UTC days; the last day as of the last sync)
 &middot; generated {generated_at:%Y-%m-%d %H:%M} UTC from marts.metrics_daily</div>
<div class="cards">{cards}</div>
{sections}
<section>{movements}</section>
<section><h2 style="font-size:15px">Time-range comparison (month over month)</h2>
{_comparison_table(data)}</section>
</body></html>
"""


def write_report(db: Path, project_id: str, out: Path) -> Path:
    data = load_report_data(db, project_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data, dt.datetime.now(dt.UTC)), encoding="utf-8")
    return out
