"""Rate windows: the pure admission function, the limiter contract over every backend, and the
shared backend across real processes."""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import multiprocessing
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kisclient._clock import FakeClock
from kisclient._config import Env
from kisclient._ratelimit import (
    CONSERVATIVE,
    TIGHTEN_S,
    HistoryLimiter,
    InProcessLimiter,
    LimiterState,
    NullLimiter,
    RateLimiter,
    SharedFileLimiter,
    Window,
    _settle,
    admission_delay,
    documented_limits,
    effective_windows,
    make_limiter,
    prune,
)
from kisclient._statedir import key_fingerprint, process_lock

# The spawn-process targets live next to this file; --import-mode=importlib does not put this
# directory on sys.path, and spawned children import their target by module name (they inherit
# the parent's sys.path), so it is added here.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))

from _mp_helpers import APP_KEY, limiter_worker

REAL_18 = (Window(18, 1.0),)

# --- helpers ---------------------------------------------------------------------------------


def max_in_any_window(times: list[float], seconds: float) -> int:
    """The most admissions in any half-open interval [t, t + seconds) (sliding)."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        # admissions a with start <= a < start + seconds, i.e. not a >= start + seconds
        end = bisect.bisect_left(ordered, start + seconds)
        best = max(best, end - i)
    return best


def respects(times: list[float], window: Window) -> bool:
    """Every run of limit+1 consecutive admissions spans at least the window (exact floats)."""
    ordered = sorted(times)
    return all(
        ordered[i] + window.seconds <= ordered[i + window.limit]
        for i in range(len(ordered) - window.limit)
    )


# --- Window and presets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "seconds"),
    [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0), (1, float("inf")), (1, float("nan")), (True, 1.0)],
)
def test_window_rejects_bad_values(limit: int, seconds: float) -> None:
    with pytest.raises(ValueError, match=r"Window\."):
        Window(limit, seconds)


def test_window_accepts_int_seconds() -> None:
    assert Window(3, 2).seconds == 2.0


def test_documented_limits_come_from_config() -> None:
    assert documented_limits(Env.REAL) == (Window(18, 1.0),)
    assert documented_limits(Env.PAPER) == (Window(1, 1.0),)


def test_conservative_profile() -> None:
    assert (Window(5, 1.0), Window(80, 60.0), Window(1200, 3600.0)) == CONSERVATIVE


# --- the pure admission function -------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "windows", "now", "blocked", "expected"),
    [
        ([], REAL_18, 100.0, 0.0, 0.0),
        ([99.5] * 17, REAL_18, 100.0, 0.0, 0.0),
        ([99.5] * 18, REAL_18, 100.0, 0.0, 0.5),
        ([99.0] * 18, REAL_18, 100.0, 0.0, 0.0),  # left the window exactly now
        ([99.9, 99.2, 99.5], (Window(2, 1.0),), 100.0, 0.0, 0.5),  # any order
        ([], REAL_18, 100.0, 102.0, 2.0),  # blocked
        ([], REAL_18, 100.0, 99.0, 0.0),  # block over
        ([99.5] * 18, REAL_18, 100.0, 100.25, 0.5),  # window dominates the block
        # multi-window: per-second fine, per-minute full until the oldest leaves
        ([50.0] * 3 + [99.9], (Window(5, 1.0), Window(4, 60.0)), 100.0, 0.0, 10.0),
        ([], (), 100.0, 0.0, 0.0),  # no windows
    ],
)
def test_admission_delay_table(
    history: list[float],
    windows: tuple[Window, ...],
    now: float,
    blocked: float,
    expected: float,
) -> None:
    assert admission_delay(history, windows, now, blocked_until=blocked) == pytest.approx(expected)


windows_strategy = st.lists(
    st.builds(
        Window,
        st.integers(min_value=1, max_value=6),
        st.floats(min_value=0.01, max_value=10.0, allow_nan=False),
    ),
    min_size=1,
    max_size=3,
)
arrivals_strategy = st.lists(
    st.floats(min_value=0.0, max_value=50.0, allow_nan=False), max_size=60
).map(sorted)


@given(windows=windows_strategy, arrivals=arrivals_strategy)
def test_property_admitted_never_exceed_any_window(
    windows: list[Window], arrivals: list[float]
) -> None:
    admitted: list[float] = []
    for t in arrivals:
        if admission_delay(admitted, windows, t) == 0.0:
            admitted.append(t)
    for window in windows:
        assert respects(admitted, window)
        assert max_in_any_window(admitted, window.seconds) <= window.limit


@given(
    windows=windows_strategy,
    arrivals=arrivals_strategy,
    blocked=st.floats(min_value=0.0, max_value=60.0),
)
def test_property_wait_is_exact_and_minimal(
    windows: list[Window], arrivals: list[float], blocked: float
) -> None:
    """Everyone queues: each request waits exactly what admission_delay says, then is admitted."""
    admitted: list[float] = []
    for arrival in arrivals:
        t = max(arrival, admitted[-1] if admitted else arrival)
        wait = admission_delay(admitted, windows, t, blocked_until=blocked)
        assert wait >= 0.0
        at = t + wait
        assert admission_delay(admitted, windows, at, blocked_until=blocked) == 0.0
        if wait > 1e-6:
            assert admission_delay(admitted, windows, at - 1e-6, blocked_until=blocked) > 0.0
        admitted.append(at)
    assert all(a >= blocked for a in admitted)
    for window in windows:
        assert respects(admitted, window)


@given(
    windows=windows_strategy,
    history=st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=40),
    now=st.floats(min_value=0.0, max_value=120.0),
    later=st.floats(min_value=0.0, max_value=30.0),
)
def test_property_prune_keeps_decisions(
    windows: list[Window], history: list[float], now: float, later: float
) -> None:
    """Pruning never changes an admission decision at or after the pruning time."""
    pruned = prune(history, windows, now)
    assert len(pruned) <= max(w.limit for w in windows)
    t = now + later
    assert admission_delay(pruned, windows, t) == admission_delay(history, windows, t)


def test_effective_windows_tighten() -> None:
    windows = (Window(18, 1.0), Window(1, 1.0), Window(5, 60.0))
    assert effective_windows(windows, 10.0, tightened_until=11.0) == (
        Window(14, 1.0),
        Window(1, 1.0),
        Window(4, 60.0),
    )
    assert effective_windows(windows, 11.0, tightened_until=11.0) == windows


# --- the limiter contract, over every backend ------------------------------------------------

LimiterFactory = Callable[[tuple[Window, ...], FakeClock], HistoryLimiter]


@pytest.fixture(params=["in_process", "shared_file"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> LimiterFactory:
    if request.param == "in_process":
        return InProcessLimiter

    def shared(windows: tuple[Window, ...], clock: FakeClock) -> HistoryLimiter:
        return SharedFileLimiter(windows, clock, tmp_path, Env.REAL, APP_KEY)

    return shared


def admissions_in(limiter: RateLimiter, clock: FakeClock, seconds: float) -> int:
    """How many try_acquire calls succeed, polling every 1 ms for *seconds* of fake time."""
    admitted = 0
    steps = round(seconds / 0.001)
    for _ in range(steps):
        while limiter.try_acquire() == 0.0:
            admitted += 1
        clock.advance(0.001)
    return admitted


def test_contract_is_a_rate_limiter(factory: LimiterFactory) -> None:
    assert isinstance(factory(REAL_18, FakeClock()), RateLimiter)


def test_contract_admits_exactly_18_per_second(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory(REAL_18, clock)
    counts = [admissions_in(limiter, clock, 1.0) for _ in range(3)]
    assert counts == [18, 18, 18]


def test_contract_denied_attempt_records_nothing(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(2, 1.0),), clock)
    assert limiter.try_acquire() == 0.0
    clock.advance(0.25)
    assert limiter.try_acquire() == 0.0
    waits = [limiter.try_acquire() for _ in range(5)]
    assert waits == pytest.approx([0.75] * 5)
    assert len(limiter.state().history) == 2


def test_contract_acquire_sleeps_the_exact_wait(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(3, 1.0),), clock)
    for _ in range(7):
        limiter.acquire()
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert [s for s in clock.sleeps if s > 1e-9] == pytest.approx([1.0, 1.0])


def test_contract_multi_window_is_atomic(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(5, 1.0), Window(8, 60.0)), clock)
    admitted = admissions_in(limiter, clock, 5.0)
    assert admitted == 8
    wait = limiter.try_acquire()
    assert wait == pytest.approx(55.0, abs=0.01)


def test_contract_penalize_blocks_then_tightens_then_relaxes(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory(REAL_18, clock)
    limiter.penalize(2.0)
    assert limiter.try_acquire() == pytest.approx(2.0)
    clock.advance(1.0)
    assert limiter.try_acquire() == pytest.approx(1.0)
    clock.advance(1.0)
    assert admissions_in(limiter, clock, 1.0) == 14  # 18 x 0.8, rounded down
    clock.advance(TIGHTEN_S)
    assert admissions_in(limiter, clock, 1.0) == 18


def test_contract_penalties_never_shorten(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory(REAL_18, clock)
    limiter.penalize(10.0)
    limiter.penalize(1.0)
    assert limiter.try_acquire() == pytest.approx(10.0)
    with pytest.raises(ValueError, match="penalty"):
        limiter.penalize(-1.0)


def test_contract_paper_limit_tightened_stays_at_least_one(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory(documented_limits(Env.PAPER), clock)
    limiter.penalize(0.0)
    assert admissions_in(limiter, clock, 3.0) == 3


def test_contract_async_acquire_never_calls_blocking_sleep(factory: LimiterFactory) -> None:
    class AsyncOnlyClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise AssertionError("aacquire must not call the blocking sleep")

        async def asleep(self, seconds: float) -> None:
            self.advance(max(seconds, 0.0))
            await asyncio.sleep(0)

    clock = AsyncOnlyClock()
    limiter = factory((Window(4, 1.0),), clock)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> float:
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        start = clock.time()
        for _ in range(10):
            await limiter.aacquire()
        stop.set()
        await tick_task
        return clock.time() - start

    elapsed = asyncio.run(main())
    assert elapsed == pytest.approx(2.0)
    assert ticks >= 2  # the other task ran during each of the two waits


def record_admissions(limiter: HistoryLimiter) -> list[float]:
    """Patch *limiter* to record the exact time of every admission (in its own time base)."""
    admitted: list[float] = []
    real_try = limiter._try_admit

    def try_admit() -> tuple[float, float]:
        wait, stamp = real_try()  # the stamp is taken inside the transaction
        if wait == 0.0:
            admitted.append(stamp)
        return wait, stamp

    limiter._try_admit = try_admit  # type: ignore[method-assign]
    return admitted


def test_contract_settle_counts_a_request_from_its_answer(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(2, 1.0),), clock)
    first, second = limiter.acquire(), limiter.acquire()
    assert limiter.try_acquire() == pytest.approx(1.0)  # counted from the admissions at t=0
    clock.advance(0.3)  # the answers arrive 0.3 s later
    limiter.settle(first)
    limiter.settle(second)
    # now counted from the answers: the third request waits until t=1.3, not t=1.0
    assert limiter.try_acquire() == pytest.approx(1.0)
    clock.advance(0.7)
    assert limiter.try_acquire() == pytest.approx(0.3)
    clock.advance(0.3)
    assert limiter.try_acquire() == 0.0


def test_contract_asettle_restamps_without_blocking(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(1, 1.0),), clock)

    async def main() -> float:
        stamp = await limiter.aacquire()
        clock.advance(0.5)
        await limiter.asettle(stamp)
        return limiter.try_acquire()

    assert asyncio.run(main()) == pytest.approx(1.0)


def test_settle_is_pure_and_never_less_conservative() -> None:
    windows = (Window(3, 1.0),)
    state = LimiterState(history=(0.0, 0.1))
    settled, _ = _settle(state, windows, 0.1, 0.4)
    assert settled.history == (0.0, 0.4)
    # an admission already pruned away is still recorded at its answer
    pruned, _ = _settle(LimiterState(history=(5.0,)), windows, 0.1, 5.2)
    assert pruned.history == (5.0, 5.2)
    # a clock that did not move keeps the admission stamp
    same, _ = _settle(state, windows, 0.1, 0.1)
    assert same.history == (0.0, 0.1)


def test_contract_async_tasks_share_the_budget(factory: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = factory((Window(5, 1.0),), clock)
    times = record_admissions(limiter)

    async def main() -> None:
        await asyncio.gather(*(limiter.aacquire() for _ in range(12)))

    asyncio.run(main())
    assert len(times) == 12
    assert respects(times, Window(5, 1.0))
    assert max(times) - min(times) >= 2.0  # 12 admissions at 5/s need two more seconds


def test_contract_async_cancel_while_waiting_records_nothing(factory: LimiterFactory) -> None:
    class StuckClock(FakeClock):
        async def asleep(self, seconds: float) -> None:
            await asyncio.Event().wait()  # never returns: the task is cancelled here

    limiter = factory((Window(1, 1.0),), StuckClock())

    async def main() -> None:
        await limiter.aacquire()
        task = asyncio.create_task(limiter.aacquire())
        for _ in range(50):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(limiter.state().history) == 1


# --- the shared backend ----------------------------------------------------------------------


def test_shared_state_is_shared_between_instances(tmp_path: Path) -> None:
    clock = FakeClock()
    a = SharedFileLimiter((Window(3, 1.0),), clock, tmp_path, Env.REAL, APP_KEY)
    b = SharedFileLimiter((Window(3, 1.0),), clock, tmp_path, Env.REAL, APP_KEY)
    assert [a.try_acquire(), b.try_acquire(), a.try_acquire()] == [0.0, 0.0, 0.0]
    assert b.try_acquire() == pytest.approx(1.0)
    b.penalize(5.0)
    clock.advance(1.0)
    assert a.try_acquire() == pytest.approx(4.0)


def test_shared_state_is_scoped_by_env_and_key(tmp_path: Path) -> None:
    clock = FakeClock()
    real = SharedFileLimiter((Window(1, 1.0),), clock, tmp_path, Env.REAL, APP_KEY)
    paper = SharedFileLimiter((Window(1, 1.0),), clock, tmp_path, Env.PAPER, APP_KEY)
    other = SharedFileLimiter((Window(1, 1.0),), clock, tmp_path, Env.REAL, APP_KEY + "x")
    assert [real.try_acquire(), paper.try_acquire(), other.try_acquire()] == [0.0] * 3
    assert real.path.parent.name == f"real-{key_fingerprint(APP_KEY)}"
    assert APP_KEY not in str(real.path)
    assert APP_KEY not in repr(real)


def test_shared_state_file_is_private_and_atomic(tmp_path: Path) -> None:
    limiter = SharedFileLimiter(REAL_18, FakeClock(), tmp_path, Env.REAL, APP_KEY)
    limiter.try_acquire()
    assert stat.S_IMODE(limiter.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(limiter.path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in limiter.path.parent.iterdir()) == [
        "ratelimit.json",
        "ratelimit.lock",
    ]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"schema": 99}', b'{"schema": 1, "history": ["x"]}', b"\xff\xfe"],
)
def test_shared_corrupt_state_is_treated_as_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    limiter = SharedFileLimiter((Window(1, 1.0),), clock, tmp_path, Env.REAL, APP_KEY)
    limiter.path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="kisclient.ratelimit"):
        assert limiter.try_acquire() == 0.0
    assert "rate-limit state" in caplog.text
    assert json.loads(limiter.path.read_text())["history"] == [clock.time()]
    assert limiter.try_acquire() > 0


def test_shared_async_state_access_does_not_block_the_loop(tmp_path: Path) -> None:
    """While another thread holds the shared state's lock, aacquire waits in a worker thread."""
    limiter = SharedFileLimiter(REAL_18, FakeClock(), tmp_path, Env.REAL, APP_KEY)
    lock = process_lock(limiter.lock_path)

    async def main() -> int:
        lock.acquire()
        task = asyncio.create_task(limiter.aacquire())
        ticks = 0
        for _ in range(100):
            await asyncio.sleep(0)
            ticks += 1
        assert not task.done()
        lock.release()
        await task
        return ticks

    assert asyncio.run(main()) == 100
    assert len(limiter.state().history) == 1


