"""PostgreSQL storage: the journal, attempts, selections, watchlists, records *and the batch
documents* of one deployment in a database that several hosts reach, plus the deployment's
leadership lease.

Selected by ``storage = "postgresql://user@host:port/db"`` (``HANTU_STORAGE``); ``deployment``
(``HANTU_DEPLOYMENT``) names the scheduler the hosts share: every row carries it, so one
database can hold several deployments. Needs the ``postgresql`` extra (``psycopg`` 3).

Contract: the same as :class:`~hantu_sched._storage.SQLiteStorage` (tested by one suite); each
``put_*`` is one committed transaction. Plus:

**Leadership: a lease row with fencing tokens.** Table ``lease`` holds, per deployment, the
``epoch`` (the fencing token), the holder, when it was acquired and renewed and ``expires_at``.
:meth:`PostgresStorage.claim` takes the lease only if nobody holds it, it expired, or this very
object holds it; otherwise it raises :class:`LeaseHeldError` (a standby waits and retries). A
takeover increments the epoch and records the takeover. :meth:`PostgresStorage.renew` extends the
lease (the scheduler renews every third of the lease) only while this object's epoch is current
and unexpired. Every write locks the lease row ``FOR SHARE`` in its own transaction and is
refused with :class:`~hantu_sched._storage.DeposedError` unless the epoch is still this object's
and the lease has not expired on the writer's clock; so a paused leader that wakes up after a
takeover, or a leader cut off from the database, cannot write (and therefore cannot record an
order intent, which comes before every send). :meth:`PostgresStorage.check_owner` answers
without the database: deposed once a renewal found another epoch, or once two thirds of the lease
passed since the start of the last successful renewal (the *local validity*): a leader that
loses the database stops acting a third of the lease before any standby may take over.

Times: the lease is measured on the injected clock (production: the system clock, so the hosts'
clocks must agree to within a third of the lease; ``doctor`` already checks the clock against
KIS). The stored ``expires_at`` is Unix seconds.

**Batch documents in the database** (:class:`DatabaseBatchStore`): the selection batches are
stored in table ``batch_files`` instead of ``<data_dir>/daily_selection``, byte for byte the
document a file would hold, classified by the same rule
(:func:`~hantu_sched._batch.classify_batch`: trading date and batch id inside), so a standby on
another host sees the evidence the leader left.

**Schema versions** (table ``hantu_schema``): version 1 is the one-row journal, the lease and the
batch documents; version 2 adds the attempt history and back-fills one attempt per started job
row (:func:`~hantu_sched._journal.attempt_from_record`). Opening for writing applies what is
missing, each version in one transaction under an advisory lock (two hosts starting at once
migrate once); a database newer than this code is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict

from ._batch import BatchStore, validate_batch_id
from ._journal import Attempt, JobKey, JobRecord, attempt_from_record
from ._storage import (
    DeposedError,
    Owner,
    StorageError,
    _attempt_of,
    _attempt_order,
    _attempt_row,
    _dump,
    _order,
)

__all__ = [
    "DEFAULT_LEASE_S",
    "SCHEMA_VERSION",
    "DatabaseBatchStore",
    "Lease",
    "LeaseHeldError",
    "PostgresStorage",
    "apply_migrations",
    "describe_url",
    "is_postgres_url",
]

#: The schema version this code writes.
SCHEMA_VERSION: Final = 2
#: The default lease (seconds): a standby takes over at most this long after the leader died.
DEFAULT_LEASE_S: Final = 30.0
#: Advisory-lock key under which migrations run (any constant; "hantu" in ASCII).
_MIGRATION_LOCK: Final = 0x68616E7475

_V1: Final = (
    """CREATE TABLE jobs (
        deployment TEXT NOT NULL, trading_date TEXT NOT NULL, job TEXT NOT NULL,
        batch TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (deployment, trading_date, job, batch))""",
    """CREATE TABLE selection (
        deployment TEXT NOT NULL, trading_date TEXT NOT NULL, batch_id TEXT NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (deployment, trading_date, batch_id))""",
    """CREATE TABLE watchlist (
        deployment TEXT NOT NULL, trading_date TEXT NOT NULL, payload TEXT NOT NULL,
        PRIMARY KEY (deployment, trading_date))""",
    """CREATE TABLE records (
        deployment TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,
        PRIMARY KEY (deployment, kind, key))""",
    """CREATE TABLE batch_files (
        deployment TEXT NOT NULL, batch_id TEXT NOT NULL, content BYTEA NOT NULL,
        PRIMARY KEY (deployment, batch_id))""",
    """CREATE TABLE lease (
        deployment TEXT PRIMARY KEY, epoch BIGINT NOT NULL, holder TEXT NOT NULL,
        acquired_at TEXT NOT NULL, renewed_at TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL, last_takeover TEXT)""",
)
_V2: Final = (
    """CREATE TABLE attempts (
        deployment TEXT NOT NULL, trading_date TEXT NOT NULL, job TEXT NOT NULL,
        batch TEXT NOT NULL, number INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, error TEXT, pid INTEGER, host TEXT,
        decision TEXT, PRIMARY KEY (deployment, trading_date, job, batch, number))""",
)

_ATTEMPT_COLUMNS: Final = (
    "trading_date, job, batch, number, kind, outcome, started_at, finished_at, error, pid, "
    "host, decision"
)
_UPSERT_ATTEMPT: Final = (
    f"INSERT INTO attempts (deployment, {_ATTEMPT_COLUMNS}) "  # noqa: S608 - constants only
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (deployment, trading_date, job, batch, number) DO UPDATE SET "
    "kind = EXCLUDED.kind, outcome = EXCLUDED.outcome, started_at = EXCLUDED.started_at, "
    "finished_at = EXCLUDED.finished_at, error = EXCLUDED.error, pid = EXCLUDED.pid, "
    "host = EXCLUDED.host, decision = EXCLUDED.decision"
)

_Conn = psycopg.Connection[tuple[Any, ...]]


def _backfill_attempts(conn: _Conn) -> None:
    """Version 2's data step: one attempt per started job row (every deployment)."""
    rows = conn.execute("SELECT deployment, data FROM jobs").fetchall()
    for deployment, data in rows:
        attempt = attempt_from_record(JobRecord.from_dict(json.loads(data)))
        if attempt is not None:
            conn.execute(
                f"INSERT INTO attempts (deployment, {_ATTEMPT_COLUMNS}) VALUES (%s, %s, %s, %s, "  # noqa: S608
                "%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (deployment, *_attempt_row(attempt)),
            )


