"""Clock contract suite, run against SystemClock and FakeClock (no real sleeping)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable

import pytest

from hantu_sched import KST, Clock, FakeClock, SystemClock

START = dt.datetime(2026, 11, 19, 9, 59, 59, tzinfo=KST)
CLOCKS: dict[str, Callable[[], Clock]] = {
    "system": lambda: SystemClock(max_step=0.01),
    "fake": lambda: FakeClock(START),
}


@pytest.fixture(params=sorted(CLOCKS))
def clock(request: pytest.FixtureRequest) -> Clock:
    return CLOCKS[request.param]()


def test_is_a_clock(clock: Clock) -> None:
    assert isinstance(clock, Clock)


def test_now_is_aware_kst(clock: Clock) -> None:
    now = clock.now()
    assert now.utcoffset() == dt.timedelta(hours=9)


def test_monotonic_never_goes_backwards(clock: Clock) -> None:
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_sleep_until_past_returns_immediately(clock: Clock) -> None:
    before = clock.monotonic()
    clock.sleep_until(clock.now() - dt.timedelta(hours=1))
    assert clock.monotonic() - before < 0.5


def test_sleep_until_reaches_target(clock: Clock) -> None:
    target = clock.now() + dt.timedelta(milliseconds=30)
    clock.sleep_until(target)
    assert clock.now() >= target


def test_cancelled_sleep_returns_before_target(clock: Clock) -> None:
    cancel = threading.Event()
    cancel.set()
    target = clock.now() + dt.timedelta(hours=5)
    clock.sleep_until(target, cancel)
    assert clock.now() < target


def test_naive_target_is_rejected(clock: Clock) -> None:
    with pytest.raises(ValueError, match="aware"):
        clock.sleep_until(dt.datetime(2026, 1, 1))


def test_async_sleep_until(clock: Clock) -> None:
    target = clock.now() + dt.timedelta(milliseconds=20)
    asyncio.run(clock.asleep_until(target))
    assert clock.now() >= target


def test_fake_clock_jumps_and_records() -> None:
    clock = FakeClock(START)
    target = START + dt.timedelta(hours=6, minutes=31)
    clock.sleep_until(target)
    assert clock.now() == target
    assert clock.waits == [target]
    clock.sleep_until(START)  # the past: no movement backwards
    assert clock.now() == target


def test_system_clock_cancel_from_another_thread() -> None:
    clock = SystemClock(max_step=0.01)
    cancel = threading.Event()
    timer = threading.Timer(0.02, cancel.set)
    timer.start()
    target = clock.now() + dt.timedelta(seconds=30)
    clock.sleep_until(target, cancel)
    timer.join()
    assert clock.now() < target


def test_system_clock_rejects_bad_step() -> None:
    with pytest.raises(ValueError, match="positive"):
        SystemClock(max_step=0)
