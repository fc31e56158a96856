"""hantu_sched: a crash-safe KRX trading-day scheduler built on kisclient."""

from ._version import __version__

__all__ = ["__version__"]
