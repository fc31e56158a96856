"""The default daily pipeline: a simple, real example strategy on kisclient.

    from hantu_sched import build_services
    from hantu_sched.pipeline import PipelineConfig, default_jobs
    registry = default_jobs(PipelineConfig(trading_mode="paper"))
    services = build_services(settings.kis_target, credentials, clock)  # a hantu_sched.Services

:func:`default_jobs` returns a :class:`~hantu_sched.JobRegistry` with ``screening``,
``selection``, ``trading`` (with its reconciler), ``market_close`` and ``performance``. Each is a
small frozen class taking the :class:`PipelineConfig` (:class:`ScreeningJob`,
:class:`SelectionJob`, :class:`TradingJob`, :class:`TradingReconcileJob`,
:class:`MarketCloseJob`, :class:`PerformanceJob`), so any of them can be replaced, or reused, by
import path. Services the jobs expect in ``ctx.services`` (a :class:`hantu_sched.Services`):
``kis`` (a sync :class:`kisclient.KISClient`; mapping key :data:`KIS_SERVICE`), ``kis_async`` (a
zero-argument callable returning a new :class:`kisclient.AsyncKISClient`;
:data:`KIS_ASYNC_SERVICE`) and, when the configuration names no universe, ``universe`` (codes;
:data:`UNIVERSE_SERVICE`). What each job stores is listed by the ``RECORD_*``
constants and in each job's docstring.
"""

from .._day import MARKET_CLOSE, PERFORMANCE, SCREENING, SELECTION, TRADING
from .._jobs import JobRegistry
from ._config import TRADING_MODES, PipelineConfig, TradingMode
from ._market_close import MarketCloseJob
from ._metrics import PerformanceMetrics, compute_metrics
from ._performance import PerformanceJob, report_path
from ._screening import ScreeningJob
from ._selection import SelectionJob, rank_selection, split_batch
from ._services import (
    KIS_ASYNC_SERVICE,
    KIS_SERVICE,
    RECORD_BALANCE_SNAPSHOT,
    RECORD_FINAL_SELECTION,
    RECORD_MARKET_CLOSE,
    RECORD_ORDER,
    RECORD_PERFORMANCE,
    RECORD_SCREENING,
    RECORD_TRADING,
    RECORD_TRADING_RECONCILE,
    UNIVERSE_SERVICE,
)
from ._trading import TradingJob, TradingReconcileJob

__all__ = [
    "KIS_ASYNC_SERVICE",
    "KIS_SERVICE",
    "RECORD_BALANCE_SNAPSHOT",
    "RECORD_FINAL_SELECTION",
    "RECORD_MARKET_CLOSE",
    "RECORD_ORDER",
    "RECORD_PERFORMANCE",
    "RECORD_SCREENING",
    "RECORD_TRADING",
    "RECORD_TRADING_RECONCILE",
    "TRADING_MODES",
    "UNIVERSE_SERVICE",
    "MarketCloseJob",
    "PerformanceJob",
    "PerformanceMetrics",
    "PipelineConfig",
    "ScreeningJob",
    "SelectionJob",
    "TradingJob",
    "TradingMode",
    "TradingReconcileJob",
    "compute_metrics",
    "default_jobs",
    "rank_selection",
    "report_path",
    "split_batch",
]


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
