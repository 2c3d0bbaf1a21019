"""Builds `stripe_raw.*` in a DuckDB file with rows in the raw-table contract.

The contract is docs/architecture.md ("Raw tables"): every table has project_id, id, created,
livemode, data (JSON: the whole Stripe object), api_version, _synced_at, plus per-table extras.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

COMMON_COLUMNS = (
    "project_id varchar not null, id varchar not null, created bigint, livemode boolean, "
    "data json, api_version varchar, _synced_at timestamp"
)
EXTRA_COLUMNS = {
    "customers": ", deleted boolean",
    "subscriptions": "",
    "subscription_items": ", subscription varchar",
    "invoices": "",
    "invoice_lines": ", invoice varchar",
    "charges": "",
    "refunds": "",
    "disputes": "",
    "credit_notes": "",
    "prices": "",
    "products": "",
    "coupons": "",
    "events": ", type varchar",
    "subscription_versions": ", version_hash varchar, observed_at timestamp, source varchar",
}
SYNC_RUNS_COLUMNS = (
    "project_id varchar, run_id varchar, kind varchar, window_start timestamp, "
    "window_end timestamp, started_at timestamp, finished_at timestamp, status varchar, "
    "objects_loaded bigint, api_version varchar, test_mode boolean"
)
API_VERSION = "2025-09-30.clover"


def connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Opens (creating if needed) the warehouse file the way the pipelines create it."""
    return duckdb.connect(str(db_path), config={"storage_compatibility_version": "v1.4.0"})


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Creates every raw table of the contract, empty."""
    con.execute("create schema if not exists stripe_raw")
    for table, extra in EXTRA_COLUMNS.items():
        con.execute(f"create table if not exists stripe_raw.{table} ({COMMON_COLUMNS}{extra})")
    con.execute(f"create table if not exists stripe_raw.sync_runs ({SYNC_RUNS_COLUMNS})")


def insert_objects(
    con: duckdb.DuckDBPyConnection,
    table: str,
    project_id: str,
    objects: Iterable[dict],
    synced_at: datetime,
    api_version: str = API_VERSION,
) -> None:
    """Inserts Stripe objects into a raw table, deriving the contract's extra columns."""
    rows = []
    for obj in objects:
        extras: list = []
        if table == "customers":
            extras = [bool(obj.get("deleted", False))]
        elif table == "subscription_items":
            extras = [obj.get("subscription")]
        elif table == "invoice_lines":
            extras = [obj.get("invoice")]
        elif table == "events":
            extras = [obj.get("type")]
        rows.append(
            [project_id, obj["id"], obj.get("created"), obj.get("livemode", False),
             json.dumps(obj), obj.get("api_version") or api_version, _naive(synced_at), *extras]
        )
    if not rows:
        return
    placeholders = ", ".join(["?"] * len(rows[0]))
    con.executemany(f"insert into stripe_raw.{table} values ({placeholders})", rows)


def insert_many_objects(
    con: duckdb.DuckDBPyConnection,
    table: str,
    project_id: str,
    objects: Iterable[dict],
    synced_at: datetime,
) -> None:
    """`insert_objects` for thousands of objects: one bulk load of a JSON-lines file."""
    names = [row[0] for row in con.execute(f"describe stripe_raw.{table}").fetchall()]
    extra = {"customers": "deleted", "subscription_items": "subscription",
             "invoice_lines": "invoice", "events": "type"}.get(table)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / f"{table}.jsonl"
        with path.open("w") as handle:
            for obj in objects:
                row = {"project_id": project_id, "id": obj["id"], "created": obj.get("created"),
                       "livemode": obj.get("livemode", False), "data": json.dumps(obj),
                       "api_version": obj.get("api_version") or API_VERSION,
                       "_synced_at": _naive(synced_at).isoformat(sep=" ")}
                if extra:
                    row[extra] = bool(obj.get("deleted", False)) if extra == "deleted" else obj.get(
                        extra)
                handle.write(json.dumps(row) + "\n")
        columns = ", ".join(f"'{name}': 'varchar'" for name in names)
        con.execute(f"insert into stripe_raw.{table} select * from read_json(?, "
                    f"format='newline_delimited', columns={{{columns}}})", [str(path)])


def replace_objects(
    con: duckdb.DuckDBPyConnection,
    table: str,
    project_id: str,
    objects: list[dict],
    synced_at: datetime,
) -> None:
    """Merges objects on (project_id, id) the way the dlt load does: a re-read replaces a row."""
    for obj in objects:
        con.execute(
            f"delete from stripe_raw.{table} where project_id = ? and id = ?",
            [project_id, obj["id"]],
        )
    insert_objects(con, table, project_id, objects, synced_at)


def insert_subscription_version(
    con: duckdb.DuckDBPyConnection,
    project_id: str,
    subscription: dict,
    observed_at: datetime,
    source: str = "sync",
) -> None:
    """Records one observed state of a subscription (the history table)."""
    con.execute(
        "insert into stripe_raw.subscription_versions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [project_id, subscription["id"], subscription.get("created"), False,
         json.dumps(subscription), API_VERSION, _naive(observed_at),
         f"v{hash(json.dumps(subscription, sort_keys=True)) & 0xFFFFFFFF:08x}",
         _naive(observed_at), source],
    )


def insert_sync_run(
    con: duckdb.DuckDBPyConnection,
    project_id: str,
    window_start: datetime,
    finished_at: datetime,
    kind: str = "backfill",
) -> None:
    """Records a succeeded sync run, which sets the project's reporting window."""
    con.execute(
        # named columns: a warehouse a sync prepared has more (reporting_time_zone)
        "insert into stripe_raw.sync_runs (project_id, run_id, kind, window_start, window_end, "
        "started_at, finished_at, status, objects_loaded, api_version, test_mode) "
        "values (?, ?, ?, ?, ?, ?, ?, 'succeeded', 0, ?, true)",
        [project_id, f"run_{project_id}_{kind}_{finished_at.timestamp():.0f}", kind,
         _naive(window_start), _naive(finished_at), _naive(finished_at), _naive(finished_at),
         API_VERSION],
    )


def _naive(moment: datetime) -> datetime:
    """UTC as a naive timestamp, the way DuckDB `timestamp` columns hold it."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
