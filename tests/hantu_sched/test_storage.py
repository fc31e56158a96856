"""Storage contract suite, parametrised over MemoryStorage and SQLiteStorage."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from hantu_sched import KST, JobKey, JobRecord, JobState, MemoryStorage, SQLiteStorage, Storage

DAY = dt.date(2026, 11, 19)
T = dt.datetime(2026, 11, 19, 6, 0, tzinfo=KST)


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Storage]:
    store: Storage = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path)
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
