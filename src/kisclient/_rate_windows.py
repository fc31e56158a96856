"""Rate windows, without I/O: what a window allows and how long an admission must wait.

A :class:`Window` allows at most ``limit`` admissions in any interval of ``seconds`` (sliding,
not fixed buckets). :func:`admission_delay` is the whole admission logic, pure and atomic across
windows; :func:`effective_windows` applies the tightening after a penalty and :func:`prune` keeps
only the history that can still matter. The backends that store the history are in
:mod:`kisclient._ratelimit`; this module imports nothing heavier than ``attrs``, so settings can
name windows without loading the limiters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._config import Env, env_settings

__all__ = [
    "CONSERVATIVE",
    "MAX_PENALTY_S",
    "TIGHTEN_FACTOR",
    "TIGHTEN_S",
    "Window",
    "admission_delay",
    "documented_limits",
    "effective_windows",
    "prune",
]

#: After a penalty, limits are multiplied by this factor ...
TIGHTEN_FACTOR = 0.8
#: ... for this many seconds after the block ends.
TIGHTEN_S = 60.0
#: The longest penalty :meth:`RateLimiter.penalize` accepts (KIS asks for about one second).
MAX_PENALTY_S = 60.0


def _positive_int(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Window.limit must be an int >= 1, not {value!r}")


def _positive_seconds(_inst: object, _attr: object, value: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Window.seconds must be a finite number > 0, not {value!r}")


@attrs.frozen
class Window:
    """At most *limit* admissions in any interval of *seconds* (sliding)."""

    limit: int = attrs.field(validator=_positive_int)
    seconds: float = attrs.field(converter=float, validator=_positive_seconds)


def documented_limits(env: Env) -> tuple[Window, ...]:
    """The documented per-second limit of *env* (real 18/s, paper 1/s; KIS notice 2026-04-20)."""
    return (Window(env_settings(env).limits.requests_per_second, 1.0),)


#: The original system's conservative profile: 5/s, 80/min, 1200/h.
CONSERVATIVE: tuple[Window, ...] = (Window(5, 1.0), Window(80, 60.0), Window(1200, 3600.0))


def admission_delay(
    history: Sequence[float],
    windows: Sequence[Window],
    now: float,
    *,
    blocked_until: float = 0.0,
) -> float:
    """Seconds to wait before one more admission is allowed; ``0.0`` if it is allowed at *now*.

    *history* holds past admission times (any order, same time base as *now*). A past
    admission ``h`` occupies window ``w`` while ``h + w.seconds > t``; an admission at ``t`` is
    allowed when every window has fewer than ``w.limit`` occupants and ``t >= blocked_until``.
    The result ``d`` is exact: admission is allowed at ``now + d`` (as floats) and at no
    earlier time. Pure: no I/O, no clock.
    """
    target = max(now, blocked_until)
    if history:
        ordered = sorted(history, reverse=True)
        for window in windows:
            if len(ordered) >= window.limit:
                # The admission that must leave the window: the limit-th most recent.
                target = max(target, ordered[window.limit - 1] + window.seconds)
    if target <= now:
        return 0.0
    wait = target - now
    while now + wait < target:  # float rounding: never report a wait that is a hair short
        wait = math.nextafter(wait, math.inf)
    return wait


def effective_windows(
    windows: Sequence[Window], now: float, tightened_until: float
) -> tuple[Window, ...]:
    """*windows*, tightened (limit × :data:`TIGHTEN_FACTOR`, at least 1) while
    ``now < tightened_until``."""
    if now >= tightened_until:
        return tuple(windows)
    return tuple(Window(max(1, math.floor(w.limit * TIGHTEN_FACTOR)), w.seconds) for w in windows)


def prune(history: Sequence[float], windows: Sequence[Window], now: float) -> list[float]:
    """The sorted part of *history* that can still affect an admission at or after *now*.

    For each window, only its most recent ``limit`` admissions that still occupy it matter.
    """
    ordered = sorted(history)
    keep = 0
    for window in windows:
        live = sum(1 for h in ordered if h + window.seconds > now)
        keep = max(keep, min(live, window.limit))
    return ordered[len(ordered) - keep :] if keep else []
