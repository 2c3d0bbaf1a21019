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
    return path
