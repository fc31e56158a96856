"""Durable state behind one interface: the run journal, selection results, watchlists and small
keyed records (end-of-day balance snapshots, performance reports, ...).

Contract (tested against every implementation by one suite):

- Payloads are JSON values; what you get back equals ``json.loads(json.dumps(payload))`` and is
  a fresh copy (mutating it never changes the store). Non-JSON payloads raise ``TypeError``.
- ``put_*`` is an upsert; once it returns, the write survives a crash of the process
  (:class:`SQLiteStorage` commits each call in its own transaction, WAL, ``synchronous=FULL``).
- Reads of absent keys return ``None`` (or an empty collection), never raise.
- History: ``put_job(record, attempts)`` upserts the unit's row and each
  :class:`~hantu_sched._journal.Attempt` (keyed by unit and ``number``) in one transaction:
  both or neither survive a crash, and a deposed writer writes neither.
  ``get_attempts(key)`` is the unit's attempts by ``number``; ``list_attempts(day)`` is every
  attempt of that trading day ordered by (job, batch with ``None`` first, number).
- Schema versions (SQLite): ``PRAGMA user_version`` 0 is the one-row journal, 1 adds the
  ``attempts`` table. Opening a version-0 file for writing migrates it in one transaction,
  back-filling each started row's last attempt (:func:`~hantu_sched._journal.attempt_from_record`);
  opened read-only, it is not changed and its attempts are derived the same way on read.
- A store that cannot be opened or read (a corrupt or unreadable SQLite file, a read-only
  directory) raises :class:`StorageError` with one printable line, never a raw ``sqlite3`` error;
  :class:`CorruptJournalError` when the file is not a usable database.

Fencing (owner epochs). ``claim(owner)`` makes this storage object the data's only writer: it
increments a persisted *owner epoch* and remembers the new value. From then on every ``put_*``
checks, in the same transaction as the write, that the persisted epoch is still the remembered
one; if another instance claimed since, the write is refused with :class:`DeposedError` and
nothing is written. A storage object that never claimed writes unfenced (tests, tools).
``check_owner()`` is the same check without a write. The idea carries over to a shared database
(e.g. PostgreSQL with leases): the claim is an ``UPDATE owner SET epoch = epoch + 1`` under a
lease, and every write is conditional on ``epoch = :mine`` in its transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import pathlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ._journal import Attempt, AttemptOutcome, JobKey, JobRecord, attempt_from_record

__all__ = [
    "CorruptJournalError",
    "DeposedError",
    "MemoryStorage",
    "Owner",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "set_aside_journal",
]

DEFAULT_DB_NAME = "hantu_sched.sqlite3"

#: The SQLite schema version this code writes (``PRAGMA user_version``).
SCHEMA_VERSION = 1


class StorageError(RuntimeError):
    """The store cannot be opened, read or written: one printable line, no traceback needed."""


class CorruptJournalError(StorageError):
    """The SQLite file is not a usable database (corrupt, truncated, not SQLite at all)."""

    def __init__(self, path: pathlib.Path, detail: str) -> None:
        super().__init__(
            f"journal {path} is corrupt ({detail}); it is kept as is: move it aside with "
            "`hantu_sched run --set-aside-corrupt-journal` (recovery then rebuilds the day from "
            "the batch files) or restore it from a backup"
        )
        self.path = path


class DeposedError(StorageError):
    """Another scheduler instance claimed the data after this one: this instance must stop
    without running or sending anything more. Nothing was written."""


@attrs.frozen
class Owner:
    """The persisted owner claim: ``epoch`` increments with every claim."""

    epoch: int
    owner: str
    claimed_at: str


def _dump(payload: Any) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload is not JSON-serialisable: {exc}") from exc


def _order(record: JobRecord) -> tuple[str, str]:
    return (record.key.job, record.key.batch or "")


def _attempt_order(attempt: Attempt) -> tuple[str, str, int]:
    return (attempt.key.job, attempt.key.batch or "", attempt.number)


def _fence(mine: int | None, current: Owner | None) -> None:
    """Raise :class:`DeposedError` if this object claimed epoch *mine* (``None``: it never
    claimed, nothing to check) and the persisted claim *current* is no longer that epoch."""
    if mine is None or (current is not None and current.epoch == mine):
        return
    who = "nobody" if current is None else f"{current.owner} at {current.claimed_at}"
    now = "no claim" if current is None else f"epoch {current.epoch}"
    raise DeposedError(
        f"this scheduler (owner epoch {mine}) was deposed: the data directory was claimed by "
        f"{who} ({now}); stopping without running or sending anything more"
    )


@runtime_checkable
class Storage(Protocol):
    """The scheduler's persistent state. See the module docstring for the contract."""

    def get_job(self, key: JobKey) -> JobRecord | None: ...

    def put_job(self, record: JobRecord, attempts: Sequence[Attempt] = ()) -> None: ...

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]: ...

    def get_attempts(self, key: JobKey) -> list[Attempt]: ...

    def list_attempts(self, trading_date: dt.date) -> list[Attempt]: ...

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None: ...

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]: ...

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None: ...

    def get_watchlist(self, trading_date: dt.date) -> Any | None: ...

    def put_record(self, kind: str, key: str, payload: Any) -> None: ...

    def get_record(self, kind: str, key: str) -> Any | None: ...

    def list_records(self, kind: str) -> dict[str, Any]: ...

    def claim(self, owner: str, now: dt.datetime) -> int: ...

    def check_owner(self) -> None: ...

    def owner(self) -> Owner | None: ...

    def close(self) -> None: ...


