"""SaaS rates and cohorts (issue 22) through the full pipeline: sandbox company
(tests/dbt/saas_scenario.py) -> real sync over HTTP -> `dbt build`, one backfill as of NOW
(the session's `saas_marts`), on DuckDB (the two-target comparison,
tests/warehouse_target/test_same_marts_on_both_targets.py, covers the marts on PostgreSQL).

USD only (FX is in the dbt unit tests). NOW is 2026-11-10 12:00 UTC; the backfill's window is
2026-08-12 .. 2026-11-10, so September and October are whole months, August and November
partial. Prices: starter $19.00 a month, pro $12.00 a month; each subscription renews and pays
monthly from its start.

- A: starter since Jun 1, all along.
- B: pro since Jun 15, canceled at once on Sep 20 (churn 12).
- C: starter since Jul 1; quantity 1 -> 3 on Oct 20 (expansion 38, MRR 57).
- D: starter from Sep 10 (new 19), canceled at once on Oct 15 (churn 19).
- E: pro from Oct 3 (new 12).
- T1: 14-day starter trial from Sep 5, converts on Sep 19 (new 19).
- T2: 14-day starter trial from Sep 12, paused at its end (no payment method): never pays.
- T3: 30-day starter trial from Oct 25, still trialing today.

By hand (rates to six decimals, half away from zero):

September: opens with A 19 + B 12 + C 19 = 50 (3 customers); new 38 (D, T1), churn 12 (B);
closes 76 with 4 paying (A, C, D, T1). Customer churn 1 / 3 = 0.333333; gross MRR churn
12 / 50 = 0.24; net MRR churn (12 - 0) / 50 = 0.24; NRR and GRR 1m (19 + 0 + 19) / 50 = 0.76;
ARPA 76 / 4 = 19; LTV 19 / (1/3) = 57; quick ratio 38 / 12 = 3.166667. Trials: 2 started (T1,
T2), 1 converted (T1, within 45 days): 0.5, not final (Sep 30 + 45 days = Nov 14 > Nov 10).

October: opens with 76 (A, C, D, T1: 4 customers); new 12 (E), expansion 38 (C), churn 19 (D);
closes 107 with 4 paying (A, C, T1, E). Customer churn 1 / 4 = 0.25; gross MRR churn 19 / 76 =
0.25; net MRR churn (19 - 38) / 76 = -0.25; NRR 1m (19 + 57 + 0 + 19) / 76 = 1.25; GRR 1m
(19 + 19 + 0 + 19) / 76 = 0.75; ARPA 107 / 4 = 26.75; LTV 26.75 x 4 / 1 = 107; quick ratio
(12 + 38) / 19 = 2.631579. Trials: 1 started (T3), none converted yet: 0.

November (partial, to Nov 10): nothing moves; 107 with 4 paying: churn rates 0, NRR and GRR
1, ARPA 26.75, LTV and quick ratio null (no churn, no loss). August (partial, from the end of
Aug 12): 50 throughout, 3 customers, ARPA 50 / 3 = 16.666667. No month has 12-month
retention (the window is 90 days).

Cohorts (first MRR month; A, B and C paid before the window: no cohort): September, D and T1
(2, 38): Sep 2 / 2 and 38 / 38; Oct 1 / 2 = 0.5 and 19 / 38 = 0.5; Nov the same. October, E
(1, 12): Oct and Nov 1 and 1.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from stripe_warehouse.metrics import marts_source
from stripe_warehouse.report import write_report
from tests.browser import chromium
from tests.dbt.saas_scenario import AUG, NOV, OCT, PROJECT_ID, SEP

pytestmark = pytest.mark.e2e


def rows(warehouse: Path, sql: str) -> dict[date, dict]:
    """The query's rows by their first column, each as {column: value}."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = con.execute(sql, [PROJECT_ID])
        names = [column[0] for column in result.description]
        return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in result.fetchall()}


