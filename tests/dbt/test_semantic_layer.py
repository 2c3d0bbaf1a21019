"""dbt's semantic layer (issue 22): the real MetricFlow `mf query`, run offline as
`stripe-warehouse mf` runs it (stripe_warehouse.semantic_layer: the build's semantic manifest,
the project's profiles, the readers' copy of the warehouse), returns the marts' numbers on the
SaaS-metrics company (tests/dbt/saas_scenario.py, the session's `saas_marts`; its months are
computed in tests/dbt/test_saas_metrics.py's docstring).

By hand, per billing country (A, B, T1 in the US; C, D in Germany; E in France; T3 in Great
Britain and T2 without address never pay). MRR is the value at the end of the month's last
reported day (Nov 10 for November), not a sum of days:

- August (end of Aug 31): US A 19 + B 12 = 31, DE C 19. NRR: the window's first month, every
  customer keeps its MRR: 1 and 1.
- September: US A 19 + T1 19 = 38 (B canceled Sep 20), DE C 19 + D 19 = 38; total 76. NRR over
  the customers paying when it opened: US (A 19 + B 0) / (A 19 + B 12) = 19 / 31 = 0.612903;
  DE C 19 / 19 = 1; all 38 / 50 = 0.76.
- October: US 38, DE C 57 (3 seats from Oct 20; D canceled Oct 15), FR E 12; total 107. NRR:
  US (19 + 19) / 38 = 1; DE (C 57 + D 0) / (C 19 + D 19) = 1.5; FR: E started in the month, no
  base: null; all 95 / 76 = 1.25.
- November: nothing moves: US 38, DE 57, FR 12; NRR 1 each.

Per month (every metric defined): mrr, arr (12 x), active subscriptions, customers (existing),
paying customers, NRR, GRR, customer churn rate, ARPA:
August 50, 600, 3 (A, B, C), 3, 3, 1, 1, 0, 50 / 3 = 16.666667;
September 76, 912, 4 (A, C, D, T1), 6 (+ T1, D, T2), 4, 0.76, 0.76, 1 / 3 = 0.333333, 19;
October 107, 1284, 4 (A, C, T1, E), 8 (+ E, T3), 4, 1.25, (19 + 19 + 0 + 19) / 76 = 0.75,
1 / 4 = 0.25, 26.75; November 107, 1284, 4, 8, 4, 1, 1, 0, 26.75.
"""

from __future__ import annotations

import csv
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from stripe_warehouse.semantic_layer import mf_invocation
from tests.dbt.saas_scenario import AUG, NOV, OCT, PROJECT_ID, SEP

pytestmark = pytest.mark.e2e

EVERY_METRIC = ("mrr", "arr", "active_subscriptions", "customers", "paying_customers",
                "net_revenue_retention", "gross_revenue_retention", "customer_churn_rate",
                "arpa")