class MemoryStorage:
    """In-process storage for tests; payloads are stored as JSON text, like SQLite's.

    The owner epoch lives in the object, so a claim on it fences nothing but itself: one
    process's objects share nothing. :class:`SQLiteStorage` objects on one file fence each other.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[JobKey, str] = {}
        self._attempts: dict[tuple[JobKey, int], str] = {}
        self._selection: dict[tuple[dt.date, str], str] = {}
        self._watchlist: dict[dt.date, str] = {}
        self._records: dict[tuple[str, str], str] = {}
        self._owner: Owner | None = None
        self._mine: int | None = None

    def claim(self, owner: str, now: dt.datetime) -> int:
        """Increment the owner epoch and remember it (see the module docstring)."""
        with self._lock:
            epoch = (self._owner.epoch if self._owner else 0) + 1
            self._owner = Owner(epoch, owner, now.isoformat())
            self._mine = epoch
        return epoch

    def owner(self) -> Owner | None:
        with self._lock:
            return self._owner

    def check_owner(self) -> None:
        with self._lock:
            _fence(self._mine, self._owner)

    def get_job(self, key: JobKey) -> JobRecord | None:
        with self._lock:
            text = self._jobs.get(key)
        return None if text is None else JobRecord.from_dict(json.loads(text))

    def put_job(self, record: JobRecord, attempts: Sequence[Attempt] = ()) -> None:
        text = _dump(record.to_dict())
        rows = {(a.key, a.number): _dump(a.to_dict()) for a in attempts}
        with self._lock:
            _fence(self._mine, self._owner)
            self._jobs[record.key] = text
            self._attempts.update(rows)

    def get_attempts(self, key: JobKey) -> list[Attempt]:
        with self._lock:
            rows = [(n, t) for (k, n), t in self._attempts.items() if k == key]
        return [Attempt.from_dict(json.loads(t)) for _n, t in sorted(rows)]

    def list_attempts(self, trading_date: dt.date) -> list[Attempt]:
        with self._lock:
            rows = [t for (k, _n), t in self._attempts.items() if k.trading_date == trading_date]
        return sorted((Attempt.from_dict(json.loads(t)) for t in rows), key=_attempt_order)

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]:
        with self._lock:
            rows = [t for k, t in self._jobs.items() if k.trading_date == trading_date]
        return sorted((JobRecord.from_dict(json.loads(t)) for t in rows), key=_order)

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            _fence(self._mine, self._owner)
            self._selection[(trading_date, batch_id)] = text

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]:
        with self._lock:
            items = [(b, t) for (d, b), t in self._selection.items() if d == trading_date]
        return {b: json.loads(t) for b, t in sorted(items)}

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            _fence(self._mine, self._owner)
            self._watchlist[trading_date] = text

    def get_watchlist(self, trading_date: dt.date) -> Any | None:
        with self._lock:
            text = self._watchlist.get(trading_date)
        return None if text is None else json.loads(text)

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        text = _dump(payload)
        with self._lock:
            _fence(self._mine, self._owner)
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
CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL, owner TEXT NOT NULL,
    claimed_at TEXT NOT NULL);
"""

#: Version 1: the attempt history (one row per attempt; ``batch`` is '' for an unbatched unit,
#: times are ISO-8601 with offset, ``pid``/``host`` NULL only for migrated rows).
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS attempts (
    trading_date TEXT NOT NULL, job TEXT NOT NULL, batch TEXT NOT NULL, number INTEGER NOT NULL,
    kind TEXT NOT NULL, outcome TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    error TEXT, pid INTEGER, host TEXT, decision TEXT,
    PRIMARY KEY (trading_date, job, batch, number));
