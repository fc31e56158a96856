"""hantu_sched: a crash-safe KRX trading-day scheduler built on kisclient.

Public API (everything else lives in private modules): the KRX calendar, the clock and storage
interfaces with their implementations, the batch store, the run journal, the day plan and its
configuration, the pure recovery planner, the integrated scheduler, and the typed services jobs
reach KIS with (:class:`Services`, built by :func:`build_services`). Test jobs are in
:mod:`hantu_sched.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._lazy import lazy_exports
from ._version import __version__

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and readers
    from ._batch import BatchHealth, BatchStore, batch_health, is_batch_complete
    from ._calendar import CalendarNotCoveredError, KRXCalendar, Session
    from ._calendar import KRXCalendar as TradingCalendar  # the name for the interface
    from ._clock import Clock, FakeClock, SystemClock
    from ._constants import KST, RISK_FREE_RATE
    from ._day import (
        JOB_ORDER,
        MARKET_CLOSE,
        PERFORMANCE,
        SCREENING,
        SELECTION,
        TRADING,
        At,
        CatchUp,
        DayPlan,
        IncompleteSelection,
        JobPolicy,
        SchedulerConfig,
        build_day_plan,
    )
    from ._executor import Executor
    from ._jobs import Job, JobContext, JobInterrupted, JobRegistry
    from ._journal import Attempt, AttemptOutcome, JobKey, JobRecord, JobState, Journal
    from ._lock import DataDirLock, SchedulerAlreadyRunningError
    from ._recovery import Action, ActionKind, RecoveryManager, RecoveryState, gather_state
    from ._scheduler import IntegratedScheduler
    from ._services import Credentials, KISTarget, Services, build_services
    from ._storage import (
        CorruptJournalError,
        DeposedError,
        MemoryStorage,
        Owner,
        SQLiteStorage,
        Storage,
        StorageError,
    )

#: Where each public name lives: (private module, attribute). Loaded on first use (PEP 562),
#: so that a command that needs a few of them (``status``) does not load the KIS clients.
_EXPORTS: Final[dict[str, tuple[str, str]]] = {
    "BatchHealth": ("_batch", "BatchHealth"),
    "BatchStore": ("_batch", "BatchStore"),
    "batch_health": ("_batch", "batch_health"),
    "is_batch_complete": ("_batch", "is_batch_complete"),
    "CalendarNotCoveredError": ("_calendar", "CalendarNotCoveredError"),
    "KRXCalendar": ("_calendar", "KRXCalendar"),
    "TradingCalendar": ("_calendar", "KRXCalendar"),
    "Session": ("_calendar", "Session"),
    "Clock": ("_clock", "Clock"),
    "FakeClock": ("_clock", "FakeClock"),
    "SystemClock": ("_clock", "SystemClock"),
    "KST": ("_constants", "KST"),
    "RISK_FREE_RATE": ("_constants", "RISK_FREE_RATE"),
    "JOB_ORDER": ("_day", "JOB_ORDER"),
    "MARKET_CLOSE": ("_day", "MARKET_CLOSE"),
    "PERFORMANCE": ("_day", "PERFORMANCE"),
    "SCREENING": ("_day", "SCREENING"),
    "SELECTION": ("_day", "SELECTION"),
    "TRADING": ("_day", "TRADING"),
    "At": ("_day", "At"),
    "CatchUp": ("_day", "CatchUp"),
    "DayPlan": ("_day", "DayPlan"),
    "IncompleteSelection": ("_day", "IncompleteSelection"),
    "JobPolicy": ("_day", "JobPolicy"),
    "SchedulerConfig": ("_day", "SchedulerConfig"),
    "build_day_plan": ("_day", "build_day_plan"),
    "Executor": ("_executor", "Executor"),
    "Job": ("_jobs", "Job"),
    "JobContext": ("_jobs", "JobContext"),
    "JobInterrupted": ("_jobs", "JobInterrupted"),
    "JobRegistry": ("_jobs", "JobRegistry"),
    "Attempt": ("_journal", "Attempt"),
    "AttemptOutcome": ("_journal", "AttemptOutcome"),
    "JobKey": ("_journal", "JobKey"),
    "JobRecord": ("_journal", "JobRecord"),
    "JobState": ("_journal", "JobState"),
    "Journal": ("_journal", "Journal"),
    "DataDirLock": ("_lock", "DataDirLock"),
    "SchedulerAlreadyRunningError": ("_lock", "SchedulerAlreadyRunningError"),
    "Action": ("_recovery", "Action"),
    "ActionKind": ("_recovery", "ActionKind"),
    "RecoveryManager": ("_recovery", "RecoveryManager"),
    "RecoveryState": ("_recovery", "RecoveryState"),
    "gather_state": ("_recovery", "gather_state"),
    "IntegratedScheduler": ("_scheduler", "IntegratedScheduler"),
    "Credentials": ("_services", "Credentials"),
    "KISTarget": ("_services", "KISTarget"),
    "Services": ("_services", "Services"),
    "build_services": ("_services", "build_services"),
    "CorruptJournalError": ("_storage", "CorruptJournalError"),
    "DeposedError": ("_storage", "DeposedError"),
    "MemoryStorage": ("_storage", "MemoryStorage"),
    "Owner": ("_storage", "Owner"),
    "SQLiteStorage": ("_storage", "SQLiteStorage"),
    "Storage": ("_storage", "Storage"),
    "StorageError": ("_storage", "StorageError"),
}

__all__ = [
    "JOB_ORDER",
    "KST",
    "MARKET_CLOSE",
    "PERFORMANCE",
    "RISK_FREE_RATE",
    "SCREENING",
    "SELECTION",
    "TRADING",
    "Action",
    "ActionKind",
    "At",
    "Attempt",
    "AttemptOutcome",
    "BatchHealth",
    "BatchStore",
    "CalendarNotCoveredError",
    "CatchUp",
    "Clock",
    "CorruptJournalError",
    "Credentials",
    "DataDirLock",
    "DayPlan",
    "DeposedError",
    "Executor",
    "FakeClock",
    "IncompleteSelection",
    "IntegratedScheduler",
    "Job",
    "JobContext",
    "JobInterrupted",
    "JobKey",
    "JobPolicy",
    "JobRecord",
    "JobRegistry",
    "JobState",
    "Journal",
    "KISTarget",
    "KRXCalendar",
    "MemoryStorage",
    "Owner",
    "RecoveryManager",
    "RecoveryState",
    "SQLiteStorage",
    "SchedulerAlreadyRunningError",
    "SchedulerConfig",
    "Services",
    "Session",
    "Storage",
    "StorageError",
    "SystemClock",
    "TradingCalendar",
    "__version__",
    "batch_health",
    "build_day_plan",
    "build_services",
    "gather_state",
    "is_batch_complete",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
