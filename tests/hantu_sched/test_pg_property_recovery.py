"""Property: for the same history (journal rows and attempts of today and the previous trading
day, batch documents in any state, watchlist, selection rows), the SQLite store (batch files on
disk) and the PostgreSQL store (batch documents in the database) give identical recovery plans
at any moment of the day.

One real PostgreSQL database per test; each example writes under its own deployment name.
"""

from __future__ import annotations

import datetime as dt
import itertools
import pathlib
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hantu_sched import (
    JOB_ORDER,
    KST,
    BatchStore,
    IncompleteSelection,
    JobKey,
    JobRecord,
    JobState,
    KRXCalendar,
    SchedulerConfig,
    SQLiteStorage,
    Storage,
)
from hantu_sched._batch import batch_store_for
from hantu_sched._clock import FakeClock
from hantu_sched._journal import attempt_from_record
from hantu_sched._pg_storage import PostgresStorage
from hantu_sched._recovery import RecoveryManager, gather_state
from pg_support import PgServer

CAL = KRXCalendar()
BATCHES = ("1", "2", "3", "4")
FILE_STATES = ["missing", "empty", "corrupt", "stale", "wrong-id", "valid"]
_examples = itertools.count(1)

days = st.dates(dt.date(2026, 1, 2), dt.date(2026, 12, 30))
rows = st.tuples(st.sampled_from([None, *JobState]), st.integers(0, 3), st.integers(0, 600))


def _write_batch(store: BatchStore, day: dt.date, batch: str, state: str) -> None:
    if state == "stale":
        store.write(day - dt.timedelta(days=1), batch, [])
    elif state == "valid":
        store.write(day, batch, [{"code": "005930"}])
    elif state == "wrong-id":
        store.store(batch, f'{{"trading_date": "{day}", "batch_id": "x", "items": []}}'.encode())
    elif state == "empty":
        store.store(batch, b"")
    elif state == "corrupt":
        store.store(batch, b'{"trading_date": ')


def _seed(storage: Storage, key: JobKey, row: tuple[JobState | None, int, int]) -> None:
    state, attempts, minute = row
    if state is None:
        return
    when = dt.datetime.combine(key.trading_date, dt.time(5), KST) + dt.timedelta(minutes=minute)
    started = when if attempts else None
    finished = when if state in (JobState.FAILED, JobState.DONE, JobState.SKIPPED) else None
    record = JobRecord(key, state, attempts, when, started, finished, "boom", "why")
    attempt = attempt_from_record(record)
    storage.put_job(record, [] if attempt is None else [attempt])


@pytest.fixture(scope="module")
def shared_url(pg_server: PgServer) -> str:
    """One database for every example (each writes under its own deployment)."""
    return pg_server.url(pg_server.fresh_database())


@given(
    day=days,
    now_minute=st.integers(0, 23 * 60 + 59),
    today_rows=st.lists(rows, min_size=8, max_size=8),
    previous_rows=st.lists(rows, min_size=8, max_size=8),
    files=st.lists(st.sampled_from(FILE_STATES), min_size=4, max_size=4),
    selection_rows=st.sets(st.sampled_from(BATCHES)),
    watchlist=st.booleans(),
    mode=st.sampled_from(list(IncompleteSelection)),
)
def test_sqlite_and_postgresql_give_the_same_recovery_plan(
    shared_url: str,
    day: dt.date,
    now_minute: int,
    today_rows: list[tuple[JobState | None, int, int]],
    previous_rows: list[tuple[JobState | None, int, int]],
    files: list[str],
    selection_rows: set[str],
    watchlist: bool,
    mode: IncompleteSelection,
) -> None:
    config = SchedulerConfig(batch_ids=BATCHES, incomplete_selection=mode)
    now = dt.datetime.combine(day, dt.time(now_minute // 60, now_minute % 60), KST)
    previous = CAL.previous_trading_day(day)
    keys = [JobKey(j, day, b) for j in JOB_ORDER for b in (BATCHES if j == "selection" else [None])]
    plans = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp)
        sqlite = SQLiteStorage(data_dir)
        pg = PostgresStorage(shared_url, deployment=f"ex{next(_examples)}", clock=FakeClock(now))
        try:
            for storage in (sqlite, pg):
                for key, row in zip(keys, today_rows, strict=True):
                    _seed(storage, key, row)
                for key, row in zip(keys, previous_rows, strict=True):
                    _seed(storage, JobKey(key.job, previous, key.batch), row)
                if watchlist:
                    storage.put_watchlist(day, ["005930"])
                for batch in sorted(selection_rows):
                    storage.put_selection(day, batch, [{"code": "005930"}])
                batches = batch_store_for(storage, data_dir)
                batches.directory.mkdir(parents=True, exist_ok=True)
                for batch, state in zip(BATCHES, files, strict=True):
                    _write_batch(batches, day, batch, state)
                state_now = gather_state(now, CAL, config, storage, batches)
                plan = RecoveryManager(config, CAL).plan(now, state_now)
                plans.append([action.to_dict() for action in plan])
        finally:
            sqlite.close()
            pg.close()
    assert isinstance(batch_store_for(pg, "/x"), BatchStore)
    assert plans[0] == plans[1]