CREATE INDEX IF NOT EXISTS jobs_by_date ON jobs (trading_date);
"""

_INSERT_ATTEMPT = (
    "INSERT OR REPLACE INTO attempts (trading_date, job, batch, number, kind, outcome, "
    "started_at, finished_at, error, pid, host, decision) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ATTEMPTS = (
    "SELECT trading_date, job, batch, number, kind, outcome, started_at, finished_at, error, "
    "pid, host, decision FROM attempts "
)


def _attempt_row(attempt: Attempt) -> tuple[Any, ...]:
    key = attempt.key
    return (
        key.trading_date.isoformat(),
        key.job,
        key.batch or "",
        attempt.number,
        attempt.kind,
        attempt.outcome.value,
        attempt.started_at.isoformat(),
        None if attempt.finished_at is None else attempt.finished_at.isoformat(),
        attempt.error,
        attempt.pid,
        attempt.host,
        attempt.decision,
    )


def _attempt_of(row: tuple[Any, ...]) -> Attempt:
    day, job, batch, number, kind, outcome, started, finished, error, pid, host, decision = row
    return Attempt(
        key=JobKey(str(job), dt.date.fromisoformat(str(day)), str(batch) or None),
        number=int(number),
        kind=str(kind),
        started_at=dt.datetime.fromisoformat(str(started)),
        outcome=AttemptOutcome(outcome),
        finished_at=None if finished is None else dt.datetime.fromisoformat(str(finished)),
        error=error,
        pid=None if pid is None else int(pid),
        host=host,
        decision=decision,
    )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a writable journal to :data:`SCHEMA_VERSION` in one transaction (idempotent)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < 1:
            for statement in _SCHEMA_V1.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for (data,) in conn.execute("SELECT data FROM jobs").fetchall():
                attempt = attempt_from_record(JobRecord.from_dict(json.loads(data)))
                if attempt is not None:
                    conn.execute(_INSERT_ATTEMPT, _attempt_row(attempt))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


#: sqlite3 messages that mean "this file is not a usable database".
_CORRUPT_MARKERS = ("not a database", "malformed", "disk image", "file is encrypted")


def _storage_error(path: pathlib.Path, exc: sqlite3.Error) -> StorageError:
    detail = str(exc) or type(exc).__name__
    if any(marker in detail.lower() for marker in _CORRUPT_MARKERS):
        return CorruptJournalError(path, detail)
    hint = ""
    if "readonly" in detail.lower() or "unable to open" in detail.lower():
        hint = " (is the data directory writable by this user?)"
    return StorageError(f"journal {path}: {detail}{hint}")


class SQLiteStorage:
    """The embedded default: one SQLite file (WAL journal, ``synchronous=FULL``).

    *path* is the database file, or a directory in which ``hantu_sched.sqlite3`` is used. Each
    write is its own committed transaction. Safe to share between threads of one process; for
    several processes SQLite's own locking applies (the scheduler holds a per-directory lock and
    fences writes with :meth:`claim`). ``read_only=True`` opens an existing file without
    creating or changing anything (for ``status``, ``recover --dry-run`` and ``doctor``); its
    writes raise :class:`StorageError`. Open failures raise :class:`StorageError` /
    :class:`CorruptJournalError`.
    """

    def __init__(self, path: str | pathlib.Path, *, read_only: bool = False) -> None:
        target = pathlib.Path(path)
        if target.is_dir():
            target = target / DEFAULT_DB_NAME
        self.path = target
        self.read_only = read_only
        self._lock = threading.Lock()
        self._mine: int | None = None
        try:
            self._conn = self._connect(target, read_only)
        except sqlite3.Error as exc:
            raise _storage_error(target, exc) from None
        except OSError as exc:
            raise StorageError(f"journal {target}: {exc.strerror or exc}") from None

    @staticmethod
    def _connect(target: pathlib.Path, read_only: bool) -> sqlite3.Connection:
        if read_only:
            if not target.exists():
                raise sqlite3.OperationalError("unable to open database file (it does not exist)")
            uri = f"{target.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            except sqlite3.OperationalError:
                conn.close()  # a WAL file in a read-only directory: read the file as immutable
                uri = f"{target.resolve().as_uri()}?immutable=1"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            return conn
        target.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(target), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from None

    def _owner_row(self) -> Owner | None:
        try:
            rows = self._conn.execute("SELECT epoch, owner, claimed_at FROM owner").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None  # a journal written before owner epochs existed
            raise
        return Owner(int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    def _write(self, sql: str, params: tuple[Any, ...], *more: tuple[str, tuple[Any, ...]]) -> None:
        """Run *sql* (and each of *more*) in one fenced transaction."""
        if self.read_only:
            raise StorageError(f"journal {self.path} is open read-only")
        with self._lock, self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if self._mine is not None:
                    _fence(self._mine, self._owner_row())
                self._conn.execute(sql, params)
                for other_sql, other_params in more:
                    self._conn.execute(other_sql, other_params)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock, self._errors():
            return list(self._conn.execute(sql, params).fetchall())

    def claim(self, owner: str, now: dt.datetime) -> int:
        """Increment the persisted owner epoch and remember it: from now on a write fails with
        :class:`DeposedError` once another object claims (see the module docstring)."""
        if self.read_only:
            raise StorageError(f"journal {self.path} is open read-only")
        with self._lock, self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                current = self._owner_row()
                epoch = (current.epoch if current else 0) + 1
                self._conn.execute(
                    "INSERT OR REPLACE INTO owner (id, epoch, owner, claimed_at) "
                    "VALUES (1, ?, ?, ?)",
                    (epoch, owner, now.isoformat()),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._mine = epoch
        return epoch

    def owner(self) -> Owner | None:
        """The persisted claim, if any."""
        with self._lock, self._errors():
            return self._owner_row()

    def check_owner(self) -> None:
        """Raise :class:`DeposedError` if this object claimed and another claimed since."""
        if self._mine is None:
            return
        _fence(self._mine, self.owner())

    def integrity_problem(self) -> str | None:
        """``PRAGMA quick_check``'s complaint, or ``None`` if the file is sound."""
        with self._lock:
            try:
                rows = self._conn.execute("PRAGMA quick_check").fetchall()
            except sqlite3.Error as exc:
                return str(exc) or type(exc).__name__
        text = "; ".join(str(r[0]) for r in rows[:3])
        return None if text == "ok" else text

    def get_job(self, key: JobKey) -> JobRecord | None:
        rows = self._read(
            "SELECT data FROM jobs WHERE job=? AND trading_date=? AND batch=?",
            (key.job, key.trading_date.isoformat(), key.batch or ""),
        )
        return JobRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def put_job(self, record: JobRecord, attempts: Sequence[Attempt] = ()) -> None:
        key = record.key
        self._write(
            "INSERT OR REPLACE INTO jobs (job, trading_date, batch, data) VALUES (?, ?, ?, ?)",
            (key.job, key.trading_date.isoformat(), key.batch or "", _dump(record.to_dict())),
            *((_INSERT_ATTEMPT, _attempt_row(a)) for a in attempts),
        )

    def _has_attempts_table(self) -> bool:
        rows = self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='attempts'", ())
        return bool(rows)

    def _derived_attempts(self, records: list[JobRecord]) -> list[Attempt]:
        """A version-0 journal opened read-only: the attempts its rows still tell of."""
        return [a for a in map(attempt_from_record, records) if a is not None]

    def get_attempts(self, key: JobKey) -> list[Attempt]:
        if not self._has_attempts_table():
            record = self.get_job(key)
            return self._derived_attempts([record] if record else [])
        rows = self._read(
            _SELECT_ATTEMPTS + "WHERE trading_date=? AND job=? AND batch=? ORDER BY number",
            (key.trading_date.isoformat(), key.job, key.batch or ""),
        )
        return [_attempt_of(r) for r in rows]

    def list_attempts(self, trading_date: dt.date) -> list[Attempt]:
        if not self._has_attempts_table():
            return self._derived_attempts(self.list_jobs(trading_date))
        rows = self._read(
            _SELECT_ATTEMPTS + "WHERE trading_date=? ORDER BY job, batch, number",
            (trading_date.isoformat(),),
        )
        return [_attempt_of(r) for r in rows]

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


def set_aside_journal(path: pathlib.Path, now: dt.datetime) -> pathlib.Path:
    """Rename the journal *path* (and its ``-wal``/``-shm`` companions) to
    ``<name>.<UTC timestamp>.corrupt`` so a fresh journal can be created; never deletes or
    overwrites anything. Returns the new name of the main file."""
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{stamp}.corrupt")
    if target.exists():
        raise StorageError(f"{target} already exists; not overwriting it")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target
