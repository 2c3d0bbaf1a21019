"""A warehouse holding a sandbox company's objects in the raw-table contract, as after a backfill.

Rows go through the same privacy allowlist as the sync; tables are created by the dbt tests'
helper (the contract's columns, without dlt's bookkeeping columns).
"""

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb

from pipelines.privacy import allowlist
from tests.dbt.raw_tables import connect, create_raw_tables, insert_objects, insert_sync_run

RAW_OBJECTS = {  # raw table -> sandbox object type
    "customers": "customer", "subscriptions": "subscription",
    "subscription_items": "subscription_item", "invoices": "invoice",
    "invoice_lines": "line_item", "charges": "charge", "prices": "price",
}


def load_backfill(home: Path, project_id: str, company: Any) -> None:
    """Write every object of ``company`` to ``home``'s warehouse, synced at ``company.now``."""
    synced_at = dt.datetime.fromtimestamp(company.now, dt.UTC)
    with connect(home / "warehouse.duckdb") as con:
        create_raw_tables(con)
        for table, kind in RAW_OBJECTS.items():
            rows = [allowlist(obj) for obj in company.objects[kind]]
            for row in rows:
                row.pop("lines", None)
                row.pop("refunds", None)
            insert_objects(con, table, project_id, rows, synced_at)
        insert_sync_run(con, project_id, synced_at - dt.timedelta(days=90), synced_at)


def raw_state(home: Path, project_id: str, read_times: bool = True) -> dict[str, list[tuple]]:
    """Every object row of the project, sorted, per table; ``read_times``: with ``_synced_at``.

    Events are compared without their arrival times.
    """
    state = {}
    synced_at = "epoch(_synced_at)" if read_times else "null"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for table in (*RAW_OBJECTS, "subscription_versions"):
            state[table] = sorted(con.execute(
                f"select id, data::varchar, {synced_at} from stripe_raw.{table} "
                "where project_id = ?", [project_id]).fetchall())
        state["events"] = sorted(con.execute(
            "select id, type, data::varchar from stripe_raw.events where project_id = ?",
            [project_id]).fetchall())
    return state


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a state directory's warehouse and registry (not its inbox)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("inbox.sqlite*"))
    return target


def active_subscription(company: Any) -> dict:
    """The company's first active subscription."""
    return next(s for s in company.objects["subscription"] if s["status"] == "active")


def query(home: Path, sql: str, *params: Any) -> list[tuple]:
    """Rows of ``sql`` on ``home``'s warehouse, read-only."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def deliver(service: Any, events: list[dict], **options: Any) -> None:
    """Send ``events`` signed to the service; every one must be acknowledged (200)."""
    deliveries = service.sender(**options).send(events)
    assert {d.status for d in deliveries} == {200}
