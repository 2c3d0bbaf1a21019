"""`purge`: delete one project's rows everywhere, so its id may be bound to another account.

A project is bound to one Stripe account for life (see ``registry.AccountMismatch``); this is
the operator's explicit way out. It deletes the project's rows from every table of
``warehouse.duckdb`` that has a ``project_id`` column (raw tables and dlt's merge staging,
dbt's staging, intermediate and mart tables), the dlt child tables hanging off them, its dlt
pipeline state (in the warehouse and under ``.dlt``), republishes ``reporting.duckdb``, deletes
its webhook inbox rows and its default HTML report, and last removes its registry entry,
binding included. A purge that
fails half-way keeps the binding, so running it again finishes the job.
"""

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from stripe_warehouse.build_lock import dbt_build_turn
from stripe_warehouse.errors import WarehouseError, WarehouseLocked, warehouse_locked
from stripe_warehouse.publish import publish_marts, published_path
from stripe_warehouse.registry import ConnectionStore, validate_project_id
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import PostgresReader, WarehouseTarget
from stripe_warehouse.writer_lock import warehouse_writer

DLT_DIR = ".dlt"
REPORTS_DIR = "reports"  # where `stripe-warehouse report` writes without --out
DLT_STATE_TABLE = "_dlt_pipeline_state"
# The most load lanes a sync may use (pipelines.segments.LANES <= this): their working
# directories are purged with the project.
MAX_LANES = 4


def pipeline_name(project_id: str) -> str:
    """The dlt pipeline that syncs ``project_id`` (see pipelines/load.py)."""
    return f"stripe_{project_id}"


def pipeline_names(project_id: str, lanes: int) -> list[str]:
    """The dlt pipelines of the ``lanes`` load lanes of ``project_id``'s syncs
    (pipelines/segments.py): the first is :func:`pipeline_name`; the others add ``-2``,
    ``-3``... (no project id has a hyphen, so no other project's pipeline has that name)."""
    first = pipeline_name(project_id)
    return [first, *(f"{first}-{lane}" for lane in range(2, lanes + 1))]


@dataclass(frozen=True)
class PurgeResult:
    """Rows deleted per place (``"warehouse marts.dim_customers"``, ``"inbox"``, ...)."""

    project_id: str
    deleted: dict[str, int] = field(default_factory=dict)
    forgotten: bool = False  # whether a registry entry was removed
    removed_files: tuple[str, ...] = ()  # state-directory files that held the project's data

    @property
    def total(self) -> int:
        """Rows deleted in all places."""
        return sum(self.deleted.values())

    def summary(self) -> str:
        """One line for the CLI."""
        places = sum(1 for n in self.deleted.values() if n)
        binding = ("; its registry entry and account binding are removed: it can be connected "
                   "to any Stripe account" if self.forgotten else "; it was not in the registry")
        files = f" and {', '.join(self.removed_files)}" if self.removed_files else ""
        return (f"purged {self.project_id}: deleted {self.total:,} rows from {places} tables"
                f"{files}{binding}")


def purge_project(store: ConnectionStore, project_id: str) -> PurgeResult:
    """Delete every row of ``project_id`` and then its registry entry; it must not be active."""
    validate_project_id(project_id)
    connection = next((c for c in store.list() if c.project_id == project_id), None)
    if connection is not None and connection.status == "active":
        raise WarehouseError(
            f"project {project_id} is connected: run `stripe-warehouse disconnect {project_id}` "
            "first, then purge it"
        )
    home = store.home
    deleted = purge_warehouse(home, project_id)
    deleted["inbox"] = _purge_inbox(StateDir.of(home).inbox, project_id)
    for name in pipeline_names(project_id, MAX_LANES):
        shutil.rmtree(home / DLT_DIR / name, ignore_errors=True)
    report = Path(REPORTS_DIR) / f"{project_id}.html"
    removed = (str(report),) if (home / report).exists() else ()
    (home / report).unlink(missing_ok=True)
    forgotten = store.forget(project_id)  # last: until here a rerun still knows the binding
    return PurgeResult(project_id, deleted, forgotten, removed)


