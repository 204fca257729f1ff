"""Small server-side SVG charts (no script, no CDN: pages work offline and under a strict CSP).

Every piece of text is escaped; styling uses SVG presentation attributes, which the page's
`style-src 'self'` policy does not block.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 480
HEIGHT = 160
PAD_LEFT = 44
PAD_BOTTOM = 28
PAD_TOP = 12
BAR = "#0b5cad"
LINE = "#0b5cad"
GRID = "#d0d7de"
TEXT = "#57606a"


def _frame(title: str, body: list[str]) -> SafeString:
    # Every text piece in `body` and the title went through escape().
    return mark_safe(  # noqa: S308
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _empty(title: str) -> SafeString:
    return _frame(title, [f'<text x="10" y="20" fill="{TEXT}">no data yet</text>'])


def _axis(low: float, high: float, fmt: str) -> list[str]:
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = PAD_TOP + plot_height * (1 - fraction)
        value = low + (high - low) * fraction
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="{TEXT}">{escape(format(value, fmt))}</text>'
        )
    return parts


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str) -> SafeString:
    """One bar per label (a distribution of answers, say)."""
    if not values or max(values) <= 0:
        return _empty(title)
    high = max(values)
    plot_width = WIDTH - PAD_LEFT
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_width / len(values)
    body = _axis(0.0, high, ".0f" if high >= 10 else ".2g")
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_height = plot_height * value / high
        x = PAD_LEFT + index * step + step * 0.15
        body.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_height - bar_height:.1f}" '
            f'width="{step * 0.7:.1f}" height="{bar_height:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {escape(format(value, 'g'))}</title></rect>"
            f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - 10}" font-size="10" '
            f'text-anchor="middle" fill="{TEXT}">{escape(label)}</text>'
        )
    return _frame(title, body)


def line_chart(
    labels: Sequence[str], values: Sequence[float | None], *, title: str, fmt: str = ".2f"
) -> SafeString:
    """A series over time (a score per scoring run, cost per label per day); gaps allowed."""
    known = [value for value in values if value is not None]
    if not any(known):
        return _empty(title)
    low, high = min(known), max(known)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    plot_width = WIDTH - PAD_LEFT - 10
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_width / max(len(values) - 1, 1)
    body = _axis(low, high, fmt)
    points = []
    for index, value in enumerate(values):
        if value is None:
            continue
        x = PAD_LEFT + 5 + index * step
        y = PAD_TOP + plot_height * (1 - (value - low) / (high - low))
        points.append(f"{x:.1f},{y:.1f}")
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}">'
            f"<title>{escape(labels[index])}: {escape(format(value, fmt))}</title></circle>"
        )
    body.insert(
        0, f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2"/>'
    )
    if labels:
        for index in {0, len(labels) - 1}:
            x = PAD_LEFT + 5 + index * step
            anchor = "start" if index == 0 else "end"
            body.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="{anchor}" '
                f'fill="{TEXT}">{escape(labels[index])}</text>'
            )
    return _frame(title, body)
