"""The default pipeline's registry: the five jobs built on one :class:`PipelineConfig`."""

from __future__ import annotations

from .._day import MARKET_CLOSE, PERFORMANCE, SCREENING, SELECTION, TRADING
from .._jobs import JobRegistry
from ._config import PipelineConfig
from ._market_close import MarketCloseJob
from ._performance import PerformanceJob
from ._screening import ScreeningJob
from ._selection import SelectionJob
from ._trading import TradingJob, TradingReconcileJob

__all__ = ["default_jobs"]


def default_jobs(config: PipelineConfig | None = None) -> JobRegistry:
    """A registry with the five default jobs built on *config* (default: ``PipelineConfig()``,
    i.e. dry-run trading). Replace any of them with ``registry.register(name, job)``."""
    cfg = config if config is not None else PipelineConfig()
    registry = JobRegistry()
    registry.register(SCREENING, ScreeningJob(cfg))
    registry.register(SELECTION, SelectionJob(cfg))
    registry.register(TRADING, TradingJob(cfg), reconcile=TradingReconcileJob(cfg))
    registry.register(MARKET_CLOSE, MarketCloseJob(cfg))
    registry.register(PERFORMANCE, PerformanceJob(cfg))
    return registry
