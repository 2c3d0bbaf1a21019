"""The overview report: like-with-like comparisons, charts that fit any screen, rendered by a
real browser from the figures of the marts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.charts import stacked_bar_chart
from stripe_warehouse.publish import published_path
from stripe_warehouse.report import write_report

from ..browser import chromium, open_page
from .conftest import PROJECT, BuiltWarehouse

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
PHONE, DESKTOP = 390, 1600


class _Cards(HTMLParser):
    """The texts of each card's lines, by metric: label, value, change, period."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, list[str]] = {}
        self._metric: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "div":
            return
        found = dict(attrs)
        if found.get("class") == "card":
            self._metric, self._depth = found["data-metric"], 0
            self.cards[self._metric] = []
        elif self._metric is not None:
            self._depth += 1
            self.cards[self._metric].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._metric is not None:
            if self._depth == 0:
                self._metric = None
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._metric is not None and self._depth > 0:
            self.cards[self._metric][-1] += data.strip()


def _cards(page: str) -> dict[str, list[str]]:
    parser = _Cards()
    parser.feed(page)
    return parser.cards


def _table_rows(page: str) -> dict[str, list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows]
    return {c[0]: c[1:] for c in cells if c}


def test_revenue_card_compares_the_last_30_complete_days_with_the_30_before(
    hand_marts: Path, tmp_path: Path
) -> None:
    page = write_report(hand_marts, PROJECT, tmp_path / "report.html").read_text()
    cards = _cards(page)
    # Not the partial last day ($7) against a full day a month earlier.
    assert cards["stripe_revenue"] == [
        "Revenue, last 30 complete days",
        "$3,300.00",
        "+$300.00 (+10.0%) vs 2026-10-07 to 2026-11-05",
        "2026-11-06 to 2026-12-05",
    ]
    assert 'data-metric="stripe_revenue" data-value="3300.00"' in page
    assert cards["stripe_failed_payments"][1:3] == [
        "30", "-30 (-50.0%) vs 2026-10-07 to 2026-11-05"
    ]
    # Stocks: the level at the last sync against the end of the same day a month earlier.
    assert cards["stripe_mrr"] == [
        "MRR",
        "$1,660.00",
        "+$300.00 (+22.1%) vs end of 2026-11-06",
        "at the last sync (2026-12-06)",
    ]
    rows = _table_rows(page)
    assert rows["Revenue"] == [
        "2026-11-06 to 2026-12-05 vs 2026-10-07 to 2026-11-05", "$3,300.00", "$3,000.00", "+10.0%"
    ]
    assert rows["MRR"] == [
        "end of 2026-12-06 vs end of 2026-11-06", "$1,660.00", "$1,360.00", "+22.1%"
    ]
    assert "the sum over the last 30 complete days against the 30 days before them" in page


def _boxes(svg: str) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]], float]:
    """(legend boxes, bar boxes, top of the plot) of a bar chart, as (x, y, width, height)
    in viewBox units.

    Bars carry a <title> (their tooltip); legend swatches do not. A legend label's box is
    taken generously: 10 units a character, from 12 units above its y to 9 below (room for
    text set on its baseline or centred on it, up to 18 units high).
    """
    root = ET.fromstring(svg)
    legend, bars = [], []
    for rect in root.iter("rect"):
        box = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
        (bars if rect.find("title") is not None else legend).append(box)
    for text in root.iter("text"):
        if text.get("class") == "legend":
            x, y = float(text.get("x")), float(text.get("y"))
            legend.append((x, y - 12, 10.0 * len(text.text), 21.0))
    plot_top = min(
        float(line.get("y1")) for line in root.iter("line") if line.get("class") == "grid"
    )
    return legend, bars, plot_top


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_movements_legend_sits_between_the_title_and_the_plot_never_over_a_bar() -> None:
    # The first month is the tallest: its bar reaches the top of the plot.
    svg = stacked_bar_chart(
        "MRR movements by month (USD)",
        [f"2026-{m:02}" for m in range(1, 13)],
        {
            "new": [9000.0] + [300.0] * 11,
            "expansion": [500.0] * 12,
            "reactivation": [100.0] * 12,
            "contraction": [-50.0] * 12,
            "churn": [-400.0] * 12,
            "fx": [0.0] * 12,
        },
        "USD",
    )
    legend, bars, plot_top = _boxes(svg)
    assert len(legend) == 12 and len(bars) == 72
    width = float(ET.fromstring(svg).get("viewBox").split()[2])
    for item in legend:
        assert item[1] + item[3] <= plot_top, f"legend item {item} reaches into the plot"
        assert item[0] + item[2] <= width, f"legend item {item} runs off the chart"
        assert not any(_overlap(item, bar) for bar in bars)


