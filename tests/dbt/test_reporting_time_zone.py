"""A project's days and months follow its reporting time zone, across a DST change (issue 22).

Sandbox -> real sync over HTTP -> real `dbt build`. One small company, in two projects of the
same warehouse: `ny` reports in America/New_York (`stripe-warehouse timezone ny
America/New_York`), `utc` in UTC (the default). New York leaves daylight saving time on
2026-11-01 at 06:00 UTC (02:00 EDT becomes 01:00 EST): Oct 31 is a day of UTC-4, Nov 1 a day
of 25 hours (04:00 UTC to 05:00 UTC the next day), Nov 2 a day of UTC-5.

Both companies, by hand (starter: $19.00 a month per unit):
- A subscribes to one starter at 2026-10-05 10:00 UTC (Oct 5 in both zones): MRR 19.
- B subscribes to one starter at 2026-10-15 10:00 UTC: MRR 19.
- B goes to 3 units at 2026-11-01 03:30 UTC = Oct 31 23:30 EDT: MRR 57, expansion +38.
  The proration is paid at once: (Nov 15 10:00 - Nov 1 03:30) / (Nov 15 10:00 - Oct 15 10:00)
  = 1 233 000 s / 2 678 400 s of the month; +5700 x that = 2624 cents for 3 units, -1900 x
  that = -875 cents for the unused unit: an invoice payment of $17.49.
- C (a customer since Nov 2 04:00 UTC) pays a one-off $50.00 charge at 2026-11-02 04:30
  UTC = Nov 1 23:30 EST, and one of $20.00 at 2026-11-03 02:00 UTC = Nov 2 21:00 EST.

ny (MRR at local midnight ending the day):
- MRR Oct 30 38, Oct 31 76 (its end is Nov 1 04:00 UTC, after the upgrade), Nov 1 76;
  expansion 38 on Oct 31; invoice payments $17.49 on Oct 31.
- standalone charges: Oct 31 0, Nov 1 50, Nov 2 20.
- Nov 1 starts at 04:00 UTC and lasts 25 hours.
- October ends at Nov 1 04:00 UTC: October's closing MRR is 76 with expansion 38; November's
  expansion is 0.
utc (unchanged by ny's zone: the days it had before):
- MRR Oct 31 38 (its end, Nov 1 00:00 UTC, is before the upgrade), Nov 1 76, Nov 2 76;
  expansion 38 and invoice payments $17.49 on Nov 1.
- standalone charges: Nov 1 0, Nov 2 50, Nov 3 20 (today).
- October closes at 38 without expansion; November's expansion is 38.

Two warehouses reach those numbers: one backfilled as of 2026-11-03 12:00 UTC (after every
change), and one backfilled as of 2026-10-30 12:00 UTC, both projects in UTC then; ny's zone is
set after that build, and the changes made; then two refreshes (Nov 3 12:00 and Nov 4 12:00
UTC), each built. The first refresh's build moves every day of ny to New York (a zone change
rebuilds the project's incremental days): its marts equal the first warehouse's on the days both
hold. Before the zone change the second warehouse's ny had UTC days (as utc's).
`stripe-warehouse verify` of each project (flows summed over the days of its zone, from the
Stripe API) agrees with the first warehouse: ny's last complete day, Nov 2, ends at Nov 3 05:00
UTC and holds the $20.00 charge, which UTC days would have left out of its 7 and 30 days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from commands.cli import main
from commands.verify import run_verify
from sandbox.collection_shapes import standalone_charge
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import new_customer
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of
from tests.dbt.warehouses import POSTGRES, home_factory, reading_warehouse

pytestmark = pytest.mark.e2e

KEYS = {"ny": "sk_test_tz_new_york", "utc": "sk_test_tz_utc"}
NEW_YORK = "America/New_York"
OCT30, OCT31, NOV1, NOV2, NOV3 = (date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1),
                                  date(2026, 11, 2), date(2026, 11, 3))
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)


def _at(moment: str) -> int:
    return int(datetime.fromisoformat(f"{moment}+00:00").timestamp())


UPGRADE_AT, CHARGE_AT = _at("2026-11-01T03:30:00"), _at("2026-11-02T04:30:00")
EVENING_CHARGE_AT = _at("2026-11-03T02:00:00")
BACKFILL_LATE, BACKFILL_EARLY = _at("2026-11-03T12:00:00"), _at("2026-10-30T12:00:00")
REFRESHES = (_at("2026-11-03T12:00:00"), _at("2026-11-04T12:00:00"))


def _company() -> tuple[Company, dict]:
    """A and B paying one starter each (B's subscription returned); the changes come later."""
    co = generate_company(CompanyConfig(customers=0, years=1, seed=22, now=REFRESHES[-1]))
    subscriptions = {}
    for name, start in (("a", "2026-10-05T10:00:00"), ("b", "2026-10-15T10:00:00")):
        customer = new_customer(co, "usd", _at(start))
        co.create_subscription(customer["id"], co.price_by_key("starter_usd_month")["id"],
                               _at(start))
        subscriptions[name] = co.objects["subscription"][-1]
        subscriptions[name]["status"] = "active"
    return co, subscriptions["b"]


def _change(co: Company, b: dict) -> None:
    """B's upgrade and C's one-off charge."""
    co.change_quantity(b["id"], 3, UPGRADE_AT)
    c = new_customer(co, "usd", _at("2026-11-02T04:00:00"))
    standalone_charge(co, c["id"], 5000, CHARGE_AT)
    standalone_charge(co, c["id"], 2000, EVENING_CHARGE_AT)


def _figures(home: Path) -> dict[str, dict]:
    """Per project: MRR, expansion, invoice payments, standalone charges by day; month
    closings and expansions; the reporting days' bounds."""
    found: dict[str, dict] = {}
    with reading_warehouse(home) as con:
        def by_day(sql: str, project: str) -> dict:
            return dict(con.execute(sql, [project]).fetchall())

        for project in KEYS:
            found[project] = {
                "mrr": by_day("select metric_date, mrr from marts.fct_mrr_daily "
                              "where project_id = ?", project),
                "expansion": by_day("select metric_date, sum(expansion_mrr) "
                                    "from marts.fct_mrr_movements where project_id = ? "
                                    "group by metric_date", project),
                "invoice_payments": by_day(
                    "select metric_date, invoice_payments from marts.fct_revenue_daily "
                    "where project_id = ?", project),
                "standalone": by_day("select metric_date, standalone_charges "
                                     "from marts.fct_revenue_daily where project_id = ?", project),
                "months": {month: (closing, expansion) for month, closing, expansion in
                           con.execute("select metric_month, closing_mrr, expansion_mrr "
                                       "from marts.fct_mrr_movements_monthly "
                                       "where project_id = ?", [project]).fetchall()},
                "days": {day: (starts, ends) for day, starts, ends in con.execute(
                    "select metric_date, day_starts_at, next_day_starts_at "
                    "from intermediate.int_reporting_days where project_id = ?",
                    [project]).fetchall()},
            }
    return found


def _connect(store: ConnectionStore) -> None:
    for project, key in KEYS.items():
        store.connect(project, "pro", key)


def _backfilled(home: Path, patch: pytest.MonkeyPatch, verify: bool = True) -> dict[str, dict]:
    """Both projects, ny in New York, backfilled as of Nov 3 12:00 UTC (after every change)
    into `home` and built: their figures, with `verify`'s report of each project (DuckDB:
    verify reads the published copy)."""
    companies = {project: _company() for project in KEYS}
    for co, b in companies.values():
        _change(co, b)
    with SandboxServer(accounts={KEYS[p]: companies[p][0] for p in KEYS}) as server:
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        store = ConnectionStore(home)
        _connect(store)
        assert main(["timezone", "ny", NEW_YORK]) == 0
        for project in KEYS:
            sync_as_of(store, project, home, server.url, "backfill", BACKFILL_LATE)
        build(home=home)
        found = _figures(home)
        for project in KEYS if verify else ():
            found[project]["verify"] = run_verify(home, project, api_base=server.url)
        return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, object]:
    """{"backfill": figures, "before_zone": figures, "refreshes": [figures, figures]}."""
    results: dict[str, object] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        results["backfill"] = _backfilled(tmp_path_factory.mktemp("tz_backfill"), patch)
        early = tmp_path_factory.mktemp("tz_refresh")
        companies = {project: _company() for project in KEYS}
        with SandboxServer(accounts={KEYS[p]: companies[p][0] for p in KEYS}) as server:
            patch.setenv("STRIPE_WAREHOUSE_HOME", str(early))
            store = ConnectionStore(early)
            _connect(store)
            for project in KEYS:
                sync_as_of(store, project, early, server.url, "backfill", BACKFILL_EARLY)
            build(home=early)
            results["before_zone"] = _figures(early)
            assert main(["timezone", "ny", NEW_YORK]) == 0
            for co, b in companies.values():
                _change(co, b)
            results["refreshes"] = []
            for at in REFRESHES:
                for project in KEYS:
                    sync_as_of(store, project, early, server.url, "refresh", at)
                build(home=early)
                results["refreshes"].append(_figures(early))
    return results


