"""`verify`'s side of the warehouse: the published figures (reporting.duckdb), with the rows
behind them, and the FX rates the build used (int_fx_rates_daily in warehouse.duckdb)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.publish import published_path
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import reading


@dataclass
class MartFigures:
    """The published metrics of one project, per day, and the detail rows explaining them."""

    last_day: date
    as_of: object
    daily: dict[tuple[str, date], Decimal] = field(default_factory=dict)  # (metric, day)
    subscription_mrr_usd: dict[str, Decimal] = field(default_factory=dict)  # on the stock day
    customer_ids: set[str] = field(default_factory=set)  # existing at the end of the stock day


def read_marts(home: Path, project_id: str, stock_day: date | None, first_day: date,
               last_day: date) -> MartFigures:
    """metrics_daily of [first_day, last_day], plus, for `stock_day`, each counted
    subscription's MRR (fct_subscription_mrr_daily) and the customers existing (dim_customers)."""
    path = published_path(home)
    if not path.exists():
        raise WarehouseError(f"no published marts at {path}: run `stripe-warehouse sync "
                             f"{project_id} --backfill` first")
    with reading(path) as con:
        found = con.execute(
            "select max(metric_date), max(as_of) from marts.metrics_daily "
            "left join (select project_id, max(built_as_of) as as_of from marts.fct_mrr_daily "
            "group by project_id) using (project_id) where project_id = ?", [project_id]
        ).fetchone()
        if found is None or found[0] is None:
            raise WarehouseError(f"no metrics for project {project_id}: check the name with "
                                 "`stripe-warehouse status`")
        figures = MartFigures(last_day=found[0], as_of=found[1])
        for metric, day, value in con.execute(
            "select metric, metric_date, value from marts.metrics_daily "
            "where project_id = ? and metric_date between ? and ?",
            [project_id, min(first_day, stock_day or first_day),
             max(last_day, stock_day or last_day)],
        ).fetchall():
            figures.daily[(metric, day)] = value
        if stock_day is not None:
            figures.subscription_mrr_usd = dict(con.execute(
                "select subscription_id, sum(net_mrr_usd) from marts.fct_subscription_mrr_daily "
                "where project_id = ? and metric_date = ? group by subscription_id",
                [project_id, stock_day]).fetchall())
            end = stock_day + timedelta(days=1)
            figures.customer_ids = {row[0] for row in con.execute(
                "select customer_id from marts.dim_customers where project_id = ? "
                "and created_at < ? and (deleted_at is null or deleted_at >= ?)",
                [project_id, end, end]).fetchall()}
    return figures


def read_rates(home: Path, first_day: date, last_day: date) -> dict[tuple[str, date], Decimal]:
    """USD per unit by (currency, day) as the build used them (the user's table over the ECB
    reference rates); a currency without a rate is absent."""
    with reading(StateDir.of(home).warehouse) as con:
        rows = con.execute(
            "select currency, metric_date, usd_per_unit from intermediate.int_fx_rates_daily "
            "where metric_date between ? and ? and usd_per_unit is not null",
            [first_day, last_day]).fetchall()
    return {(currency, day): rate for currency, day, rate in rows}
