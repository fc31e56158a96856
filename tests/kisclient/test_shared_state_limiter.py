"""The Lua limiter against the in-process reference: the same decisions for any arrivals.

Both are driven with the same times: the reference (:func:`kisclient._ratelimit._admit`,
``_settle``, ``_penalize``, the pure steps of every in-process and file limiter) in float
seconds, the Redis scripts with the time passed in (``"=<µs>"`` instead of ``TIME``: the only
difference from production, whose clock source is tested in test_shared_state.py). Times, window
lengths and penalties are drawn on a 1/64 s grid, exact in both float seconds and integer
microseconds, so boundary cases (an admission exactly one window after another) are compared
exactly instead of being blurred by rounding.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kisclient import SystemClock
from kisclient._ratelimit import LimiterState, Window, _admit, _penalize, _settle
from kisclient._redis_state import RedisLimiter, RedisSharedState
from redis_support import RedisServer

GRID = 64  # times are k / 64 seconds
US = 1_000_000
T0 = 1_000_000  # grid units: the arrivals start at 15625 s


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSharedState]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        state = RedisSharedState(server.url, tmp_path_factory.mktemp("state"))
        yield state
        state.close()


_keys = itertools.count()

windows_st = st.lists(
    st.builds(
        Window,
        limit=st.integers(1, 6),
        seconds=st.integers(1, 4 * GRID).map(lambda k: k / GRID),
    ),
    min_size=1,
    max_size=3,
)
#: (grid steps since the previous event, what happens): an arrival, the answer to the n-th
#: open admission, or a penalty of k/64 s.
event_st = st.tuples(
    st.integers(0, GRID),
    st.one_of(
        st.just(("admit", 0)),
        st.tuples(st.just("settle"), st.integers(0, 20)),
        st.tuples(st.just("penalize"), st.integers(0, 2 * GRID)),
    ),
)


def stored(limiter: RedisLimiter) -> LimiterState:
    raw = limiter.backend.client.get(limiter.key)
    assert isinstance(raw, str)
    blocked, tightened, *history = (int(v) for v in raw.split(","))
    return LimiterState(tuple(h / US for h in history), blocked / US, tightened / US)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows=windows_st, events=st.lists(event_st, min_size=1, max_size=60))
def test_property_lua_limiter_decides_like_the_reference(
    shared: RedisSharedState,
    windows: list[Window],
    events: list[tuple[int, tuple[str, int]]],
) -> None:
    limiter = RedisLimiter(
        shared.backend, f"kisclient:test:{{prop}}:{next(_keys)}", windows, SystemClock()
    )
    reference = LimiterState()
    tick = T0
    open_admissions: list[int] = []  # grid ticks of admissions not yet settled
    for step, (kind, arg) in events:
        tick += step
        now = tick / GRID
        at = f"={tick * US // GRID}"
        if kind == "admit":
            reference, wait = _admit(reference, windows, now)
            wait_us, now_us = limiter.admit_at(at)
            assert now_us == tick * US // GRID
            assert wait_us == round(wait * US), (windows, events)
            if wait == 0:
                open_admissions.append(tick)
        elif kind == "settle" and open_admissions:
            admitted = open_admissions.pop(arg % len(open_admissions))
            reference, _ = _settle(reference, windows, admitted / GRID, now)
            limiter.settle_at(at, admitted * US // GRID)
        elif kind == "penalize":
            reference, _ = _penalize(reference, now, arg / GRID)
            limiter.penalize_at(at, arg * US // GRID)
        if limiter.backend.client.exists(limiter.key):
            assert stored(limiter) == reference, (windows, events)
        else:
            assert reference == LimiterState()


def test_admissions_are_stamped_with_redis_time(shared: RedisSharedState) -> None:
    limiter = RedisLimiter(
        shared.backend, "kisclient:test:{time}:0", [Window(2, 1.0)], SystemClock()
    )
    seconds, micros = shared.backend.client.time()
    before = seconds * US + micros
    stamp = limiter.acquire()
    seconds, micros = shared.backend.client.time()
    after = seconds * US + micros
    assert before <= round(stamp * US) <= after
    # the clock offset (tests only) moves the limiter's "now" with Redis's clock
    shared.backend.clock_arg = "+5000000"
    try:
        later = limiter.acquire()
    finally:
        shared.backend.clock_arg = ""
    assert later - stamp >= 5.0


def test_a_state_from_the_future_is_reset(
    shared: RedisSharedState, caplog: pytest.LogCaptureFixture, tmp_path: pathlib.Path
) -> None:
    limiter = RedisLimiter(
        shared.backend, "kisclient:test:{future}:0", [Window(1, 60.0)], SystemClock()
    )
    seconds, _ = shared.backend.client.time()
    far = (seconds + 3600) * US
    shared.backend.client.set(limiter.key, f"0,0,{far}")
    assert limiter.try_acquire() == 0.0  # not a wait of an hour
    assert "stamps from the future" in caplog.text
