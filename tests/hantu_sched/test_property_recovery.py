"""Property tests: any day, any restart times, any journal and batch-file state.

A restart is a simulated crash (:class:`SimulatedCrash` raised from the clock at that instant,
possibly in the middle of a job) followed by a new scheduler on the same storage and data
directory, immediately or after a gap. The whole day then runs on a fake clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import tempfile
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hantu_sched import (
    JOB_ORDER,
    KST,
    At,
    BatchStore,
    CatchUp,
    IncompleteSelection,
    IntegratedScheduler,
    JobKey,
    JobPolicy,
    JobRecord,
    JobState,
    KRXCalendar,
    MemoryStorage,
    SchedulerConfig,
    build_day_plan,
)
from hantu_sched.testing import CrashingClock, JobLog, SimulatedCrash, make_test_jobs

CAL = KRXCalendar()
BATCHES = ("1", "2", "3", "4")
POLICIES = {
    "screening": JobPolicy(At.local(6), At.close(), max_attempts=10),
    "selection": JobPolicy(At.local(7), At.close(), max_attempts=10),
    "trading": JobPolicy(At.open(), At.close(), max_attempts=10, side_effects=True),
    "market_close": JobPolicy(At.close(30), max_attempts=10),
    "performance": JobPolicy(At.close(90), max_attempts=10, catch_up=CatchUp.NEXT_TRADING_DAY),
}
ROW_STATES = [None, *(s for s in JobState if s is not JobState.SKIPPED)]
FILE_STATES = ["missing", "empty", "corrupt", "stale", "wrong-id", "valid"]
EVIDENCE_JOBS = ("screening", "selection")

days = st.dates(dt.date(2024, 1, 2), dt.date(2027, 12, 30))
rows = st.tuples(st.sampled_from(ROW_STATES), st.integers(0, 2))
minutes = st.integers(0, 22 * 60 + 59)


def at_minute(day: dt.date, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60, second), KST)


def write_file(store: BatchStore, day: dt.date, batch: str, state: str) -> None:
    path = store.path(batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "missing": None,
        "empty": b"",
        "corrupt": b'{"trading_date": ',
        "stale": None,
        "wrong-id": None,
        "valid": None,
    }[state]
    if state == "stale":
        store.write(day - dt.timedelta(days=1), batch, [])
    elif state == "wrong-id":
        path.write_text(f'{{"trading_date": "{day}", "batch_id": "x", "items": []}}')
    elif state == "valid":
        store.write(day, batch, [])
    elif content is not None:
        path.write_bytes(content)


def seed(
    storage: MemoryStorage, key: JobKey, row: tuple[JobState | None, int], start: dt.datetime
) -> None:
    state, attempts = row
    if state is None:
        return
    finished = start - dt.timedelta(minutes=1) if state is JobState.FAILED else None
    storage.put_job(
        JobRecord(
            key,
            state,
            attempts if state is not JobState.PENDING else 0,
            updated_at=start,
            finished_at=finished,
        )
    )


@given(
    day=days,
    first=minutes,
    restarts=st.lists(st.tuples(st.integers(1, 600), st.sampled_from([0, 0, 5, 90])), max_size=3),
    today_rows=st.lists(rows, min_size=8, max_size=8),
    previous_rows=st.one_of(st.none(), st.lists(rows, min_size=8, max_size=8)),
    files=st.lists(st.sampled_from(FILE_STATES), min_size=4, max_size=4),
    watchlist=st.booleans(),
    mode=st.sampled_from(list(IncompleteSelection)),
)
def test_property_any_restart_any_state(
    day: dt.date,
    first: int,
    restarts: list[tuple[int, int]],
    today_rows: list[tuple[JobState | None, int]],
    previous_rows: list[tuple[JobState | None, int]] | None,
    files: list[str],
    watchlist: bool,
    mode: IncompleteSelection,
) -> None:
    config = SchedulerConfig(batch_ids=BATCHES, incomplete_selection=mode, policies=POLICIES)
    start = at_minute(day, first)
    end = at_minute(day + dt.timedelta(days=1), 0)
    storage = MemoryStorage()
    log = JobLog()
    trading_day = CAL.is_trading_day(day)
    previous = CAL.previous_trading_day(day)
    keys = [JobKey(j, day, b) for j in JOB_ORDER for b in (BATCHES if j == "selection" else [None])]
    previous_keys = [JobKey(k.job, previous, k.batch) for k in keys]
    for key, row in zip(keys, today_rows, strict=True):
        seed(storage, key, row, start)
    for key, row in zip(previous_keys, previous_rows or [(None, 0)] * 8, strict=True):
        seed(storage, key, row, start)
    if watchlist:
        storage.put_watchlist(day, ["005930"])
    initial = {k: storage.get_job(k) for k in keys}
    initial_previous = {k: storage.get_job(k) for k in previous_keys}

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp)
        batches = BatchStore(data_dir)
        for batch, state in zip(BATCHES, files, strict=True):
            write_file(batches, day, batch, state)
        initially_valid = {b for b in BATCHES if batches.is_complete(day, b)}

        # Crash instants land at hh:mm:30 so they never coincide with a boundary minute.
        schedule: list[tuple[dt.datetime, dt.datetime | None]] = []
        now: dt.datetime = start
        for offset, gap in restarts:
            crash = now + dt.timedelta(minutes=offset, seconds=30)
            if crash >= end:
                break
            schedule.append((now, crash))
            # A gap that would run past midnight leaves no scheduler alive at the end of the day,
            # and then nothing can finish the day; the restart comes at once instead.
            now = crash + dt.timedelta(minutes=gap)
            if now >= end:
                now = crash
        schedule.append((now, None))
        for begin, crash_at in schedule:
            if begin >= end:
                break
            clock = CrashingClock(begin, crash_at=crash_at)
            sched = IntegratedScheduler(
                config, storage, clock, make_test_jobs(log), calendar=CAL, data_dir=data_dir
            )
            with contextlib.suppress(SimulatedCrash):
                sched.run(until=end)
        final_files = {b: batches.is_complete(day, b) for b in BATCHES}

    starts = log.of("start")
    ends = log.of("end")
    if not trading_day:
        assert log.events == [], "nothing runs on a closed day"
        assert all(storage.get_job(k) == initial[k] for k in keys)
        assert all(storage.get_job(k) == initial_previous[k] for k in previous_keys)
        return

    # Never a job twice in a day; never again once evidence/journal showed it done.
    for key in keys:
        completions = [
            e for e in ends if (e.job, e.trading_date, e.batch) == (key.job, day, key.batch)
        ]
        assert len(completions) <= 1, key
        ran = [e for e in starts if (e.job, e.trading_date, e.batch) == (key.job, day, key.batch)]
        seeded = initial[key]
        if key.job == "selection" and key.batch in initially_valid:
            assert not ran, f"{key} re-ran although its file was valid"
        elif key.job == "screening" and (watchlist or set(initially_valid) >= set(BATCHES)):
            assert not ran, "screening re-ran although its watchlist or the whole selection existed"
        elif key.job not in EVIDENCE_JOBS and seeded is not None and seeded.state is JobState.DONE:
            assert not ran, f"{key} re-ran although the journal said done"

    # Never trading on an incomplete selection.
    assert all(e.selection_complete for e in starts if e.job == "trading")

    # Every unit of the day ends decided: done or skipped with a reason.
    final = {k: storage.get_job(k) for k in keys}
    for key, record in final.items():
        assert record is not None, key
        assert record.state in (JobState.DONE, JobState.SKIPPED), (key, record)
        if record.state is JobState.SKIPPED:
            assert record.note
    for key in keys:
        if key.job == "selection" and final[key].state is JobState.DONE:  # type: ignore[union-attr]
            assert final_files[key.batch or ""], f"{key} done but its file is not valid"
    assert final[JobKey("market_close", day)].state is JobState.DONE  # type: ignore[union-attr]
    assert final[JobKey("performance", day)].state is JobState.DONE  # type: ignore[union-attr]
    plan = build_day_plan(config, CAL, day)
    assert plan is not None
    no_gaps = all(gap == 0 for _, gap in restarts)
    if no_gaps and start < plan.session.open - dt.timedelta(hours=1):
        assert {r.state for r in final.values() if r is not None} == {JobState.DONE}

    # The previous trading day: performance caught up (if the scheduler ran that day), trading
    # never; everything else decided.
    assert not [e for e in starts if e.trading_date == previous and e.job != "performance"]
    if any(r is not None for r in initial_previous.values()):
        for key in previous_keys:
            record = storage.get_job(key)
            assert record is not None
            expected: Any = JobState.DONE if key.job == "performance" else record.state
            if initial_previous[key] is None or initial_previous[key].state not in (  # type: ignore[union-attr]
                JobState.DONE,
            ):
                assert record.state is expected
                assert record.state in (JobState.DONE, JobState.SKIPPED)
