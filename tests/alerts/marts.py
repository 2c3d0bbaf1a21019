"""A hand-written published marts file (reporting.duckdb) for alert tests: the two tables the
rules read, with numbers chosen so each rule crosses its threshold on DAY and not the day
before. The numbers (and the arithmetic behind each alert) are in each test's docstring."""

import datetime as dt
from pathlib import Path

import duckdb

from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.state_dir import StateDir

PROJECT = "shop"
DAY = dt.date(2026, 11, 30)


def write_marts(home: Path, mrr: dict[dt.date, str], failed: dict[dt.date, int],
                movements: list[tuple[dt.date, str, str, str]], target: Path | None = None
                ) -> None:
    """Replace ``reporting.duckdb`` (or ``target``) with these numbers (atomically, like a
    publish).

    ``movements``: (day, customer_id, contraction_mrr, churn_mrr)."""
    target = target or StateDir.of(home).reporting
    tmp = target.with_name(".alerts-test.duckdb")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.metrics_daily (project_id text, metric_date date, "
                    "metric text, value decimal(38, 6), unit text)")
        con.execute("create table marts.fct_mrr_movements (project_id text, customer_id text, "
                    "metric_date date, contraction_mrr decimal(38, 6), "
                    "churn_mrr decimal(38, 6))")
        for day, value in mrr.items():
            con.execute("insert into marts.metrics_daily values (?, ?, 'stripe_mrr', ?, 'USD')",
                        [PROJECT, day, value])
        for day, count in failed.items():
            con.execute("insert into marts.metrics_daily values "
                        "(?, ?, 'stripe_failed_payments', ?, 'count')", [PROJECT, day, count])
        for day, customer, contraction, churn in movements:
            con.execute("insert into marts.fct_mrr_movements values (?, ?, ?, ?, ?)",
                        [PROJECT, customer, day, contraction, churn])
    tmp.replace(target)


def connected_home(tmp_path: Path) -> Path:
    """A state directory with PROJECT connected (no network: the registry only)."""
    home = tmp_path / "home"
    ConnectionStore(home).connect(PROJECT, "pro", "sk_test_alerts", account_id="acct_alerts")
    return home