#: version -> (what it adds, its DDL, its data step).
MIGRATIONS: Final[dict[int, tuple[str, tuple[str, ...], Callable[[_Conn], None] | None]]] = {
    1: ("journal, selections, watchlists, records, batch documents, lease", _V1, None),
    2: ("attempt history (back-filled from the journal rows)", _V2, _backfill_attempts),
}


def is_postgres_url(value: str | None) -> bool:
    """True if *value* selects PostgreSQL storage."""
    return bool(value) and str(value).startswith(("postgresql://", "postgres://"))


def describe_url(url: str) -> str:
    """``host:port/dbname`` of *url* (never its password), for messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable PostgreSQL URL"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def _schema_version(conn: _Conn) -> int:
    exists = conn.execute("SELECT to_regclass('hantu_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT max(version) FROM hantu_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def apply_migrations(conn: _Conn, upto: int = SCHEMA_VERSION) -> list[int]:
    """Bring the database on *conn* (autocommit) to version *upto*: each missing version in one
    transaction under an advisory lock. Returns the versions applied; a database newer than
    :data:`SCHEMA_VERSION` raises :class:`StorageError`."""
    applied: list[int] = []
    for version in range(1, upto + 1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hantu_schema (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = _schema_version(conn)
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"the database has schema version {current}, newer than this hantu_sched "
                    f"({SCHEMA_VERSION}): upgrade hantu_sched on this host"
                )
            if current >= version:
                continue
            description, ddl, data_step = MIGRATIONS[version]
            for statement in ddl:
                conn.execute(statement)
            if data_step is not None:
                data_step(conn)
            conn.execute(
                "INSERT INTO hantu_schema (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
    return applied


class LeaseHeldError(StorageError):
    """Another host leads the deployment and its lease has not expired: wait (a standby) or
    stop. ``lease`` is what the database says."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"deployment {lease.deployment!r} is led by {lease.holder} (epoch {lease.epoch}, "
            f"since {lease.acquired_at}; lease valid until {lease.expires_at_iso})"
        )
        self.lease = lease


