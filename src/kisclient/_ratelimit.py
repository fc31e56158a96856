"""Rate limiters: backends that store the admission history, over the pure rules of
:mod:`kisclient._rate_windows`.

A :class:`Window` allows at most ``limit`` admissions in any interval of ``seconds`` (sliding,
not fixed buckets). :func:`admission_delay` is the whole admission logic, pure and atomic across
windows (both live in :mod:`kisclient._rate_windows` and are re-exported here). Backends only
load and store the admission history:

- :class:`InProcessLimiter` — one process, thread-safe.
- :class:`SharedFileLimiter` — every process of the user, through ``ratelimit.json`` in the
  (environment, app key) scope directory (see :func:`kisclient._statedir.scope_dir`), guarded by a
  process-global lock and a file lock. If that file cannot be locked or written, it falls back
  (once, with a WARNING naming the file) to state kept in this process.
- :class:`NullLimiter` — no limits (``rate_limits=()``).

Stamping: an admission is recorded when it is granted and, once its answer has arrived,
*settled* (:meth:`RateLimiter.settle`): re-stamped with the time of the answer. The server counts
a request when it arrives, which is somewhere between the two; counting it from the later time
means the next admission ``limit`` places on cannot arrive within ``seconds`` of it, however
unevenly requests travel (new connections, busy event loops, scheduling jitter). The cost is one
round trip per window.

A networked backend would subclass :class:`HistoryLimiter` and implement
:meth:`HistoryLimiter._transact` (load, apply a pure function, store).

Penalty (the server answered EGW00201): :meth:`RateLimiter.penalize` ``(seconds)`` at time *t*
blocks every admission until ``t + seconds`` and then, until ``t + seconds + TIGHTEN_S``
(60 s), applies tightened windows: each window's limit multiplied by ``TIGHTEN_FACTOR`` (0.8),
rounded down, at least 1. Overlapping penalties extend both periods (never shorten them). A
penalty is at most :data:`MAX_PENALTY_S`.

Shared state never makes anyone wait longer than the rules allow: a stored admission later than
now, or a penalty deadline further ahead than :data:`MAX_PENALTY_S` (+ :data:`TIGHTEN_S`), was
written before the wall clock was set back (or is corrupt); the state is then reset with a
WARNING naming the file (:func:`kisclient._statedir.stamps_from_the_future`).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from ._clock import Clock
from ._config import Env
from ._rate_windows import (
    CONSERVATIVE,
    MAX_PENALTY_S,
    TIGHTEN_FACTOR,
    TIGHTEN_S,
    Window,
    admission_delay,
    documented_limits,
    effective_windows,
    prune,
)
from ._statedir import (
    atomic_write_text,
    hold_file_lock,
    is_json_number,
    process_lock,
    read_private_json,
    scope_dir,
    stamps_from_the_future,
)

__all__ = [
    "CONSERVATIVE",
    "MAX_PENALTY_S",
    "RATE_LOCK_FILE_NAME",
    "RATE_STATE_FILE_NAME",
    "TIGHTEN_FACTOR",
    "TIGHTEN_S",
    "HistoryLimiter",
    "InProcessLimiter",
    "LimiterState",
    "NullLimiter",
    "RateLimiter",
    "SharedFileLimiter",
    "Window",
    "admission_delay",
    "documented_limits",
    "effective_windows",
    "make_limiter",
    "prune",
]

log = logging.getLogger("kisclient.ratelimit")

#: Shared state and lock file names inside the scope directory.
RATE_STATE_FILE_NAME = "ratelimit.json"
RATE_LOCK_FILE_NAME = "ratelimit.lock"
_SCHEMA = 1


@attrs.frozen
class LimiterState:
    """What a backend stores: admission times and the penalty deadlines."""

    history: tuple[float, ...] = ()
    blocked_until: float = 0.0
    tightened_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in ``ratelimit.json``."""
        return {
            "schema": _SCHEMA,
            "history": list(self.history),
            "blocked_until": self.blocked_until,
            "tightened_until": self.tightened_until,
        }

    @classmethod
    def from_json(cls, data: Any) -> LimiterState:
        """Inverse of :meth:`to_json`; raises :class:`ValueError` on any schema mismatch."""
        if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
            raise ValueError("unknown rate-limit state schema")
        history, blocked, tightened = (
            data.get("history"),
            data.get("blocked_until"),
            data.get("tightened_until"),
        )
        if not isinstance(history, list) or not all(is_json_number(h) for h in history):
            raise ValueError("bad history")
        if not (is_json_number(blocked) and is_json_number(tightened)):
            raise ValueError("bad penalty deadlines")
        return cls(tuple(float(h) for h in history), float(blocked), float(tightened))


