"""Reading the published metrics for the terminal, and the chart arithmetic of the report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.charts import format_value, line_chart, nice_ticks
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.metrics import (
    format_metrics,
    load_metrics,
    metrics_json,
    previous_month_day,
)


@pytest.fixture
def marts(tmp_path: Path) -> Path:
    """A warehouse holding only marts.metrics_daily: 40 days of one project, MRR +10 a day."""
    path = tmp_path / "reporting.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema marts; create table marts.metrics_daily (project_id varchar, "
            "metric_date date, metric varchar, value double, unit varchar)"
        )
        start = dt.date(2026, 2, 20)
        for i in range(40):
            day = start + dt.timedelta(days=i)
            for metric, unit, value in (
                ("stripe_mrr", "USD", 1000 + 10 * i),
                ("stripe_active_subscriptions", "count", 5 + i),
            ):
                con.execute(
                    "insert into marts.metrics_daily values ('acme', ?, ?, ?, ?)",
                    [day, metric, value, unit],
                )
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
    assert by_metric["stripe_mrr"].previous == 1080
    assert by_metric["stripe_mrr"].change == 310
    assert by_metric["stripe_active_subscriptions"].change == 31
    text = format_metrics("acme", day, values)
    assert "$1,390.00" in text and "+$310.00" in text and "+31" in text
    payload = json.loads(metrics_json("acme", day, values))
    assert payload["date"] == "2026-03-31"
    assert payload["metrics"][0] == {
        "metric": "stripe_mrr", "unit": "USD", "value": 1390.0, "previous": 1080.0, "change": 310.0
    }


def test_a_day_before_the_window_has_no_comparison(marts: Path) -> None:
    _, values = load_metrics(marts, "acme", dt.date(2026, 2, 25))
    assert all(v.previous is None and v.change is None for v in values)


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
