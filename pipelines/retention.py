"""Delete a project's raw data older than its tier keeps, without changing its current MRR.

Kept whatever their age, because today's numbers need them: subscriptions that have not ended,
their items, their latest invoice and every invoice whose lines cover a day after the cutoff,
all customers (the customer count) and the reference data (prices, products, coupons).
The project's ``sync_runs.window_start`` is clipped to the cutoff so that its reporting window,
and so the marts, start where the data now starts.
"""

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from stripe_warehouse.build_lock import dbt_build_turn
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import RAW_DATASET
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import PostgresReader
from stripe_warehouse.writer_lock import warehouse_writer

# Days of history each tier keeps (None: unlimited).
RETENTION_DAYS: dict[str, int | None] = {"starter": 3, "basic": 30, "pro": None, "scale": None}

_RAW = RAW_DATASET
# Invoices a kept subscription still needs, and invoices whose lines reach past the cutoff.
_KEPT_INVOICES_SQL = """
create temp table kept_invoices as
select id from {RAW}.invoices where project_id = $project and created >= $cutoff
union
select invoice from {RAW}.invoice_lines
where project_id = $project and cast(data->'period'->>'end' as bigint) >= $cutoff
union
select case when {IS_OBJECT}
            then data->'latest_invoice'->>'id' else data->>'latest_invoice' end
from {RAW}.subscriptions where project_id = $project
"""
# Whether a subscription's latest_invoice is an expanded object, in each dialect (dlt keeps
# JSON as DuckDB's JSON and PostgreSQL's jsonb)
_IS_OBJECT = {"duckdb": "json_type(data->'latest_invoice') = 'OBJECT'",
              "postgres": "jsonb_typeof(data->'latest_invoice') = 'object'"}
# Each statement deletes one table's expired rows; children follow their parents.
_SUBSCRIPTION_DELETES = {
    "subscriptions": f"""
        delete from {_RAW}.subscriptions where project_id = $project
        and cast(data->>'ended_at' as bigint) < $cutoff""",
    "subscription_items": f"""
        delete from {_RAW}.subscription_items where project_id = $project
        and subscription not in (
            select id from {_RAW}.subscriptions where project_id = $project)""",
    "subscription_versions": f"""
        delete from {_RAW}.subscription_versions v where project_id = $project
        and (id not in (select id from {_RAW}.subscriptions where project_id = $project)
             or (observed_at < $cutoff_ts and observed_at < (
                 select max(observed_at) from {_RAW}.subscription_versions w
                 where w.project_id = v.project_id and w.id = v.id
                 and w.observed_at < $cutoff_ts)))""",
}
# Run after the subscription deletes: an ended subscription no longer keeps its latest invoice.
_ACTIVITY_DELETES = {
    "invoices": f"""
        delete from {_RAW}.invoices where project_id = $project
        and id not in (select id from kept_invoices where id is not null)""",
    "invoice_lines": f"""
        delete from {_RAW}.invoice_lines where project_id = $project
        and invoice not in (select id from kept_invoices where id is not null)""",
    "charges": f"delete from {_RAW}.charges where project_id = $project and created < $cutoff",
    "refunds": f"delete from {_RAW}.refunds where project_id = $project and created < $cutoff",
    "disputes": f"delete from {_RAW}.disputes where project_id = $project and created < $cutoff",
    "credit_notes": f"""
        delete from {_RAW}.credit_notes where project_id = $project and created < $cutoff""",
    "events": f"delete from {_RAW}.events where project_id = $project and created < $cutoff",
}
_CLIP_SYNC_RUNS = f"""
    update {_RAW}.sync_runs set window_start = $cutoff_ts
    where project_id = $project and window_start < $cutoff_ts"""


@dataclass(frozen=True)
class RetentionResult:
    """What one retention pass did to one project."""

    project_id: str
    tier: str
    cutoff: dt.datetime | None
    deleted: dict[str, int] = field(default_factory=dict)
    clipped_sync_runs: int = 0


