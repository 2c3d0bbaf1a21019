"""Alerts on a PostgreSQL warehouse: the rules read the server's marts (nothing is published
there), with the same findings as on the published DuckDB copy."""

import pytest

from stripe_warehouse.alerts import run_alerts
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.alerts.marts import connected_home, write_marts
from tests.alerts.test_rules import FAILED, MOVEMENTS, MRR, NOW, add

pytestmark = pytest.mark.postgres


@pytest.fixture
def home(tmp_path, monkeypatch):
    """test_rules.py's state directory: its project, its hand-written published marts."""
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    home = connected_home(tmp_path)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    write_marts(home, MRR, FAILED, MOVEMENTS)
    return home

TABLES = {
    "metrics_daily": "project_id text, metric_date date, metric text, value numeric(38, 6), "
                     "unit text",
    "fct_mrr_movements": "project_id text, customer_id text, metric_date date, "
                         "contraction_mrr numeric(38, 6), churn_mrr numeric(38, 6)",
}


def copy_marts_to_server(state_dir, url: str) -> None:
    """The hand-written marts of tests/alerts/marts.py, as tables of the server's `marts`."""
    import duckdb

    with duckdb.connect(str(state_dir / "reporting.duckdb"), read_only=True) as source:
        rows = {table: source.execute(f"select * from marts.{table}").fetchall()
                for table in TABLES}
    target = WarehouseTarget.postgres(url)
    con = target.connect()
    try:
        with con.cursor() as cur:
            cur.execute("create schema if not exists marts")
            for table, columns in TABLES.items():
                cur.execute(f"drop table if exists marts.{table}")
                cur.execute(f"create table marts.{table} ({columns})")
                placeholders = ", ".join(["%s"] * len(rows[table][0]))
                cur.executemany(f"insert into marts.{table} values ({placeholders})", rows[table])
        con.commit()
    finally:
        con.close()


def findings(state_dir):
    round_ = run_alerts(state_dir, now=NOW)
    assert round_.problems == []
    return sorted((f.rule.id, f.day, f.firing, str(f.value)) for f in round_.findings)


def test_rules_on_the_postgres_warehouse_find_what_they_find_on_the_published_copy(
        home, own_postgres_database):
    """The rules of test_rules.py, on the same numbers: MRR $1050 -> $900 (-14.29%, fires at
    10%), 21 failed payments (fires above 20), $1050.50 churned on DAY by cus_c and cus_d (fires
    above $1000); on DAY-1 none fires."""
    for kind, threshold in (("mrr_change", "10%"), ("failed_payments", "20"),
                            ("churned_mrr", "$1000")):
        add(home, kind, threshold)
    on_duckdb = findings(home)
    assert [(rule, firing) for rule, _, firing, _ in on_duckdb] == [
        ("churned_mrr-1", False), ("churned_mrr-1", True), ("failed_payments-1", False),
        ("failed_payments-1", True), ("mrr_change-1", False), ("mrr_change-1", True)]

    copy_marts_to_server(home, own_postgres_database)
    WarehouseTarget.postgres(own_postgres_database).save(home)
    (home / "reporting.duckdb").unlink()  # nothing is published on a PostgreSQL warehouse
    assert findings(home) == on_duckdb


def test_an_unreachable_server_is_one_problem_line_not_a_failed_build(home):
    add(home, "mrr_change", "10%")
    WarehouseTarget.postgres("postgresql://u:secret@127.0.0.1:1/warehouse").save(home)
    round_ = run_alerts(home, now=NOW)
    assert round_.findings == []
    assert len(round_.problems) == 1
    assert round_.problems[0].startswith("cannot read the marts from the PostgreSQL warehouse (")
    assert "secret" not in round_.problems[0]