@pytest.mark.e2e
@pytest.mark.browser
def test_report_rendered_in_chromium_shows_the_figures_of_the_marts(
    built: BuiltWarehouse,
) -> None:
    page = write_report(published_path(built.home), PROJECT, built.home / "report.html")
    html = page.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html

    dom = chromium("--dump-dom", page.as_uri())
    shown = {m: float(v) for m, v in re.findall(r'data-metric="(\w+)" data-value="([-\d.]+)"', dom)}
    with duckdb.connect(str(published_path(built.home)), read_only=True) as con:
        # Stocks at the last reported day; flows summed over the 30 complete days before it.
        expected = dict(
            con.execute(
                "with last as (select max(metric_date) as day from marts.metrics_daily "
                "where project_id = $1) "
                "select metric, cast(round(sum(value), 2) as double) "
                "from marts.metrics_daily, last "
                "where project_id = $1 and ("
                "  (metric in ('stripe_revenue', 'stripe_failed_payments') "
                "   and metric_date between day - 30 and day - 1) "
                "  or (metric not in ('stripe_revenue', 'stripe_failed_payments') "
                "   and metric_date = day)) "
                "group by metric",
                [PROJECT],
            ).fetchall()
        )
        months = con.execute(
            "select count(*) from marts.fct_mrr_movements_monthly where project_id = ?", [PROJECT]
        ).fetchone()[0]
    assert len(shown) == 6
    assert shown == pytest.approx(expected, abs=0.005)
    # Real charts: five daily line charts and the monthly movements bars, each with axes.
    assert dom.count('<svg class="chart"') == 6
    assert dom.count('class="bar new"') >= months
    assert "Revenue per day (USD)" in dom and "MRR movements by month (USD)" in dom


# What Chromium laid out: the page's width, each chart's box and its container's content
# width, and the boxes of the legend labels and of the bars (bars have a tooltip <title>).
LAYOUT = """(() => {
  const box = e => {
    const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
  const content = e => { const s = getComputedStyle(e);
    return e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
  return {
    scroll_width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
    charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
      view_box: svg.getAttribute('viewBox'), box: box(svg), room: content(svg.parentElement)})),
    legend: [...document.querySelectorAll('svg.chart text.legend')].map(box),
    bars: [...document.querySelectorAll('svg.chart rect.bar')]
      .filter(r => r.querySelector('title')).map(box),
  };
})()"""


@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.parametrize(
    ("width", "screenshot"),
    [(PHONE, "overview-report-phone.png"), (DESKTOP, "overview-report.png")],
)
def test_report_fits_the_screen_with_charts_scaled_to_the_page(
    built: BuiltWarehouse, width: int, screenshot: str
) -> None:
    page = write_report(published_path(built.home), PROJECT, built.home / f"report-{width}.html")
    with open_page(page.as_uri(), width) as browser:
        layout = browser.evaluate(LAYOUT)
        assert layout["scroll_width"] <= width, "the page scrolls sideways"
        assert len(layout["charts"]) == 6
        for chart in layout["charts"]:
            _, _, view_width, view_height = (float(v) for v in chart["view_box"].split())
            _, _, shown_width, shown_height = chart["box"]
            # As wide as its card, whatever the screen, and drawn to scale.
            assert shown_width == pytest.approx(chart["room"], abs=1)
            assert shown_height / shown_width == pytest.approx(view_height / view_width, rel=0.01)
        assert layout["legend"] and layout["bars"]
        for label in layout["legend"]:
            assert not any(_overlap(label, bar) for bar in layout["bars"]), f"{label} on a bar"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / screenshot
        shot.unlink(missing_ok=True)
        browser.screenshot(shot)
    assert shot.stat().st_size > 20_000


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.e2e
def test_installed_package_finds_the_report_template(hand_marts: Path, tmp_path: Path) -> None:
    # Build the wheel from a copy of the sources (a build writes build/ beside them), install
    # it alone into a directory, and render from there, away from the checkout.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    for package in ("stripe_warehouse", "pipelines", "orchestration", "service", "sandbox"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source))
    _pip("install", "--no-deps", "--target", str(site), *map(str, wheels.glob("*.whl")))
    out = tmp_path / "installed.html"
    script = (
        "import sys, stripe_warehouse.report as r; from pathlib import Path; "
        f"assert r.__file__.startswith({str(site)!r}), r.__file__; "
        f"r.write_report(Path({str(hand_marts)!r}), 'acme', Path({str(out)!r}))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-metric="stripe_revenue" data-value="3300.00"' in out.read_text()