def _stages(built: dict) -> list[tuple[str, dict]]:
    return [("backfill", built["backfill"]),
            *((f"refresh {n + 1}", f) for n, f in enumerate(built["refreshes"]))]


def test_an_upgrade_at_2330_edt_counts_on_oct_31_in_new_york_and_nov_1_in_utc(built):
    for stage, found in _stages(built):
        ny, utc = found["ny"], found["utc"]
        assert [ny["mrr"][d] for d in (OCT30, OCT31, NOV1)] == [38, 76, 76], stage
        assert [ny["expansion"].get(d, 0) for d in (OCT30, OCT31, NOV1)] == [0, 38, 0], stage
        assert ny["invoice_payments"][OCT31] == Decimal("17.49"), stage
        assert NOV1 not in ny["invoice_payments"] or ny["invoice_payments"][NOV1] == 0, stage
        assert [utc["mrr"][d] for d in (OCT31, NOV1, NOV2)] == [38, 76, 76], stage
        assert [utc["expansion"].get(d, 0) for d in (OCT31, NOV1, NOV2)] == [0, 38, 0], stage
        assert utc["invoice_payments"][NOV1] == Decimal("17.49"), stage
        assert OCT31 not in utc["invoice_payments"], stage


def test_a_charge_at_2330_est_counts_on_nov_1_in_new_york_and_nov_2_in_utc(built):
    for stage, found in _stages(built):
        ny, utc = found["ny"]["standalone"], found["utc"]["standalone"]
        assert [ny.get(d, 0) for d in (OCT31, NOV1, NOV2)] == [0, 50, 20], stage
        assert [utc.get(d, 0) for d in (NOV1, NOV2, NOV3)] == [0, 50, 20], stage


