"""Injected time: one interface for wall-clock time, intervals and sleeping.

Library code never calls :mod:`time` directly; it asks a :class:`Clock`. Tests pass a
:class:`FakeClock`, whose sleeps advance its own time instantly, so limiter, token and scheduler
behaviour is exact and fast.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol, runtime_checkable

from ._config import KST

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Time as the library sees it.

    ``now()`` is timezone-aware (Asia/Seoul) and used for anything persisted or scheduled;
    ``monotonic()`` is for intervals; ``time()`` is Unix seconds for state shared between
    processes (which cannot compare monotonic readings). ``sleep`` and ``asleep`` block the
    calling thread or task for *seconds*.
    """

    def now(self) -> dt.datetime: ...

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(KST)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # noqa: PLC0415 - only code that awaits pays for asyncio (~20 ms)

        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that moves only when told to, or when somebody sleeps on it.

    ``sleep(s)`` moves the clock to *s* after the moment it was called, unless it is already
    later, and returns at once; so concurrent sleepers overlap as they would in real time
    instead of adding up. ``asleep(s)`` first yields to the event loop, letting runnable tasks
    go ahead, then does the same. Thread-safe. ``sleeps`` records every requested sleep, so tests
    can assert exact delay sequences.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime(2026, 11, 26, 9, 0, tzinfo=KST)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._lock = threading.Lock()
        self._epoch = start.timestamp()
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), KST)

    def time(self) -> float:
        with self._lock:
            return self._epoch + self._elapsed

    def monotonic(self) -> float:
        with self._lock:
            return 1000.0 + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move time forward by *seconds* (never backwards)."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        with self._lock:
            self._elapsed += seconds

    def set(self, when: dt.datetime) -> None:
        """Jump to *when*, which must not be earlier than now."""
        self.advance(when.timestamp() - self.time())

    def _advance_to(self, elapsed: float) -> None:
        with self._lock:
            self._elapsed = max(self._elapsed, elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            with self._lock:
                target = self._elapsed + seconds
            self._advance_to(target)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        with self._lock:
            target = self._elapsed + max(seconds, 0.0)
        import asyncio  # noqa: PLC0415 - see SystemClock.asleep

        await asyncio.sleep(0)
        self._advance_to(target)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()})"