@attrs.frozen
class Lease:
    """A deployment's lease row: who leads (``holder``, empty if nobody ever did), since when,
    its fencing ``epoch``, ``expires_at`` (Unix seconds) and the last takeover (a dict with
    ``at``, ``from``, ``to``, ``epoch``, ``previous_expired_at``; ``None`` if none)."""

    deployment: str
    epoch: int
    holder: str
    acquired_at: str
    renewed_at: str
    expires_at: float
    last_takeover: dict[str, Any] | None

    @property
    def expires_at_iso(self) -> str:
        return dt.datetime.fromtimestamp(self.expires_at, dt.UTC).isoformat(timespec="seconds")

    def held_at(self, now: dt.datetime) -> bool:
        """True if somebody holds an unexpired lease at *now*."""
        return bool(self.holder) and now.timestamp() < self.expires_at

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        """JSON for ``status``."""
        return {
            "deployment": self.deployment,
            "leader": self.holder or None,
            "epoch": self.epoch,
            "since": self.acquired_at or None,
            "renewed_at": self.renewed_at or None,
            "expires_at": self.expires_at_iso if self.holder else None,
            "held": self.held_at(now),
            "last_takeover": self.last_takeover,
        }


def _lease_of(row: tuple[Any, ...]) -> Lease:
    deployment, epoch, holder, acquired, renewed, expires, takeover = row
    return Lease(
        str(deployment),
        int(epoch),
        str(holder),
        str(acquired),
        str(renewed),
        float(expires),
        None if takeover is None else json.loads(takeover),
    )