# --- make_limiter ----------------------------------------------------------------------------


def test_make_limiter_choices(tmp_path: Path) -> None:
    clock = FakeClock()

    def make(limits: tuple[Window, ...] | None, state_dir: Path | None, env: Env) -> RateLimiter:
        return make_limiter(limits, env=env, app_key=APP_KEY, state_dir=state_dir, clock=clock)

    default = make(None, None, Env.REAL)
    assert isinstance(default, InProcessLimiter)
    assert default.windows == REAL_18
    paper = make(None, None, Env.PAPER)
    assert isinstance(paper, InProcessLimiter)
    assert paper.windows == (Window(1, 1.0),)
    shared = make(CONSERVATIVE, tmp_path, Env.REAL)
    assert isinstance(shared, SharedFileLimiter)
    assert shared.windows == CONSERVATIVE
    unlimited = make((), tmp_path, Env.REAL)
    assert isinstance(unlimited, NullLimiter)
    assert isinstance(unlimited, RateLimiter)


def test_null_limiter_admits_everything() -> None:
    limiter = NullLimiter()
    assert all(limiter.try_acquire() == 0.0 for _ in range(1000))
    limiter.penalize(10.0)
    limiter.acquire()
    asyncio.run(limiter.aacquire())


def test_limiter_needs_a_window() -> None:
    with pytest.raises(ValueError, match="at least one window"):
        InProcessLimiter((), FakeClock())


# --- real processes --------------------------------------------------------------------------


@pytest.fixture
def spawn() -> multiprocessing.context.SpawnContext:
    return multiprocessing.get_context("spawn")


@pytest.mark.multiprocess
def test_three_processes_share_one_window(
    tmp_path: Path, spawn: multiprocessing.context.SpawnContext
) -> None:
    limit, seconds, per_process, procs = 10, 1.0, 5, 3
    barrier = spawn.Barrier(procs)
    queue = spawn.Queue()
    workers = [
        spawn.Process(
            target=limiter_worker,
            args=(barrier, queue, str(tmp_path), limit, seconds, per_process),
        )
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=30) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    times = [t for result in results for t in result]
    assert len(times) == procs * per_process
    assert respects(times, Window(limit, seconds))
    assert max_in_any_window(times, seconds) <= limit
    # the budget was really shared: the 15 admissions needed a second window
    assert max(times) - min(times) >= seconds
    assert os.stat(tmp_path).st_mode  # state dir still there
