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
FOREVER = "FOREVER20"  # 20% off, forever; the generator deletes it after its last redemption
DISCOUNTED = "sub_1iv8L0000000024"  # seed 24: starter_usd_month since 2026-02-13, FOREVER20


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


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
    """The generated company (seed 24) whose coupon FOREVER20 was deleted on 2026-05-07, a day
    after its last redemption: MRR after the backfill, then after a refresh + build."""
    company = generate_company(CompanyConfig(customers=60, years=1, seed=24, now=NOW))
    sub = company.get("subscription", DISCOUNTED)
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
    deleted = date(2026, 5, 7)
    return [deleted - timedelta(days=1), deleted, _day(NOW)]


@pytest.mark.e2e
def test_a_deleted_forever_coupon_keeps_discounting(deleted_coupon) -> None:
    """FOREVER20 (20% off, forever) is deleted on 2026-05-07; the subscription keeps it.

    By hand: the subscription (starter_usd_month, 1 x $19, redeemed FOREVER20 on 2026-02-13)
    has gross $19, discount 20% = $3.80, net $15.20 on the day before the deletion, the day of
    it and today, after the backfill and after a refresh. Before the fix the coupon, no longer
    listed by /v1/coupons, was not loaded and the discount was dropped: net = gross = $19.
    """
    company, sub, after_backfill, home = deleted_coupon
    assert [(si["price"]["unit_amount"], si["quantity"]) for si in sub["items"]["data"]] == [
        (1900, 1)]
    assert [d["source"]["coupon"]["id"] for d in sub["discounts"]] == [FOREVER]
    # the generator deleted it the day after its last redemption (2026-05-06 15:08 UTC)
    last_redeemed = max(d["start"] for d in company.objects["discount"]
                        if d["source"]["coupon"]["id"] == FOREVER)
    assert _day(last_redeemed + DAY) == _checked_days()[1]
    assert company.get("coupon", FOREVER) is None  # not listed, not retrievable
    expected = (Decimal("19"), Decimal("3.8"), Decimal("15.2"))
    for day in _checked_days():
        assert after_backfill[day] == expected, day
        assert _mrr(home, sub["id"], day) == expected, day
