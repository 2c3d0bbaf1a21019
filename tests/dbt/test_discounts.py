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
REPLACED = "sub_1iv8L0000000035"  # seed 24: 15 x $12 since 2026-03-13, SAVE5 ($5 off, 6 months)
REPLACED_AT = NOW - 4 * DAY  # 2026-05-24 20:26 UTC: SAVE5 replaced by LAUNCH25 (25%, 3 months)


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
    after its last redemption, and whose subscription REPLACED had its SAVE5 discount replaced
    by LAUNCH25 on 2026-05-24: MRR after the backfill, then after a refresh + build."""
    company = generate_company(CompanyConfig(customers=60, years=1, seed=24, now=NOW))
    sub = company.get("subscription", DISCOUNTED)
    company.replace_discounts(REPLACED, REPLACED_AT, "LAUNCH25")
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
            after_backfill = {(s, d): _mrr(backfilled, s, d) for s in (DISCOUNTED, REPLACED)
                              for d in _checked_days() + _replaced_days()}
            sync_project(store, PROJECT_ID, "refresh", home=backfilled, api_base=server.url,
                         now=NOW + 3600)
            build(home=backfilled)
    yield company, sub, after_backfill, backfilled


def _replaced_days() -> list[date]:
    replaced = _day(REPLACED_AT)
    return [replaced - timedelta(days=1), replaced, _day(NOW)]


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
        assert after_backfill[(DISCOUNTED, day)] == expected, day
        assert _mrr(home, sub["id"], day) == expected, day


@pytest.mark.e2e
def test_a_replaced_discount_stops_the_day_it_is_replaced(deleted_coupon) -> None:
    """SAVE5 ($5 off a month, 6 months from 2026-03-13) is replaced by LAUNCH25 (25% off, 3
    months) on 2026-05-24 (the customer.subscription.updated event lists it in
    previous_attributes.discounts).

    By hand: 15 seats x $12 = $180 gross. 2026-05-23: discount $5, net $175. 2026-05-24 and
    today (2026-05-28): discount 25% = $45, net $135 — after the backfill and after a refresh.
    Before the fix SAVE5 ran on to its natural end (2026-09-13) next to LAUNCH25: $50 off.
    """
    company, _, after_backfill, home = deleted_coupon
    sub = company.get("subscription", REPLACED)
    assert [(si["price"]["unit_amount"], si["quantity"]) for si in sub["items"]["data"]] == [
        (1200, 15)]
    before = (Decimal("180"), Decimal("5"), Decimal("175"))
    after = (Decimal("180"), Decimal("45"), Decimal("135"))
    for day, expected in zip(_replaced_days(), (before, after, after), strict=True):
        assert after_backfill[(REPLACED, day)] == expected, day
        assert _mrr(home, REPLACED, day) == expected, day