def _admit(
    state: LimiterState, windows: Sequence[Window], now: float
) -> tuple[LimiterState, float]:
    """Pure step of :meth:`HistoryLimiter.try_acquire`: the new state and the wait."""
    active = effective_windows(windows, now, state.tightened_until)
    wait = admission_delay(state.history, active, now, blocked_until=state.blocked_until)
    if wait > 0:
        return state, wait
    history = prune((*state.history, now), windows, now)
    return attrs.evolve(state, history=tuple(history)), 0.0


def _settle(
    state: LimiterState, windows: Sequence[Window], admitted_at: float, now: float
) -> tuple[LimiterState, None]:
    """Pure step of :meth:`HistoryLimiter.settle`: re-stamp the admission made at *admitted_at*
    with *now* (if it was pruned meanwhile, *now* is still recorded: never less conservative)."""
    history = list(state.history)
    if admitted_at in history:
        history.remove(admitted_at)
    if now <= admitted_at:
        history.append(admitted_at)
    else:
        history.append(now)
    return attrs.evolve(state, history=tuple(prune(history, windows, now))), None


def _penalize(state: LimiterState, now: float, seconds: float) -> tuple[LimiterState, None]:
    """Pure step of :meth:`HistoryLimiter.penalize`."""
    blocked = max(state.blocked_until, now + seconds)
    tightened = max(state.tightened_until, blocked + TIGHTEN_S)
    return attrs.evolve(state, blocked_until=blocked, tightened_until=tightened), None


@runtime_checkable
class RateLimiter(Protocol):
    """A rate limiter shared by every request of a scope (sync, async, retries included)."""

    def try_acquire(self) -> float:
        """Atomically: if one more request is admissible now, record it and return ``0.0``;
        otherwise record nothing and return the seconds to wait. Never sleeps."""
        ...

    def penalize(self, seconds: float) -> None:
        """The server answered EGW00201: block admissions for *seconds* (0 to
        :data:`MAX_PENALTY_S`), then tighten (see the module docstring for the exact rule)."""
        ...

    async def apenalize(self, seconds: float) -> None:
        """Async :meth:`penalize`; never blocks the event loop."""
        ...

    def acquire(self) -> float:
        """Block (via the clock's ``sleep``, holding no lock) until admitted; return the
        admission's time stamp, for :meth:`settle`."""
        ...

    async def aacquire(self) -> float:
        """Async :meth:`acquire`; never blocks the event loop, never sleeps holding a lock."""
        ...

    def settle(self, admitted_at: float) -> None:
        """The answer to the request admitted at *admitted_at* has arrived: count that request
        from now on (see the module docstring, "Stamping")."""
        ...

    async def asettle(self, admitted_at: float) -> None:
        """Async :meth:`settle`; never blocks the event loop."""
        ...


class NullLimiter:
    """No limits: every request is admitted at once."""

    def try_acquire(self) -> float:
        return 0.0

    def penalize(self, seconds: float) -> None:
        """Ignored: an unlimited limiter has nothing to tighten."""

    async def apenalize(self, seconds: float) -> None:
        """Ignored: an unlimited limiter has nothing to tighten."""

    def acquire(self) -> float:
        return 0.0

    async def aacquire(self) -> float:
        return 0.0

    def settle(self, admitted_at: float) -> None:
        """Nothing to re-stamp."""

    async def asettle(self, admitted_at: float) -> None:
        """Nothing to re-stamp."""

    def __repr__(self) -> str:
        return "NullLimiter()"


_R = TypeVar("_R")


