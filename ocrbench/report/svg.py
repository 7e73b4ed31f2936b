"""Inline SVG charts for the web page, written as text (no plotting library, no script needed to draw them).

Each point carries a ``<title>`` (the browser shows it on hover) and, for leaderboard rows, ``data-row`` with the
id of its table row, which the page's script uses to light up the row and the point together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# (column, axis label) of the cost panels: CER against each (the PNG plot and the page draw the same panels)
COST_AXES = [("gmacs_per_line", "GMACs per line (forward)"), ("train_lines_per_s", "training throughput (lines/s)"),
             ("params_m", "parameters (millions)")]

WIDTH, HEIGHT = 330, 250
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 12, 40  # margins around the plotting area, in SVG units


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # the hover text
    yerr: float = 0.0  # half-width of the error bar
    row: str = ""  # id of the table row it stands for
    colour: int = 0  # index into the page's palette (CSS classes c0..c9)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs((high - low) / st - (count - 1)))
    first = math.floor(low / step) * step
    return [round(first + i * step, 12) for i in range(int(math.ceil((high - first) / step)) + 1)]


class _Scale:
    """Data to SVG coordinates on one axis (log10 when ``log``)."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool = False):
        self.log = log
        f = math.log10 if log else float
        self.low, self.high = f(low), f(high)
        if self.high == self.low:
            self.low, self.high = self.low - 1, self.high + 1
        self.start, self.end = start, end

    def __call__(self, v: float) -> float:
        v = math.log10(v) if self.log else v
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)


def _ticks(low: float, high: float, log: bool) -> tuple[float, float, list[float]]:
    """Axis limits and ticks: round numbers on a linear axis, powers of ten on a log one."""
    if log:
        lo, hi = 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
        return lo, hi, [10.0 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    ticks = nice_ticks(low, high)
    return ticks[0], ticks[-1], ticks


def _fmt(v: float) -> str:
    return f"{v:g}"


def _frame(xscale: _Scale, yscale: _Scale, xticks, yticks, xlabel: str, ylabel: str) -> list[str]:
    """Axes, grid lines, tick labels and axis titles."""
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    out = [f'<rect class="area" x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}"/>']
    for t in xticks:
        x = xscale(t)
        out += [f'<line class="grid" x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}"/>',
                f'<text class="tick" x="{x:.1f}" y="{y0 + 13}" text-anchor="middle">{_fmt(t)}</text>']
    for t in yticks:
        y = yscale(t)
        out += [f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}"/>',
                f'<text class="tick" x="{x0 - 4}" y="{y + 3:.1f}" text-anchor="end">{_fmt(t)}</text>']
    out += [f'<text class="label" x="{(x0 + x1) / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(xlabel)}</text>',
            f'<text class="label" transform="translate(12 {(y0 + y1) / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>']
    return out


def _open(label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">')


def scatter(points: list[Point], xlabel: str, ylabel: str) -> str:
    """A scatter plot with vertical error bars; the x axis is log10 when the values span more than a decade
    (as in the PNG plot). ``""`` without points."""
    points = [p for p in points if _finite(p.x) and _finite(p.y)]
    if not points:
        return ""
    xs = [p.x for p in points]
    log = min(xs) > 0 and max(xs) / min(xs) > 10
    xlo, xhi, xticks = _ticks(min(xs), max(xs), log)
    ylo, yhi, yticks = _ticks(min(0.0, *(p.y - p.yerr for p in points)), max(p.y + p.yerr for p in points), False)
    if not log:  # a little room so that points at the ends are not cut by the frame
        pad = (xhi - xlo) * 0.04 or 1.0
        xlo, xhi = xlo - pad, xhi + pad
    xs_, ys_ = _Scale(xlo, xhi, LEFT, WIDTH - RIGHT, log), _Scale(ylo, yhi, HEIGHT - BOTTOM, TOP)
    out = [_open(f"{ylabel} against {xlabel}")] + _frame(xs_, ys_, xticks, yticks, xlabel, ylabel)
    for p in points:
        x, y = xs_(p.x), ys_(p.y)
        bar = ""
        if p.yerr and _finite(p.yerr):
            bar = f'<line class="err" x1="{x:.1f}" y1="{ys_(p.y - p.yerr):.1f}" x2="{x:.1f}" y2="{ys_(p.y + p.yerr):.1f}"/>'
        row = f' data-row="{escape(p.row)}"' if p.row else ""
        out.append(f'<g class="pt c{p.colour % 10}"{row}>{bar}<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5"/>'
                   f'<title>{escape(p.title)}</title></g>')
    return "\n".join(out + ["</svg>"])


def lines(series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, point_titles: bool = False) -> str:
    """One polyline per named series (a legend below the axes); with ``point_titles`` each point gets a dot
    whose hover text is its value. ``""`` without data."""
    series = {k: [(x, y) for x, y in v if _finite(x) and _finite(y)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    xlo, xhi, xticks = _ticks(min(xs), max(xs), False)
    ylo, yhi, yticks = _ticks(min(0.0, min(ys)), max(ys), False)
    xs_, ys_ = _Scale(xlo, xhi, LEFT, WIDTH - RIGHT), _Scale(ylo, yhi, HEIGHT - BOTTOM, TOP)
    out = [_open(f"{ylabel} against {xlabel}")] + _frame(xs_, ys_, xticks, yticks, xlabel, ylabel)
    for i, (name, pts) in enumerate(series.items()):
        path = " ".join(f"{xs_(x):.1f},{ys_(y):.1f}" for x, y in pts)
        out.append(f'<g class="series c{i % 10}"><title>{escape(name)}</title><polyline points="{path}"/></g>')
        if point_titles:
            out += [f'<g class="pt c{i % 10}"><circle cx="{xs_(x):.1f}" cy="{ys_(y):.1f}" r="3"/>'
                    f'<title>{escape(name)}: {ylabel} {y:.4g} at {xlabel} {x:g}</title></g>' for x, y in pts]
    legend = "".join(f'<span class="key c{i % 10}">{escape(name)}</span>' for i, name in enumerate(series))
    return "\n".join(out + ["</svg>", f'<div class="legend">{legend}</div>'])


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
