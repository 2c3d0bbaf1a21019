"""The marts the readers read: a small sandbox company synced and built once per module, and a
hand-made published file whose figures can be checked by hand."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

API_KEY = "sk_test_serving"
PROJECT = "acme"


@dataclass
class BuiltWarehouse:
    home: Path
    company: Company
    server: SandboxServer
    store: ConnectionStore


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    home = tmp_path_factory.mktemp("serving-home")
    # restored as they were afterwards: another module's session-wide DBT_TARGET_PATH (tests/dbt)
    # must survive this one when both run in one process (pytest-xdist workers mix directories)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRIPE_WAREHOUSE_SECRET_KEY",
                     base64.b64encode(secrets.token_bytes(32)).decode())
        patch.setenv("DBT_TARGET_PATH", str(home / "dbt-target"))
        company = generate_company(CompanyConfig(customers=150, years=1, seed=11))
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT, "pro", API_KEY)
            sync_project(store, PROJECT, "backfill", home=home, api_base=server.url)
            build(home=home)
            yield BuiltWarehouse(home, company, server, store)


# A published file small enough to check by hand. The window is 2026-10-01 to 2026-12-06; the
# last day is the day of the last sync, so it is partial. Revenue is $100 a day to Nov 5,
# $110 a day from Nov 6 and $7 on the partial last day; failed payments 2 a day to Nov 5, then
# 1, then 0; MRR $1,000 + $10 a day; active subscriptions 5 + 1 a day, customers 10 + 1 a day.
HAND_FIRST_DAY = dt.date(2026, 10, 1)
HAND_LAST_DAY = dt.date(2026, 12, 6)
HAND_STEP_DAY = dt.date(2026, 11, 6)


def _hand_day_values(day: dt.date) -> dict[str, tuple[str, float]]:
    i = (day - HAND_FIRST_DAY).days
    partial, stepped = day == HAND_LAST_DAY, day >= HAND_STEP_DAY
    mrr = 1000.0 + 10 * i
    return {
        "stripe_mrr": ("USD", mrr),
        "stripe_arr": ("USD", 12 * mrr),
        "stripe_revenue": ("USD", 7.0 if partial else 110.0 if stepped else 100.0),
        "stripe_active_subscriptions": ("count", 5.0 + i),
        "stripe_customers": ("count", 10.0 + i),
        "stripe_failed_payments": ("count", 0.0 if partial else 1.0 if stepped else 2.0),
    }


def write_metrics_daily(path: Path, rows: list[tuple[str, dt.date, str, float, str]]) -> None:
    """A published file holding marts.metrics_daily with `rows` (project, day, metric, value,
    unit)."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema if not exists marts; create table marts.metrics_daily ("
            "project_id varchar, metric_date date, metric varchar, value double, unit varchar)"
        )
        con.executemany("insert into marts.metrics_daily values (?, ?, ?, ?, ?)", rows)


@pytest.fixture
def hand_marts(tmp_path: Path) -> Path:
    """reporting.duckdb holding the two marts the report reads, with the figures above."""
    path = tmp_path / "reporting.duckdb"
    rows = []
    day = HAND_FIRST_DAY
    while day <= HAND_LAST_DAY:
        rows += [(PROJECT, day, m, v, u) for m, (u, v) in _hand_day_values(day).items()]
        day += dt.timedelta(days=1)
    write_metrics_daily(path, rows)
    with duckdb.connect(str(path)) as con:
        # The first month has the tallest bar: a legend drawn inside the plot would cover it.
        con.execute(
            "create table marts.fct_mrr_movements_monthly as select * from (values "
            "('acme', date '2026-10-01', 900.0, 100.0, 0.0, 0.0, 10.0, 0.0), "
            "('acme', date '2026-11-01', 300.0, 20.0, 10.0, 5.0, 25.0, 0.0), "
            "('acme', date '2026-12-01', 60.0, 0.0, 0.0, 0.0, 0.0, 0.0)) as t(project_id, "
            "metric_month, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr, "
            "churn_mrr, fx_mrr)"
        )
        write_saas_marts(con)
    return path