class HistoryLimiter(abc.ABC):
    """Shared machinery: the admission logic over a state that a backend loads and stores.

    Subclasses implement :meth:`_transact` and :meth:`_now`; :meth:`_transact` must apply its
    function atomically with respect to every other user of the same state.
    """

    #: Whether :meth:`aacquire` must run state access in a worker thread (blocking I/O).
    _blocking_state = False

    def __init__(self, windows: Sequence[Window], clock: Clock) -> None:
        self.windows = tuple(windows)
        if not self.windows:
            raise ValueError("a limiter needs at least one window (use NullLimiter for none)")
        self._clock = clock

    @abc.abstractmethod
    def _now(self) -> float:
        """The current time in the state's time base."""

    @abc.abstractmethod
    def _transact(self, step: Callable[[LimiterState], tuple[LimiterState, _R]]) -> _R:
        """Load the state, apply *step*, store the new state if it changed; atomically."""

    def state(self) -> LimiterState:
        """A snapshot of the current state (for diagnostics and tests)."""
        return self._transact(lambda s: (s, s))

    def try_acquire(self) -> float:
        """See :meth:`RateLimiter.try_acquire`."""
        return self._try_admit()[0]

    def _try_admit(self) -> tuple[float, float]:
        """(wait, time of the attempt): admitted, and stamped at that time, when wait is 0."""

        def step(state: LimiterState) -> tuple[LimiterState, tuple[float, float]]:
            now = self._now()
            new_state, wait = _admit(state, self.windows, now)
            return new_state, (wait, now)

        return self._transact(step)

    def settle(self, admitted_at: float) -> None:
        """See :meth:`RateLimiter.settle`."""
        self._transact(lambda s: _settle(s, self.windows, admitted_at, self._now()))

    async def asettle(self, admitted_at: float) -> None:
        """See :meth:`RateLimiter.asettle`."""
        if self._blocking_state:
            await asyncio.to_thread(self.settle, admitted_at)
        else:
            self.settle(admitted_at)

    def penalize(self, seconds: float) -> None:
        """See the module docstring: block for *seconds*, then tighten for :data:`TIGHTEN_S`."""
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_PENALTY_S):
            raise ValueError(f"penalty must be between 0 and {MAX_PENALTY_S:g}s, not {seconds!r}")
        self._transact(lambda s: _penalize(s, self._now(), seconds))
        log.warning("rate limit hit (EGW00201): admissions blocked for %.2fs", seconds)

    async def apenalize(self, seconds: float) -> None:
        """See :meth:`RateLimiter.apenalize`."""
        if self._blocking_state:
            await asyncio.to_thread(self.penalize, seconds)
        else:
            self.penalize(seconds)

    def acquire(self) -> float:
        """See :meth:`RateLimiter.acquire`."""
        while True:
            wait, stamp = self._try_admit()
            if wait <= 0:
                return stamp
            self._clock.sleep(wait)

    async def aacquire(self) -> float:
        """See :meth:`RateLimiter.aacquire`.

        Cancellation-safe: cancelled while sleeping, nothing was recorded; cancelled while a
        worker thread updates shared state, that update completes (at worst one admission is
        recorded and not used, which errs on the side of sending less).
        """
        while True:
            if self._blocking_state:
                wait, stamp = await asyncio.to_thread(self._try_admit)
            else:
                wait, stamp = self._try_admit()
            if wait <= 0:
                return stamp
            await self._clock.asleep(wait)


class InProcessLimiter(HistoryLimiter):
    """Limits within this process; thread-safe. Uses the clock's monotonic time."""

    def __init__(self, windows: Sequence[Window], clock: Clock) -> None:
        super().__init__(windows, clock)
        self._lock = threading.Lock()
        self._state = LimiterState()

    def _now(self) -> float:
        return self._clock.monotonic()

    def _transact(self, step: Callable[[LimiterState], tuple[LimiterState, _R]]) -> _R:
        with self._lock:
            self._state, result = step(self._state)
            return result

    def __repr__(self) -> str:
        return f"InProcessLimiter({list(self.windows)})"


