"""Serving the SaaS figures (issue 22) from hand-made marts: `metrics --metrics`, the report's
SaaS cards and cohort heat maps, and `export` (its tenant isolation, dates and formats).

The figures are those of tests/serving/conftest.py (HAND_SAAS_MONTHS, HAND_COHORTS): November
2026 is the one whole month; December, the month of the last sync (Dec 6), is partial.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from stripe_warehouse.export import EXPORTED_MARTS, export_marts
from stripe_warehouse.metric_selection import format_selection, load_selection
from stripe_warehouse.report import write_report
from stripe_warehouse.report_saas import cell_style, scale_floor

from .conftest import PROJECT, write_metrics_daily, write_saas_marts


def _cli(home: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_chosen_metrics_give_the_days_value_and_the_saas_figures_of_its_month(
    hand_marts: Path,
) -> None:
    # Nov 15 is day 45 of the window: MRR 1,000 + 10 x 45 = 1,450; the month is November,
    # whole: NRR 1m 101 %, ARPA $95.50.
    names = ["net_revenue_retention_1m", "stripe_mrr", "arpa"]
    selection = load_selection(hand_marts, PROJECT, names, dt.date(2026, 11, 15))
    assert [v.metric for v in selection.daily] == ["stripe_mrr"]
    assert selection.daily[0].value == 1450.0
    assert selection.month is not None and not selection.month.is_partial
    text = format_selection(selection).splitlines()
    assert text[0] == "acme on 2026-11-15"
    assert text[3] == "SaaS figures of the month 2026-11:"
    assert text[4].split() == ["net_revenue_retention_1m", "101.0%"]
    assert text[5].split() == ["arpa", "$95.50"]


def test_saas_figures_of_the_last_day_are_labelled_partial_and_say_why_one_is_missing(
    hand_marts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _cli(hand_marts.parent, monkeypatch, "metrics", PROJECT,
                          "--metrics", "customer_churn_rate,ltv,arpa")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "acme on 2026-12-06"
    assert lines[1] == ("SaaS figures of the month 2026-12 "
                        "(partial month: 2026-12-01 to 2026-12-06):")
    assert lines[2].split() == ["customer_churn_rate", "0.0%"]
    assert lines[3].split(maxsplit=2) == ["ltv", "n/a", "(no customer churned in the month)"]
    assert lines[4].split() == ["arpa", "$96.25"]
    assert len(lines) == 5  # no daily metric: no comparison rule

    code, out, err = _cli(hand_marts.parent, monkeypatch, "metrics", PROJECT, "--json",
                          "--metrics", "gross_revenue_retention_1m,stripe_customers")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["metrics"][0]["metric"] == "stripe_customers"
    assert payload["metrics"][0]["value"] == 76.0  # 10 + 66 days
    assert payload["metrics"][1] == {
        "metric": "gross_revenue_retention_1m", "unit": "rate", "value": 1.0,
        "month": "2026-12-01", "first_day": "2026-12-01", "last_day": "2026-12-06",
        "is_partial_month": True,
    }


def test_an_unknown_metric_is_one_line_naming_the_valid_ones(
    hand_marts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _cli(hand_marts.parent, monkeypatch, "metrics", PROJECT,
                          "--metrics", "stripe_mrr,churn")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: unknown metric churn: choose among stripe_mrr, stripe_arr,")
    assert "customer_churn_rate" in err and err.endswith(
        "trial_conversion_rate, daily_arpa, customer_churn_rate_30d, gross_mrr_churn_rate_30d, "
        "net_mrr_churn_rate_30d, quick_ratio_30d\n")


def _report(hand_marts: Path, tmp_path: Path) -> str:
    return write_report(hand_marts, PROJECT, tmp_path / "report.html").read_text()


def test_report_cards_show_the_latest_whole_month_and_label_the_partial_one(
    hand_marts: Path, tmp_path: Path
) -> None:
    page = _report(hand_marts, tmp_path)
    cards = {metric: (value, text) for metric, value, text in re.findall(
        r'data-saas-metric="(\w+)"\s+data-saas-value="([^"]*)">\s*'
        r'<div class="card-label">[^<]*</div>\s*<div class="card-value">([^<]*)</div>', page)}
    assert cards == {"net_revenue_retention_1m": ("1.01", "101.0%"),
                     "gross_revenue_retention_1m": ("0.97", "97.0%"),
                     "customer_churn_rate": ("0.04", "4.0%"), "arpa": ("95.5", "$95.50")}
    assert page.count("2026-11, the latest whole month") == 4
    assert ("2026-12 so far (partial month, 2026-12-01 to 2026-12-06): $96.25" in page)
    assert "2026-12 so far (partial month, 2026-12-01 to 2026-12-06): 100.0%" in page


def _cells(page: str, measure: str) -> dict[tuple[str, str], str]:
    """(cohort, months since start) -> the cell's text, in one heat map."""
    table = page.split(f'data-measure="{measure}"')[1].split("</table>")[0]
    found = {}
    for cohort, row in re.findall(r'<tr data-cohort="([\d-]+)">(.*?)</tr>', table, re.S):
        for months, text in re.findall(r'data-months="(\d+)".*?>([^<]*)</td>', row, re.S):
            found[(cohort, months)] = text
    return found


