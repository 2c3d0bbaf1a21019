"""Issue 22 segments: MRR, movements and rates split by plan, price, billing interval, currency,
country and named metadata keys (fct_mrr_by_segment_monthly), through the real pipeline:
sandbox -> real sync over HTTP -> `dbt build`, after a backfill run after the change and after
a backfill before it followed by refreshes (tests/dbt/change_scenarios.py: the session's
shared warehouses).

The project names customer metadata key `tier` and subscription key `channel` for segments
(`stripe-warehouse segments`); every other metadata key (the customers' planted `crm_note`,
C's `ssn`) must stay out of the warehouse. Four USD customers, subscribed 45 days ago (so
before the month of the change: every one pays when that month opens) and renewed monthly:
- A (country DE, tier gold): Starter $19/month, channel partner; on day D (5 days ago) its
  quantity goes 1 -> 3: $57 (expansion 38).
- B (US, tier silver): Pro $12/month, channel web; canceled at once on D (churn 12).
- C (US, tier gold, ssn): Pro $120/year = $10/month, no channel.
- E (US, no tier): Starter $19/month with channel web and Pro $12/month with channel partner:
  $31, labelled by what it pays most for: plan Starter, price starter_usd_month, channel web.

By hand, for the month holding D (opening before D, closing after it):
- plan: Starter (A, E): opening 19 + 31 = 50, closing 57 + 31 = 88, expansion 38, 2 customers
  at start and end, churn rate 0, NRR (57 + 31) / 50 = 1.76, GRR (19 + 31) / 50 = 1, ARPA 44.
  Pro (B, C): opening 12 + 10 = 22, closing 10, churn 12, 2 at start, 1 at end, 1 churned:
  churn rate 0.5, NRR = GRR = 10 / 22 = 0.454545, ARPA 10.
- price: starter_usd_month as Starter; pro_usd_month (B) 12 -> 0; pro_usd_year (C) 10 -> 10.
- billing_interval: month (A, B, E) 62 -> 88, expansion 38, churn 12; year (C) 10 -> 10.
- currency: USD (everyone) 72 -> 98, expansion 38, churn 12, churn rate 1 / 4 = 0.25, NRR
  98 / 72 = 1.361111, GRR (19 + 10 + 31) / 72 = 0.833333, ARPA 98 / 3 = 32.666667: the
  project's own fct_saas_metrics_monthly figures.
- customer.tier: gold (A, C) 29 -> 67, expansion 38; silver (B) 12 -> 0, churn rate 1, NRR
  and GRR 0, ARPA none (no customer at the end); (none) (E) 31 -> 31.
- subscription.channel: partner (A) 19 -> 57; web (B, E) 43 -> 31, churn 12; (none) (C) 10.
- country: DE (A) 19 -> 57; US (B, C, E) 53 -> 41, churn 12.
A later month (when today is past D's month) keeps the closing values and has no movement.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from sandbox.catalog import DAY
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import new_customer
from sandbox.renewals import renew_until_now
from tests.dbt.change_scenarios import ChangeScenario, Timeline, register
from tests.dbt.warehouses import query

API_KEY = "sk_test_segments"
FIGURES = ("opening_mrr, closing_mrr, new_mrr, expansion_mrr, churn_mrr, customers_at_start, "
           "customers_at_end, churned_customers, customer_churn_rate, "
           "net_revenue_retention_1m, gross_revenue_retention_1m, arpa")
NAMES = tuple(name.strip() for name in FIGURES.split(","))
# the figures fct_saas_metrics_monthly has too (not the movements)
TOTALS = tuple(n for n in NAMES if n not in ("new_mrr", "expansion_mrr", "churn_mrr"))


def d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def figures(opening: str, closing: str, new: str = "0", expansion: str = "0", churn: str = "0",
            at_start: int = 0, at_end: int = 0, churned: int = 0, churn_rate: str | None = "0",
            nrr: str | None = None, grr: str | None = None, arpa: str | None = None
            ) -> dict[str, Any]:
    return dict(zip(NAMES, (d(opening), d(closing), d(new), d(expansion), d(churn), at_start,
                            at_end, churned, d(churn_rate), d(nrr), d(grr), d(arpa)),
                    strict=True))


EXPECTED_MONTH_OF_CHANGE = {
    "plan": {
        "Starter": figures("50", "88", expansion="38", at_start=2, at_end=2, nrr="1.76",
                           grr="1", arpa="44"),
        "Pro (per seat)": figures("22", "10", churn="12", at_start=2, at_end=1, churned=1,
                                  churn_rate="0.5", nrr="0.454545", grr="0.454545", arpa="10"),
    },
    "price": {
        "starter_usd_month": figures("50", "88", expansion="38", at_start=2, at_end=2,
                                     nrr="1.76", grr="1", arpa="44"),
        "pro_usd_month": figures("12", "0", churn="12", at_start=1, churned=1, churn_rate="1",
                                 nrr="0", grr="0"),
        "pro_usd_year": figures("10", "10", at_start=1, at_end=1, nrr="1", grr="1", arpa="10"),
    },
    "billing_interval": {
        "month": figures("62", "88", expansion="38", churn="12", at_start=3, at_end=2,
                         churned=1, churn_rate="0.333333", nrr="1.419355", grr="0.806452",
                         arpa="44"),
        "year": figures("10", "10", at_start=1, at_end=1, nrr="1", grr="1", arpa="10"),
    },
    "currency": {
        "USD": figures("72", "98", expansion="38", churn="12", at_start=4, at_end=3, churned=1,
                       churn_rate="0.25", nrr="1.361111", grr="0.833333", arpa="32.666667"),
    },
    "customer.tier": {
        "gold": figures("29", "67", expansion="38", at_start=2, at_end=2, nrr="2.310345",
                        grr="1", arpa="33.5"),
        "silver": figures("12", "0", churn="12", at_start=1, churned=1, churn_rate="1",
                          nrr="0", grr="0"),
        "(none)": figures("31", "31", at_start=1, at_end=1, nrr="1", grr="1", arpa="31"),
    },
    "subscription.channel": {
        "partner": figures("19", "57", expansion="38", at_start=1, at_end=1, nrr="3", grr="1",
                           arpa="57"),
        "web": figures("43", "31", churn="12", at_start=2, at_end=1, churned=1,
                       churn_rate="0.5", nrr="0.72093", grr="0.72093", arpa="31"),
        "(none)": figures("10", "10", at_start=1, at_end=1, nrr="1", grr="1", arpa="10"),
    },
}
EXPECTED_COUNTRY = {
    "DE": figures("19", "57", expansion="38", at_start=1, at_end=1, nrr="3", grr="1",
                  arpa="57"),
    "US": figures("53", "41", churn="12", at_start=3, at_end=2, churned=1,
                  churn_rate="0.333333", nrr="0.773585", grr="0.773585", arpa="20.5"),
}
PERSONAL = ("123-45-6789", "prefers email")  # C's ssn, the planted crm_note


def paying(co: Company, price_key: str, customer: dict, start: int,
           channel: str | None = None, until: int | None = None) -> dict:
    """A subscription paid at `start` and at each renewal up to `until` (default: now)."""
    co.create_subscription(customer["id"], co.price_by_key(price_key)["id"], start)
    sub = co.objects["subscription"][-1]
    sub["status"] = "active"
    if channel:
        sub["metadata"] = {"channel": channel}
    renew_until_now(co, sub, until)
    return sub


def segments_company(times: Timeline) -> tuple[Company, dict[str, str]]:
    """The four customers above; the subjects: {A, B}'s subscription ids."""
    co = generate_company(CompanyConfig(customers=0, years=1, seed=22, now=times.now))
    start = times.now - 45 * DAY

    def customer(country: str, metadata: dict[str, str]) -> dict:
        made = new_customer(co, "usd", start - DAY)
        made["address"]["country"] = country
        made["metadata"] = dict(made["metadata"], **metadata)
        return made

    a = paying(co, "starter_usd_month", customer("DE", {"tier": "gold"}), start, "partner",
               until=times.removed)
    b = paying(co, "pro_usd_month", customer("US", {"tier": "silver"}), start, "web",
               until=times.removed)
    paying(co, "pro_usd_year", customer("US", {"tier": "gold", "ssn": "123-45-6789"}), start)
    e = customer("US", {})
    paying(co, "starter_usd_month", e, start, "web")
    paying(co, "pro_usd_month", e, start, "partner")
    return co, {"A": a["id"], "B": b["id"]}


