"""The overview report: one self-contained HTML page, readable offline.

It mirrors the product's overview: a card per metric with its change, a chart per metric over
the loaded window, MRR movements by month and the comparison with the previous period (the
rule of `stripe_warehouse.comparison`: complete days for flows, end-of-day values for stocks),
then the SaaS cards (NRR, GRR, customer churn, ARPA) and the retention-cohort heat maps
(`stripe_warehouse.report_saas`). Every figure comes from the marts. The page is
`templates/report.html.j2`; the charts are inline SVG that scale to the page's width.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from stripe_warehouse.alert_state import AlertStore
from stripe_warehouse.charts import line_chart, stacked_bar_chart
from stripe_warehouse.comparison import COMPARISON_RULE, FLOW_PERIOD_DAYS, Comparison, compare
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import METRIC_ORDER, format_amount
from stripe_warehouse.report_saas import CohortCell, heat_map, load_cohort_cells, saas_cards
from stripe_warehouse.saas_metrics import SaasMonth, load_saas_months
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

REPORTED_ALERT_DAYS = 30
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
    saas_months: list[SaasMonth] = field(default_factory=list)
    cohorts: list[CohortCell] = field(default_factory=list)


def load_report_data(db: Path | WarehouseTarget, project_id: str) -> ReportData:
    """Read the daily metrics, the monthly movements, SaaS figures and cohorts of one project."""
    if isinstance(db, Path) and not db.exists():
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
            "select metric_month, new_mrr, expansion_mrr, reactivation_mrr, "
            "contraction_mrr, churn_mrr, fx_mrr from marts.fct_mrr_movements_monthly "
            "where project_id = ? order by metric_month",
            [project_id],
        ).fetchall()
        saas_months = load_saas_months(con, project_id)
        cohorts = load_cohort_cells(con, project_id)
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
    months = [r[0].strftime("%Y-%m") for r in movement_rows]
    return ReportData(project_id, days, series, units, months, movements, saas_months, cohorts)


@dataclass(frozen=True)
class Card:
    metric: str
    label: str
    value: float
    value_text: str
    change_text: str
    period_text: str


@dataclass(frozen=True)
class ComparisonRow:
    label: str
    periods: str
    current: str
    previous: str
    growth: str


def comparisons(data: ReportData) -> list[Comparison]:
    """Each metric's comparison as of the last reported day (the rule in `comparison`)."""
    last_day = data.days[-1]
    return [
        compare(
            metric,
            data.units.get(metric, "count"),
            dict(zip(data.days, data.series[metric], strict=True)),
            last_day,
            last_day,
        )
        for metric in METRIC_ORDER
    ]


def _card(c: Comparison) -> Card:
    if c.is_flow:
        label = f"{LABELS[c.metric]}, last {FLOW_PERIOD_DAYS} complete days"
        period = c.current_period.label()
        versus = c.previous_period.label()
    else:
        label = LABELS[c.metric]
        period = f"at the last sync ({c.current_period.last.isoformat()})"
        versus = f"end of {c.previous_period.label()}"
    if c.change is None:
        change = f"no comparison: {versus} is outside the synced window"
    else:
        rate = f" ({c.growth_rate:+.1%})" if c.growth_rate is not None else ""
        change = f"{format_amount(c.change, c.unit, signed=True)}{rate} vs {versus}"
    return Card(c.metric, label, c.current, format_amount(c.current, c.unit), change, period)


def _row(c: Comparison) -> ComparisonRow:
    if c.is_flow:
        periods = f"{c.current_period.label()} vs {c.previous_period.label()}"
    else:
        periods = f"end of {c.current_period.label()} vs end of {c.previous_period.label()}"
    return ComparisonRow(
        LABELS[c.metric],
        periods,
        format_amount(c.current, c.unit),
        "outside the window" if c.previous is None else format_amount(c.previous, c.unit),
        "n/a" if c.growth_rate is None else f"{c.growth_rate:+.1%}",
    )


def _charts(data: ReportData) -> list[Markup]:
    days, series = data.days, data.series
    return [
        Markup(line_chart(title, days, series[metric], unit))
        for title, metric, unit in (
            ("Revenue per day (USD)", "stripe_revenue", "USD"),
            ("MRR (USD)", "stripe_mrr", "USD"),
            ("Active subscriptions", "stripe_active_subscriptions", "count"),
            ("Customers", "stripe_customers", "count"),
            ("Failed payments per day", "stripe_failed_payments", "count"),
        )
    ]


_TEMPLATES = Environment(
    loader=PackageLoader("stripe_warehouse", "templates"),
    autoescape=select_autoescape(["j2"], default=True),
    undefined=StrictUndefined,
)


def alert_rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's alert rows: each alert with its day, numbers and where it was delivered."""
    rows = []
    for alert in alerts:
        sent = alert["deliveries"]
        delivered = ", ".join(
            f"{d['channel_id']} {'ok' if d['delivered'] else 'FAILED'}" for d in sent)
        rows.append({**alert, "delivered": delivered or "no channel"})
    return rows


def render_report(data: ReportData, generated_at: dt.datetime,
                  alerts: list[dict[str, Any]] | None = None, has_rules: bool = False) -> str:
    """The report page as one HTML string with inline CSS and SVG (no external resources).
    ``alerts``: the project's alerts of the last 30 days (:meth:`AlertStore.recent`)."""
    compared = comparisons(data)
    movements = (
        Markup(stacked_bar_chart(
            "MRR movements by month (USD)", data.movement_months, data.movements, "USD"
        ))
        if data.movement_months
        else None
    )
    return _TEMPLATES.get_template("report.html.j2").render(
        project_id=data.project_id,
        first_day=data.days[0],
        last_day=data.days[-1],
        generated_at=f"{generated_at:%Y-%m-%d %H:%M}",
        cards=[_card(c) for c in compared],
        charts=_charts(data),
        movements=movements,
        rows=[_row(c) for c in compared],
        rule=COMPARISON_RULE,
        saas_cards=saas_cards(data.saas_months),
        heat_maps=[heat_map(data.cohorts, measure) for measure in ("logo", "mrr")]
        if data.cohorts else [],
        alerts=alert_rows(alerts or []),
        alert_days=REPORTED_ALERT_DAYS,
        has_rules=has_rules,
    )


def write_report(db: Path | WarehouseTarget, project_id: str, out: Path) -> Path:
    data = load_report_data(db, project_id)
    # the alert history lives beside the marts, in the same state directory
    alerts = AlertStore(db.parent).recent(project_id, days=REPORTED_ALERT_DAYS)
    has_rules = _has_rules(db.parent, project_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data, dt.datetime.now(dt.UTC), alerts, has_rules),
                   encoding="utf-8")
    return out


def _has_rules(home: Path, project_id: str) -> bool:
    """Does the project have alert rules? (Read-only: a missing registry has none.)"""
    from stripe_warehouse.registry import REGISTRY_FILE, ConnectionStore

    if not (home / REGISTRY_FILE).exists():
        return False
    try:
        return bool(ConnectionStore(home).get(project_id).alert_rules)
    except WarehouseError:
        return False