# The SaaS marts of the hand-made file: October (the window's first month) and December (the
# month of the last sync) are partial, November is the one whole month. NRR 1m 101 %, GRR 1m
# 97 %, customer churn 4 % and ARPA $95.50 in November; in December so far 100 %, 100 %, 0 %,
# $96.25. Cohorts: October's 4 customers ($400) keep 3 in November ($330: 75 %, 82.5 %) and at
# the last sync in December ($345: 75 %, 86.25 %); November's 2 ($150) keep 1 ($90: 50 %, 60 %).
HAND_SAAS_MONTHS = (
    # month, first day, last day, partial, churn, gross/net MRR churn, NRR/GRR 1m, NRR/GRR 12m,
    # ARPA, LTV, quick ratio, trial conversion
    ("2026-10-01", "2026-10-01", "2026-10-31", True, 0.05, 0.04, 0.0, 1.0, 0.96, None, None,
     100.0, 2000.0, 2.5, 0.5),
    ("2026-11-01", "2026-11-01", "2026-11-30", False, 0.04, 0.03, -0.01, 1.01, 0.97, None, None,
     95.5, 2387.5, 3.5, 0.25),
    ("2026-12-01", "2026-12-01", "2026-12-06", True, 0.0, 0.0, 0.0, 1.0, 1.0, None, None,
     96.25, None, None, None),
)
HAND_COHORTS = (
    # cohort, month, months since, partial, customers, starting MRR, retained, retained MRR
    ("2026-10-01", "2026-10-01", 0, True, 4, 400.0, 4, 400.0),
    ("2026-10-01", "2026-11-01", 1, False, 4, 400.0, 3, 330.0),
    ("2026-10-01", "2026-12-01", 2, True, 4, 400.0, 3, 345.0),
    ("2026-11-01", "2026-11-01", 0, False, 2, 150.0, 2, 150.0),
    ("2026-11-01", "2026-12-01", 1, True, 2, 150.0, 1, 90.0),
)


def write_saas_marts(con: duckdb.DuckDBPyConnection, project: str = PROJECT) -> None:
    """marts.fct_saas_metrics_monthly and marts.fct_cohort_retention with the rows above."""
    con.execute(
        "create table if not exists marts.fct_saas_metrics_monthly (project_id varchar, "
        "metric_month date, first_day date, last_day date, is_partial_month boolean, "
        "customer_churn_rate decimal(18,6), gross_mrr_churn_rate decimal(18,6), "
        "net_mrr_churn_rate decimal(18,6), net_revenue_retention_1m decimal(18,6), "
        "gross_revenue_retention_1m decimal(18,6), net_revenue_retention_12m decimal(18,6), "
        "gross_revenue_retention_12m decimal(18,6), arpa decimal(18,6), ltv decimal(18,6), "
        "quick_ratio decimal(18,6), trial_conversion_rate decimal(18,6))"
    )
    con.executemany("insert into marts.fct_saas_metrics_monthly values "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(project, *row) for row in HAND_SAAS_MONTHS])
    con.execute(
        "create table if not exists marts.fct_cohort_retention (project_id varchar, "
        "cohort_month date, metric_month date, months_since_start integer, "
        "is_partial_month boolean, cohort_customers bigint, cohort_starting_mrr decimal(18,2), "
        "retained_customers bigint, retained_mrr decimal(18,2), logo_retention decimal(18,6), "
        "mrr_retention decimal(18,6))"
    )
    con.executemany(
        "insert into marts.fct_cohort_retention values "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, round(? / ?, 6), round(? / ?, 6))",
        [(project, *row, row[6], row[4], row[7], row[5]) for row in HAND_COHORTS])
