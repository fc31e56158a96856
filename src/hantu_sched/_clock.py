"""The scheduler's clock: kisclient's clock plus "sleep until a wall-clock moment".

The scheduler plans in wall-clock KST time ("run at 16:00"), so on top of kisclient's
:class:`kisclient.Clock` contract (aware ``now()`` in Asia/Seoul, ``monotonic()``,
``sleep``/``asleep``) it needs ``sleep_until(when, cancel)``: return once ``now() >= when`` or as
soon as *cancel* is set, whichever comes first. :class:`FakeClock`'s sleeps advance its own time
instantly, so a whole simulated trading day runs in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol, runtime_checkable

from kisclient import Clock as _BaseClock
from kisclient import FakeClock as _BaseFakeClock
from kisclient import SystemClock as _BaseSystemClock

__all__ = ["Clock", "FakeClock", "SystemClock"]


def _require_aware(when: dt.datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"sleep_until needs an aware datetime, got naive {when!r}")


@runtime_checkable
class Clock(_BaseClock, Protocol):
    """kisclient's :class:`~kisclient.Clock` plus wall-clock waits.

    ``sleep_until(when, cancel)`` returns when ``now() >= when`` or when *cancel* is set
    (checked before sleeping; an already-set event returns at once). A *when* in the past returns
    immediately. *when* must be timezone-aware. ``asleep_until`` is the coroutine twin.
    """

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None: ...

    async def asleep_until(self, when: dt.datetime) -> None: ...


class SystemClock(_BaseSystemClock):
    """The real clock. Waits re-read the wall clock at least every *max_step* seconds, so a
    clock adjustment (NTP) or a set *cancel* event is noticed promptly."""

    def __init__(self, max_step: float = 1.0) -> None:
        if max_step <= 0:
            raise ValueError("max_step must be positive")
        self._max_step = max_step

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        _require_aware(when)
        event = cancel if cancel is not None else threading.Event()
        while not event.is_set():
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            event.wait(min(remaining, self._max_step))

    async def asleep_until(self, when: dt.datetime) -> None:
        import asyncio  # noqa: PLC0415 - only code that awaits pays for asyncio (~20 ms)

        _require_aware(when)
        while (remaining := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(remaining, self._max_step))

    def __repr__(self) -> str:
        return f"SystemClock(max_step={self._max_step})"


class FakeClock(_BaseFakeClock):
    """A fake clock whose waits jump straight to the target time.

    ``sleep_until(when)`` sets the clock to *when* (never backwards) unless *cancel* is already
    set. ``waits`` records every requested target, so tests can assert the exact schedule.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        super().__init__(start)
        self.waits: list[dt.datetime] = []

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        _require_aware(when)
        self.waits.append(when)
        if cancel is not None and cancel.is_set():
            return
        if when > self.now():
            self.set(when)

    async def asleep_until(self, when: dt.datetime) -> None:
        import asyncio  # noqa: PLC0415 - see SystemClock.asleep_until

        self.sleep_until(when)
        await asyncio.sleep(0)
