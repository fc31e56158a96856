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

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._lazy import lazy_exports

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and readers
    from ._config import TRADING_MODES, PipelineConfig, TradingMode
    from ._defaults import default_jobs
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

#: Public name -> (private module, attribute), imported on first use: ``status`` checks the
#: ``[pipeline]`` settings through ``_config`` without loading every job and kisclient's clients.
_EXPORTS: Final[dict[str, tuple[str, str]]] = {
    "KIS_ASYNC_SERVICE": ("_services", "KIS_ASYNC_SERVICE"),
    "KIS_SERVICE": ("_services", "KIS_SERVICE"),
    "RECORD_BALANCE_SNAPSHOT": ("_services", "RECORD_BALANCE_SNAPSHOT"),
    "RECORD_FINAL_SELECTION": ("_services", "RECORD_FINAL_SELECTION"),
    "RECORD_MARKET_CLOSE": ("_services", "RECORD_MARKET_CLOSE"),
    "RECORD_ORDER": ("_services", "RECORD_ORDER"),
    "RECORD_PERFORMANCE": ("_services", "RECORD_PERFORMANCE"),
    "RECORD_SCREENING": ("_services", "RECORD_SCREENING"),
    "RECORD_TRADING": ("_services", "RECORD_TRADING"),
    "RECORD_TRADING_RECONCILE": ("_services", "RECORD_TRADING_RECONCILE"),
    "TRADING_MODES": ("_config", "TRADING_MODES"),
    "UNIVERSE_SERVICE": ("_services", "UNIVERSE_SERVICE"),
    "MarketCloseJob": ("_market_close", "MarketCloseJob"),
    "PerformanceJob": ("_performance", "PerformanceJob"),
    "PerformanceMetrics": ("_metrics", "PerformanceMetrics"),
    "PipelineConfig": ("_config", "PipelineConfig"),
    "ScreeningJob": ("_screening", "ScreeningJob"),
    "SelectionJob": ("_selection", "SelectionJob"),
    "TradingJob": ("_trading", "TradingJob"),
    "TradingMode": ("_config", "TradingMode"),
    "TradingReconcileJob": ("_trading", "TradingReconcileJob"),
    "compute_metrics": ("_metrics", "compute_metrics"),
    "default_jobs": ("_defaults", "default_jobs"),
    "rank_selection": ("_selection", "rank_selection"),
    "report_path": ("_performance", "report_path"),
    "split_batch": ("_selection", "split_batch"),
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