def change(co: Company, subs: dict[str, str], at: int) -> list[dict]:
    """A's quantity 1 -> 3 and B canceled, both at `at` (no renewal falls after it)."""
    return co.change_quantity(subs["A"], 3, at) + co.cancel_subscription(subs["B"], at)


def read(home, subs: dict[str, str], project: str) -> dict[str, Any] | None:
    """{(month, segment, value): figures} and the raw rows holding personal metadata (None
    while the mart is not built: the runner's first builds select the MRR models only)."""
    built = query(home, "select count(*) from information_schema.tables where table_schema = "
                  "'marts' and table_name = 'fct_mrr_by_segment_monthly'")[0][0]
    if not built:
        return None
    rows = query(home, f"select metric_month, segment, segment_value, {FIGURES} "
                 "from marts.fct_mrr_by_segment_monthly where project_id = ?", [project])
    totals = query(home, f"select metric_month, {', '.join(TOTALS)} "
                   "from marts.fct_saas_metrics_monthly where project_id = ?", [project])
    leaks = query(home, "select count(*) from stripe_raw.customers where project_id = ? and ("
                  + " or ".join(["cast(data as varchar) like ?"] * len(PERSONAL)) + ")",
                  [project, *(f"%{text}%" for text in PERSONAL)])[0][0]
    return {
        "segments": {(r[0], r[1], r[2]): dict(zip(NAMES, r[3:], strict=True)) for r in rows},
        "totals": {r[0]: r[1:] for r in totals},
        "leaks": leaks,
    }


