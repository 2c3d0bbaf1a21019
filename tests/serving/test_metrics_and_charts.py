"""Reading the published metrics for the terminal, and the chart arithmetic of the report."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from stripe_warehouse.charts import format_value, line_chart, nice_ticks
from stripe_warehouse.comparison import previous_month_day
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import format_metrics, load_metrics, metrics_json

from .conftest import PROJECT, write_metrics_daily


@pytest.fixture
def marts(tmp_path: Path) -> Path:
    """A warehouse holding only marts.metrics_daily: 40 days of one project, MRR +10 a day."""
    path = tmp_path / "reporting.duckdb"
    start = dt.date(2026, 2, 20)
    rows = []
    for i in range(40):
        day = start + dt.timedelta(days=i)
        rows += [
            ("acme", day, "stripe_mrr", 1000.0 + 10 * i, "USD"),
            ("acme", day, "stripe_active_subscriptions", 5.0 + i, "count"),
        ]
    write_metrics_daily(path, rows)
    return path


def test_previous_month_day_clamps_to_the_last_day_of_shorter_months() -> None:
    assert previous_month_day(dt.date(2026, 3, 31)) == dt.date(2026, 2, 28)
    assert previous_month_day(dt.date(2024, 3, 30)) == dt.date(2024, 2, 29)
    assert previous_month_day(dt.date(2026, 1, 15)) == dt.date(2025, 12, 15)


def test_metrics_default_to_the_latest_day_with_change_against_a_month_earlier(
    marts: Path,
) -> None:
    day, values = load_metrics(marts, "acme")
    assert day == dt.date(2026, 3, 31)
    by_metric = {v.metric: v for v in values}
    assert by_metric["stripe_mrr"].value == 1390
    # Feb 28 is day 8 of the series: 1000 + 80
    assert by_metric["stripe_mrr"].comparison.previous == 1080
    assert by_metric["stripe_mrr"].comparison.change == 310
    assert by_metric["stripe_active_subscriptions"].comparison.change == 31
    text = format_metrics("acme", day, values)
    assert re.search(r"stripe_mrr +\$1,390\.00 +\+\$310\.00 +\+28\.7%  vs end of 2026-02-28", text)
    payload = json.loads(metrics_json("acme", day, values))
    assert payload["date"] == "2026-03-31"
    assert payload["metrics"][0] == {
        "metric": "stripe_mrr", "unit": "USD", "value": 1390.0,
        "comparison": {
            "current_period": ["2026-03-31", "2026-03-31"], "current": 1390.0,
            "previous_period": ["2026-02-28", "2026-02-28"], "previous": 1080.0,
            "change": 310.0, "growth_rate": pytest.approx(310 / 1080),
        },
    }


def test_metrics_compare_flows_over_complete_days_and_stocks_at_the_end_of_the_day(
    hand_marts: Path,
) -> None:
    day, values = load_metrics(hand_marts, PROJECT)
    by_metric = {v.metric: v for v in values}
    revenue = by_metric["stripe_revenue"]
    # The day's published value stays the partial day's $7; its change compares whole days.
    assert day == dt.date(2026, 12, 6) and revenue.value == 7.0
    assert (revenue.comparison.current, revenue.comparison.previous) == (3300.0, 3000.0)
    text = format_metrics(PROJECT, day, values)
    assert re.search(
        r"stripe_revenue +\$7\.00 +\+\$300\.00 +\+10\.0%  "
        r"2026-11-06 to 2026-12-05 \(\$3,300\.00\) vs 2026-10-07 to 2026-11-05 \(\$3,000\.00\)",
        text,
    )
    assert re.search(r"stripe_mrr +\$1,660\.00 +\+\$300\.00 +\+22\.1%  vs end of 2026-11-06", text)
    assert "the day of the last sync is incomplete and left out" in text
    failed = json.loads(metrics_json(PROJECT, day, values))["metrics"][5]
    assert failed["metric"] == "stripe_failed_payments"
    assert failed["comparison"] == {
        "current_period": ["2026-11-06", "2026-12-05"], "current": 30.0,
        "previous_period": ["2026-10-07", "2026-11-05"], "previous": 60.0,
        "change": -30.0, "growth_rate": -0.5,
    }
    # A complete day chosen with --date ends its own period: Nov 2 to Dec 1 vs Oct 3 to Nov 1.
    _, earlier = load_metrics(hand_marts, PROJECT, dt.date(2026, 12, 1))
    comparison = {v.metric: v for v in earlier}["stripe_revenue"].comparison
    assert (comparison.current, comparison.previous) == (4 * 100 + 26 * 110, 3000.0)
    # Thirty days back from Nov 20 reaches before the window: nothing to compare with.
    _, short = load_metrics(hand_marts, PROJECT, dt.date(2026, 11, 20))
    comparison = {v.metric: v for v in short}["stripe_revenue"].comparison
    assert comparison.current == 15 * 100 + 15 * 110 and comparison.previous is None


def test_a_day_before_the_window_has_no_comparison(marts: Path) -> None:
    _, values = load_metrics(marts, "acme", dt.date(2026, 2, 25))
    assert all(v.comparison.previous is None and v.comparison.change is None for v in values)


def test_unknown_project_and_day_without_data_are_one_line_errors_naming_the_fix(
    marts: Path,
) -> None:
    with pytest.raises(WarehouseError, match="no metrics for project nope: check the name"):
        load_metrics(marts, "nope")
    with pytest.raises(WarehouseError, match="on 2025-01-01: pick a day inside the synced window"):
        load_metrics(marts, "acme", dt.date(2025, 1, 1))
    with pytest.raises(WarehouseError, match="stripe-warehouse sync acme --backfill"):
        load_metrics(marts.parent / "missing.duckdb", "acme")


def test_ticks_are_round_cover_the_range_and_stay_whole_for_counts() -> None:
    assert nice_ticks(0, 116_486.94) == [0, 25_000, 50_000, 75_000, 100_000, 125_000]
    assert nice_ticks(-5_000, 20_000) == [-5_000, 0, 5_000, 10_000, 15_000, 20_000]
    assert nice_ticks(0, 3, whole=True) == [0, 1, 2, 3]
    assert all(t == int(t) for t in nice_ticks(0, 12, whole=True))


def test_axis_labels_put_the_sign_before_the_currency() -> None:
    assert format_value(-2_000, "USD") == "-$2,000"
    assert format_value(125_000, "USD") == "$125k"
    assert format_value(1_397_843, "USD") == "$1.4M"
    assert format_value(1134, "count") == "1,134"


def test_line_chart_has_axes_dated_ticks_and_one_point_per_day() -> None:
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(30)]
    svg = line_chart("MRR (USD)", days, [100.0 + i for i in range(30)], "USD")
    assert svg.count("<circle") == 30
    assert svg.count('class="axis"') >= 2
    assert "Nov 01" in svg and "2026-11-30: $129" in svg
