"""Performance metrics over a series of account values: pure functions, no I/O.

Conventions (the performance report documents the same):

- *values* are positive, finite account values (net assets), oldest first, one per snapshot.
  A non-positive or non-finite value raises :class:`ValueError`.
- ``daily_returns``: ``v[i] / v[i-1] - 1`` for consecutive snapshots (one per trading day when
  every snapshot exists).
- ``cumulative_return``: ``v[-1] / v[0] - 1``, which equals ``prod(1 + r) - 1`` over the daily
  returns; ``0.0`` for a single value, ``None`` for none.
- ``volatility``: the sample standard deviation (n - 1) of the daily returns × sqrt(252);
  ``None`` with fewer than two returns.
- ``sharpe_ratio``: ``(mean(r) - rf / 252) / stdev(r) × sqrt(252)`` with the annual risk-free
  rate ``rf`` (hantu_sched's ``RISK_FREE_RATE`` by default); ``None`` with fewer than two
  returns or when the standard deviation is zero (a constant series has no defined Sharpe).
- ``max_drawdown``: the largest fall from a running peak, as a fraction of that peak, in
  ``[0, 1]``; ``0.0`` for fewer than two values, ``None`` for none.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any, Final

import attrs

from .._constants import RISK_FREE_RATE

__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "PerformanceMetrics",
    "annualised_volatility",
    "compute_metrics",
    "cumulative_return",
    "daily_returns",
    "max_drawdown",
    "sharpe_ratio",
]

#: Trading days per year used to annualise.
TRADING_DAYS_PER_YEAR: Final = 252
#: A standard deviation at or below this is treated as zero (floating-point noise).
_ZERO_STDEV: Final = 1e-12


def _check(values: Sequence[float]) -> None:
    for value in values:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"account values must be positive and finite, got {value!r}")


def daily_returns(values: Sequence[float]) -> list[float]:
    """Simple returns between consecutive *values*."""
    _check(values)
    return [b / a - 1.0 for a, b in itertools.pairwise(values)]


def cumulative_return(values: Sequence[float]) -> float | None:
    """``v[-1] / v[0] - 1`` (``0.0`` for one value, ``None`` for none)."""
    _check(values)
    if not values:
        return None
    return values[-1] / values[0] - 1.0


def max_drawdown(values: Sequence[float]) -> float | None:
    """The largest peak-to-trough fall as a fraction of the peak, in ``[0, 1]``."""
    _check(values)
    if not values:
        return None
    peak, worst = values[0], 0.0
    for value in values:
        peak = max(peak, value)
        worst = max(worst, 1.0 - value / peak)
    return min(max(worst, 0.0), 1.0)


def annualised_volatility(returns: Sequence[float]) -> float | None:
    """Sample standard deviation of *returns* × sqrt(252), or ``None`` with < 2 returns."""
    if len(returns) < 2:
        return None
    stdev = statistics.stdev(returns)
    return 0.0 if stdev <= _ZERO_STDEV else stdev * math.sqrt(TRADING_DAYS_PER_YEAR)


def sharpe_ratio(returns: Sequence[float], risk_free_rate: float = RISK_FREE_RATE) -> float | None:
    """Annualised Sharpe ratio of daily *returns*; ``None`` if undefined (see module doc)."""
    if len(returns) < 2:
        return None
    stdev = statistics.stdev(returns)
    if stdev <= _ZERO_STDEV:
        return None
    excess = statistics.fmean(returns) - risk_free_rate / TRADING_DAYS_PER_YEAR
    return excess / stdev * math.sqrt(TRADING_DAYS_PER_YEAR)


@attrs.frozen
class PerformanceMetrics:
    """Every metric of one series (see the module docstring for ``None`` cases).

    ``daily_return`` is the last snapshot-to-snapshot return (``None`` with < 2 values).
    """

    observations: int
    daily_return: float | None
    cumulative_return: float | None
    volatility: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    risk_free_rate: float
    daily_returns: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        data = attrs.asdict(self)
        data["daily_returns"] = list(self.daily_returns)
        return data


def compute_metrics(
    values: Sequence[float], risk_free_rate: float = RISK_FREE_RATE
) -> PerformanceMetrics:
    """All metrics of *values* (oldest first)."""
    returns = daily_returns(values)
    return PerformanceMetrics(
        observations=len(values),
        daily_return=returns[-1] if returns else None,
        cumulative_return=cumulative_return(values),
        volatility=annualised_volatility(returns),
        sharpe_ratio=sharpe_ratio(returns, risk_free_rate),
        max_drawdown=max_drawdown(values),
        risk_free_rate=risk_free_rate,
        daily_returns=tuple(returns),
    )
