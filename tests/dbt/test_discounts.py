"""Discounts through the full pipeline: sandbox -> real sync over HTTP -> dbt build.

Case 7 of issue 14: a forever coupon deleted after it was redeemed keeps discounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.load import sync_project
from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

PROJECT_ID = "acme"
API_KEY = "sk_test_discounts"
NOW = 1_780_000_000  # 2026-05-28 20:26:40 UTC
DELETED_AT = NOW - 5 * DAY  # 2026-05-23: the coupon FOREVER20 is deleted that day
FOREVER = "FOREVER20"


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _discounted_by_forever(company: Company) -> dict:
    """An active subscription with a FOREVER20 discount whose items are all licensed monthly."""
    for sub in company.objects["subscription"]:
        coupons = [d["source"]["coupon"]["id"] for d in sub["discounts"]]
        prices = [si["price"] for si in sub["items"]["data"]]
        if (sub["status"] == "active" and coupons == [FOREVER]
                and all(p["recurring"]["interval"] == "month"
                        and p["recurring"]["interval_count"] == 1
                        and p["recurring"]["usage_type"] == "licensed" for p in prices)):
            return sub
    raise AssertionError("the seed has no active monthly subscription with FOREVER20")


def _mrr(home: Path, subscription_id: str, day: date) -> tuple[Decimal, Decimal, Decimal]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "select sum(gross_mrr), sum(discount_mrr), sum(net_mrr) "
            "from marts.fct_subscription_mrr_daily where subscription_id = ? and metric_date = ?",
            [subscription_id, day]).fetchone()
    finally:
        con.close()


@pytest.fixture(scope="module")
def deleted_coupon(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Company, dict, dict, Path]]:
    """A company whose coupon FOREVER20 was deleted 5 days ago, after subscriptions redeemed it:
    one warehouse after the backfill, the same warehouse again after a refresh + build."""
    company = generate_company(CompanyConfig(customers=60, years=1, seed=1, now=NOW))
    sub = _discounted_by_forever(company)
    company.delete_coupon(FOREVER, DELETED_AT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        backfilled = tmp_path_factory.mktemp("discounts_home")
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(backfilled))
        with SandboxServer(accounts={API_KEY: company}) as server:
            store = ConnectionStore(backfilled)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_project(store, PROJECT_ID, "backfill", home=backfilled, api_base=server.url,
                         now=NOW)
            build(home=backfilled)
            after_backfill = {d: _mrr(backfilled, sub["id"], d) for d in _checked_days()}
            sync_project(store, PROJECT_ID, "refresh", home=backfilled, api_base=server.url,
                         now=NOW + 3600)
            build(home=backfilled)
    yield company, sub, after_backfill, backfilled


def _checked_days() -> list[date]:
    deleted = _day(DELETED_AT)
    return [deleted - timedelta(days=1), deleted, _day(NOW)]


@pytest.mark.e2e
def test_a_deleted_forever_coupon_keeps_discounting(deleted_coupon) -> None:
    """FOREVER20 (20% off, forever) is deleted on 2026-05-23; the subscription keeps it.

    By hand: gross = sum over the items of unit_amount x quantity / 100 (monthly prices, so
    the monthly amount is the price); discount = 20% of gross; net = 80% of gross — on the day
    before the deletion, the day of it and today, after the backfill and after a refresh.
    Before the fix the coupon, no longer listed by /v1/coupons, was not loaded and the
    discount was dropped: net = gross.
    """
    company, sub, after_backfill, home = deleted_coupon
    gross = sum(Decimal(si["price"]["unit_amount"]) * si["quantity"]
                for si in sub["items"]["data"]) / 100
    expected = (gross, gross * Decimal("0.2"), gross * Decimal("0.8"))
    assert company.get("coupon", FOREVER) is None  # not listed, not retrievable
    for day in _checked_days():
        assert after_backfill[day] == expected, day
        assert _mrr(home, sub["id"], day) == expected, day
