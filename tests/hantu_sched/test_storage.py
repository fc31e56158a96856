"""Storage contract suite, parametrised over the implementations in :data:`STORES`."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from hantu_sched import KST, JobKey, JobRecord, JobState, MemoryStorage, SQLiteStorage, Storage
from hantu_sched._clock import FakeClock
from hantu_sched._journal import Attempt, AttemptOutcome, Journal
from hantu_sched._pg_storage import PostgresStorage
from hantu_sched._storage import SCHEMA_VERSION

DAY = dt.date(2026, 11, 19)
T = dt.datetime(2026, 11, 19, 6, 0, tzinfo=KST)


#: The implementations the contract suite runs against: name -> factory(tmp_path).
STORES: dict[str, Callable[[pathlib.Path], Storage]] = {
    "memory": lambda _path: MemoryStorage(),
    "sqlite": SQLiteStorage,
}


@pytest.fixture(params=[*sorted(STORES), "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Storage]:
    if request.param == "postgres":  # a real server (tests/pg_support.py), a fresh database
        store: Storage = PostgresStorage(request.getfixturevalue("pg_url"), clock=FakeClock(T))
    else:
        store = STORES[request.param](tmp_path)
    yield store
    store.close()


def test_is_a_storage(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_job_roundtrip_and_upsert(storage: Storage) -> None:
    key = JobKey("selection", DAY, "2")
    assert storage.get_job(key) is None
    first = JobRecord(key, JobState.RUNNING, 1, T, T, None, None, "start")
    storage.put_job(first)
    assert storage.get_job(key) == first
    second = JobRecord(key, JobState.FAILED, 1, T, T, T, "ValueError: x", None)
    storage.put_job(second)
    assert storage.get_job(key) == second
    assert storage.list_jobs(DAY) == [second]


def test_batch_none_is_distinct_from_batches(storage: Storage) -> None:
    plain = JobRecord(JobKey("trading", DAY), JobState.DONE, 1)
    batched = JobRecord(JobKey("selection", DAY, "1"), JobState.DONE, 1)
    storage.put_job(plain)
    storage.put_job(batched)
    storage.put_job(plain)
    assert storage.get_job(JobKey("trading", DAY)) == plain
    assert [r.key for r in storage.list_jobs(DAY)] == [batched.key, plain.key]
    assert storage.list_jobs(DAY + dt.timedelta(days=1)) == []


def test_selection_watchlist_records(storage: Storage) -> None:
    assert storage.get_selection(DAY) == {}
    assert storage.get_watchlist(DAY) is None
    storage.put_selection(DAY, "2", [{"code": "005930"}])
    storage.put_selection(DAY, "1", [])
    storage.put_selection(DAY + dt.timedelta(days=1), "1", ["x"])
    assert storage.get_selection(DAY) == {"1": [], "2": [{"code": "005930"}]}
    storage.put_watchlist(DAY, ["005930", "000660"])
    assert storage.get_watchlist(DAY) == ["005930", "000660"]
    storage.put_record("performance", "2026-11-19", {"sharpe": 1.5})
    storage.put_record("performance", "2026-11-18", {"sharpe": 0.5})
    storage.put_record("balance_snapshot", "2026-11-19", {"cash": 1})
    assert storage.get_record("performance", "2026-11-19") == {"sharpe": 1.5}
    assert storage.get_record("performance", "nope") is None
    assert list(storage.list_records("performance")) == ["2026-11-18", "2026-11-19"]


def test_returned_payloads_are_copies(storage: Storage) -> None:
    storage.put_watchlist(DAY, ["a"])
    got = storage.get_watchlist(DAY)
    assert isinstance(got, list)
    got.append("mutated")
    assert storage.get_watchlist(DAY) == ["a"]


def test_non_json_payload_is_rejected(storage: Storage) -> None:
    with pytest.raises(TypeError, match="JSON"):
        storage.put_record("x", "y", {"when": object()})
    assert storage.get_record("x", "y") is None


@pytest.mark.multiprocess
def test_sqlite_survives_a_process_that_dies_without_closing(tmp_path: pathlib.Path) -> None:
    code = (
        "import os, sys\n"
        "from hantu_sched import SQLiteStorage\n"
        "store = SQLiteStorage(sys.argv[1])\n"
        "store.put_record('k', 'v', {'n': 1})\n"
        "os._exit(0)  # no close(), no clean shutdown\n"
    )
    env = {"PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)
    store = SQLiteStorage(tmp_path)
    assert store.get_record("k", "v") == {"n": 1}
    assert store.path == tmp_path / "hantu_sched.sqlite3"
    store.close()


def test_sqlite_uses_wal(tmp_path: pathlib.Path) -> None:
    store = SQLiteStorage(tmp_path / "state.db")
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    store.close()
    assert mode == "wal"


def test_claim_fences_writes_of_a_deposed_sqlite_storage(tmp_path: pathlib.Path) -> None:
    from hantu_sched._storage import DeposedError

    first, second = SQLiteStorage(tmp_path), SQLiteStorage(tmp_path)
    try:
        assert first.claim("first", T) == 1
        first.put_record("k", "a", 1)
        assert second.claim("second", T) == 2
        record = JobRecord(JobKey("trading", DAY), JobState.DONE, 1)
        writes: list[Callable[[], None]] = [
            lambda: first.put_job(record),
            lambda: first.put_record("k", "b", 2),
            lambda: first.put_selection(DAY, "1", []),
            lambda: first.put_watchlist(DAY, []),
            first.check_owner,
        ]
        for write in writes:
            with pytest.raises(DeposedError, match=r"deposed.*second"):
                write()
        assert first.get_job(record.key) is None and first.get_record("k", "b") is None
        second.put_job(record)
        owner = first.owner()
        assert owner is not None and (owner.epoch, owner.owner) == (2, "second")
    finally:
        first.close()
        second.close()


def test_unclaimed_storage_writes_unfenced(storage: Storage) -> None:
    storage.put_record("k", "a", 1)
    storage.check_owner()
    assert storage.owner() is None
    assert storage.claim("me", T) == 1
    storage.put_record("k", "b", 2)
    assert storage.claim("me again", T) == 2  # the same object re-claims (a restart in-process)
    storage.put_record("k", "c", 3)


def test_corrupt_file_is_a_one_line_storage_error(tmp_path: pathlib.Path) -> None:
    from hantu_sched._storage import CorruptJournalError

    path = tmp_path / "hantu_sched.sqlite3"
    path.write_bytes(b"not sqlite" * 100)
    for read_only in (False, True):
        with pytest.raises(CorruptJournalError) as info:
            SQLiteStorage(path, read_only=read_only)
        assert "\n" not in str(info.value) and "corrupt" in str(info.value)
    assert path.read_bytes() == b"not sqlite" * 100


# --- attempt history --------------------------------------------------------------------------


def _attempt(key: JobKey, number: int, **changes: Any) -> Attempt:
    base = Attempt(key, number, "run", T, pid=4242, host="box", decision="due at 06:00")
    return attrs.evolve(base, **changes)


def test_attempts_are_written_with_their_row_and_read_back_in_order(storage: Storage) -> None:
    key = JobKey("selection", DAY, "2")
    assert storage.get_attempts(key) == [] and storage.list_attempts(DAY) == []
    first = _attempt(key, 1)
    storage.put_job(JobRecord(key, JobState.RUNNING, 1, T, T), [first])
    assert storage.get_attempts(key) == [first]
    later = T + dt.timedelta(minutes=5)
    closed = attrs.evolve(
        first, outcome=AttemptOutcome.CRASHED, error="pid 4242 on box ended while it ran"
    )
    second = _attempt(key, 2, kind="resume", started_at=later, pid=7, host="other")
    storage.put_job(JobRecord(key, JobState.RUNNING, 2, later, later), [closed, second])
    assert storage.get_attempts(key) == [closed, second]
    assert storage.get_job(key) == JobRecord(key, JobState.RUNNING, 2, later, later)
    done = attrs.evolve(second, outcome=AttemptOutcome.DONE, finished_at=later)
    storage.put_job(JobRecord(key, JobState.DONE, 2, later, later, later), [done])
    assert storage.get_attempts(key) == [closed, done]
    storage.put_job(JobRecord(key, JobState.DONE, 2), [])  # no attempt: the row only
    assert storage.get_attempts(key) == [closed, done]


def test_list_attempts_is_per_day_ordered_by_unit_then_number(storage: Storage) -> None:
    plain, batch1, batch2 = JobKey("trading", DAY), JobKey("sel", DAY, "1"), JobKey("sel", DAY, "2")
    other_day = JobKey("trading", DAY + dt.timedelta(days=1))
    for key, numbers in ((batch2, (2, 1)), (plain, (1,)), (batch1, (1,)), (other_day, (1,))):
        for n in numbers:
            storage.put_job(JobRecord(key, JobState.RUNNING, n), [_attempt(key, n)])
    got = [(a.key, a.number) for a in storage.list_attempts(DAY)]
    assert got == [(batch1, 1), (batch2, 1), (batch2, 2), (plain, 1)]
    assert [a.key for a in storage.list_attempts(other_day.trading_date)] == [other_day]


def test_attempts_survive_a_reopen_with_aware_times(tmp_path: pathlib.Path) -> None:
    key = JobKey("trading", DAY)
    attempt = _attempt(key, 1, started_at=T.astimezone(dt.UTC), pid=None, host=None)
    store = SQLiteStorage(tmp_path)
    store.put_job(JobRecord(key, JobState.RUNNING, 1), [attempt])
    store.close()
    again = SQLiteStorage(tmp_path, read_only=True)
    try:
        assert again.get_attempts(key) == [attempt]
        assert again.list_attempts(DAY)[0].started_at.utcoffset() == dt.timedelta(0)
    finally:
        again.close()


def test_a_deposed_writer_writes_neither_row_nor_attempt(tmp_path: pathlib.Path) -> None:
    from hantu_sched._storage import DeposedError

    first, second = SQLiteStorage(tmp_path), SQLiteStorage(tmp_path)
    try:
        first.claim("first", T)
        second.claim("second", T)
        key = JobKey("trading", DAY)
        with pytest.raises(DeposedError):
            first.put_job(JobRecord(key, JobState.RUNNING, 1), [_attempt(key, 1)])
        assert second.get_job(key) is None and second.get_attempts(key) == []
    finally:
        first.close()
        second.close()


# --- migration of a journal written before the attempt history (schema version 0) ------------

#: The journal schema as released before issue 15 (one row per unit, no user_version).
_V0_SCHEMA = """
CREATE TABLE jobs (
    job TEXT NOT NULL, trading_date TEXT NOT NULL, batch TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job, trading_date, batch));