def d(text: str) -> Decimal:
    return Decimal(text)


RATE_COLUMNS = ("is_partial_month, opening_mrr, closing_mrr, customers_at_start, "
                "customers_at_end, churned_customers, customer_churn_rate, gross_mrr_churn_rate, "
                "net_mrr_churn_rate, net_revenue_retention_1m, gross_revenue_retention_1m, "
                "net_revenue_retention_12m, gross_revenue_retention_12m, arpa, ltv, quick_ratio")
TRIAL_COLUMNS = ("trials_started, trials_converted, trial_conversion_rate, "
                 "is_trial_conversion_final")


def test_monthly_rates_are_the_hand_computed_ones(saas_marts):
    found = rows(saas_marts, f"select metric_month, {RATE_COLUMNS} "
                             "from marts.fct_saas_metrics_monthly where project_id = ?")
    no_churn = {"churned_customers": 0, "customer_churn_rate": 0, "gross_mrr_churn_rate": 0,
                "net_mrr_churn_rate": 0, "net_revenue_retention_1m": 1,
                "gross_revenue_retention_1m": 1, "net_revenue_retention_12m": None,
                "gross_revenue_retention_12m": None, "ltv": None, "quick_ratio": None}
    assert found == {
        AUG: {"is_partial_month": True, "opening_mrr": 50, "closing_mrr": 50,
              "customers_at_start": 3, "customers_at_end": 3, **no_churn, "arpa": d("16.666667")},
        SEP: {"is_partial_month": False, "opening_mrr": 50, "closing_mrr": 76,
              "customers_at_start": 3, "customers_at_end": 4, "churned_customers": 1,
              "customer_churn_rate": d("0.333333"), "gross_mrr_churn_rate": d("0.24"),
              "net_mrr_churn_rate": d("0.24"), "net_revenue_retention_1m": d("0.76"),
              "gross_revenue_retention_1m": d("0.76"), "net_revenue_retention_12m": None,
              "gross_revenue_retention_12m": None, "arpa": 19, "ltv": 57,
              "quick_ratio": d("3.166667")},
        OCT: {"is_partial_month": False, "opening_mrr": 76, "closing_mrr": 107,
              "customers_at_start": 4, "customers_at_end": 4, "churned_customers": 1,
              "customer_churn_rate": d("0.25"), "gross_mrr_churn_rate": d("0.25"),
              "net_mrr_churn_rate": d("-0.25"), "net_revenue_retention_1m": d("1.25"),
              "gross_revenue_retention_1m": d("0.75"), "net_revenue_retention_12m": None,
              "gross_revenue_retention_12m": None, "arpa": d("26.75"), "ltv": 107,
              "quick_ratio": d("2.631579")},
        NOV: {"is_partial_month": True, "opening_mrr": 107, "closing_mrr": 107,
              "customers_at_start": 4, "customers_at_end": 4, **no_churn, "arpa": d("26.75")},
    }


DAILY_COLUMNS = ("is_partial_day, mrr, paying_customers, arpa, base_day, "
                 "is_trailing_window_covered, base_mrr_30d, base_customers_30d, "
                 "churned_customers_30d, customer_churn_rate_30d, gross_mrr_churn_rate_30d, "
                 "net_mrr_churn_rate_30d, quick_ratio_30d")


