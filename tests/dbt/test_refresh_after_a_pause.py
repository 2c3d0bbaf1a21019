"""A refresh after a pause longer than its 7-day window still reads what happened in the pause.

Sandbox -> real sync over HTTP -> real `dbt build`, one small company. The project is backfilled
as if 12 days ago (day B), then not synced until today; during the pause a customer pays a
one-off $50.00 charge on day B+2 (10 days ago), outside today's 7-day refresh window. By hand
(METRICS-SPEC `stripe_revenue`: a standalone charge counts on the day it succeeded):
- day B+1 (the day before the charge): the charge counts nowhere;
- day B+2 (its day): revenue includes +$50.00 standalone;
- today's refresh + build: day B+2 still shows it, and the refreshes after it keep it.
On the code before the fix the refresh read activity from today - 7 days only, so the charge
was never loaded: day B+2 showed $0 of standalone charges, for good.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox.catalog import DAY
from sandbox.collection_shapes import standalone_charge
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "paused"
API_KEY = "sk_test_refresh_after_pause"


def standalone_charges(home, day: date) -> Decimal:
    """The day's standalone charges in the mart (USD: the company's customer pays in USD)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            "select coalesce(sum(standalone_charges), 0) from marts.fct_revenue_daily "
            "where project_id = ? and metric_date = ? and currency = 'USD'",
            [PROJECT_ID, day]).fetchone()
    return row[0]


@pytest.fixture(scope="module")
def paused_project(tmp_path_factory):
    now = int(time.time()) - 60
    backfilled_at, charged_at = now - 12 * DAY, now - 10 * DAY
    home = tmp_path_factory.mktemp("paused")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        company = generate_company(CompanyConfig(customers=4, years=1, seed=15, now=now))
        customer = next(c for c in company.objects["customer"]
                        if not c.get("deleted") and c["currency"] == "usd")
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_as_of(store, PROJECT_ID, home, server.url, "backfill", backfilled_at)
            build(home=home)
            charge_day = datetime.fromtimestamp(charged_at, UTC).date()
            before = {d: standalone_charges(home, d)
                      for d in (charge_day - timedelta(days=1), charge_day)}
            charge = standalone_charge(company, customer["id"], 5000, charged_at)
            after = []
            for _ in range(2):
                sync_project(store, PROJECT_ID, "refresh", home=home, api_base=server.url)
                build(home=home)
                after.append({d: standalone_charges(home, d)
                              for d in (charge_day - timedelta(days=1), charge_day)})
    return charge_day, charge, before, after


@pytest.mark.e2e
def test_a_charge_made_during_a_12_day_pause_counts_on_its_day_after_the_refresh(
        paused_project):
    charge_day, charge, before, after = paused_project
    assert charge["amount"] == 5000
    day_before = charge_day - timedelta(days=1)
    # the backfill 12 days ago knew nothing of it
    assert before[charge_day] == before[day_before]
    for refreshed in after:
        assert refreshed[charge_day] - before[charge_day] == Decimal("50")
        assert refreshed[day_before] == before[day_before]
