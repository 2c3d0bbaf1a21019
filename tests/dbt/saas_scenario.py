"""The SaaS-metrics company (issue 22): eight customers whose months are computed by hand in
tests/dbt/test_saas_metrics.py (rates, cohorts) and tests/dbt/test_semantic_layer.py (the
semantic layer's answers), built once per session (tests/dbt/conftest.py `saas_marts`).

Billing countries (customer.address.country): A, B and T1 in the US, C and D in Germany, E in
France, T3 in Great Britain; T2 gave no address (country null).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sandbox import trials
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import new_customer
from sandbox.renewals import renew_until_now
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "saas"
API_KEY = "sk_test_saas_metrics"
NOW = int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp())
SEP, OCT, NOV, AUG = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1), date(2026, 8, 1)


def at(day: str) -> int:
    """Unix seconds of 10:00 UTC on an ISO day of 2026."""
    return int(datetime.fromisoformat(f"2026-{day}T10:00:00+00:00").timestamp())


def subscribe(co: Company, plan: str, start: str, trial_days: int = 0,
              country: str | None = "US") -> dict:
    """A new customer (billing in `country`) subscribing at `start` to one unit of `plan`; its
    subscription."""
    customer = new_customer(co, "usd", at(start), country)
    co.create_subscription(customer["id"], co.price_by_key(plan)["id"], at(start),
                           trial_days=trial_days)
    return co.objects["subscription"][-1]


def paying(co: Company, plan: str, start: str, until: str | None = None,
           country: str = "US") -> dict:
    """A subscription paid at its start and at each monthly renewal (up to `until`)."""
    sub = subscribe(co, plan, start, country=country)
    sub["status"] = "active"
    renew_until_now(co, sub, at(until) if until else None)
    return sub


def saas_company() -> Company:
    co = generate_company(CompanyConfig(customers=0, years=1, seed=22, now=NOW))
    paying(co, "starter_usd_month", "06-01")  # A
    b = paying(co, "pro_usd_month", "06-15", until="09-20")
    co.cancel_subscription(b["id"], at("09-20"))
    c = paying(co, "starter_usd_month", "07-01", until="10-20", country="DE")
    co.change_quantity(c["id"], 3, at("10-20"))
    renew_until_now(co, c)
    d = paying(co, "starter_usd_month", "09-10", until="10-15", country="DE")
    co.cancel_subscription(d["id"], at("10-15"))
    paying(co, "pro_usd_month", "10-03", country="FR")  # E
    t1 = subscribe(co, "starter_usd_month", "09-05", trial_days=14)
    t1["status"] = "active"
    renew_until_now(co, t1)
    t2 = subscribe(co, "starter_usd_month", "09-12", trial_days=14, country=None)
    trials.pause_at_trial_end(co, t2)
    subscribe(co, "starter_usd_month", "10-25", trial_days=30, country="GB")  # T3
    return co


def build_saas_marts(home: Path) -> Path:
    """The company backfilled as of NOW into `home` and built: the warehouse file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts={API_KEY: saas_company()}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_as_of(store, PROJECT_ID, home, server.url, "backfill", NOW)
            build(home=home)
    return home / "warehouse.duckdb"