def test_daily_rates_are_the_hand_computed_ones_over_the_trailing_30_days(saas_marts):
    """The days computed by hand in tests/dbt/saas_scenario.py's docstring: before, on and
    after the first covered day (Sep 11), around D's churn and C's expansion, and today."""
    found = rows(saas_marts, f"select metric_date, {DAILY_COLUMNS} "
                             "from marts.fct_saas_metrics_daily where project_id = ?")
    uncovered = {"is_trailing_window_covered": False, "base_mrr_30d": None,
                 "base_customers_30d": None, "churned_customers_30d": None,
                 "customer_churn_rate_30d": None, "gross_mrr_churn_rate_30d": None,
                 "net_mrr_churn_rate_30d": None, "quick_ratio_30d": None}

    def day(text: str, mrr: int, paying: int, arpa: str, base: str, **figures) -> dict:
        return {"is_partial_day": text == "11-10", "mrr": mrr, "paying_customers": paying,
                "arpa": d(arpa), "base_day": date.fromisoformat(f"2026-{base}"), **figures}

    expected = {
        "08-12": day("08-12", 50, 3, "16.666667", "07-13", **uncovered),
        "09-10": day("09-10", 69, 4, "17.25", "08-11", **uncovered),
        "09-11": day("09-11", 69, 4, "17.25", "08-12", is_trailing_window_covered=True,
                     base_mrr_30d=50, base_customers_30d=3, churned_customers_30d=0,
                     customer_churn_rate_30d=0, gross_mrr_churn_rate_30d=0,
                     net_mrr_churn_rate_30d=0, quick_ratio_30d=None),
        "10-15": day("10-15", 69, 4, "17.25", "09-15", is_trailing_window_covered=True,
                     base_mrr_30d=69, base_customers_30d=4, churned_customers_30d=2,
                     customer_churn_rate_30d=d("0.5"), gross_mrr_churn_rate_30d=d("0.449275"),
                     net_mrr_churn_rate_30d=d("0.449275"), quick_ratio_30d=1),
        "10-19": day("10-19", 69, 4, "17.25", "09-19", is_trailing_window_covered=True,
                     base_mrr_30d=88, base_customers_30d=5, churned_customers_30d=2,
                     customer_churn_rate_30d=d("0.4"), gross_mrr_churn_rate_30d=d("0.352273"),
                     net_mrr_churn_rate_30d=d("0.352273"), quick_ratio_30d=d("0.387097")),
        "10-20": day("10-20", 107, 4, "26.75", "09-20", is_trailing_window_covered=True,
                     base_mrr_30d=76, base_customers_30d=4, churned_customers_30d=1,
                     customer_churn_rate_30d=d("0.25"), gross_mrr_churn_rate_30d=d("0.25"),
                     net_mrr_churn_rate_30d=d("-0.25"), quick_ratio_30d=d("2.631579")),
        "11-10": day("11-10", 107, 4, "26.75", "10-11", is_trailing_window_covered=True,
                     base_mrr_30d=88, base_customers_30d=5, churned_customers_30d=1,
                     customer_churn_rate_30d=d("0.2"), gross_mrr_churn_rate_30d=d("0.215909"),
                     net_mrr_churn_rate_30d=d("-0.215909"), quick_ratio_30d=2),
    }
    assert {text: found[date.fromisoformat(f"2026-{text}")] for text in expected} == expected
    # one row per day of the window (Aug 12 .. Nov 10), the first 30 not covered
    assert (len(found), min(found), max(found)) == (91, date(2026, 8, 12), date(2026, 11, 10))
    assert sorted(when for when, row in found.items()
                  if not row["is_trailing_window_covered"])[-1] == date(2026, 9, 10)
    assert [when for when, row in found.items() if row["is_partial_day"]] == [date(2026, 11, 10)]


def test_trial_conversion_counts_the_trials_started_in_the_month(saas_marts):
    found = rows(saas_marts, f"select metric_month, {TRIAL_COLUMNS} "
                             "from marts.fct_saas_metrics_monthly where project_id = ?")
    assert found[SEP] == {"trials_started": 2, "trials_converted": 1,
                          "trial_conversion_rate": d("0.5"), "is_trial_conversion_final": False}
    assert found[OCT] == {"trials_started": 1, "trials_converted": 0,
                          "trial_conversion_rate": 0, "is_trial_conversion_final": False}
    assert found[NOV]["trials_started"] == found[AUG]["trials_started"] == 0


