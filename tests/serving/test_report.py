"""The overview report, rendered by a real browser, shows the figures of marts.metrics_daily."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.publish import published_path
from stripe_warehouse.report import write_report

from ..browser import chromium
from .conftest import PROJECT, BuiltWarehouse

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.e2e
@pytest.mark.browser
def test_report_rendered_in_chromium_shows_the_latest_metrics_of_the_marts(
    built: BuiltWarehouse,
) -> None:
    page = write_report(published_path(built.home), PROJECT, built.home / "report.html")
    html = page.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html

    dom = chromium("--dump-dom", page.as_uri())
    shown = {m: float(v) for m, v in re.findall(r'data-metric="(\w+)" data-value="([-\d.]+)"', dom)}
    with duckdb.connect(str(published_path(built.home)), read_only=True) as con:
        expected = dict(
            con.execute(
                "select metric, cast(round(value, 2) as double) from marts.metrics_daily "
                "where project_id = ? "
                "and metric_date = (select max(metric_date) from marts.metrics_daily "
                "where project_id = ?)",
                [PROJECT, PROJECT],
            ).fetchall()
        )
        months = con.execute(
            "select count(*) from marts.fct_mrr_movements_monthly where project_id = ?", [PROJECT]
        ).fetchone()[0]
    assert shown == pytest.approx(expected, abs=0.005)
    assert len(shown) == 6
    # Real charts: five daily line charts and the monthly movements bars, each with axes.
    assert dom.count('<svg class="chart"') == 6
    assert dom.count('class="bar new"') >= months
    assert "Revenue per day (USD)" in dom and "MRR movements by month (USD)" in dom

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "overview-report.png"
    chromium("--window-size=1000,2400", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 20_000
