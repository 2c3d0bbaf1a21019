"""Small dependency-free SVG charts (line and stacked bars) with real axes, ticks and labels.

The overview report must render offline as one self-contained file, so the charts are
drawn here as inline SVG rather than by a JavaScript library fetched from the internet.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence

WIDTH, HEIGHT = 720, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 32, 20, 40


def nice_ticks(lo: float, hi: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart).

    `whole` keeps every tick a whole number, for counts.
    """
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    if whole:
        step = max(step, 1)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def format_value(value: float, unit: str) -> str:
    """Short axis-label form: $1.2M, $12k, -$2,000, 1,134."""
    if unit != "USD":
        return f"{value:,.0f}"
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 1_000_000:
        return f"{sign}${value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{sign}${value / 1_000:.0f}k"
    return f"{sign}${value:,.0f}"


def _plot_box() -> tuple[float, float, float, float]:
    return (
        MARGIN_LEFT,
        MARGIN_TOP,
        WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
        HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
    )


def _date_ticks(days: Sequence[dt.date], max_ticks: int = 7) -> list[int]:
    if len(days) <= max_ticks:
        return list(range(len(days)))
    step = math.ceil((len(days) - 1) / (max_ticks - 1))
    return list(range(0, len(days), step))


def _axes(
    title: str, y_ticks: list[float], y_of, unit: str, x_labels: list[tuple[float, str]]
) -> list[str]:
    x0, y0, w, h = _plot_box()
    parts = [f'<text class="axis-title" x="{x0}" y="{y0 - 4}">{html.escape(title)}</text>']
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{x0}" x2="{x0 + w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="y-label" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{format_value(tick, unit)}</text>"
        )
    parts.append(f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y0}" y2="{y0 + h}"/>')
    parts.append(f'<line class="axis" x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}"/>')
    for x, label in x_labels:
        parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{y0 + h}" y2="{y0 + h + 4}"/>'
        )
        parts.append(
            f'<text class="x-label" x="{x:.1f}" y="{y0 + h + 18}" text-anchor="middle">'
            f"{html.escape(label)}</text>"
        )
    return parts


def line_chart(title: str, days: Sequence[dt.date], values: Sequence[float], unit: str) -> str:
    """A daily line chart with a y axis in `unit` and dated x ticks."""
    x0, y0, w, h = _plot_box()
    ticks = nice_ticks(
        min(0.0, min(values, default=0.0)), max(values, default=1.0), whole=unit == "count"
    )
    lo, hi = ticks[0], ticks[-1]

    def x_of(i: int) -> float:
        return x0 + (w * i / max(len(days) - 1, 1))

    def y_of(v: float) -> float:
        return y0 + h - (v - lo) / (hi - lo) * h

    x_labels = [(x_of(i), days[i].strftime("%b %d")) for i in _date_ticks(days)]
    parts = _axes(title, ticks, y_of, unit, x_labels)
    points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline class="series" points="{points}"/>')
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        parts.append(
            f'<circle class="point" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="1.6">'
            f"<title>{day.isoformat()}: {format_value(v, unit)}</title></circle>"
        )
    return _svg(title, parts)


def stacked_bar_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], unit: str
) -> str:
    """Bars per label; positive series stack up from zero, negative ones stack down."""
    x0, y0, w, h = _plot_box()
    ups = [sum(max(s[i], 0) for s in series.values()) for i in range(len(labels))]
    downs = [sum(min(s[i], 0) for s in series.values()) for i in range(len(labels))]
    ticks = nice_ticks(min(downs, default=0.0), max(ups, default=1.0), whole=unit == "count")
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return y0 + h - (v - lo) / (hi - lo) * h

    slot = w / max(len(labels), 1)
    bar = slot * 0.6
    x_labels = [(x0 + slot * (i + 0.5), label) for i, label in enumerate(labels)]
    parts = _axes(title, ticks, y_of, unit, x_labels)
    for i, label in enumerate(labels):
        up, down = 0.0, 0.0
        for name, values in series.items():
            v = values[i]
            base = up if v >= 0 else down
            top = base + v
            y_a, y_b = sorted((y_of(base), y_of(top)))
            parts.append(
                f'<rect class="bar {html.escape(name)}" x="{x0 + slot * i + (slot - bar) / 2:.1f}" '
                f'y="{y_a:.1f}" width="{bar:.1f}" height="{max(y_b - y_a, 0):.1f}">'
                f"<title>{html.escape(label)} {html.escape(name)}: "
                f"{format_value(v, unit)}</title></rect>"
            )
            if v >= 0:
                up = top
            else:
                down = top
    legend_x = x0 + 8
    for name in series:
        parts.append(
            f'<rect class="bar {html.escape(name)}" x="{legend_x}" y="{y0 + 4}" '
            'width="10" height="10"/>'
        )
        parts.append(
            f'<text class="legend" x="{legend_x + 14}" y="{y0 + 13}">{html.escape(name)}</text>'
        )
        legend_x += 16 + 8 * len(name) + 12
    return _svg(title, parts)


def _svg(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">\n{body}\n</svg>'
    )