def retention_cutoff(tier: str, now: dt.datetime) -> dt.datetime | None:
    """Oldest instant a tier keeps: UTC midnight ``RETENTION_DAYS`` days before ``now``."""
    if tier not in RETENTION_DAYS:
        raise WarehouseError(f"unknown tier {tier!r}: choose one of {', '.join(RETENTION_DAYS)}")
    days = RETENTION_DAYS[tier]
    if days is None:
        return None
    day = now.astimezone(dt.UTC).date() - dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def apply_retention(
    project_id: str,
    tier: str,
    *,
    home: Path | str,
    now: dt.datetime | None = None,
) -> RetentionResult:
    """Delete ``project_id``'s expired raw rows in one transaction (all or nothing)."""
    cutoff = retention_cutoff(tier, now or dt.datetime.now(dt.UTC))
    state = StateDir.of(home)
    path = state.warehouse
    if cutoff is None or not (state.target.is_postgres or path.exists()):
        return RetentionResult(project_id, tier, cutoff)
    params = {
        "project": project_id,
        "cutoff": int(cutoff.timestamp()),
        "cutoff_ts": cutoff.replace(tzinfo=None),  # raw timestamps are naive UTC
    }
    if state.target.is_postgres:
        # no dbt build on any machine between the deletes and the rebuild that follows them
        with dbt_build_turn(state, f"retention of {project_id}"):
            con = PostgresReader(state.target.connect())
            return _delete_in_one_transaction(con, project_id, tier, cutoff, params)
    with warehouse_writer(path.parent, f"retention of {project_id}"):
        return _delete_in_one_transaction(duckdb.connect(str(path)), project_id, tier, cutoff,
                                          params)


def _delete_in_one_transaction(
    con: Any, project_id: str, tier: str, cutoff: dt.datetime, params: dict[str, object]
) -> RetentionResult:
    """The deletes on ``con`` (DuckDB, or a PostgresReader: the same SQL), closed after."""
    try:
        # Raw timestamps are UTC; compare them in UTC whatever the machine's zone.
        con.execute("set TimeZone = 'UTC'")
        present = _raw_tables(con)
        missing = {"subscriptions", "invoices", "invoice_lines", "sync_runs"} - present
        if missing:
            raise WarehouseError(
                f"warehouse has no stripe_raw.{sorted(missing)[0]} table: "
                "let a backfill finish before running retention"
            )
        con.begin()
        try:
            deleted = _delete_expired(con, _SUBSCRIPTION_DELETES, present, params)
            _affected(con, _kept_invoices_sql(con), params)
            deleted |= _delete_expired(con, _ACTIVITY_DELETES, present, params)
            clipped = _affected(con, _CLIP_SYNC_RUNS, params)
            con.execute("drop table kept_invoices")
            con.commit()
        except BaseException:
            # A failed pass deletes nothing: the loaded data stays as it was.
            con.rollback()
            raise
    finally:
        con.close()
    return RetentionResult(project_id, tier, cutoff, deleted, clipped)


def _kept_invoices_sql(con: Any) -> str:
    dialect = "postgres" if isinstance(con, PostgresReader) else "duckdb"
    return _KEPT_INVOICES_SQL.format(RAW=_RAW, IS_OBJECT=_IS_OBJECT[dialect])


def _in_dialect(con: Any, sql: str) -> str:
    """``sql`` for ``con``: on PostgreSQL dlt keeps the raw objects (``data``) as JSON text,
    which its JSON operators take once cast to jsonb."""
    return sql.replace("data->", "(data::jsonb)->") if isinstance(con, PostgresReader) else sql


def _raw_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [_RAW]
    ).fetchall()
    return {name for (name,) in rows}


def _delete_expired(
    con: duckdb.DuckDBPyConnection,
    deletes: dict[str, str],
    present: set[str],
    params: dict[str, object],
) -> dict[str, int]:
    return {table: _affected(con, sql, params)
            for table, sql in deletes.items() if table in present}


def _affected(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> int:
    # Only pass the parameters a statement names: DuckDB refuses unused named parameters.
    used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
    row = con.execute(_in_dialect(con, sql), used).fetchone()
    return int(row[0]) if row else 0
