"""Small inline-SVG builders for the report: pure functions from numbers to markup, no I/O.

Every builder returns one ``<svg>`` element as text, with ``role="img"``, an ``aria-label`` and
a ``<title>`` per drawn mark (a tooltip in any browser, no script). Text is escaped here; callers
pass plain strings. Charts scale to the width of their container (``viewBox``, no fixed size).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

import attrs

__all__ = [
    "Scale",
    "bar_chart",
    "element",
    "esc",
    "line_chart",
    "nice_ticks",
    "svg",
]


def esc(text: object) -> str:
    """*text* escaped for HTML/SVG text and attribute values."""
    return html.escape(str(text), quote=True)


def element(tag: str, attributes: Mapping[str, object], body: str = "") -> str:
    """``<tag a="v" ...>body</tag>`` (attribute values escaped, *body* inserted as is; ``None``
    values are left out). Self-closing when *body* is empty."""
    parts = [tag]
    for name, value in attributes.items():
        if value is None:
            continue
        shown = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
        parts.append(f'{name}="{esc(shown)}"')
    opening = " ".join(parts)
    return f"<{opening}>{body}</{tag}>" if body else f"<{opening}/>"


def svg(width: int, height: int, label: str, body: str, *, css_class: str = "chart") -> str:
    """The outer ``<svg>`` of *width* × *height* user units."""
    return element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "class": css_class,
            "role": "img",
            "aria-label": label,
        },
        f"<title>{esc(label)}</title>{body}",
    )


@attrs.frozen
class Scale:
    """Linear map from the data interval ``[lo, hi]`` onto the pixel interval ``[a, b]`` (a
    degenerate data interval maps everything to the middle)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        if self.hi == self.lo:
            return (self.a + self.b) / 2
        return self.a + (value - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About *count* round tick values covering ``[lo, hi]`` (steps of 1, 2 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    digits = max(0, -math.floor(math.log10(step))) + 1
    return [round(n * step, digits) + 0.0 for n in range(first, last + 1)]


_W, _H = 960, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 96, 16, 12, 28


def _frame(
    labels: Sequence[str], lo: float, hi: float, fmt: Callable[[float], str]
) -> tuple[Scale, Scale, str, float]:
    """The axes of a chart over *labels* (x, evenly spaced) and ``[lo, hi]`` (y): the scales,
    the grid and labels markup, and the width of one x slot."""
    slot = (_W - _LEFT - _RIGHT) / max(len(labels), 1)
    x = Scale(0, max(len(labels) - 1, 0), _LEFT + slot / 2, _W - _RIGHT - slot / 2)
    y = Scale(lo, hi, _H - _BOTTOM, _TOP)
    grid = []
    for tick in nice_ticks(lo, hi):
        at = y(tick)
        grid.append(element("line", {"class": "grid", "x1": _LEFT, "x2": _W - _RIGHT,
                                     "y1": at, "y2": at}))  # fmt: skip
        grid.append(element("text", {"class": "axis", "x": _LEFT - 6, "y": at + 4,
                                     "text-anchor": "end"}, esc(fmt(tick))))  # fmt: skip
    every = max(1, math.ceil(len(labels) / 12))
    for index, text in enumerate(labels):
        if index % every == 0 or index == len(labels) - 1:
            grid.append(element("text", {"class": "axis", "x": x(index), "y": _H - 8,
                                         "text-anchor": "middle"}, esc(text)))  # fmt: skip
    return x, y, "".join(grid), slot


def _span(values: Sequence[float], *, include_zero: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.01 or 1.0)
    return (lo if include_zero and lo == 0 else lo - pad), (
        hi if include_zero and hi == 0 else hi + pad
    )


def _empty(label: str) -> str:
    """A short frame saying there is nothing to draw yet."""
    text = element("text", {"class": "axis empty", "x": _W / 2, "y": 34, "text-anchor": "middle"},
                   f"no {esc(label)} yet")  # fmt: skip
    return svg(_W, 60, f"{label}: no data", text)


def line_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    fmt: Callable[[float], str],
    point_class: str,
    titles: Sequence[str],
    fill_to_zero: bool = False,
) -> str:
    """A line through *values* (one per label, oldest first) with a dot per value (class
    *point_class*, tooltip *titles*); *fill_to_zero* shades the area between the line and 0
    (the drawdown chart). An empty series draws an empty frame."""
    if not values:
        return _empty(label)
    lo, hi = _span(values, include_zero=fill_to_zero)
    x, y, grid, _ = _frame(labels, lo, hi, fmt)
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    body = [grid]
    if fill_to_zero:
        zero = y(0.0)
        last = x(len(values) - 1)
        area = f"M{x(0):.1f},{zero:.1f} L{points.replace(' ', ' L')} L{last:.1f},{zero:.1f} Z"
        body.append(element("path", {"class": "area", "d": area}))
    body.append(element("polyline", {"class": "line", "points": points}))
    for index, value in enumerate(values):
        dot = f"<title>{esc(titles[index])}</title>"
        body.append(element("circle", {"class": point_class, "cx": x(index), "cy": y(value),
                                       "r": 3.5, "data-value": repr(value)}, dot))  # fmt: skip
    return svg(_W, _H, label, "".join(body))


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    fmt: Callable[[float], str],
    bar_class: str,
    titles: Sequence[str],
) -> str:
    """One bar per value from 0 (class *bar_class* plus ``up``/``down``), tooltip *titles*."""
    if not values:
        return _empty(label)
    lo, hi = _span(values, include_zero=True)
    x, y, grid, slot = _frame(labels, lo, hi, fmt)
    width = max(min(slot * 0.7, 48.0), 2.0)
    body = [grid, element("line", {"class": "zero", "x1": _LEFT, "x2": _W - _RIGHT,
                                   "y1": y(0.0), "y2": y(0.0)})]  # fmt: skip
    for index, value in enumerate(values):
        top, bottom = sorted((y(value), y(0.0)))
        body.append(
            element(
                "rect",
                {
                    "class": f"{bar_class} {'up' if value >= 0 else 'down'}",
                    "x": x(index) - width / 2,
                    "y": top,
                    "width": width,
                    "height": max(bottom - top, 1.0),
                    "data-value": repr(value),
                },
                f"<title>{esc(titles[index])}</title>",
            )
        )
    return svg(_W, _H, label, "".join(body))