SEGMENTS = register(ChangeScenario(
    API_KEY, segments_company, change=change, read=read,
    scenarios=("backfill_after", "refreshes"),
    segment_metadata_keys={"customer": ["tier"], "subscription": ["channel"]}))


@pytest.fixture(scope="module")
def segment_histories(change_histories, warehouse_kind):
    return change_histories(warehouse_kind, SEGMENTS)


def month_of(day: date) -> date:
    return day.replace(day=1)


def of_month(history: dict[str, Any], month: date, segment: str) -> dict[str, dict]:
    return {value: figures for (m, s, value), figures in history["segments"].items()
            if m == month and s == segment}


# the stages whose build is whole (the mart is built): the late backfill and the last refresh
# (the runner's number of refreshes is the most any registered case asks for)
BUILT_STAGES = ("backfill_after", "last_refresh")


def built_stage(histories: dict[str, Any], stage: str) -> dict[str, Any]:
    if stage == "last_refresh":
        stage = max((name for name in histories if name.startswith("refreshes_refresh_")),
                    key=lambda name: int(name.rsplit("_", 1)[1]))
    return histories[stage]


@pytest.mark.e2e
@pytest.mark.parametrize("stage", BUILT_STAGES)
def test_the_month_of_the_change_splits_by_each_segment_as_computed_by_hand(
        segment_histories, stage):
    times, histories = segment_histories
    history = built_stage(histories, stage)
    month = month_of(times.day(times.removed))
    for segment, expected in EXPECTED_MONTH_OF_CHANGE.items():
        assert (segment, of_month(history, month, segment)) == (segment, expected)
    # customer-level segments: a segment's values add up to the project's month
    usd = EXPECTED_MONTH_OF_CHANGE["currency"]["USD"]
    assert history["totals"][month] == tuple(usd[name] for name in TOTALS)
    assert history["leaks"] == 0  # no metadata key but the named ones reached the warehouse


@pytest.mark.e2e
@pytest.mark.parametrize("stage", BUILT_STAGES)
def test_a_later_month_keeps_the_closing_values_without_movements(segment_histories, stage):
    times, histories = segment_histories
    history = built_stage(histories, stage)
    month = month_of(times.day(times.now + 60))
    for segment, expected in EXPECTED_MONTH_OF_CHANGE.items():
        closing = {value: f["closing_mrr"] for value, f in of_month(history, month, segment)
                   .items() if f["closing_mrr"] > 0}
        assert closing == {value: f["closing_mrr"] for value, f in expected.items()
                           if f["closing_mrr"] > 0}, segment
    if month != month_of(times.day(times.removed)):
        assert {(s, f["expansion_mrr"], f["churn_mrr"], f["new_mrr"])
                for (m, s, _), f in history["segments"].items() if m == month} == {
            (s, 0, 0, 0) for s in [*EXPECTED_MONTH_OF_CHANGE, "country"]}


@pytest.mark.e2e
def test_refreshes_end_with_the_backfills_segments(segment_histories):
    _, histories = segment_histories
    assert histories["refreshes_before_change"] is None  # the MRR models alone were built
    # every segment row equal (the project's totals differ: the refreshes' window starts
    # with the earlier backfill's, a month with no MRR yet)
    last_refresh = built_stage(histories, "last_refresh")
    assert last_refresh["segments"] == histories["backfill_after"]["segments"]


@pytest.mark.e2e
def test_country_splits_the_month_of_the_change(segment_histories):
    times, histories = segment_histories
    month = month_of(times.day(times.removed))
    assert of_month(histories["backfill_after"], month, "country") == EXPECTED_COUNTRY