def test_cohorts_retain_logos_and_mrr_from_their_first_mrr_month(saas_marts):
    with duckdb.connect(str(saas_marts), read_only=True) as con:
        found = con.execute(
            "select cohort_month, metric_month, months_since_start, cohort_customers, "
            "cohort_starting_mrr, retained_customers, retained_mrr, logo_retention, "
            "mrr_retention from marts.fct_cohort_retention where project_id = ? "
            "order by cohort_month, metric_month", [PROJECT_ID]).fetchall()
    assert found == [
        (SEP, SEP, 0, 2, 38, 2, 38, 1, 1),
        (SEP, OCT, 1, 2, 38, 1, 19, d("0.5"), d("0.5")),
        (SEP, NOV, 2, 2, 38, 1, 19, d("0.5"), d("0.5")),
        (OCT, OCT, 0, 1, 12, 1, 12, 1, 1),
        (OCT, NOV, 1, 1, 12, 1, 12, 1, 1),
    ]


def test_dim_customers_carries_the_billing_country(saas_marts):
    """Issue 22: the customer's address country reaches dim_customers as `country` (A, B, T1 in
    the US, C and D in Germany, E in France, T3 in Great Britain; T2 has no address: null)."""
    with duckdb.connect(str(saas_marts), read_only=True) as con:
        found = con.execute(
            "select country, count(*) from marts.dim_customers where project_id = ? "
            "group by country order by country nulls last", [PROJECT_ID]).fetchall()
    assert found == [("DE", 2), ("FR", 1), ("GB", 1), ("US", 3), (None, 1)]


def _cli(home: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_metrics_command_gives_a_days_mrr_and_the_saas_figures_of_its_month(saas_marts):
    # Oct 20: MRR at the day's end A 19 + C 57 + T1 19 + E 12 = 107; October's figures above.
    code, out, err = _cli(saas_marts.parent, "metrics", PROJECT_ID, "--date", "2026-10-20",
                          "--json", "--metrics", "stripe_mrr,customer_churn_rate,"
                          "net_revenue_retention_1m,gross_revenue_retention_1m,arpa,ltv,"
                          "quick_ratio,trial_conversion_rate")
    assert code == 0, err
    found = {m["metric"]: m["value"] for m in json.loads(out)["metrics"]}
    assert found == {"stripe_mrr": 107.0, "customer_churn_rate": 0.25,
                     "net_revenue_retention_1m": 1.25, "gross_revenue_retention_1m": 0.75,
                     "arpa": 26.75, "ltv": 107.0, "quick_ratio": 2.631579,
                     "trial_conversion_rate": 0.0}
    code, out, err = _cli(saas_marts.parent, "metrics", PROJECT_ID, "--metrics", "arpa")
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "SaaS figures of the month 2026-11 (partial month: 2026-11-01 to 2026-11-10):",
        f"  {'arpa':<28} {'$26.75':>14}"]


def test_metrics_command_gives_the_daily_saas_figures_of_the_day(saas_marts):
    # Oct 20 and Sep 10 of tests/dbt/saas_scenario.py's docstring: the 30 days to Oct 20 are
    # October's figures; Sep 10's base day (Aug 11) is before the history: rates missing
    code, out, err = _cli(saas_marts.parent, "metrics", PROJECT_ID, "--date", "2026-10-20",
                          "--json", "--metrics", "daily_arpa,customer_churn_rate_30d,"
                          "gross_mrr_churn_rate_30d,net_mrr_churn_rate_30d,quick_ratio_30d")
    assert code == 0, err
    found = {m["metric"]: (m["value"], m["window_first_day"], m["is_trailing_window_covered"])
             for m in json.loads(out)["metrics"]}
    window = ("2026-09-21", True)
    assert found == {"daily_arpa": (26.75, *window), "customer_churn_rate_30d": (0.25, *window),
                     "gross_mrr_churn_rate_30d": (0.25, *window),
                     "net_mrr_churn_rate_30d": (-0.25, *window),
                     "quick_ratio_30d": (2.631579, *window)}
    code, out, err = _cli(saas_marts.parent, "metrics", PROJECT_ID, "--date", "2026-09-10",
                          "--metrics", "daily_arpa,customer_churn_rate_30d")
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "SaaS figures of the day 2026-09-10 (trailing 30 days: 2026-08-12 to 2026-09-10, "
        "not covered by the history):",
        f"  {'daily_arpa':<28} {'$17.25':>14}",
        f"  {'customer_churn_rate_30d':<28} {'n/a':>14}  (the history does not reach 30 days "
        "before the day)"]


