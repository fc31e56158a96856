"""Constants shared by the scheduler and the jobs it runs (each defined exactly once)."""

from __future__ import annotations

from typing import Final

from kisclient import KST

__all__ = ["KST", "RISK_FREE_RATE"]

#: Annual risk-free rate used by the performance analysis (Sharpe ratio and friends).
RISK_FREE_RATE: Final[float] = 0.02
