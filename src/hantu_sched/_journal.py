"""The run journal: one durable record per (job, trading day, batch).

States: ``pending`` (known, not started), ``running`` (written *before* the job starts its work),
``done``, ``failed`` (the last attempt raised; ``error`` says what), ``needs-reconcile`` (a job
with market side effects stopped without finishing: reconcile orders and positions before it
runs again), and ``skipped`` (a final decision not to run, with the reason in ``note``).
``attempts`` counts the times the job was marked running.

:class:`Journal` applies the transitions to a :class:`~hantu_sched._storage.Storage`; every
transition is one upsert, so a crash leaves either the old or the new record. A storage that was
claimed by a scheduler refuses the upsert with :class:`~hantu_sched._storage.DeposedError` once
another instance claimed the data (the check is in the write's own transaction).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._storage import Storage

__all__ = ["TERMINAL_STATES", "JobKey", "JobRecord", "JobState", "Journal"]


class JobState(enum.StrEnum):
    """A job's journal state (values are what is persisted)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NEEDS_RECONCILE = "needs-reconcile"
    SKIPPED = "skipped"


#: States after which a job never runs again that day.
TERMINAL_STATES = frozenset({JobState.DONE, JobState.SKIPPED})


@attrs.frozen
class JobKey:
    """Identifies one unit of work: *job* on *trading_date*, for *batch* (``None`` if unbatched)."""

    job: str
    trading_date: dt.date
    batch: str | None = None

    def __str__(self) -> str:
        suffix = "" if self.batch is None else f"[{self.batch}]"
        return f"{self.job}{suffix}@{self.trading_date.isoformat()}"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: Any) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(str(value))


@attrs.frozen
class JobRecord:
    """The journal row for :attr:`key`. Timestamps are aware; ``error`` and ``note`` are
    human-readable and must never contain secrets."""

    key: JobKey
    state: JobState
    attempts: int = 0
    updated_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (round-trips through :meth:`from_dict`)."""
        return {
            "job": self.key.job,
            "trading_date": self.key.trading_date.isoformat(),
            "batch": self.key.batch,
            "state": self.state.value,
            "attempts": self.attempts,
            "updated_at": _iso(self.updated_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            key=JobKey(
                str(data["job"]),
                dt.date.fromisoformat(str(data["trading_date"])),
                None if data.get("batch") is None else str(data["batch"]),
            ),
            state=JobState(data["state"]),
            attempts=int(data.get("attempts") or 0),
            updated_at=_parse(data.get("updated_at")),
            started_at=_parse(data.get("started_at")),
            finished_at=_parse(data.get("finished_at")),
            error=data.get("error"),
            note=data.get("note"),
        )


class Journal:
    """State transitions over a storage's journal table.

    Every method writes exactly one record and returns it. ``start`` must be called before a job
    does any work; a record left ``running`` after a crash is therefore proof that the work may
    have (partly) happened.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def get(self, key: JobKey) -> JobRecord | None:
        """The current record for *key*, if any."""
        return self._storage.get_job(key)

    def _write(self, key: JobKey, now: dt.datetime, **changes: Any) -> JobRecord:
        current = self._storage.get_job(key) or JobRecord(key, JobState.PENDING)
        record = attrs.evolve(current, updated_at=now, **changes)
        self._storage.put_job(record)
        return record

    def start(self, key: JobKey, now: dt.datetime, note: str | None = None) -> JobRecord:
        """Mark *key* running and count an attempt. Refuses a job already done or skipped."""
        current = self._storage.get_job(key)
        if current is not None and current.state in TERMINAL_STATES:
            raise ValueError(f"{key} is already {current.state.value}; it must not run again")
        attempts = (current.attempts if current else 0) + 1
        return self._write(
            key,
            now,
            state=JobState.RUNNING,
            attempts=attempts,
            started_at=now,
            finished_at=None,
            error=None,
            note=note,
        )

    def done(self, key: JobKey, now: dt.datetime, note: str | None = None) -> JobRecord:
        """Mark *key* finished successfully."""
        return self._write(key, now, state=JobState.DONE, finished_at=now, error=None, note=note)

    def fail(
        self, key: JobKey, now: dt.datetime, error: str, *, count_attempt: bool = False
    ) -> JobRecord:
        """Record a failed attempt with its error text (*count_attempt* for work that did not
        go through :meth:`start`, such as a reconcile)."""
        current = self._storage.get_job(key)
        attempts = (current.attempts if current else 0) + (1 if count_attempt else 0)
        return self._write(
            key, now, state=JobState.FAILED, finished_at=now, error=error, attempts=attempts
        )

    def needs_reconcile(self, key: JobKey, now: dt.datetime, note: str) -> JobRecord:
        """Record that a side-effecting run stopped without finishing."""
        return self._write(key, now, state=JobState.NEEDS_RECONCILE, note=note)

    def pending(self, key: JobKey, now: dt.datetime, note: str) -> JobRecord:
        """Return *key* to pending (after a reconcile, or an interrupted idempotent job)."""
        return self._write(key, now, state=JobState.PENDING, note=note)

    def skip(self, key: JobKey, now: dt.datetime, reason: str) -> JobRecord:
        """Record the final decision not to run *key* today, and why."""
        return self._write(key, now, state=JobState.SKIPPED, note=reason)

    def adopt(self, key: JobKey, now: dt.datetime, reason: str) -> JobRecord:
        """Record *key* as done on evidence (e.g. a valid batch file with no journal row)."""
        return self._write(key, now, state=JobState.DONE, finished_at=now, note=reason)