CREATE TABLE selection (
    trading_date TEXT NOT NULL, batch_id TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (trading_date, batch_id));
CREATE TABLE watchlist (trading_date TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE records (
    kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE owner (
    id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL, owner TEXT NOT NULL,
    claimed_at TEXT NOT NULL);
"""

_V0_ROWS = [
    JobRecord(JobKey("screening", DAY), JobState.DONE, 1, T, T, T + dt.timedelta(minutes=3)),
    JobRecord(
        JobKey("trading", DAY),
        JobState.RUNNING,
        2,
        T,
        T + dt.timedelta(hours=5),
        None,
        None,
        "resume after reconcile",
    ),
    JobRecord(JobKey("selection", DAY, "1"), JobState.FAILED, 3, T, T, T, "ValueError: x", "due"),
    JobRecord(JobKey("selection", DAY, "2"), JobState.NEEDS_RECONCILE, 1, T, T, None, None, "stop"),
    JobRecord(JobKey("market_close", DAY), JobState.PENDING),
]


def _write_v0_journal(path: pathlib.Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(_V0_SCHEMA)
    for record in _V0_ROWS:
        key = record.key
        conn.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?)",
            (key.job, key.trading_date.isoformat(), key.batch or "", json.dumps(record.to_dict())),
        )
    conn.execute("INSERT INTO records VALUES ('performance', '2026-11-19', '{\"r\": 1}')")
    conn.commit()
    conn.close()


def _expected_backfill() -> list[Attempt]:
    return [
        Attempt(
            JobKey("screening", DAY),
            1,
            "run",
            T,
            AttemptOutcome.DONE,
            T + dt.timedelta(minutes=3),
        ),
        Attempt(
            JobKey("selection", DAY, "1"),
            3,
            "run",
            T,
            AttemptOutcome.FAILED,
            T,
            "ValueError: x",
            decision="due",
        ),
        Attempt(
            JobKey("selection", DAY, "2"),
            1,
            "run",
            T,
            AttemptOutcome.INTERRUPTED,
            None,
            "ended without finishing (needs-reconcile: stop)",
        ),
        Attempt(
            JobKey("trading", DAY),
            2,
            "run",
            T + dt.timedelta(hours=5),
            decision="resume after reconcile",
        ),
    ]


def test_a_version_0_journal_is_migrated_on_open_keeping_everything(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "hantu_sched.sqlite3"
    _write_v0_journal(path)
    store = SQLiteStorage(path)
    try:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.list_jobs(DAY) == sorted(
            _V0_ROWS, key=lambda r: (r.key.job, r.key.batch or "")
        )
        assert store.get_record("performance", "2026-11-19") == {"r": 1}
        assert store.list_attempts(DAY) == _expected_backfill()
        # the next attempt of a migrated unit is numbered after the one the old row told of
        journal = Journal(store, who=(99, "host"))
        journal.fail(JobKey("trading", DAY), T + dt.timedelta(hours=6), "boom")
        later = T + dt.timedelta(hours=7)
        journal.start(JobKey("trading", DAY), later, note="retry")
        numbers = [(a.number, a.outcome) for a in store.get_attempts(JobKey("trading", DAY))]
        assert numbers == [(2, AttemptOutcome.CRASHED), (3, AttemptOutcome.RUNNING)]
    finally:
        store.close()
    again = SQLiteStorage(path)  # migrating twice changes nothing
    try:
        assert len(again.list_attempts(DAY)) == 5
    finally:
        again.close()


def test_a_version_0_journal_opened_read_only_is_untouched_but_shows_its_attempts(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "hantu_sched.sqlite3"
    _write_v0_journal(path)
    before = path.read_bytes()
    store = SQLiteStorage(path, read_only=True)
    try:
        assert store.list_attempts(DAY) == _expected_backfill()
        assert store.get_attempts(JobKey("trading", DAY)) == [_expected_backfill()[-1]]
        assert store.get_attempts(JobKey("market_close", DAY)) == []
    finally:
        store.close()
    assert path.read_bytes() == before