def test_export_writes_the_built_marts_of_the_chosen_days(saas_marts, tmp_path):
    # October: 31 days x the six metrics; one month of SaaS figures; the cohort rows observed
    # in October (September's cohort in its month 1, October's in its month 0)
    out = tmp_path / "october"
    code, printed, err = _cli(saas_marts.parent, "export", PROJECT_ID, "--format", "csv",
                              "--from", "2026-10-01", "--to", "2026-10-31", "--out", str(out))
    assert code == 0, err
    assert len(printed.splitlines()) == 10  # one line per exported mart

    def read(name: str) -> list[dict]:
        with (out / f"{name}.csv").open() as f:
            return list(csv.DictReader(f))

    days = read("metrics_daily")
    assert len(days) == 186 and {r["project_id"] for r in days} == {PROJECT_ID}
    assert (days[0]["metric_date"], days[-1]["metric_date"]) == ("2026-10-01", "2026-10-31")
    daily = {r["metric_date"]: r for r in read("fct_saas_metrics_daily")}
    assert (min(daily), max(daily), len(daily)) == ("2026-10-01", "2026-10-31", 31)
    (october,) = read("fct_saas_metrics_monthly")
    assert (october["metric_month"], Decimal(october["net_revenue_retention_1m"]),
            Decimal(october["arpa"])) == ("2026-10-01", d("1.25"), d("26.75"))
    cohorts = [(r["cohort_month"], r["months_since_start"], Decimal(r["logo_retention"]))
               for r in read("fct_cohort_retention")]
    assert cohorts == [("2026-09-01", "1", d("0.5")), ("2026-10-01", "0", 1)]


@pytest.mark.browser
def test_report_in_chromium_shows_the_saas_cards_and_the_cohort_heat_map(saas_marts):
    # October is the latest whole month: NRR 125 %, GRR 75 %, customer churn 25 %, ARPA
    # $26.75; November (partial, to Nov 10) 100 %, 100 %, 0 %, $26.75. Cohorts: September's
    # (D, T1) keeps 1 of 2 customers, $19 of $38, in its month 1.
    page = write_report(marts_source(saas_marts.parent), PROJECT_ID,
                        saas_marts.parent / "saas-report.html")
    dom = chromium("--dump-dom", page.as_uri())
    cards = dict(re.findall(r'data-saas-metric="(\w+)" data-saas-value="([^"]*)"', dom))
    assert cards == {"net_revenue_retention_1m": "1.25", "gross_revenue_retention_1m": "0.75",
                     "customer_churn_rate": "0.25", "arpa": "26.75"}
    assert dom.count("2026-10, the latest whole month") == 4
    assert "2026-11 so far (partial month, 2026-11-01 to 2026-11-10): 100.0%" in dom
    logo = dom.split('data-measure="logo"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-cohort="([\d-]+)">', logo) == ["2026-09", "2026-10"]
    september = re.search(r'<tr data-cohort="2026-09">(.*?)</tr>', logo, re.S).group(1)
    assert re.search(r'data-months="1"[^>]*>50%</td>', september)
    assert 'title="cohort 2026-09, month 1 (2026-10): 50%, 1 of 2 customers paying"' in dom
