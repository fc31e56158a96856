"""OffsetClock: another clock seen from a host whose clock is set wrong."""

from __future__ import annotations

import datetime as dt

from kisclient._clock import Clock, SystemClock
from kisclient._config import KST

__all__ = ["OffsetClock"]


class OffsetClock:
    """A view of *base* shifted by *offset_s* seconds (positive: ahead of *base*).

    ``now()`` and ``time()`` are shifted; ``monotonic()`` is *base*'s (intervals do not depend
    on where the clock is set); ``sleep``/``asleep`` delegate to *base*, so a
    :class:`~kisclient.FakeClock` base moves both views together. Typical use: the fake KIS runs
    on ``OffsetClock(client_clock, 61)`` to stand for a host clock 61 s behind KIS.
    """

    def __init__(self, base: Clock, offset_s: float) -> None:
        self.base = base
        self.offset_s = float(offset_s)

    @classmethod
    def starting_at(cls, moment: dt.datetime, base: Clock | None = None) -> OffsetClock:
        """A clock that reads *moment* now and advances with *base* (default the system clock)
        from there; a naive *moment* is KST."""
        base = base if base is not None else SystemClock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=KST)
        return cls(base, moment.timestamp() - base.time())

    def now(self) -> dt.datetime:
        return self.base.now() + dt.timedelta(seconds=self.offset_s)

    def time(self) -> float:
        return self.base.time() + self.offset_s

    def monotonic(self) -> float:
        return self.base.monotonic()

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await self.base.asleep(seconds)

    def __repr__(self) -> str:
        return f"OffsetClock({self.base!r}, {self.offset_s:+g})"
