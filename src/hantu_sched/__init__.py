"""hantu_sched: a crash-safe KRX trading-day scheduler built on kisclient.

Public API (everything else lives in private modules): the KRX calendar, the clock and storage
interfaces with their implementations, the batch store, the run journal, the day plan and its
configuration, the pure recovery planner, the integrated scheduler, and the typed services jobs
reach KIS with (:class:`Services`, built by :func:`build_services`). Test jobs are in
:mod:`hantu_sched.testing`.
"""

from ._batch import BatchHealth, BatchStore, batch_health, is_batch_complete
from ._calendar import CalendarNotCoveredError, KRXCalendar, Session
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
from ._journal import JobKey, JobRecord, JobState, Journal
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
from ._version import __version__

#: The trading-calendar interface the issue calls ``TradingCalendar``.
TradingCalendar = KRXCalendar

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
