"""The attempt history: every run, resume and reconcile of a unit is kept, with who ran it and
the recovery decision that started it; a crash is recorded by the recovery that finds it."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import socket
import sqlite3

import pytest

from hantu_sched import (
    KST,
    FakeClock,
    IntegratedScheduler,
    JobContext,
    JobKey,
    MemoryStorage,
    SchedulerConfig,
    SQLiteStorage,
    Storage,
)
from hantu_sched._journal import Attempt, AttemptOutcome, Journal
from hantu_sched.testing import CrashingClock, JobLog, SimulatedCrash, make_test_jobs

DAY = dt.date(2026, 9, 28)


def at(hhmm: str) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time.fromisoformat(hhmm), KST)


def make(
    clock: FakeClock, storage: Storage, data_dir: pathlib.Path, **kwargs: object
) -> IntegratedScheduler:
    jobs = make_test_jobs(JobLog(), **kwargs)  # type: ignore[arg-type]
    return IntegratedScheduler(SchedulerConfig(), storage, clock, jobs, data_dir=data_dir)


def summary(attempts: list[Attempt]) -> list[tuple[int, str, str, dt.datetime, dt.datetime | None]]:
    return [(a.number, a.kind, a.outcome.value, a.started_at, a.finished_at) for a in attempts]


def test_a_crash_mid_trading_keeps_the_first_start_and_the_crash(tmp_path: pathlib.Path) -> None:
    storage = SQLiteStorage(tmp_path)
    with pytest.raises(SimulatedCrash):
        make(CrashingClock(at("05:00"), crash_at=at("11:00")), storage, tmp_path).run(
            until=at("23:59")
        )
    storage.close()
    storage = SQLiteStorage(tmp_path)  # the "new process"
    try:
        make(FakeClock(at("11:05")), storage, tmp_path).run(until=at("23:59"))
        trading = storage.get_attempts(JobKey("trading", DAY))
        assert summary(trading) == [
            (1, "run", "crashed", at("09:00"), None),
            (2, "reconcile", "done", at("11:05"), at("11:05")),
            (3, "resume", "done", at("11:05"), at("15:30")),
        ]
        crash = trading[0]
        assert crash.pid == os.getpid() and crash.host == socket.gethostname()
        assert crash.error is not None and "found by recovery at 2026-09-28T11:05:00" in crash.error
        assert crash.decision and trading[1].decision and trading[2].decision
        assert trading[1].decision != trading[2].decision  # each says why it started
        # units that ran once have exactly one attempt, done
        screening = storage.get_attempts(JobKey("screening", DAY))
        assert summary(screening) == [(1, "run", "done", at("06:00"), at("06:01"))]
        assert {a.key.job for a in storage.list_attempts(DAY)} >= {"trading", "selection"}
    finally:
        storage.close()


def test_failures_and_the_retry_that_succeeded_are_all_kept(tmp_path: pathlib.Path) -> None:
    failures = {"left": 2}

    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "market_close" and failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("broker statement unavailable")
            job(ctx)  # type: ignore[operator]

        return run

    storage = MemoryStorage()
    make(FakeClock(at("15:45")), storage, tmp_path, wrap=wrap).run(until=at("16:30"))
    attempts = storage.get_attempts(JobKey("market_close", DAY))
    assert [(a.number, a.outcome) for a in attempts] == [
        (1, AttemptOutcome.FAILED),
        (2, AttemptOutcome.FAILED),
        (3, AttemptOutcome.DONE),
    ]
    assert [a.error for a in attempts] == [
        "RuntimeError: broker statement unavailable",
        "RuntimeError: broker statement unavailable",
        None,
    ]
    assert all(a.finished_at is not None for a in attempts)


def test_a_graceful_stop_is_interrupted_not_crashed(tmp_path: pathlib.Path) -> None:
    storage = MemoryStorage()
    holder: list[IntegratedScheduler] = []

    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "trading":
                ctx.clock.sleep_until(at("10:00"))
                holder[0].stop()
            job(ctx)  # type: ignore[operator]

        return run

    holder.append(make(FakeClock(at("08:00")), storage, tmp_path, wrap=wrap))
    storage.put_watchlist(DAY, ["x"])
    holder[0].run(until=at("23:59"))
    make(FakeClock(at("10:01")), storage, tmp_path).run(until=at("23:59"))
    trading = storage.get_attempts(JobKey("trading", DAY))
    assert summary(trading) == [
        (1, "run", "interrupted", at("09:00"), at("10:00")),
        (2, "reconcile", "done", at("10:01"), at("10:01")),
        (3, "resume", "done", at("10:01"), at("15:30")),
    ]
    assert trading[0].error == "stopped on request before finishing"


def test_a_crash_during_a_reconcile_is_found_by_the_next_reconcile() -> None:
    storage = MemoryStorage()
    key = JobKey("trading", DAY)
    first = Journal(storage, who=(1, "a"))
    first.start(key, at("09:00"), "due")
    second = Journal(storage, who=(2, "b"))  # process 1 died; process 2 recovers
    second.needs_reconcile(key, at("11:00"), "was running when the scheduler stopped")
    second.begin_reconcile(key, at("11:00"), "reconcile before resuming")
    third = Journal(storage, who=(3, "c"))  # process 2 died mid-reconcile
    third.begin_reconcile(key, at("11:30"), "reconcile before resuming")
    third.fail(key, at("11:31"), "reconcile failed: boom", count_attempt=True)
    got = [(a.number, a.kind, a.outcome.value, a.pid) for a in storage.get_attempts(key)]
    assert got == [
        (1, "run", "crashed", 1),
        (2, "reconcile", "crashed", 2),
        (3, "reconcile", "failed", 3),
    ]
    record = storage.get_job(key)
    assert record is not None and record.attempts == 2  # the row's count is unchanged in meaning


def test_a_journal_from_before_the_history_is_migrated_and_the_day_goes_on(
    tmp_path: pathlib.Path,
) -> None:
    storage = SQLiteStorage(tmp_path)
    with pytest.raises(SimulatedCrash):
        make(CrashingClock(at("05:00"), crash_at=at("11:00")), storage, tmp_path).run(
            until=at("23:59")
        )
    storage.close()
    # Make it the journal the previous release wrote: one row per unit, no history table.
    conn = sqlite3.connect(tmp_path / "hantu_sched.sqlite3")
    conn.executescript("DROP TABLE attempts; DROP INDEX jobs_by_date; PRAGMA user_version = 0;")
    conn.close()
    storage = SQLiteStorage(tmp_path)  # the new release starts: migrates, then recovers
    try:
        make(FakeClock(at("11:05")), storage, tmp_path).run(until=at("23:59"))
        trading = storage.get_attempts(JobKey("trading", DAY))
        assert summary(trading) == [
            (1, "run", "crashed", at("09:00"), None),
            (2, "reconcile", "done", at("11:05"), at("11:05")),
            (3, "resume", "done", at("11:05"), at("15:30")),
        ]
        assert (trading[0].pid, trading[0].host) == (None, None)  # migrated: who is unknown
        assert trading[0].error is not None and "its process ended while it ran" in trading[0].error
        screening = storage.get_attempts(JobKey("screening", DAY))
        assert [(a.number, a.outcome, a.pid) for a in screening] == [(1, AttemptOutcome.DONE, None)]
    finally:
        storage.close()
