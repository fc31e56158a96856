"""The run journal: one durable record per (job, trading day, batch).

States: ``pending`` (known, not started), ``running`` (written *before* the job starts its work),
``done``, ``failed`` (the last attempt raised; ``error`` says what), ``needs-reconcile`` (a job
with market side effects stopped without finishing: reconcile orders and positions before it
runs again), and ``skipped`` (a final decision not to run, with the reason in ``note``).
``attempts`` counts the times the job was marked running.

History: besides the one row per unit (its current state), every attempt is kept as an
:class:`Attempt` (run, resume or reconcile): when it started and ended, its outcome and error,
which process ran it (pid and host) and the recovery decision that started it. The row and the
attempt it opens or closes are written in one transaction (``Storage.put_job(record, attempts)``).
An attempt still ``running`` when a *later* process moves the unit on (recovery found it after a
crash) is closed as ``crashed``: its end is unknown, so ``finished_at`` stays ``None`` and
``error`` says who found it and when.

:class:`Journal` applies the transitions to a :class:`~hantu_sched._storage.Storage`; every
transition is one upsert, so a crash leaves either the old or the new record. A storage that was
claimed by a scheduler refuses the upsert with :class:`~hantu_sched._storage.DeposedError` once
another instance claimed the data (the check is in the write's own transaction).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._storage import Storage

__all__ = [
    "TERMINAL_STATES",
    "Attempt",
    "AttemptOutcome",
    "JobKey",
    "JobRecord",
    "JobState",
    "Journal",
    "attempt_from_record",
]


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


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended (values are what is persisted).

    ``running``: not ended (yet, or its process died and no recovery has looked since).
    ``done`` / ``failed``: the job (or reconciler) returned / raised. ``interrupted``: stopped
    on request before finishing, or (in a journal migrated from the one-row schema) ended
    without finishing in a way that was not recorded. ``crashed``: the process ended while it
    ran; a later recovery found it.
    """

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"