class _Now:
    """The default clock: the system's, aware."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class PostgresStorage:
    """The scheduler's state in PostgreSQL (see the module docstring for the contract).

    Args:
        url: ``postgresql://user[:password]@host:port/dbname``.
        deployment: the name the hosts of one scheduler share.
        clock: what the lease is measured on (anything with an aware ``now()``; default the
            system clock).
        lease_s: the lease length in seconds.
        read_only: open without migrating or writing (``status``); writes raise
            :class:`StorageError`.
        connect_timeout_s: per connection attempt. Statements time out after 15 s and
            unacknowledged data after 10 s (TCP keepalives as well), so a database that went
            away is a :class:`StorageError` within seconds, never a hang.

    Safe to share between threads: data and lease statements use two connections, each under
    its own lock, so a renewal never waits behind a long read. A broken connection is a
    :class:`StorageError` for that call and is re-opened by the next.
    """

    def __init__(
        self,
        url: str,
        *,
        deployment: str = "default",
        clock: Any = None,
        lease_s: float = DEFAULT_LEASE_S,
        read_only: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if not deployment or len(deployment) > 64:
            raise ValueError("deployment must be 1-64 characters")
        if not lease_s > 0:
            raise ValueError("lease_s must be positive")
        self.url = url
        self.where = describe_url(url)
        self.deployment = deployment
        self.lease_s = float(lease_s)
        self.read_only = read_only
        self._clock = clock if clock is not None else _Now()
        self._timeout = max(1, round(connect_timeout_s))
        self._data_lock = threading.Lock()
        self._lease_lock = threading.Lock()
        self._conn: _Conn | None = None
        self._lease_conn: _Conn | None = None
        self._mine: int | None = None
        self._owner_name: str | None = None
        #: Local validity (Unix seconds on the clock) and why we stopped leading, if we did.
        self._valid_until = 0.0
        self._deposed: str | None = None
        try:
            self._open(read_only)
        except BaseException:
            self.close()
            raise

    def _open(self, read_only: bool) -> None:
        with self._data_lock, self._errors():
            conn = self._data()
            version = _schema_version(conn)
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"storage {self.where}: schema version {version} is newer than this "
                    f"hantu_sched ({SCHEMA_VERSION}); upgrade hantu_sched on this host"
                )
            if not read_only:
                apply_migrations(conn)
            elif version == 0:
                raise StorageError(
                    f"storage {self.where} has no hantu_sched schema yet (nothing ran here)"
                )
            self._version = _schema_version(conn)

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> _Conn:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=self._timeout,
            options="-c statement_timeout=15000 -c idle_in_transaction_session_timeout=30000",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=10000,
            application_name=f"hantu_sched {self.deployment}",
        )

    def _data(self) -> _Conn:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _leasing(self) -> _Conn:
        if self._lease_conn is None or self._lease_conn.closed:
            self._lease_conn = self._connect()
        return self._lease_conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn psycopg errors into one-line :class:`StorageError`; drop a broken connection
        (the next call re-opens it)."""
        try:
            yield
        except psycopg.Error as exc:
            for name in ("_conn", "_lease_conn"):
                conn: _Conn | None = getattr(self, name)
                if conn is not None and (conn.broken or conn.closed):
                    setattr(self, name, None)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"storage {self.where}: {detail}") from None

    # -- leadership --------------------------------------------------------------------------

    def _now_s(self) -> float:
        return float(self._clock.now().timestamp())

    def _lease_row(self, conn: _Conn, lock: str = "") -> Lease | None:
        row = conn.execute(
            "SELECT deployment, epoch, holder, acquired_at, renewed_at, expires_at, "  # noqa: S608
            f"last_takeover FROM lease WHERE deployment = %s {lock}",
            (self.deployment,),
        ).fetchone()
        return None if row is None else _lease_of(row)

    def lease(self) -> Lease | None:
        """The deployment's lease row (``None`` if nobody ever led)."""
        with self._lease_lock, self._errors():
            return self._lease_row(self._leasing())

    def claim(self, owner: str, now: dt.datetime) -> int:
        """Take the lease for *owner* at *now* (see the module docstring); the new epoch.
        Raises :class:`LeaseHeldError` if another holder's lease has not expired."""
        self._writable()
        with self._lease_lock, self._errors():
            conn = self._leasing()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO lease (deployment, epoch, holder, acquired_at, renewed_at, "
                    "expires_at) VALUES (%s, 0, '', '', '', 0) ON CONFLICT DO NOTHING",
                    (self.deployment,),
                )
                current = self._lease_row(conn, "FOR UPDATE")
                assert current is not None
                ours = self._mine is not None and current.epoch == self._mine
                if current.held_at(now) and not ours:
                    raise LeaseHeldError(current)
                epoch = current.epoch + 1
                takeover = current.last_takeover
                if current.holder and not ours:
                    takeover = {
                        "at": now.isoformat(),
                        "from": current.holder,
                        "to": owner,
                        "epoch": epoch,
                        "previous_expired_at": current.expires_at_iso,
                    }
                conn.execute(
                    "UPDATE lease SET epoch = %s, holder = %s, acquired_at = %s, "
                    "renewed_at = %s, expires_at = %s, last_takeover = %s WHERE deployment = %s",
                    (
                        epoch,
                        owner,
                        now.isoformat(),
                        now.isoformat(),
                        now.timestamp() + self.lease_s,
                        None if takeover is None else json.dumps(takeover, sort_keys=True),
                        self.deployment,
                    ),
                )
        self._mine, self._owner_name, self._deposed = epoch, owner, None
        self._valid_until = now.timestamp() + self.lease_s * 2 / 3
        return epoch

    def renew(self, now: dt.datetime) -> None:
        """Extend this object's lease from *now*. :class:`DeposedError` if the epoch moved on or
        the lease already expired (nothing changed); :class:`StorageError` if the database
        cannot be reached (the local validity then runs out on its own)."""
        if self._mine is None:
            raise StorageError("renew() before claim()")
        with self._lease_lock, self._errors():
            row = (
                self._leasing()
                .execute(
                    "UPDATE lease SET renewed_at = %s, expires_at = %s WHERE deployment = %s "
                    "AND epoch = %s AND expires_at > %s RETURNING epoch",
                    (
                        now.isoformat(),
                        now.timestamp() + self.lease_s,
                        self.deployment,
                        self._mine,
                        now.timestamp(),
                    ),
                )
                .fetchone()
            )
        if row is None:
            self._deposed = self._deposed or (
                f"its lease (epoch {self._mine}) was lost: taken over or expired before renewal"
            )
            self.check_owner()
        self._valid_until = max(self._valid_until, now.timestamp() + self.lease_s * 2 / 3)

    def release(self) -> None:
        """Give the lease up at once (a clean stop): a standby may take over immediately."""
        if self._mine is None or self.read_only:
            return
        with self._lease_lock, self._errors():
            self._leasing().execute(
                "UPDATE lease SET expires_at = 0 WHERE deployment = %s AND epoch = %s",
                (self.deployment, self._mine),
            )
        self._deposed = "it released its lease"
        self._valid_until = 0.0

    def owner(self) -> Owner | None:
        """The current lease as an :class:`~hantu_sched._storage.Owner` claim."""
        lease = self.lease()
        if lease is None or not lease.holder:
            return None
        return Owner(lease.epoch, lease.holder, lease.acquired_at)

    def check_owner(self) -> None:
        """Raise :class:`DeposedError` if this object claimed and no longer leads: a renewal
        found the lease gone, or its local validity ran out (no renewal for two thirds of the
        lease, e.g. the database is unreachable). Never touches the database."""
        if self._mine is None:
            return
        reason = self._deposed
        if reason is None and self._now_s() >= self._valid_until:
            reason = (
                f"its lease (epoch {self._mine}) was not renewed in time (the database cannot "
                "be reached?)"
            )
        if reason is not None:
            raise DeposedError(
                f"this scheduler ({self._owner_name}, epoch {self._mine}) is no longer the "
                f"leader of deployment {self.deployment!r}: {reason}; stopping without running "
                "or sending anything more"
            )

    def _fenced(self, conn: _Conn) -> None:
        """In a write transaction: refuse unless this object's epoch leads, unexpired."""
        if self._mine is None:
            return
        self.check_owner()
        lease = self._lease_row(conn, "FOR SHARE")
        now = self._now_s()
        if lease is None or lease.epoch != self._mine or now >= lease.expires_at:
            who = "nobody" if lease is None else f"{lease.holder} (epoch {lease.epoch})"
            self._deposed = f"the lease is held by {who} or expired"
            self.check_owner()

    # -- writes and reads --------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StorageError(f"storage {self.where} is open read-only")

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        self._writable()
        with self._data_lock, self._errors():
            conn = self._data()
            with conn.transaction():
                self._fenced(conn)
                for sql, params in statements:
                    conn.execute(sql, params)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._data_lock, self._errors():
            return list(self._data().execute(sql, params).fetchall())

    def get_job(self, key: JobKey) -> JobRecord | None:
        rows = self._read(
            "SELECT data FROM jobs WHERE deployment=%s AND trading_date=%s AND job=%s AND batch=%s",
            (self.deployment, key.trading_date.isoformat(), key.job, key.batch or ""),
        )
        return JobRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def put_job(self, record: JobRecord, attempts: Sequence[Attempt] = ()) -> None:
        key = record.key
        text = _dump(record.to_dict())
        rows = [(_UPSERT_ATTEMPT, (self.deployment, *_attempt_row(a))) for a in attempts]
        self._write(
            (
                "INSERT INTO jobs (deployment, trading_date, job, batch, data) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (deployment, trading_date, job, batch) "
                "DO UPDATE SET data = EXCLUDED.data",
                (self.deployment, key.trading_date.isoformat(), key.job, key.batch or "", text),
            ),
            *rows,
        )

    def list_jobs(self, trading_date: dt.date) -> list[JobRecord]:
        rows = self._read(
            "SELECT data FROM jobs WHERE deployment=%s AND trading_date=%s",
            (self.deployment, trading_date.isoformat()),
        )
        return sorted((JobRecord.from_dict(json.loads(r[0])) for r in rows), key=_order)

    def _has_attempts(self) -> bool:
        return self._version >= 2

    def get_attempts(self, key: JobKey) -> list[Attempt]:
        if not self._has_attempts():
            record = self.get_job(key)
            return [a for a in map(attempt_from_record, [record] if record else []) if a]
        rows = self._read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE deployment=%s AND trading_date=%s "  # noqa: S608
            "AND job=%s AND batch=%s ORDER BY number",
            (self.deployment, key.trading_date.isoformat(), key.job, key.batch or ""),
        )
        return [_attempt_of(r) for r in rows]

    def list_attempts(self, trading_date: dt.date) -> list[Attempt]:
        if not self._has_attempts():
            return [a for a in map(attempt_from_record, self.list_jobs(trading_date)) if a]
        rows = self._read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE deployment=%s AND trading_date=%s",  # noqa: S608
            (self.deployment, trading_date.isoformat()),
        )
        return sorted((_attempt_of(r) for r in rows), key=_attempt_order)

    def put_selection(self, trading_date: dt.date, batch_id: str, payload: Any) -> None:
        self._write(
            (
                "INSERT INTO selection (deployment, trading_date, batch_id, payload) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (deployment, trading_date, batch_id) "
                "DO UPDATE SET payload = EXCLUDED.payload",
                (self.deployment, trading_date.isoformat(), batch_id, _dump(payload)),
            )
        )

    def get_selection(self, trading_date: dt.date) -> dict[str, Any]:
        rows = self._read(
            "SELECT batch_id, payload FROM selection WHERE deployment=%s AND trading_date=%s",
            (self.deployment, trading_date.isoformat()),
        )
        return {str(b): json.loads(p) for b, p in sorted(rows)}

    def put_watchlist(self, trading_date: dt.date, payload: Any) -> None:
        self._write(
            (
                "INSERT INTO watchlist (deployment, trading_date, payload) VALUES (%s, %s, %s) "
                "ON CONFLICT (deployment, trading_date) DO UPDATE SET payload = EXCLUDED.payload",
                (self.deployment, trading_date.isoformat(), _dump(payload)),
            )
        )

    def get_watchlist(self, trading_date: dt.date) -> Any | None:
        rows = self._read(
            "SELECT payload FROM watchlist WHERE deployment=%s AND trading_date=%s",
            (self.deployment, trading_date.isoformat()),
        )
        return json.loads(rows[0][0]) if rows else None

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        self._write(
            (
                "INSERT INTO records (deployment, kind, key, payload) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (deployment, kind, key) DO UPDATE SET payload = EXCLUDED.payload",
                (self.deployment, kind, key, _dump(payload)),
            )
        )

    def get_record(self, kind: str, key: str) -> Any | None:
        rows = self._read(
            "SELECT payload FROM records WHERE deployment=%s AND kind=%s AND key=%s",
            (self.deployment, kind, key),
        )
        return json.loads(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> dict[str, Any]:
        rows = self._read(
            "SELECT key, payload FROM records WHERE deployment=%s AND kind=%s",
            (self.deployment, kind),
        )
        return {str(k): json.loads(p) for k, p in sorted(rows)}

    # -- batch documents ---------------------------------------------------------------------

    def batch_store(self, data_dir: str | os.PathLike[str]) -> DatabaseBatchStore:
        """The deployment's batch documents, kept in this database (see the module docstring)."""
        return DatabaseBatchStore(self, data_dir)

    def put_batch_document(self, batch_id: str, data: bytes) -> None:
        """Replace *batch_id*'s document (fenced like every write)."""
        self._write(
            (
                "INSERT INTO batch_files (deployment, batch_id, content) VALUES (%s, %s, %s) "
                "ON CONFLICT (deployment, batch_id) DO UPDATE SET content = EXCLUDED.content",
                (self.deployment, validate_batch_id(batch_id), data),
            )
        )

    def get_batch_document(self, batch_id: str) -> bytes | None:
        """*batch_id*'s document, or ``None``."""
        rows = self._read(
            "SELECT content FROM batch_files WHERE deployment=%s AND batch_id=%s",
            (self.deployment, validate_batch_id(batch_id)),
        )
        return bytes(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close both connections (idempotent); the lease is left to expire (see
        :meth:`release`)."""
        for lock, name in ((self._data_lock, "_conn"), (self._lease_lock, "_lease_conn")):
            with lock:
                conn: _Conn | None = getattr(self, name)
                setattr(self, name, None)
                if conn is not None:
                    conn.close()

    def __repr__(self) -> str:
        return f"PostgresStorage({self.where!r}, deployment={self.deployment!r})"


class DatabaseBatchStore(BatchStore):
    """Batch documents kept in the deployment's database instead of files (same documents,
    same evidence rules). :meth:`path` still names where the file would be, for messages."""

    def __init__(self, storage: PostgresStorage, data_dir: str | os.PathLike[str]) -> None:
        super().__init__(data_dir)
        self._storage = storage

    def store(self, batch_id: str, data: bytes) -> None:
        self._storage.put_batch_document(batch_id, data)

    def load(self, batch_id: str) -> bytes | None:
        """The stored document; an unreachable database raises :class:`StorageError` (never
        taken for a corrupt document: recovery must not re-run a batch for an outage)."""
        return self._storage.get_batch_document(batch_id)

    def __repr__(self) -> str:
        return f"DatabaseBatchStore({self._storage!r})"