def purge_warehouse(home: Path, project_id: str) -> dict[str, int]:
    """Delete ``project_id``'s rows from ``warehouse.duckdb`` in one transaction, then
    republish ``reporting.duckdb`` without them; rows deleted per table. On a PostgreSQL
    warehouse, from every schema of its database in one transaction.

    Every write to the warehouse in a purge happens here, under the shared writer lock.
    """
    state = StateDir.of(home)
    if state.target.is_postgres:
        # no dbt build meanwhile on any machine: it could write back marts rows of the project
        with dbt_build_turn(state, f"purge of {project_id}"):
            return _purge_postgres(state.target, project_id)
    path = state.warehouse
    if not path.exists():
        return {}
    with warehouse_writer(home, f"purge of {project_id}"):
        return _purge_warehouse_file(home, path, project_id)


def _purge_postgres(target: WarehouseTarget, project_id: str) -> dict[str, int]:
    """The same deletes in one transaction on the server (raw, per-project staging, models);
    readers read the server: nothing to republish."""
    con = PostgresReader(target.connect())
    try:
        try:
            deleted = _delete_project_rows(con, project_id)  # type: ignore[arg-type]
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.close()
    return deleted


def _purge_warehouse_file(home: Path, path: Path, project_id: str) -> dict[str, int]:
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as error:
        if warehouse_locked(str(error)):
            raise WarehouseLocked(path, f"run purge {project_id}") from None
        raise
    try:
        con.begin()
        try:
            deleted = _delete_project_rows(con, project_id)
            con.commit()
        except BaseException:
            con.rollback()  # all or nothing: a failed purge leaves the data as it was
            raise
    finally:
        con.close()
    deleted |= _republish(home, project_id)
    return deleted


def _delete_project_rows(con: duckdb.DuckDBPyConnection, project_id: str) -> dict[str, int]:
    columns: dict[str, set[str]] = {}
    for schema, table, column in con.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t using (table_catalog, table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.table_catalog = current_database()"
    ).fetchall():
        columns.setdefault(f'"{schema}"."{table}"', set()).add(column)
    deleted: dict[str, int] = {}
    # dlt child tables (``parent__field``) carry no project_id: they hang off their root
    # table's ``_dlt_id`` through ``_dlt_root_id``; delete them before their roots.
    for name, cols in columns.items():
        if "project_id" in cols or "_dlt_root_id" not in cols:
            continue
        root = name.split("__")[0] + '"'
        if "project_id" in columns.get(root, set()):
            deleted[name] = _affected(con, (
                f"delete from {name} where _dlt_root_id in "
                f"(select _dlt_id from {root} where project_id = ?)"), project_id)
    for name, cols in columns.items():
        if "project_id" in cols:
            deleted[name] = _affected(
                con, f"delete from {name} where project_id = ?", project_id)
        elif name.endswith(f'"{DLT_STATE_TABLE}"') and "pipeline_name" in cols:
            # Otherwise dlt would restore the purged pipeline's state at the next sync.
            deleted[name] = _affected(
                con, f"delete from {name} where pipeline_name = ? or starts_with(pipeline_name, ?)",
                pipeline_name(project_id), f"{pipeline_name(project_id)}-")
    return {f"warehouse {name.replace(chr(34), '')}": n for name, n in deleted.items()}


def _affected(con: duckdb.DuckDBPyConnection, sql: str, *parameters: str) -> int:
    row = con.execute(sql, list(parameters)).fetchone()
    return int(row[0]) if row else 0


def _republish(home: Path, project_id: str) -> dict[str, int]:
    """Republish the marts; the published copy's rows of ``project_id`` that went away."""
    published = published_path(home)
    if not published.exists():
        return {}
    before = _published_rows(published, project_id)
    publish_marts(home)
    after = _published_rows(published, project_id)
    return {f"reporting {table}": n - after.get(table, 0) for table, n in before.items()}


def _published_rows(path: Path, project_id: str) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.columns "
            "where column_name = 'project_id' and table_catalog = current_database()"
        ).fetchall()
        return {
            f"{schema}.{table}": con.execute(
                f'select count(*) from "{schema}"."{table}" where project_id = ?', [project_id]
            ).fetchone()[0]
            for schema, table in tables
        }


def _purge_inbox(path: Path, project_id: str) -> int:
    if not path.exists():
        return 0
    con = sqlite3.connect(path, timeout=10)
    try:
        with con:
            has_table = con.execute("select 1 from sqlite_master where type = 'table' "
                                    "and name = 'inbox_events'").fetchone()
            if not has_table:
                return 0
            return con.execute("delete from inbox_events where project_id = ?",
                               [project_id]).rowcount
    finally:
        con.close()