def test_cohort_heat_maps_write_each_retention_in_its_cell(
    hand_marts: Path, tmp_path: Path
) -> None:
    page = _report(hand_marts, tmp_path)
    # October's 4 customers: 3 paying in November (75 %, $330 of $400 = 82.5 %) and at the
    # last sync (partial December, starred: 75 %, $345 = 86.25 %); November's 2: 1 ($90 of
    # $150 = 60 %) in December.
    assert _cells(page, "logo") == {
        ("2026-10", "0"): "100%*", ("2026-10", "1"): "75%", ("2026-10", "2"): "75%*",
        ("2026-11", "0"): "100%", ("2026-11", "1"): "50%*",
    }
    assert _cells(page, "mrr") == {
        ("2026-10", "0"): "100%*", ("2026-10", "1"): "82.5%", ("2026-10", "2"): "86.2%*",
        ("2026-11", "0"): "100%", ("2026-11", "1"): "60%*",
    }
    assert ('title="cohort 2026-10, month 1 (2026-11): 82.5%, $330.00 of $400.00 MRR"'
            in page)
    # each map's scale starts at its lowest cell: 50 % (logo), 60 % (MRR)
    assert "colour from 50% or less (palest)" in page.split('data-measure="mrr"')[0]
    assert "colour from 60% or less (palest)" in page.split('data-measure="mrr"')[1]
    # November's row ends after month 1: an empty cell under month 2
    november = re.search(r'<tr data-cohort="2026-11">(.*?)</tr>', page, re.S).group(1)
    assert november.count('<td class="none"></td>') == 1


def test_the_colour_scale_starts_at_the_lowest_tenth_and_caps_at_100_percent() -> None:
    # retention mostly sits between 80 and 100 %: the scale starts at the lowest cell's tenth
    assert scale_floor([0.917, 1.0, None]) == 0.9
    assert scale_floor([0.75, 0.5, 1.2]) == 0.5
    assert scale_floor([0.95, 1.0]) == 0.9  # at least ten points of range
    assert scale_floor([0.0, 1.0]) == 0.0
    assert cell_style(0.5, 0.5) == "background:hsl(243,75%,96%);color:#1a1f36"
    assert cell_style(0.75, 0.5) == "background:hsl(243,75%,68%);color:#1a1f36"
    assert cell_style(1.0, 0.5) == "background:hsl(243,75%,40%);color:#fff"
    assert cell_style(1.25, 0.5) == cell_style(1.0, 0.5)
    assert cell_style(0.2, 0.5) == cell_style(0.5, 0.5)


