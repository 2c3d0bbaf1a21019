"""Readers (BI tools, SQL sessions) stay connected while syncs and builds run."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from pipelines.load import sync_project
from stripe_warehouse.publish import published_path
from stripe_warehouse.transform import build

from .conftest import PROJECT, BuiltWarehouse

ACTIVE_TODAY = (
    "select value from marts.metrics_daily where project_id = 'acme' "
    "and metric = 'stripe_active_subscriptions' "
    "and metric_date = (select max(metric_date) from marts.metrics_daily)"
)


def _count_in_new_process(path: str) -> float:
    """What a brand-new reader (another process, as a BI tool is) sees."""
    code = (
        "import duckdb, sys;"
        "con = duckdb.connect(sys.argv[1], read_only=True);"
        f"print(con.execute({ACTIVE_TODAY!r}).fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def _add_a_subscription_then_sync_and_build(built: BuiltWarehouse) -> None:
    """One more active subscription today, then a refresh sync and a build (which publishes)."""
    customer = next(c for c in built.company.objects["customer"] if not c.get("deleted"))
    price = next(
        p for p in built.company.objects["price"]
        if p.get("recurring") and p["recurring"]["usage_type"] == "licensed"
        and p["billing_scheme"] == "per_unit"
    )
    built.company.create_subscription(customer["id"], price["id"], at=built.company.now - 60)
    sync_project(built.store, PROJECT, "refresh", home=built.home, api_base=built.server.url)
    build(home=built.home)


@pytest.mark.e2e
def test_reader_keeps_its_snapshot_across_sync_and_build_and_new_reader_sees_new_data(
    built: BuiltWarehouse,
) -> None:
    path = published_path(built.home)
    reader = duckdb.connect(str(path), read_only=True)
    before = reader.execute(ACTIVE_TODAY).fetchone()[0]

    # The sync and the build write while the reader holds the published file open.
    _add_a_subscription_then_sync_and_build(built)

    assert reader.execute(ACTIVE_TODAY).fetchone()[0] == before
    assert _count_in_new_process(str(path)) == before + 1
    reader.close()


@pytest.mark.e2e
def test_published_copy_is_readable_by_duckdb_1_4_and_sqlalchemy(built: BuiltWarehouse) -> None:
    path = published_path(built.home)
    with duckdb.connect(str(path), read_only=True) as con:
        tags = con.execute(
            "select tags from duckdb_databases() where path = ?", [str(path)]
        ).fetchone()[0]
        marts = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
    assert tags["storage_version"] == "v1.4.0+"
    assert {"metrics_daily", "fct_mrr_daily", "dim_customers", "fct_mrr_movements"} <= marts

    # The URI a Superset or Metabase user types (duckdb_engine passes the query as config).
    engine = sqlalchemy.create_engine(f"duckdb:///{path}?access_mode=read_only")
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "select metric, count(*) from marts.metrics_daily "
                "where project_id = :p group by metric order by metric"
            ),
            {"p": PROJECT},
        ).fetchall()
    engine.dispose()
    assert [r[0] for r in rows] == sorted(
        [
            "stripe_active_subscriptions", "stripe_arr", "stripe_customers",
            "stripe_failed_payments", "stripe_mrr", "stripe_revenue",
        ]
    )
    assert len({r[1] for r in rows}) == 1 and rows[0][1] >= 90


@pytest.mark.e2e
def test_readme_recipes_see_each_new_publish_and_mix_in_one_process(built: BuiltWarehouse) -> None:
    """The README's Python and SQLAlchemy recipes, as written there, in one long-lived process.

    DuckDB keeps one database instance per file and process while any connection to it is
    open: a pooled SQLAlchemy connection (the default QueuePool) kept the replaced file's old
    snapshot, and a plain `duckdb.connect` beside it failed with "different configuration"
    (duckdb-engine adds its user agent to the config). Opening per query (`with
    duckdb.connect(...)`) and `poolclass=NullPool` close every connection after use, so the next
    query opens the newest published file.
    """
    path = published_path(built.home)
    engine = sqlalchemy.create_engine(f"duckdb:///{path}?access_mode=read_only",
                                      poolclass=NullPool)

    def by_duckdb() -> float:
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(ACTIVE_TODAY).fetchall()[0][0]

    def by_sqlalchemy() -> float:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text(ACTIVE_TODAY)).scalar_one()

    before = by_sqlalchemy()
    assert by_duckdb() == before

    _add_a_subscription_then_sync_and_build(built)

    assert by_sqlalchemy() == before + 1
    assert by_duckdb() == before + 1
    assert by_sqlalchemy() == before + 1
    engine.dispose()
