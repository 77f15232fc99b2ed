"""Plots as inline SVG strings (no plotting library): histograms and line charts."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 44, 40
LEGEND_Y = 30
COLOURS = ("#3b6fb6", "#d9822b", "#3a9a5b", "#b33a3a")


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="12" y="{HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {HEIGHT / 2})">{escape(ylabel)}</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
    ]


def _x(value: float, lo: float, hi: float) -> float:
    span = (hi - lo) or 1.0
    return LEFT + (value - lo) / span * (WIDTH - LEFT - RIGHT)


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - value / (top or 1.0) * (HEIGHT - TOP - BOTTOM)


def _ticks(lo: float, hi: float, top: float, fmt: str = "{:.2g}") -> list[str]:
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        x = _x(v, lo, hi)
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">'
            f"{escape(fmt.format(v))}</text>"
        )
    for v in (0, top / 2, top):
        y = _y(v, top)
        label = f"{v:.0f}" if float(top).is_integer() and float(v).is_integer() else f"{v:.2g}"
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return out


def _legend(labels: Sequence[str]) -> list[str]:
    out = []
    for i, label in enumerate(labels):
        x = LEFT + 8 + i * 150
        out.append(
            f'<rect x="{x}" y="{LEGEND_Y - 9}" width="10" height="10" fill="{COLOURS[i % 4]}"/>'
            f'<text x="{x + 14}" y="{LEGEND_Y}">{escape(label)}</text>'
        )
    return out


def histogram(
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    bins: int = 10,
    lo: float | None = None,
    hi: float | None = None,
) -> str:
    """Side-by-side bars, one colour per ``(label, values)`` series, over shared bins."""
    values = [v for _, vs in series for v in vs]
    if not values:
        return _empty(title)
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    width = (hi - lo) / bins
    counts = []
    for _, vs in series:
        c = [0] * bins
        for v in vs:
            c[min(bins - 1, max(0, int((v - lo) / width)))] += 1
        counts.append(c)
    top = max(max(c) for c in counts) or 1
    top += top % 2  # an even count, so the middle tick is a whole number
    parts = _frame(title, xlabel, "questions") + _ticks(lo, hi, top)
    bar = (WIDTH - LEFT - RIGHT) / bins / max(1, len(series))
    for si, c in enumerate(counts):
        for b, n in enumerate(c):
            if not n:
                continue
            x = _x(lo + b * width, lo, hi) + si * bar
            y = _y(n, top)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{COLOURS[si % 4]}">'
                f"<title>{escape(series[si][0])}: {n} in [{lo + b * width:.3g}, "
                f"{lo + (b + 1) * width:.3g})</title></rect>"
            )
    if len(series) > 1:
        parts += _legend([label for label, _ in series])
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(
    x: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    marker: float | None = None,
    marker_label: str = "",
) -> str:
    """Lines over a shared x (y from 0 to 1), with an optional dashed vertical marker."""
    if len(x) < 2:
        return _empty(title)
    lo, hi = min(x), max(x)
    parts = _frame(title, xlabel, ylabel) + _ticks(lo, hi, 1.0)
    for si, (_, ys) in enumerate(series):
        pts = [
            f"{_x(xv, lo, hi):.1f},{_y(yv, 1.0):.1f}"
            for xv, yv in zip(x, ys, strict=True)
            if yv is not None
        ]
        if pts:
            parts.append(
                f'<polyline fill="none" stroke="{COLOURS[si % 4]}" stroke-width="2" '
                f'points="{" ".join(pts)}"/>'
            )
    if marker is not None and lo <= marker <= hi:
        mx = _x(marker, lo, hi)
        parts.append(
            f'<line x1="{mx:.1f}" y1="{TOP}" x2="{mx:.1f}" y2="{HEIGHT - BOTTOM}" '
            'stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{mx + 3:.1f}" y="{TOP + 12}">{escape(marker_label)}</text>'
        )
    parts += _legend([label for label, _ in series])
    parts.append("</svg>")
    return "\n".join(parts)


def _empty(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="60" '
        'font-family="sans-serif" font-size="12">'
        f'<text x="8" y="24">{escape(title)}: nothing to plot</text></svg>'
    )
