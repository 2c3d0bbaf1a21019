"""`stripe-warehouse export`: a project's marts as CSV or Parquet files, for spreadsheets.

One file per mart of `EXPORTED_MARTS`, holding only that project's rows (every query filters on
`project_id`: tenant isolation), optionally only the days from `first` to `last` on the mart's
date column (a monthly mart keeps the months those days touch). The rows are read from the
published copy (DuckDB) or from the server (PostgreSQL) as an Arrow table, and DuckDB's COPY
writes both formats, so the files are the same whichever warehouse holds the marts.

The entity tables (`dim_customers`, `dim_subscriptions`) and the per-subscription days
(`fct_subscription_mrr_daily`) are left out: they are records rather than figures, and the
last one alone outgrows a spreadsheet (subscriptions x days).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import make_private_dirs
from stripe_warehouse.storage import reading
from stripe_warehouse.warehouse_target import WarehouseTarget

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class ExportedMart:
    """A mart written by `export`, and the date column its --from/--to filter applies to."""

    name: str
    date_column: str
    monthly: bool = False


EXPORTED_MARTS = (
    ExportedMart("metrics_daily", "metric_date"),
    ExportedMart("fct_mrr_daily", "metric_date"),
    ExportedMart("fct_mrr_movements", "metric_date"),
    ExportedMart("fct_mrr_movements_monthly", "metric_month", monthly=True),
    ExportedMart("fct_revenue_daily", "metric_date"),
    ExportedMart("fct_failed_payments_daily", "metric_date"),
    ExportedMart("fct_saas_metrics_daily", "metric_date"),
    ExportedMart("fct_saas_metrics_monthly", "metric_month", monthly=True),
    ExportedMart("fct_cohort_retention", "metric_month", monthly=True),
    ExportedMart("fct_mrr_by_segment_monthly", "metric_month", monthly=True),
)

# far enough either way to hold every day a warehouse can have
_FIRST_DAY, _LAST_DAY = dt.date(1900, 1, 1), dt.date(9999, 12, 31)


def parse_export_format(text: str) -> str:
    if text not in FORMATS:
        raise WarehouseError(f"--format {text!r} is not supported: use csv or parquet")
    return text


def export_marts(
    warehouse: Path | WarehouseTarget, project_id: str, out: Path, export_format: str,
    first: dt.date | None = None, last: dt.date | None = None,
) -> Iterator[tuple[Path, int]]:
    """Write each mart of the project to `out/<mart>.<format>`; yields each file and its rows."""
    if first and last and first > last:
        raise WarehouseError(f"--from {first} is after --to {last}: swap them")
    if isinstance(warehouse, Path) and not warehouse.exists():
        raise WarehouseError(
            f"no warehouse at {warehouse}: run `stripe-warehouse sync {project_id} --backfill` "
            "first"
        )
    with reading(warehouse) as con:
        _check_project(con, project_id)
        make_private_dirs(out)
        for mart in EXPORTED_MARTS:
            table = _mart_rows(con, mart, project_id, first or _FIRST_DAY, last or _LAST_DAY)
            path = out / f"{mart.name}.{export_format}"
            _write(table, path, export_format)
            yield path, table.num_rows


def _check_project(con: Any, project_id: str) -> None:
    row = con.execute(
        "select count(*) from marts.metrics_daily where project_id = ?", [project_id]
    ).fetchone()
    if not row[0]:
        raise WarehouseError(
            f"no marts for project {project_id}: check the name with `stripe-warehouse status`, "
            f"then run `stripe-warehouse sync {project_id} --backfill`"
        )


def _mart_rows(con: Any, mart: ExportedMart, project_id: str, first: dt.date,
               last: dt.date) -> pa.Table:
    """The project's rows of `mart` whose date falls in [first, last], in date order."""
    if mart.monthly:
        first = first.replace(day=1)
    columns = [r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [mart.name],
    ).fetchall()]
    if not columns:
        raise WarehouseError(
            f"the marts have no {mart.name}: build them with `stripe-warehouse transform`")
    # every column in the order: rows come out the same on each run and target
    order = ", ".join([mart.date_column, *(f'"{c}"' for c in columns if c != mart.date_column)])
    query = (f"select * from marts.{mart.name} where project_id = ? "
             f"and {mart.date_column} between ? and ? order by {order}")
    parameters = [project_id, first, last]
    if isinstance(con, duckdb.DuckDBPyConnection):
        return con.sql(query, params=parameters).to_arrow_table()
    return _arrow_from_cursor(con.execute(query, parameters))


def _arrow_from_cursor(cursor: Any) -> pa.Table:
    """A PostgreSQL cursor's rows as an Arrow table (NUMERIC stays decimal)."""
    names = [d.name for d in cursor.description]
    rows = cursor.fetchall()
    arrays = []
    for i in range(len(names)):
        array = pa.array([row[i] for row in rows])
        # a column without any value has no type to infer: text is the neutral one
        arrays.append(array.cast(pa.string()) if pa.types.is_null(array.type) else array)
    return pa.Table.from_arrays(arrays, names=names)


def _write(table: pa.Table, path: Path, export_format: str) -> None:
    """DuckDB's COPY of the table to a temporary file, renamed over `path` once whole."""
    partial = path.with_name(f".{path.name}.partial")
    options = "format csv, header" if export_format == "csv" else "format parquet"
    with duckdb.connect() as con:
        con.register("mart_rows", table)
        con.execute(f"copy mart_rows to '{_sql_text(partial)}' ({options})")
    os.replace(partial, path)


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")
