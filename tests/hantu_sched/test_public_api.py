"""The public surface is explicit and pinned."""

from __future__ import annotations

import datetime as dt
import pathlib

import hantu_sched
import hantu_sched.pipeline
from lazy_exports_support import check_lazy_exports, modules_loaded_by

EXPECTED = {
    "JOB_ORDER", "KST", "MARKET_CLOSE", "PERFORMANCE", "RISK_FREE_RATE", "SCREENING",
    "SELECTION", "TRADING", "Action", "ActionKind", "At", "BatchHealth", "BatchStore",
    "CalendarNotCoveredError", "CatchUp", "Clock", "DataDirLock", "DayPlan", "Executor",
    "FakeClock", "IncompleteSelection", "IntegratedScheduler", "Job", "JobContext",
    "JobInterrupted", "JobKey", "JobPolicy", "JobRecord", "JobRegistry", "JobState", "Journal",
    "KRXCalendar", "MemoryStorage", "RecoveryManager", "RecoveryState", "SQLiteStorage",
    "SchedulerAlreadyRunningError", "SchedulerConfig", "Session", "Storage", "SystemClock",
    "TradingCalendar", "__version__", "batch_health", "build_day_plan", "gather_state",
    "is_batch_complete", "CorruptJournalError", "DeposedError", "Owner", "StorageError",
    "Credentials", "KISTarget", "Services", "build_services", "Attempt", "AttemptOutcome",
}  # fmt: skip


def test_all_is_pinned_and_importable() -> None:
    assert set(hantu_sched.__all__) == EXPECTED
    for name in hantu_sched.__all__:
        assert getattr(hantu_sched, name) is not None


def test_public_contract() -> None:
    from hantu_sched import KRXCalendar

    assert KRXCalendar().is_trading_day(dt.date(2026, 6, 4))
    assert KRXCalendar().session(dt.date(2026, 6, 3)) is None
    assert hantu_sched.RISK_FREE_RATE == 0.02


def test_clock_reuses_kisclient() -> None:
    from kisclient import FakeClock as BaseFakeClock

    assert issubclass(hantu_sched.FakeClock, BaseFakeClock)
    assert isinstance(hantu_sched.FakeClock(), hantu_sched.Clock)


def test_public_names_load_on_first_use_and_agree_with_all() -> None:
    check_lazy_exports(hantu_sched)
    check_lazy_exports(hantu_sched.pipeline)


def test_the_status_command_does_not_load_the_kis_clients() -> None:
    """``status`` reads the journal and the token store: no HTTP or WebSocket client."""
    loaded = modules_loaded_by("from hantu_sched._cli import main")
    assert not {"kisclient._client", "kisclient._async_client", "websockets"} & loaded


def test_status_loads_neither_http_asyncio_nor_the_pipeline_jobs(tmp_path: pathlib.Path) -> None:
    """What keeps ``status`` quick (docs/benchmarks.md): it checks the whole configuration but
    never imports httpx, asyncio, the pipeline's jobs or a KIS client."""
    statement = (
        "import contextlib, io; from hantu_sched._cli import main; "
        "quiet = contextlib.redirect_stdout(io.StringIO()); quiet.__enter__(); "
        f"code = main(['status', '--history', '--data-dir', {str(tmp_path)!r}]); "
        "quiet.__exit__(None, None, None); assert code == 0, code"
    )
    loaded = modules_loaded_by(statement)
    assert "hantu_sched._inspect" in loaded  # the status command did run
    assert "hantu_sched.pipeline._config" in loaded  # [pipeline] was checked
    heavy = {
        "httpx",
        "asyncio",
        "websockets",
        "hantu_sched.pipeline._trading",
        "hantu_sched.pipeline._screening",
        "kisclient._client",
        "kisclient._async_client",
        "kisclient._ratelimit",
    }
    assert not heavy & loaded
