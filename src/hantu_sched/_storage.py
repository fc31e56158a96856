"""Durable state behind one interface: the run journal, selection results, watchlists and small
keyed records (end-of-day balance snapshots, performance reports, ...).

Contract (tested against every implementation by one suite):

- Payloads are JSON values; what you get back equals ``json.loads(json.dumps(payload))`` and is
  a fresh copy (mutating it never changes the store). Non-JSON payloads raise ``TypeError``.
- ``put_*`` is an upsert; once it returns, the write survives a crash of the process
  (:class:`SQLiteStorage` commits each call in its own transaction, WAL, ``synchronous=FULL``).
- Reads of absent keys return ``None`` (or an empty collection), never raise.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sqlite3
import threading
from typing import Any, Protocol, runtime_checkable

from ._journal import JobKey, JobRecord

__all__ = ["MemoryStorage", "SQLiteStorage", "Storage"]

DEFAULT_DB_NAME = "hantu_sched.sqlite3"


def _dump(payload: Any) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload is not JSON-serialisable: {exc}") from exc


def _order(record: JobRecord) -> tuple[str, str]:
    return (record.key.job, record.key.batch or "")


@runtime_checkable
class Storage(Protocol):
    """The scheduler's persistent state. See the module docstring for the contract."""

    def get_job(self, key: JobKey) -> JobRecord | None: ...

    def put_job(self, record: JobRecord) -> None: ...

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]: ...

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None: ...

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]: ...

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None: ...

    def get_watchlist(self, trading_date: dt.date) -> Any | None: ...

    def put_record(self, kind: str, key: str, payload: Any) -> None: ...

    def get_record(self, kind: str, key: str) -> Any | None: ...

    def list_records(self, kind: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class MemoryStorage:
    """In-process storage for tests; payloads are stored as JSON text, like SQLite's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[JobKey, str] = {}
        self._selection: dict[tuple[dt.date, str], str] = {}
        self._watchlist: dict[dt.date, str] = {}
        self._records: dict[tuple[str, str], str] = {}

    def get_job(self, key: JobKey) -> JobRecord | None:
        with self._lock:
            text = self._jobs.get(key)
        return None if text is None else JobRecord.from_dict(json.loads(text))

    def put_job(self, record: JobRecord) -> None:
        text = _dump(record.to_dict())
        with self._lock:
            self._jobs[record.key] = text

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]:
        with self._lock:
            rows = [t for k, t in self._jobs.items() if k.trading_date == trading_date]
        return sorted((JobRecord.from_dict(json.loads(t)) for t in rows), key=_order)

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            self._selection[(trading_date, batch_id)] = text

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]:
        with self._lock:
            items = [(b, t) for (d, b), t in self._selection.items() if d == trading_date]
        return {b: json.loads(t) for b, t in sorted(items)}

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            self._watchlist[trading_date] = text

    def get_watchlist(self, trading_date: dt.date) -> Any | None:
        with self._lock:
            text = self._watchlist.get(trading_date)
        return None if text is None else json.loads(text)

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            self._records[(kind, key)] = text

    def get_record(self, kind: str, key: str) -> Any | None:
        with self._lock:
            text = self._records.get((kind, key))
        return None if text is None else json.loads(text)

    def list_records(self, kind: str) -> dict[str, Any]:
        with self._lock:
            items = [(k, t) for (c, k), t in self._records.items() if c == kind]
        return {k: json.loads(t) for k, t in sorted(items)}

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStorage(jobs={len(self._jobs)})"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT NOT NULL, trading_date TEXT NOT NULL, batch TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job, trading_date, batch));
CREATE TABLE IF NOT EXISTS selection (
    trading_date TEXT NOT NULL, batch_id TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (trading_date, batch_id));
CREATE TABLE IF NOT EXISTS watchlist (
    trading_date TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (kind, key));
"""


class SQLiteStorage:
    """The embedded default: one SQLite file (WAL journal, ``synchronous=FULL``).

    *path* is the database file, or a directory in which ``hantu_sched.sqlite3`` is used. Each
    write is its own committed transaction. Safe to share between threads of one process; for
    several processes SQLite's own locking applies (the scheduler holds a per-directory lock).
    """

    def __init__(self, path: str | pathlib.Path) -> None:
        target = pathlib.Path(path)
        if target.is_dir():
            target = target / DEFAULT_DB_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(target), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(sql, params)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def get_job(self, key: JobKey) -> JobRecord | None:
        rows = self._read(
            "SELECT data FROM jobs WHERE job=? AND trading_date=? AND batch=?",
            (key.job, key.trading_date.isoformat(), key.batch or ""),
        )
        return JobRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def put_job(self, record: JobRecord) -> None:
        key = record.key
        self._write(
            "INSERT OR REPLACE INTO jobs (job, trading_date, batch, data) VALUES (?, ?, ?, ?)",
            (key.job, key.trading_date.isoformat(), key.batch or "", _dump(record.to_dict())),
        )

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]:
        rows = self._read(
            "SELECT data FROM jobs WHERE trading_date=? ORDER BY job, batch",
            (trading_date.isoformat(),),
        )
        return sorted((JobRecord.from_dict(json.loads(r[0])) for r in rows), key=_order)

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None:
        self._write(
            "INSERT OR REPLACE INTO selection VALUES (?, ?, ?)",
            (trading_date.isoformat(), batch_id, _dump(payload)),
        )

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]:
        rows = self._read(
            "SELECT batch_id, payload FROM selection WHERE trading_date=? ORDER BY batch_id",
            (trading_date.isoformat(),),
        )
        return {str(b): json.loads(p) for b, p in rows}

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None:
        self._write(
            "INSERT OR REPLACE INTO watchlist VALUES (?, ?)",
            (trading_date.isoformat(), _dump(payload)),
        )

    def get_watchlist(self, trading_date: dt.date) -> Any | None:
        rows = self._read(
            "SELECT payload FROM watchlist WHERE trading_date=?", (trading_date.isoformat(),)
        )
        return json.loads(rows[0][0]) if rows else None

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        self._write("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (kind, key, _dump(payload)))

    def get_record(self, kind: str, key: str) -> Any | None:
        rows = self._read("SELECT payload FROM records WHERE kind=? AND key=?", (kind, key))
        return json.loads(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> dict[str, Any]:
        rows = self._read("SELECT key, payload FROM records WHERE kind=? ORDER BY key", (kind,))
        return {str(k): json.loads(p) for k, p in rows}

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"