def _two_projects(path: Path) -> None:
    """A published file whose every exported mart holds `acme` and `other`: metrics_daily
    from Oct 30 to Nov 2 (two metrics a day each), the monthly ones for October and
    November, the other daily marts one row a day."""
    days = [dt.date(2026, 10, 30) + dt.timedelta(days=i) for i in range(4)]
    write_metrics_daily(path, [(project, day, metric, 1.0, "count")
                               for project in ("acme", "other") for day in days
                               for metric in ("stripe_customers", "stripe_mrr")])
    with duckdb.connect(str(path)) as con:
        for mart in EXPORTED_MARTS:
            if mart.name in ("metrics_daily", "fct_saas_metrics_monthly",
                             "fct_cohort_retention"):
                continue
            dates = [dt.date(2026, 10, 1), dt.date(2026, 11, 1)] if mart.monthly else days
            con.execute(f"create table marts.{mart.name} (project_id varchar, "
                        f"{mart.date_column} date, amount decimal(18,2))")
            con.executemany(f"insert into marts.{mart.name} values (?, ?, 12.5)",
                            [(p, d) for p in ("acme", "other") for d in dates])
        write_saas_marts(con, "acme")
        write_saas_marts(con, "other")


def test_export_writes_one_file_per_mart_with_only_the_projects_rows_of_the_dates(
    tmp_path: Path,
) -> None:
    published = tmp_path / "reporting.duckdb"
    _two_projects(published)
    out = tmp_path / "acme-csv"
    written = dict(export_marts(published, "acme", out, "csv",
                                dt.date(2026, 10, 31), dt.date(2026, 11, 1)))
    assert sorted(p.name for p in written) == sorted(f"{m.name}.csv" for m in EXPORTED_MARTS)
    # metrics_daily: Oct 31 and Nov 1, two metrics each; the monthly marts: October and
    # November (the months those days touch); cohorts: the 3 rows of those months
    assert {p.name: n for p, n in written.items()} == {
        "metrics_daily.csv": 4, "fct_mrr_daily.csv": 2, "fct_mrr_movements.csv": 2,
        "fct_mrr_movements_monthly.csv": 2, "fct_revenue_daily.csv": 2,
        "fct_failed_payments_daily.csv": 2, "fct_saas_metrics_daily.csv": 2,
        "fct_saas_metrics_monthly.csv": 2,
        "fct_cohort_retention.csv": 3, "fct_mrr_by_segment_monthly.csv": 2,
    }
    with (out / "metrics_daily.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["project_id"] for r in rows} == {"acme"}
    assert [r["metric_date"] for r in rows] == ["2026-10-31"] * 2 + ["2026-11-01"] * 2
    with (out / "fct_saas_metrics_monthly.csv").open() as f:
        november = list(csv.DictReader(f))[1]
    assert (november["metric_month"], november["arpa"]) == ("2026-11-01", "95.500000")

    whole = dict(export_marts(published, "other", tmp_path / "other-pq", "parquet"))
    counts = {p.name: n for p, n in whole.items()}
    assert counts["metrics_daily.parquet"] == 8 and counts["fct_cohort_retention.parquet"] == 5
    projects = duckdb.sql(
        f"select distinct project_id from read_parquet('{tmp_path / 'other-pq'}/*.parquet', "
        "union_by_name = true)").fetchall()
    assert projects == [("other",)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "xlsx"], "error: --format 'xlsx' is not supported: use csv or parquet\n"),
        (["--format", "csv", "--from", "31/10/2026"],
         "error: --from '31/10/2026' is not a date: use YYYY-MM-DD\n"),
        (["--format", "csv", "--from", "2026-11-02", "--to", "2026-11-01"],
         "error: --from 2026-11-02 is after --to 2026-11-01: swap them\n"),
    ],
)
def test_export_refuses_a_bad_format_or_dates_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    _two_projects(tmp_path / "reporting.duckdb")
    out = tmp_path / "out"
    code, printed, err = _cli(tmp_path, monkeypatch, "export", "acme", *argv, "--out", str(out))
    assert (code, printed, err) == (2, "", message)
    assert not out.exists()