@attrs.frozen
class Attempt:
    """One execution of a unit of work (see the module docstring).

    *number* counts from 1 per unit across runs, resumes and reconciles. *kind* is the recovery
    action that started it (``run``, ``resume`` or ``reconcile``) and *decision* its reason.
    *pid* and *host* are ``None`` only for attempts migrated from a journal without history.
    """

    key: JobKey
    number: int
    kind: str
    started_at: dt.datetime
    outcome: AttemptOutcome = AttemptOutcome.RUNNING
    finished_at: dt.datetime | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    decision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (round-trips through :meth:`from_dict`)."""
        return {
            "job": self.key.job,
            "trading_date": self.key.trading_date.isoformat(),
            "batch": self.key.batch,
            "number": self.number,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "outcome": self.outcome.value,
            "error": self.error,
            "pid": self.pid,
            "host": self.host,
            "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """Inverse of :meth:`to_dict`."""
        started = _parse(data["started_at"])
        assert started is not None
        return cls(
            key=JobKey(
                str(data["job"]),
                dt.date.fromisoformat(str(data["trading_date"])),
                None if data.get("batch") is None else str(data["batch"]),
            ),
            number=int(data["number"]),
            kind=str(data["kind"]),
            started_at=started,
            outcome=AttemptOutcome(data["outcome"]),
            finished_at=_parse(data.get("finished_at")),
            error=data.get("error"),
            pid=None if data.get("pid") is None else int(data["pid"]),
            host=None if data.get("host") is None else str(data["host"]),
            decision=data.get("decision"),
        )


_MIGRATED_OUTCOME = {
    JobState.RUNNING: AttemptOutcome.RUNNING,
    JobState.DONE: AttemptOutcome.DONE,
    JobState.FAILED: AttemptOutcome.FAILED,
}


def attempt_from_record(record: JobRecord) -> Attempt | None:
    """The one attempt a journal row of the one-row schema still tells of (its last), or
    ``None`` if it never started. Used to migrate such journals (and to read them read-only):
    pid and host are unknown (``None``); a row left ``pending``/``needs-reconcile``/``skipped``
    after a start ended ``interrupted`` (crash or stop: the old schema did not say which)."""
    if record.started_at is None:
        return None
    outcome = _MIGRATED_OUTCOME.get(record.state, AttemptOutcome.INTERRUPTED)
    finished = (
        record.finished_at if outcome in (AttemptOutcome.DONE, AttemptOutcome.FAILED) else None
    )
    error = record.error
    if outcome is AttemptOutcome.INTERRUPTED:
        error = f"ended without finishing ({record.state.value}: {record.note or 'no note'})"
    return Attempt(
        key=record.key,
        number=max(record.attempts, 1),
        kind="run",
        started_at=record.started_at,
        outcome=outcome,
        finished_at=finished,
        error=error,
        decision=record.note if record.state in (JobState.RUNNING, JobState.FAILED) else None,
    )


def _who() -> tuple[int, str]:
    return os.getpid(), socket.gethostname()


class Journal:
    """State transitions over a storage's journal table, with the attempt history.

    Every method writes exactly one record (together with the attempt rows it opens or closes,
    in the same transaction) and returns it. ``start`` must be called before a job does any
    work; a record left ``running`` after a crash is therefore proof that the work may have
    (partly) happened.

    The journal remembers which attempts *it* opened: one it did not open that is still
    ``running`` when the unit moves on was left by a process that is gone, and is closed as
    ``crashed``. *who* is the ``(pid, host)`` recorded on attempts (default: this process).
    """

    def __init__(self, storage: Storage, *, who: tuple[int, str] | None = None) -> None:
        self._storage = storage
        self._pid, self._host = who if who is not None else _who()
        self._mine: set[tuple[JobKey, int]] = set()

    def get(self, key: JobKey) -> JobRecord | None:
        """The current record for *key*, if any."""
        return self._storage.get_job(key)

    def history(self, key: JobKey) -> list[Attempt]:
        """Every attempt of *key*, oldest first."""
        return self._storage.get_attempts(key)

    def _close_open(
        self,
        key: JobKey,
        now: dt.datetime,
        outcome: AttemptOutcome,
        error: str | None,
        history: Sequence[Attempt],
    ) -> list[Attempt]:
        """The last attempt closed (as *outcome* if this journal opened it, else as crashed),
        or nothing if it is not open."""
        if not history or history[-1].outcome is not AttemptOutcome.RUNNING:
            return []
        last = history[-1]
        if (key, last.number) in self._mine:
            return [attrs.evolve(last, outcome=outcome, finished_at=now, error=error)]
        ran_by = f"pid {last.pid} on {last.host}" if last.pid is not None else "its process"
        found = (
            f"{ran_by} ended while it ran; found by recovery at "
            f"{now.isoformat(timespec='seconds')} (pid {self._pid} on {self._host})"
        )
        return [attrs.evolve(last, outcome=AttemptOutcome.CRASHED, error=found)]

    def _write(
        self,
        key: JobKey,
        now: dt.datetime,
        closing: tuple[AttemptOutcome, str | None],
        *,
        opens: str | None = None,
        decision: str | None = None,
        history: Sequence[Attempt] | None = None,
        **changes: Any,
    ) -> JobRecord:
        """Write *key*'s record with *changes*, closing its open attempt as *closing* (outcome,
        error) and, with *opens*, opening a new attempt of that kind (*history*: the attempts
        if the caller read them already)."""
        current = self._storage.get_job(key) or JobRecord(key, JobState.PENDING)
        if history is None:
            history = self._storage.get_attempts(key)
        attempts = self._close_open(key, now, *closing, history)
        opened = None
        if opens is not None:
            number = (history[-1].number if history else 0) + 1
            opened = Attempt(
                key, number, opens, now, pid=self._pid, host=self._host, decision=decision
            )
            attempts.append(opened)
        record = attrs.evolve(current, updated_at=now, **changes)
        self._storage.put_job(record, attempts)
        if opened is not None:  # only once it is written
            self._mine.add((key, opened.number))
        return record

    def start(
        self, key: JobKey, now: dt.datetime, note: str | None = None, *, kind: str = "run"
    ) -> JobRecord:
        """Mark *key* running, count an attempt and open its history row (*kind* and *note*:
        the recovery decision). Refuses a job already done or skipped."""
        current = self._storage.get_job(key)
        if current is not None and current.state in TERMINAL_STATES:
            raise ValueError(f"{key} is already {current.state.value}; it must not run again")
        attempts = (current.attempts if current else 0) + 1
        return self._write(
            key,
            now,
            (AttemptOutcome.INTERRUPTED, "superseded by a new attempt"),
            opens=kind,
            decision=note,
            state=JobState.RUNNING,
            attempts=attempts,
            started_at=now,
            finished_at=None,
            error=None,
            note=note,
        )

    def begin_reconcile(self, key: JobKey, now: dt.datetime, decision: str) -> JobRecord:
        """Open a ``reconcile`` attempt for *key* (its state stays as it is: the reconcile's
        outcome is recorded by :meth:`pending` or :meth:`fail`)."""
        return self._write(
            key,
            now,
            (AttemptOutcome.INTERRUPTED, "superseded by a reconcile"),
            opens="reconcile",
            decision=decision,
        )

    def done(self, key: JobKey, now: dt.datetime, note: str | None = None) -> JobRecord:
        """Mark *key* finished successfully."""
        return self._write(
            key, now, (AttemptOutcome.DONE, None), state=JobState.DONE, finished_at=now,
            error=None, note=note,
        )  # fmt: skip

    def fail(
        self, key: JobKey, now: dt.datetime, error: str, *, count_attempt: bool = False
    ) -> JobRecord:
        """Record a failed attempt with its error text (*count_attempt* for work that did not
        go through :meth:`start`, such as a reconcile)."""
        current = self._storage.get_job(key)
        attempts = (current.attempts if current else 0) + (1 if count_attempt else 0)
        return self._write(
            key, now, (AttemptOutcome.FAILED, error), state=JobState.FAILED, finished_at=now,
            error=error, attempts=attempts,
        )  # fmt: skip

    def needs_reconcile(self, key: JobKey, now: dt.datetime, note: str) -> JobRecord:
        """Record that a side-effecting run stopped without finishing."""
        return self._write(
            key, now, (AttemptOutcome.INTERRUPTED, note), state=JobState.NEEDS_RECONCILE,
            note=note,
        )  # fmt: skip

    def pending(self, key: JobKey, now: dt.datetime, note: str) -> JobRecord:
        """Return *key* to pending (after a reconcile, or an interrupted idempotent job). An
        open reconcile attempt of this journal ends ``done``; an open run ``interrupted``."""
        history = self._storage.get_attempts(key)
        reconciled = bool(history) and history[-1].kind == "reconcile"
        outcome = AttemptOutcome.DONE if reconciled else AttemptOutcome.INTERRUPTED
        return self._write(
            key, now, (outcome, None if reconciled else note), history=history,
            state=JobState.PENDING, note=note,
        )  # fmt: skip

    def skip(self, key: JobKey, now: dt.datetime, reason: str) -> JobRecord:
        """Record the final decision not to run *key* today, and why."""
        return self._write(
            key, now, (AttemptOutcome.INTERRUPTED, reason), state=JobState.SKIPPED, note=reason
        )

    def adopt(self, key: JobKey, now: dt.datetime, reason: str) -> JobRecord:
        """Record *key* as done on evidence (e.g. a valid batch file with no journal row)."""
        return self._write(
            key, now, (AttemptOutcome.INTERRUPTED, reason), state=JobState.DONE,
            finished_at=now, note=reason,
        )  # fmt: skip