def test_the_day_of_the_dst_change_has_25_hours_in_new_york(built):
    for stage, found in _stages(built):
        days = found["ny"]["days"]
        assert days[OCT31] == (datetime(2026, 10, 31, 4), datetime(2026, 11, 1, 4)), stage
        assert days[NOV1] == (datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5)), stage
        assert days[NOV1][1] - days[NOV1][0] == timedelta(hours=25), stage
        assert days[NOV2] == (datetime(2026, 11, 2, 5), datetime(2026, 11, 3, 5)), stage
        utc_days = found["utc"]["days"]
        assert utc_days[NOV1] == (datetime(2026, 11, 1), datetime(2026, 11, 2)), stage


def test_verify_sums_the_flows_over_the_project_days(built):
    for project in KEYS:
        report, code = built["backfill"][project]["verify"]
        assert code == 0, report
        assert "revenue 7 days" in report and "DIFF" not in report, report


def test_october_ends_at_new_york_midnight(built):
    for stage, found in _stages(built):
        assert found["ny"]["months"][OCT] == (76, 38), stage
        assert found["ny"]["months"][NOV][1] == 0, stage
        assert found["utc"]["months"][OCT] == (38, 0), stage
        assert found["utc"]["months"][NOV][1] == 38, stage


def test_a_zone_change_moves_every_day_of_the_project_at_the_next_build(built):
    before = built["before_zone"]
    # both projects had UTC days: A's new MRR on Oct 5 and B's on Oct 15, UTC midnights
    for project in KEYS:
        assert before[project]["days"][date(2026, 10, 5)] == (
            datetime(2026, 10, 5), datetime(2026, 10, 6)), project
    after = built["refreshes"][0]["ny"]
    backfilled = built["backfill"]["ny"]
    assert after["days"][date(2026, 10, 5)] == (datetime(2026, 10, 5, 4), datetime(2026, 10, 6, 4))
    # the refreshed warehouse (built incrementally) equals the one backfilled under the zone
    # (as of the same instant) on every day both hold
    common = sorted(set(after["mrr"]) & set(backfilled["mrr"]))
    assert len(common) > 60
    for figure in ("mrr", "expansion", "days"):
        assert {d: after[figure].get(d) for d in common} == {
            d: backfilled[figure].get(d) for d in common}, figure


@pytest.mark.postgres
@pytest.mark.extended  # a scenario's PostgreSQL variant: `make test-extended`
def test_postgresql_gives_the_same_local_days(built, tmp_path_factory, postgres_url):
    """The same backfill on a PostgreSQL warehouse (the zone conversions are the same SQL,
    `at time zone`, on both targets): the same figures as on DuckDB, hand-checked above."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        home = home_factory(tmp_path_factory, POSTGRES, postgres_url)("tz_postgres")
        found = _backfilled(home, patch, verify=False)
    assert found["ny"]["days"][NOV1] == (datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5))
    assert found["ny"]["standalone"][NOV1] == 50
    assert found == {project: {k: v for k, v in figures.items() if k != "verify"}
                     for project, figures in built["backfill"].items()}
