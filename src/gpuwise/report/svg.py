"""Small inline-SVG charts: line charts over time and a labelled scatter, no dependency.

Why hand-written SVG rather than a plotting library: the report must open anywhere with no
network (so no CDN script), stay small enough to attach to an issue, and render in a headless
browser for the tests; a few polylines and text elements do all of that, and the numbers stay
readable in the file itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#17becf",
    "#bcbd22",
)


@dataclass(frozen=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dash: str = ""  # an SVG stroke-dasharray, e.g. "4 3"
    width: float = 1.6


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 220,
    y_max: float | None = None,
    hlines: Sequence[tuple[float, str, str]] = (),
    log_y: bool = False,
    spans: Sequence[tuple[float, float, str, str]] = (),
) -> str:
    """An SVG line chart; NaN points break a line. ``hlines`` are (y, label, color);
    ``spans`` are shaded x-ranges (x0, x1, label, color) drawn under the lines."""
    ml, mr, mt, mb = 56, 12, 34, 38
    pw, ph = width - ml - mr, height - mt - mb
    xs_all = [x for s in series for x in s.xs if math.isfinite(x)]
    ys_all = [y for s in series for y in s.ys if math.isfinite(y)]
    ys_all += [y for y, _, _ in hlines]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1.0
    if log_y:
        pos = [y for y in ys_all if y > 0]
        y0 = min(pos) if pos else 0.01
        y1 = max(pos) if pos else 1.0
        y0 = 10 ** math.floor(math.log10(y0))
        y1 = 10 ** math.ceil(math.log10(max(y1, y0 * 10)))
    else:
        y0 = 0.0
        y1 = y_max if y_max is not None else (max(ys_all) if ys_all else 1.0)
        y1 = y1 * 1.08 if y1 > 0 else 1.0

    def px(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        if log_y:
            y = max(y, y0)
            f = (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0))
        else:
            f = (y - y0) / (y1 - y0)
        return mt + ph - min(max(f, 0.0), 1.0) * ph

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{ml}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    yt = (
        [10**k for k in range(int(math.log10(y0)), int(math.log10(y1)) + 1)]
        if log_y
        else nice_ticks(y0, y1)
    )
    for v in yt:
        y = py(v)
        out.append(
            f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{ml - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{_fmt(v)}</text>'
        )
    for v in nice_ticks(x0, x1, 6):
        x = px(v)
        out.append(
            f'<line x1="{x:.1f}" y1="{mt + ph}" x2="{x:.1f}" y2="{mt + ph + 3}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{mt + ph + 13}" font-size="9" text-anchor="middle">'
            f"{_fmt(v)}</text>"
        )
    out.append(
        f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>'
        f'<text x="{ml + pw / 2}" y="{height - 6}" font-size="10" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{mt + ph / 2}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {mt + ph / 2})">{escape(y_label)}</text>'
    )
    for a, b, label, color in spans:
        xa, xb = px(max(a, x0)), px(min(b, x1))
        if xb > xa:
            out.append(
                f'<rect x="{xa:.1f}" y="{mt}" width="{xb - xa:.1f}" height="{ph}" '
                f'fill="{color}" fill-opacity="0.12"/><text x="{xa + 3:.1f}" y="{mt + 10}" '
                f'font-size="9" fill="#555">{escape(label)}</text>'
            )
    for y, label, color in hlines:
        yy = py(y)
        out.append(
            f'<line x1="{ml}" y1="{yy:.1f}" x2="{ml + pw}" y2="{yy:.1f}" stroke="{color}" '
            f'stroke-dasharray="6 3"/><text x="{ml + pw - 2}" y="{yy - 3:.1f}" font-size="9" '
            f'text-anchor="end" fill="{color}">{escape(label)}</text>'
        )
    lx = ml + 4
    for s in series:
        pts: list[list[str]] = [[]]
        for x, y in zip(s.xs, s.ys, strict=True):
            if math.isfinite(x) and math.isfinite(y) and (not log_y or y > 0):
                pts[-1].append(f"{px(x):.1f},{py(y):.1f}")
            elif pts[-1]:
                pts.append([])
        for seg in pts:
            if len(seg) >= 2:
                dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
                out.append(
                    f'<polyline fill="none" stroke="{s.color}" stroke-width="{s.width}"{dash} '
                    f'points="{" ".join(seg)}"/>'
                )
        out.append(
            f'<rect x="{lx}" y="{mt - 12}" width="10" height="3" fill="{s.color}"/>'
            f'<text x="{lx + 13}" y="{mt - 8}" font-size="9">{escape(s.label)}</text>'
        )
        lx += 18 + 5.5 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def scatter(
    points: Sequence[tuple[str, float, float, str]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 300,
    vlines: Sequence[tuple[float, str, str]] = (),
) -> str:
    """Labelled points (label, x, y, color); ``vlines`` are (x, label, color)."""
    ml, mr, mt, mb = 56, 16, 28, 38
    pw, ph = width - ml - mr, height - mt - mb
    xs = [p[1] for p in points if math.isfinite(p[1])] + [v for v, _, _ in vlines]
    ys = [p[2] for p in points if math.isfinite(p[2])]
    x0, x1 = 0.0, (max(xs) * 1.1 if xs else 1.0)
    y0 = min(ys) if ys else 0.0
    y0 = max(0.0, y0 - 0.05 * (1.0 - y0) - 0.01)
    y1 = 1.0

    def px(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return mt + ph - (y - y0) / (y1 - y0) * ph if y1 > y0 else mt

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{ml}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
    ]
    for v in nice_ticks(y0, y1):
        y = py(v)
        out.append(
            f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{ml - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">'
            f"{v:.0%}</text>"
        )
    for v in nice_ticks(x0, x1, 6):
        x = px(v)
        out.append(
            f'<text x="{x:.1f}" y="{mt + ph + 13}" font-size="9" text-anchor="middle">'
            f"${_fmt(v)}</text>"
        )
    for v, label, color in vlines:
        x = px(v)
        out.append(
            f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + ph}" stroke="{color}" '
            f'stroke-dasharray="6 3"/><text x="{x + 3:.1f}" y="{mt + 10}" font-size="9" '
            f'fill="{color}">{escape(label)}</text>'
        )
    for label, x, y, color in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        out.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{color}"/>'
            f'<text x="{px(x) + 7:.1f}" y="{py(y) + 3:.1f}" font-size="10">{escape(label)}</text>'
        )
    out.append(
        f'<text x="{ml + pw / 2}" y="{height - 6}" font-size="10" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{mt + ph / 2}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {mt + ph / 2})">{escape(y_label)}</text></svg>'
    )
    return "".join(out)
