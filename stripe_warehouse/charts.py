"""Small dependency-free SVG charts (line and stacked bars) with real axes, ticks and labels.

The overview report must render offline as one self-contained file, so the charts are
drawn here as inline SVG rather than by a JavaScript library fetched from the internet.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence

# The charts' own coordinate system (the SVG viewBox); the page scales them to its width.
WIDTH, HEIGHT = 720, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 32, 20, 40
# Generous text metrics in viewBox units, for the largest label size the page uses (16 on a
# phone): layout computed with them cannot make labels collide at any screen width.
CHAR_WIDTH, LINE_HEIGHT = 10.0, 18.0
SWATCH = 10.0
MIN_X_LABEL_GAP = 80.0


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


def _plot_box(extra_top: float = 0.0) -> tuple[float, float, float, float]:
    """x, y, width, height of the plotting area; `extra_top` leaves room for a legend."""
    top = MARGIN_TOP + extra_top
    return MARGIN_LEFT, top, WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - top - MARGIN_BOTTOM


def _date_ticks(days: Sequence[dt.date], max_ticks: int = 7) -> list[int]:
    if len(days) <= max_ticks:
        return list(range(len(days)))
    step = math.ceil((len(days) - 1) / (max_ticks - 1))
    return list(range(0, len(days), step))


def _axes(
    box: tuple[float, float, float, float],
    title: str,
    y_ticks: list[float],
    y_of,
    unit: str,
    x_labels: list[tuple[float, str]],
) -> list[str]:
    x0, y0, w, h = box
    parts = [f'<text class="axis-title" x="{x0}" y="{MARGIN_TOP - 4}">{html.escape(title)}</text>']
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
    box = _plot_box()
    x0, y0, w, h = box
    ticks = nice_ticks(
        min(0.0, min(values, default=0.0)), max(values, default=1.0), whole=unit == "count"
    )
    lo, hi = ticks[0], ticks[-1]

    def x_of(i: int) -> float:
        return x0 + (w * i / max(len(days) - 1, 1))

    def y_of(v: float) -> float:
        return y0 + h - (v - lo) / (hi - lo) * h

    x_labels = [(x_of(i), days[i].strftime("%b %d")) for i in _date_ticks(days)]
    parts = _axes(box, title, ticks, y_of, unit, x_labels)
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
    """Bars per label; positive series stack up from zero, negative ones stack down.

    The legend sits in its own rows between the title and the plot, never over a bar.
    """
    legend, legend_height = _legend(list(series), MARGIN_TOP + 4)
    box = _plot_box(extra_top=legend_height)
    x0, y0, w, h = box
    ups = [sum(max(s[i], 0) for s in series.values()) for i in range(len(labels))]
    downs = [sum(min(s[i], 0) for s in series.values()) for i in range(len(labels))]
    ticks = nice_ticks(min(downs, default=0.0), max(ups, default=1.0), whole=unit == "count")
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return y0 + h - (v - lo) / (hi - lo) * h

    slot = w / max(len(labels), 1)
    bar = slot * 0.6
    # Month labels are wider than a month's slot once there are many: label every n-th month.
    every = max(1, math.ceil(MIN_X_LABEL_GAP / slot))
    x_labels = [
        (x0 + slot * (i + 0.5), label) for i, label in enumerate(labels) if i % every == 0
    ]
    parts = _axes(box, title, ticks, y_of, unit, x_labels)
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
    return _svg(title, parts + legend)


def _legend(names: list[str], top: float) -> tuple[list[str], float]:
    """Swatch-and-name items in rows from `top`, wrapped to the chart's width.

    Returns the SVG parts and the height the rows take (plus a gap before the plot).
    """
    parts: list[str] = []
    x, row = float(MARGIN_LEFT), 0
    for name in names:
        item_width = SWATCH + 4 + CHAR_WIDTH * len(name)
        if x > MARGIN_LEFT and x + item_width > WIDTH - MARGIN_RIGHT:
            x, row = float(MARGIN_LEFT), row + 1
        y = top + row * LINE_HEIGHT
        parts.append(
            f'<rect class="bar legend-swatch {html.escape(name)}" x="{x:.1f}" '
            f'y="{y + (LINE_HEIGHT - SWATCH) / 2:.1f}" width="{SWATCH}" height="{SWATCH}"/>'
        )
        parts.append(
            f'<text class="legend" x="{x + SWATCH + 4:.1f}" y="{y + LINE_HEIGHT / 2:.1f}" '
            f'dominant-baseline="central">{html.escape(name)}</text>'
        )
        x += item_width + 16
    return parts, (row + 1) * LINE_HEIGHT + 8


def _svg(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet">'
        f"\n{body}\n</svg>"
    )
