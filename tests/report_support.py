"""Shared by the report tests: a simulated multi-day range, and a small HTML element index.

:func:`simulated_range` runs :func:`~hantu_sched._simulate.simulate_range` over Thursday
2026-06-04 to Monday 2026-06-08 (three trading days around a weekend) with the scheduler
killed mid-screening and mid-trading every day; the data directory then has real history
(crashed and recovered attempts, orders, fills, three closes). :func:`parse_page` indexes a page's
elements with the standard library's :mod:`html.parser`.
"""

from __future__ import annotations

import datetime as dt
import html.parser
import pathlib

from attrs import field, frozen

from hantu_sched._simulate import RangeResult, SimClock, SimHooks, simulate_range
from kisclient.testing import FakeKIS

__all__ = ["FIRST", "LAST", "Element", "KeepFake", "parse_page", "simulated_range"]

FIRST = dt.date(2026, 6, 4)
LAST = dt.date(2026, 6, 8)
RESTARTS = (dt.time(6, 0, 20), dt.time(11, 0))


class KeepFake(SimHooks):
    """Default hooks that keep the fake server they made (to look at the account)."""

    fake: FakeKIS | None = None

    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        self.fake = super().make_fake(clock, seed, universe_size)
        return self.fake


def simulated_range(root: pathlib.Path, hooks: SimHooks | None = None) -> RangeResult:
    """Simulate FIRST..LAST into ``root / "data"`` (universe of 60 codes)."""
    return simulate_range(
        FIRST, LAST, root / "data", restart_at=RESTARTS, universe_size=60, hooks=hooks
    )


@frozen
class Element:
    """One start tag: its name, attributes and the attributes of its ancestors (outermost
    first), and its direct text."""

    tag: str
    attrs: dict[str, str]
    ancestors: tuple[tuple[str, dict[str, str]], ...]
    text: list[str] = field(factory=list)

    def within(self, tag: str, **wanted: str) -> dict[str, str] | None:
        """The nearest ancestor *tag* whose attributes include *wanted*, if any."""
        for name, found in reversed(self.ancestors):
            if name == tag and all(found.get(k) == v for k, v in wanted.items()):
                return found
        return None

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr"}


class _Index(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        element = Element(
            tag,
            {k: v or "" for k, v in attrs_},
            tuple((e.tag, e.attrs) for e in self._stack),
        )
        self.elements.append(element)
        if tag not in _VOID:
            self._stack.append(element)

    def handle_startendtag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        self.elements.append(
            Element(
                tag, {k: v or "" for k, v in attrs_}, tuple((e.tag, e.attrs) for e in self._stack)
            )
        )

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop().tag == tag:
                return
        raise AssertionError(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        if self._stack:
            self._stack[-1].text.append(data)


def parse_page(page: str) -> list[Element]:
    """Every element of *page*, in document order (raises if the tags do not balance)."""
    index = _Index()
    index.feed(page)
    index.close()
    assert not index._stack, [e.tag for e in index._stack]
    return index.elements