class SharedFileLimiter(HistoryLimiter):
    """Limits shared by every process of the user for one (environment, app key).

    State lives in ``ratelimit.json`` in the scope directory, guarded by a process-global lock
    and then the file lock ``ratelimit.lock``; each transaction is a short read-modify-write,
    written atomically (temporary file + rename, mode 0600; not fsynced, see
    :meth:`_transact`). A state file that is not a private regular file, is empty or corrupt, or
    holds time stamps from the future is treated as empty (logged at WARNING). Times are Unix
    seconds (``clock.time()``), the only time base processes share.

    If the lock or the state file cannot be used (an :class:`OSError`: read-only directory, a
    directory in the file's place...), every limiter of this scope in this process falls back,
    for the rest of the process's life, to state kept in memory, starting from the last
    readable state, after one WARNING naming the file. Limits then hold within this process
    only.
    """

    _blocking_state = True

    def __init__(
        self,
        windows: Sequence[Window],
        clock: Clock,
        state_dir: Path,
        env: Env,
        app_key: str,
    ) -> None:
        super().__init__(windows, clock)
        directory = scope_dir(state_dir, env, app_key)
        self.path = directory / RATE_STATE_FILE_NAME
        self.lock_path = directory / RATE_LOCK_FILE_NAME
        self._thread_lock = process_lock(self.lock_path)
        self._scope_key = os.path.realpath(self.lock_path)

    def _now(self) -> float:
        return self._clock.time()

    def _transact(self, step: Callable[[LimiterState], tuple[LimiterState, _R]]) -> _R:
        with self._thread_lock:
            memory = _IN_MEMORY_FALLBACK.get(self._scope_key)
            if memory is None:
                try:
                    return self._transact_file(step)
                except OSError as exc:
                    memory = self._fall_back(exc)
            new_state, result = step(self._trusted(memory))
            _IN_MEMORY_FALLBACK[self._scope_key] = new_state
            return result

    def _transact_file(self, step: Callable[[LimiterState], tuple[LimiterState, _R]]) -> _R:
        """One transaction on ``ratelimit.json`` under its file lock (process lock held)."""
        with hold_file_lock(self.lock_path):
            state = self._load()
            new_state, result = step(state)
            if new_state != state:
                # Atomic but not fsynced: admissions older than the longest window are
                # worthless after a crash, and an fsync per request would cost ~1 ms.
                atomic_write_text(self.path, json.dumps(new_state.to_json()), durable=False)
            return result

    def _fall_back(self, exc: OSError) -> LimiterState:
        """Switch this scope to in-memory state (process lock held); return its first state."""
        log.warning(
            "rate-limit state %s is not usable (%s): limiting within this process only, "
            "other processes using this app key are not counted, until restart",
            self.path,
            exc.strerror or exc,
        )
        return self._load()

    def _load(self) -> LimiterState:
        data = read_private_json(self.path, "rate-limit state")
        if data is None:
            return LimiterState()
        try:
            state = LimiterState.from_json(data)
        except ValueError as exc:
            log.warning("ignoring corrupt rate-limit state %s: %s", self.path, exc)
            return LimiterState()
        return self._trusted(state)

    def _trusted(self, state: LimiterState) -> LimiterState:
        """*state*, or an empty state if it holds time stamps no rule could have written yet."""
        stamps = (
            ("an admission", max(state.history, default=None), 0.0),
            ("blocked_until", state.blocked_until, MAX_PENALTY_S),
            ("tightened_until", state.tightened_until, MAX_PENALTY_S + TIGHTEN_S),
        )
        if stamps_from_the_future(self.path, "rate-limit state", self._now(), stamps):
            return LimiterState()
        return state

    def __repr__(self) -> str:
        return f"SharedFileLimiter({list(self.windows)}, dir={self.path.parent})"


#: Scopes whose shared state proved unusable in this process: lock path → in-memory state.
#: Read and written only under that scope's :func:`process_lock`.
_IN_MEMORY_FALLBACK: dict[str, LimiterState] = {}


def make_limiter(
    limits: Sequence[Window] | None,
    *,
    env: Env,
    app_key: str,
    state_dir: Path | None,
    clock: Clock,
) -> RateLimiter:
    """The limiter a client uses.

    *limits* ``None`` → :func:`documented_limits` of *env*; ``()`` → :class:`NullLimiter`.
    *state_dir* ``None`` → :class:`InProcessLimiter`; otherwise :class:`SharedFileLimiter`.
    """
    windows = documented_limits(env) if limits is None else tuple(limits)
    if not windows:
        return NullLimiter()
    if state_dir is None:
        return InProcessLimiter(windows, clock)
    return SharedFileLimiter(windows, clock, state_dir, env, app_key)
