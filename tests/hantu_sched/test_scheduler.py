"""IntegratedScheduler on a FakeClock: whole days, crashes, restarts, locks, stops."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from hantu_sched import (
    KST,
    RISK_FREE_RATE,
    At,
    FakeClock,
    IntegratedScheduler,
    Job,
    JobContext,
    JobKey,
    JobPolicy,
    JobState,
    MemoryStorage,
    SchedulerAlreadyRunningError,
    SchedulerConfig,
    SQLiteStorage,
    Storage,
)
from hantu_sched._lock import DataDirLock
from hantu_sched.testing import CrashingClock, JobLog, SimulatedCrash, make_test_jobs

NORMAL = dt.date(2026, 9, 28)
PREVIOUS = dt.date(2026, 9, 23)


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


def end_of(day: dt.date) -> dt.datetime:
    return at(day + dt.timedelta(days=1), "00:00")


def make(
    clock: FakeClock,
    storage: Storage,
    data_dir: pathlib.Path,
    log: JobLog,
    config: SchedulerConfig | None = None,
    **kwargs: object,
) -> IntegratedScheduler:
    return IntegratedScheduler(
        config or SchedulerConfig(),
        storage,
        clock,
        make_test_jobs(log, **kwargs),  # type: ignore[arg-type]
        data_dir=data_dir,
    )


def states(storage: Storage, day: dt.date) -> dict[str, JobState]:
    return {str(r.key): r.state for r in storage.list_jobs(day)}


@pytest.mark.parametrize(
    ("day", "trading", "market_close", "performance"),
    [
        (NORMAL, ("09:00", "15:30"), "16:00", "17:00"),
        (dt.date(2026, 1, 2), ("10:00", "15:30"), "16:00", "17:00"),
        (dt.date(2026, 11, 19), ("10:00", "16:30"), "17:00", "18:00"),
    ],
)
def test_whole_day_runs_each_job_once_at_its_time(
    tmp_path: pathlib.Path,
    day: dt.date,
    trading: tuple[str, str],
    market_close: str,
    performance: str,
) -> None:
    log = JobLog()
    storage = SQLiteStorage(tmp_path)
    make(FakeClock(at(day, "00:00")), storage, tmp_path, log).run(until=end_of(day))
    starts = {(e.job, e.batch): e.at for e in log.of("start")}
    assert len(log.of("start")) == 8
    assert starts[("screening", None)] == at(day, "06:00")
    assert [starts[("selection", b)] for b in "1234"] == [at(day, f"07:{m}0") for m in "0123"]
    assert starts[("trading", None)] == at(day, trading[0])
    assert [e.at for e in log.of("end", "trading")] == [at(day, trading[1])]
    assert starts[("market_close", None)] == at(day, market_close)
    assert starts[("performance", None)] == at(day, performance)
    assert set(states(storage, day).values()) == {JobState.DONE}
    report = storage.get_record("performance", day.isoformat())
    assert report == {"risk_free_rate": RISK_FREE_RATE, "return": 0.0}
    storage.close()


def test_second_evening_restart_runs_nothing_again(tmp_path: pathlib.Path) -> None:
    log = JobLog()
    storage = MemoryStorage()
    make(FakeClock(at(NORMAL, "16:30")), storage, tmp_path, log).run(until=at(NORMAL, "17:30"))
    assert [e.job for e in log.of("start")] == ["market_close", "performance"]
    make(FakeClock(at(NORMAL, "17:45")), storage, tmp_path, log).run(until=end_of(NORMAL))
    make(FakeClock(at(NORMAL, "22:00")), storage, tmp_path, log).run(until=end_of(NORMAL))
    assert [e.job for e in log.of("start")] == ["market_close", "performance"]


def test_closed_day_runs_nothing_and_logs_why(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hantu_sched")
    log = JobLog()
    storage = MemoryStorage()
    day = dt.date(2026, 6, 3)
    make(FakeClock(at(day, "00:00")), storage, tmp_path, log).run(until=end_of(day))
    assert log.events == []
    assert storage.list_jobs(day) == []
    assert "not a KRX trading day (KRX holiday (지방선거일))" in caplog.text


def test_crash_mid_trading_then_new_scheduler_reconciles_and_resumes(
    tmp_path: pathlib.Path,
) -> None:
    log = JobLog()
    storage = SQLiteStorage(tmp_path)
    clock = CrashingClock(at(NORMAL, "05:00"), crash_at=at(NORMAL, "11:00"))
    with pytest.raises(SimulatedCrash):
        make(clock, storage, tmp_path, log).run(until=end_of(NORMAL))
    storage.close()
    storage = SQLiteStorage(tmp_path)  # the "new process"
    record = storage.get_job(JobKey("trading", NORMAL))
    assert record is not None
    assert record.state is JobState.RUNNING
    make(FakeClock(at(NORMAL, "11:05")), storage, tmp_path, log).run(until=end_of(NORMAL))
    assert [e.at for e in log.of("reconcile")] == [at(NORMAL, "11:05")]
    trading_starts = log.of("start", "trading")
    assert [(e.at, e.resume) for e in trading_starts] == [
        (at(NORMAL, "09:00"), False),
        (at(NORMAL, "11:05"), True),
    ]
    assert len(log.of("start", "screening")) == 1
    final = storage.get_job(JobKey("trading", NORMAL))
    assert final is not None
    assert final.state is JobState.DONE
    assert final.attempts == 2
    storage.close()


def test_crash_mid_batch_reruns_only_that_batch(tmp_path: pathlib.Path) -> None:
    log = JobLog()
    storage = MemoryStorage()
    clock = CrashingClock(at(NORMAL, "06:30"), crash_at=at(NORMAL, "07:10:30"))
    with pytest.raises(SimulatedCrash):
        make(clock, storage, tmp_path, log).run(until=end_of(NORMAL))
    assert storage.get_job(JobKey("selection", NORMAL, "2")).state is JobState.RUNNING  # type: ignore[union-attr]
    make(FakeClock(at(NORMAL, "07:10:30")), storage, tmp_path, log).run(until=at(NORMAL, "08:00"))
    batches = [(e.batch, e.at) for e in log.of("start", "selection")]
    assert batches == [
        ("1", at(NORMAL, "07:00")),
        ("2", at(NORMAL, "07:10")),
        ("2", at(NORMAL, "07:10:30")),
        ("3", at(NORMAL, "07:20")),
        ("4", at(NORMAL, "07:30")),
    ]
    assert storage.get_job(JobKey("selection", NORMAL, "2")).attempts == 2  # type: ignore[union-attr]


def test_failing_job_is_recorded_retried_and_logged(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures = {"left": 2}

    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "market_close" and failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("broker statement unavailable")
            job(ctx)  # type: ignore[operator]

        return run

    log = JobLog()
    storage = MemoryStorage()
    make(FakeClock(at(NORMAL, "15:45")), storage, tmp_path, log, wrap=wrap).run(
        until=at(NORMAL, "16:30")
    )
    record = storage.get_job(JobKey("market_close", NORMAL))
    assert record is not None
    assert record.state is JobState.DONE
    assert record.attempts == 3
    assert [e.at for e in log.of("start", "market_close")] == [at(NORMAL, "16:10")]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all("broker statement unavailable" in (r.exc_text or "") for r in errors)


def test_job_that_keeps_failing_stays_failed_and_is_not_rerun_by_a_new_scheduler(
    tmp_path: pathlib.Path,
) -> None:
    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "performance":
                raise ValueError("bad data")
            job(ctx)  # type: ignore[operator]

        return run

    config = SchedulerConfig(policies={"performance": JobPolicy(At.close(90), max_attempts=2)})
    storage = MemoryStorage()
    log = JobLog()
    make(FakeClock(at(NORMAL, "16:30")), storage, tmp_path, log, config, wrap=wrap).run(
        until=end_of(NORMAL)
    )
    record = storage.get_job(JobKey("performance", NORMAL))
    assert record is not None
    assert (record.state, record.attempts) == (JobState.FAILED, 2)
    assert record.error == "ValueError: bad data"
    make(FakeClock(at(NORMAL, "20:00")), storage, tmp_path, log, config, wrap=wrap).run(
        until=end_of(NORMAL)
    )
    assert storage.get_job(JobKey("performance", NORMAL)) == record


def test_output_contract_is_checked(tmp_path: pathlib.Path) -> None:
    def wrap(name: str, job: object) -> object:
        if name == "screening":
            return lambda ctx: None  # "succeeds" without storing a watchlist
        return job

    storage = MemoryStorage()
    make(FakeClock(at(NORMAL, "05:59")), storage, tmp_path, JobLog(), wrap=wrap).run(
        until=at(NORMAL, "06:30")
    )
    record = storage.get_job(JobKey("screening", NORMAL))
    assert record is not None
    assert record.state is JobState.FAILED
    assert "no watchlist" in (record.error or "")


def test_previous_day_performance_is_caught_up_but_not_trading(tmp_path: pathlib.Path) -> None:
    log = JobLog()
    storage = MemoryStorage()
    crash = CrashingClock(at(PREVIOUS, "05:00"), crash_at=at(PREVIOUS, "13:00"))
    with pytest.raises(SimulatedCrash):
        make(crash, storage, tmp_path, log).run(until=end_of(PREVIOUS))
    # Down until Monday morning (the 24th-27th are closed).
    make(FakeClock(at(NORMAL, "05:00")), storage, tmp_path, log).run(until=at(NORMAL, "05:30"))
    assert [(e.job, e.trading_date) for e in log.of("start") if e.trading_date == PREVIOUS][-1] == (
        "performance",
        PREVIOUS,
    )
    assert len(log.of("start", "trading")) == 1  # only the original 09:00 start
    assert storage.get_job(JobKey("trading", PREVIOUS)).state is JobState.SKIPPED  # type: ignore[union-attr]
    assert storage.get_job(JobKey("performance", PREVIOUS)).state is JobState.DONE  # type: ignore[union-attr]


def test_graceful_stop_leaves_journal_truthful(tmp_path: pathlib.Path) -> None:
    log = JobLog()
    storage = MemoryStorage()
    holder: list[IntegratedScheduler] = []

    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "trading":
                ctx.clock.sleep_until(at(NORMAL, "10:00"))
                holder[0].stop()
            job(ctx)  # type: ignore[operator]

        return run

    sched = make(FakeClock(at(NORMAL, "08:00")), storage, tmp_path, log, wrap=wrap)
    holder.append(sched)
    storage.put_watchlist(NORMAL, ["x"])
    sched.run(until=end_of(NORMAL))
    assert sched.stop_requested
    assert sched.clock.now() == at(NORMAL, "10:00")
    record = storage.get_job(JobKey("trading", NORMAL))
    assert record is not None
    assert record.state is JobState.NEEDS_RECONCILE
    assert not DataDirLock(tmp_path).held
    make(FakeClock(at(NORMAL, "10:01")), storage, tmp_path, log).run(until=end_of(NORMAL))
    assert [e.at for e in log.of("reconcile")] == [at(NORMAL, "10:01")]
    assert storage.get_job(JobKey("trading", NORMAL)).state is JobState.DONE  # type: ignore[union-attr]


def test_sigterm_requests_a_graceful_stop(tmp_path: pathlib.Path) -> None:
    storage = MemoryStorage()

    def wrap(name: str, job: object) -> object:
        def run(ctx: JobContext) -> None:
            if name == "screening":
                os.kill(os.getpid(), signal.SIGTERM)
            job(ctx)  # type: ignore[operator]

        return run

    sched = make(FakeClock(at(NORMAL, "06:00")), storage, tmp_path, JobLog(), wrap=wrap)
    restore = sched.install_signal_handlers()
    try:
        sched.run(until=end_of(NORMAL))
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert sched.stop_requested
    record = storage.get_job(JobKey("screening", NORMAL))
    assert record is not None
    assert record.state is JobState.PENDING
    assert record.note == "stopped on request before finishing"


def test_second_instance_on_same_data_dir_is_refused(tmp_path: pathlib.Path) -> None:
    sched = make(FakeClock(at(NORMAL, "06:00")), MemoryStorage(), tmp_path, JobLog())
    with (
        DataDirLock(tmp_path),
        pytest.raises(SchedulerAlreadyRunningError, match="already running"),
    ):
        sched.run(until=end_of(NORMAL))
    sched.run(until=at(NORMAL, "06:30"))  # lock released: now it runs
    assert sched.clock.now() == at(NORMAL, "06:30")


@pytest.mark.multiprocess
def test_second_process_is_refused_while_first_holds_the_lock(tmp_path: pathlib.Path) -> None:
    code = (
        "import sys\n"
        "from hantu_sched import DataDirLock, SchedulerAlreadyRunningError\n"
        "try:\n"
        "    DataDirLock(sys.argv[1]).acquire()\n"
        "except SchedulerAlreadyRunningError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    env = {"PYTHONPATH": os.pathsep.join(sys.path)}
    with DataDirLock(tmp_path):
        held = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    assert held.returncode == 3
    assert f"pid {os.getpid()}" in held.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=False)
    assert free.returncode == 0


def test_all_default_jobs_must_be_registered(tmp_path: pathlib.Path) -> None:
    jobs = dict(make_test_jobs())
    del jobs["performance"]
    with pytest.raises(ValueError, match="performance"):
        IntegratedScheduler(
            SchedulerConfig(), MemoryStorage(), FakeClock(), {k: v.run for k, v in jobs.items()}
        )


def test_a_job_of_a_deposed_scheduler_stops_at_its_next_stop_check(tmp_path: pathlib.Path) -> None:
    from hantu_sched._storage import DeposedError

    storage = SQLiteStorage(tmp_path)
    intruder = SQLiteStorage(tmp_path)
    log = JobLog()

    def wrap(name: str, job: Job) -> Job:
        if name != "trading":
            return job

        def trading(ctx: JobContext) -> None:
            intruder.claim("intruder", ctx.clock.now())
            ctx.check_stop()  # reads as stopped: this instance was deposed
            job(ctx)

        return trading

    sched = make(FakeClock(at(NORMAL, "05:00")), storage, tmp_path, log, wrap=wrap)
    try:
        with pytest.raises(DeposedError):
            sched.run(until=end_of(NORMAL))
        record = intruder.get_job(JobKey("trading", NORMAL))
    finally:
        storage.close()
        intruder.close()
    assert record is not None and record.state is JobState.RUNNING  # nothing more was written
    assert not [e for e in log.events if e.job in ("trading", "market_close", "performance")]
    assert not DataDirLock(tmp_path).held
