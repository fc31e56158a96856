"""Resting limit orders meet the moving price.

With ``moving_prices`` a priced order that did not cross when it was placed rests until the
intraday path reaches its limit: a buy at the first second the path is at or below it, a sell at
or above it. It then fills in full at its limit, the price a resting order trades at when the
market comes to it; at the opening price instead when the day opens through it (the opening
auction pays the resting order that price). The fill is stamped at that second, so the order
engine's observers (the WebSocket execution notices H0STCNI0/H0STCNI9) carry its time.

Evaluated lazily, with no thread: :func:`fill_resting` runs whenever the fake looks at its state
(every request it processes, every inquiry of :class:`~kisclient.testing.FakeKIS`). Each order's
path is scanned once, from its placement (or the previous sweep) to now, so what has filled at a
moment is a function of the orders and the clock alone, whatever requests came in between. A day
whose price was set by hand (:meth:`FakeKIS.set_price`) is left to that override, which fills
what it crosses itself. Without ``moving_prices`` the price stands still between overrides and
nothing happens here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Final

from kisclient._config import KST

from ._core import Core
from ._state import Account, Order
from ._trading import _PRICED, _execute
from ._universe import SESSION_MINUTES, SESSION_OPEN, DayPath, session_day_at, session_second

__all__ = ["fill_resting"]

#: Seconds from 09:00 to the close (15:30:00): after it, and until the next open, the price is
#: the session day's close.
_CLOSE_SECOND: Final = SESSION_MINUTES * 60
#: The range that holds nothing: every buy and sell limit misses it.
_EMPTY: Final = (2**62, -(2**62))


def _position(moment: dt.datetime) -> tuple[dt.date, int]:
    """Where *moment* is on the path: (session day, whole seconds since its 09:00), the close's
    second from 15:30 until the next open."""
    day = session_day_at(moment)
    second = session_second(moment, day)
    return day, _CLOSE_SECOND if second is None else second


def _reaches(price: int, order: Order) -> bool:
    if order.side == "buy":
        return price <= order.order_price
    return price >= order.order_price


def _first_second(path: DayPath, order: Order, low: int, high: int) -> int | None:
    """The first second in [*low*, *high*] at which *path* reaches *order*'s limit. Within a
    minute the path is monotonic between two nodes, so a minute whose two ends both miss the
    limit is skipped whole."""
    nodes = path.nodes
    for minute in range(low // 60, high // 60 + 1):
        ends = (nodes[minute], nodes[min(minute + 1, SESSION_MINUTES)])
        if not _reaches(min(ends) if order.side == "buy" else max(ends), order):
            continue
        for second in range(max(low, minute * 60), min(high, minute * 60 + 59) + 1):
            if _reaches(path.price_at(second), order):
                return second
    return None


def _segments(
    core: Core, code: str, since: dt.datetime, until: dt.datetime
) -> Iterator[tuple[dt.date, DayPath, int, int]]:
    """The stretches of *code*'s path in (*since*, *until*]: (day, its path, first second, last
    second), oldest first; weekends and days with a price set by hand left out."""
    first_day, first_second = _position(since)
    last_day, last_second = _position(until)
    day = first_day
    while day <= last_day:
        low = first_second + 1 if day == first_day else 0
        high = last_second if day == last_day else _CLOSE_SECOND
        if low <= high and day.weekday() < 5 and (code, day) not in core.price_overrides:
            yield day, core.universe.day_path(code, day), low, high
        day += dt.timedelta(days=1)


def _bounds(core: Core, code: str, since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
    """A price range holding *code*'s path in (*since*, *until*] (the nodes of every minute it
    touches: the path lies between a minute's two nodes); an empty range when there is no
    path there. One look per code and sweep spares the orders it cannot reach a scan."""
    lowest, highest = _EMPTY
    for _, path, low, high in _segments(core, code, since, until):
        ends = path.nodes[low // 60 : high // 60 + 2]
        lowest, highest = min(lowest, *ends), max(highest, *ends)
    return lowest, highest


def _touch(
    core: Core, order: Order, since: dt.datetime, until: dt.datetime
) -> tuple[dt.datetime, int] | None:
    """The first moment in (*since*, *until*] the path of *order*'s code reaches its limit, and
    the fill price; ``None`` if it does not."""
    for day, path, low, high in _segments(core, order.code, since, until):
        second = _first_second(path, order, low, high)
        if second is not None:
            moment = dt.datetime.combine(day, SESSION_OPEN, tzinfo=KST)
            price = path.price_at(second) if second == 0 else order.order_price
            return moment + dt.timedelta(seconds=second), price
    return None


def fill_resting(core: Core) -> None:
    """Fill every resting priced order the moving path has reached since it was last looked at
    (see the module docstring), in the order the path reached them. Call with the lock held."""
    if not core.moving_prices:
        return
    now = core.now()
    checked = core.resting_checked_until
    core.resting_checked_until = now if checked is None else max(checked, now)
    bounds: dict[tuple[str, dt.datetime], tuple[int, int]] = {}
    touched: list[tuple[dt.datetime, str, str, Account, Order, int]] = []
    for app_key, account in core.accounts.items():
        for order in account.orders:
            if order.kind != "order" or not order.open_qty or order.ord_dvsn not in _PRICED:
                continue
            since = order.time if checked is None else max(order.time, checked)
            key = (order.code, since)
            if key not in bounds:
                bounds[key] = _bounds(core, order.code, since, now)
            lowest, highest = bounds[key]
            if not _reaches(lowest if order.side == "buy" else highest, order):
                continue
            found = _touch(core, order, since, now)
            if found is not None:
                touched.append((found[0], order.order_no, app_key, account, order, found[1]))
    touched.sort(key=lambda item: (item[0], item[1]))
    for moment, _, app_key, account, order, price in touched:
        with core.clock_stopped_at(moment.timestamp()):
            _execute(core, app_key, account, order, price)