def mf_query(warehouse: Path, tmp_path: Path, metrics: tuple[str, ...],
             group_by: tuple[str, ...]) -> list[dict[str, str]]:
    """`mf query` on the warehouse's state directory: its CSV rows."""
    output = tmp_path / "mf.csv"
    args = ["query", "--metrics", ",".join(metrics), "--group-by", ",".join(group_by),
            "--csv", str(output)]
    command, environment, directory = mf_invocation(args, warehouse.parent)
    done = subprocess.run(command, env=environment, cwd=directory, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with output.open() as rows:
        return list(csv.DictReader(rows))


def figure(text: str) -> Decimal | None:
    """A CSV value to six decimals (the marts' rates are rounded so), None when empty."""
    return Decimal(text).quantize(Decimal("0.000001")) if text else None


def month(text: str) -> date:
    return date.fromisoformat(text[:10])


def test_mrr_and_nrr_by_month_and_country_are_the_marts_numbers(saas_marts, tmp_path):
    """The issue's query: `mf query --metrics mrr,net_revenue_retention --group-by
    metric_time__month,customer__country`; each month's countries add up to the mart's
    closing MRR."""
    found = {(month(row["metric_time__month"]), row["customer__country"]):
             (figure(row["mrr"]), figure(row["net_revenue_retention"]))
             for row in mf_query(saas_marts, tmp_path, ("mrr", "net_revenue_retention"),
                                 ("metric_time__month", "customer__country"))}
    d = Decimal
    assert found == {
        (AUG, "US"): (31, 1), (AUG, "DE"): (19, 1),
        (SEP, "US"): (38, d("0.612903")), (SEP, "DE"): (38, 1),
        (OCT, "US"): (38, 1), (OCT, "DE"): (57, d("1.5")), (OCT, "FR"): (12, None),
        (NOV, "US"): (38, 1), (NOV, "DE"): (57, 1), (NOV, "FR"): (12, 1),
    }
    with duckdb.connect(str(saas_marts), read_only=True) as con:
        closing = dict(con.execute(
            "select metric_month, closing_mrr from marts.fct_saas_metrics_monthly "
            "where project_id = ?", [PROJECT_ID]).fetchall())
    assert {m: sum(mrr for (at, _), (mrr, _) in found.items() if at == m) for m in closing} \
        == closing == {AUG: 50, SEP: 76, OCT: 107, NOV: 107}


def test_every_metric_by_month_equals_the_marts_and_reads_the_readers_copy(saas_marts,
                                                                          tmp_path):
    """Every metric by month against fct_saas_metrics_monthly and metrics_daily on the month's
    last reported day, while a writer holds warehouse.duckdb (a sync or build would): `mf`
    reads the readers' copy, never the locked file."""
    with duckdb.connect(str(saas_marts)):  # read-write: DuckDB locks out every other process
        rows = mf_query(saas_marts, tmp_path, EVERY_METRIC, ("metric_time__month",))
    found = {month(row["metric_time__month"]): tuple(figure(row[m]) for m in EVERY_METRIC)
             for row in rows}
    d = Decimal
    assert found == {
        AUG: (50, 600, 3, 3, 3, 1, 1, 0, d("16.666667")),
        SEP: (76, 912, 4, 6, 4, d("0.76"), d("0.76"), d("0.333333"), 19),
        OCT: (107, 1284, 4, 8, 4, d("1.25"), d("0.75"), d("0.25"), d("26.75")),
        NOV: (107, 1284, 4, 8, 4, 1, 1, 0, d("26.75")),
    }
    with duckdb.connect(str(saas_marts), read_only=True) as con:
        marts = con.execute(
            "select saas.metric_month, "
            "max(case when daily.metric = 'stripe_mrr' then daily.value end), "
            "max(case when daily.metric = 'stripe_arr' then daily.value end), "
            "max(case when daily.metric = 'stripe_active_subscriptions' then daily.value end), "
            "max(case when daily.metric = 'stripe_customers' then daily.value end), "
            "saas.customers_at_end, saas.net_revenue_retention_1m, "
            "saas.gross_revenue_retention_1m, saas.customer_churn_rate, saas.arpa "
            "from marts.fct_saas_metrics_monthly as saas "
            "inner join marts.metrics_daily as daily on saas.project_id = daily.project_id "
            "and saas.last_day = daily.metric_date where saas.project_id = ? "
            "group by all", [PROJECT_ID]).fetchall()
    assert {row[0]: tuple(row[1:]) for row in marts} == found


def test_daily_arpa_by_day_is_the_daily_marts(saas_marts, tmp_path):
    """`daily_arpa` by day: each day's MRR over its paying customers (tests/dbt/saas_scenario.py
    docstring: Aug 12 50 / 3, Sep 10 69 / 4, Sep 19 88 / 5, Oct 20 107 / 4), every day of the
    window equal to fct_saas_metrics_daily.arpa."""
    rows = mf_query(saas_marts, tmp_path, ("daily_arpa",), ("metric_time__day",))
    found = {date.fromisoformat(row["metric_time__day"][:10]): figure(row["daily_arpa"])
             for row in rows}
    d = Decimal
    assert {day: found[day] for day in (date(2026, 8, 12), date(2026, 9, 10),
                                         date(2026, 9, 19), date(2026, 10, 20))} == {
        date(2026, 8, 12): d("16.666667"), date(2026, 9, 10): d("17.25"),
        date(2026, 9, 19): d("17.6"), date(2026, 10, 20): d("26.75")}
    with duckdb.connect(str(saas_marts), read_only=True) as con:
        marts = dict(con.execute("select metric_date, arpa from marts.fct_saas_metrics_daily "
                                 "where project_id = ?", [PROJECT_ID]).fetchall())
    assert found == marts and len(found) == 91


def test_mf_before_any_build_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    """`stripe-warehouse mf` on a state directory no build has written: what to do, one line,
    and nothing created there."""
    home = tmp_path / "empty"
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert main(["mf", "query", "--metrics", "mrr"]) == 2
    assert capsys.readouterr().err == (
        f"error: no semantic manifest in {home}/dbt/target: build the marts first "
        "(`stripe-warehouse transform`, or a sync)\n")
    assert not home.exists()
