"""The executor: applies one recovery :class:`~hantu_sched._recovery.Action`.

Rules: a job is marked ``running`` in the journal before its callable is invoked; a normal
return is checked against the job's output contract and then marked ``done``; an exception is
logged with its traceback and recorded as ``failed`` (never swallowed: it stays in the journal
and is retried per policy); :class:`~hantu_sched._jobs.JobInterrupted` leaves a side-effecting
job ``needs-reconcile`` and any other job ``pending``. ``BaseException`` (process exit, a crash)
propagates untouched, leaving ``running`` in the journal: that is the truth, and the next start
recovers from it. Every run, resume and reconcile is an attempt in the journal's history
(:class:`~hantu_sched._journal.Attempt`), started with the action's kind and reason.

Adopting a valid batch file also rebuilds that batch's selection row from the file: evidence that
recovery adopts must be what the next job (trading reads the selection rows) reads, so a lost
journal database with valid batch files still trades. :class:`~hantu_sched._storage.DeposedError`
(another instance claimed the data) is never recorded as a job failure: it propagates and the
scheduler stops.
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
import threading

from ._batch import batch_store_for
from ._calendar import KRXCalendar
from ._clock import Clock
from ._day import SCREENING, SELECTION, SchedulerConfig
from ._events import CrashRecovered, EventSink, JobFinished, discard, emit_safely
from ._jobs import JobContext, JobInterrupted, JobRegistry
from ._journal import JobKey, JobState, Journal
from ._recovery import RUNNABLE, Action, ActionKind
from ._services import Services
from ._storage import DeposedError, Storage

__all__ = ["Executor"]


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


class Executor:
    """Applies actions against the journal, running registered jobs with a :class:`JobContext`."""

    def __init__(
        self,
        *,
        config: SchedulerConfig,
        calendar: KRXCalendar,
        storage: Storage,
        clock: Clock,
        jobs: JobRegistry,
        data_dir: pathlib.Path,
        stop: threading.Event,
        logger: logging.Logger,
        services: Services,
        events: EventSink = discard,
    ) -> None:
        self.config = config
        self.calendar = calendar
        self.storage = storage
        self.journal = Journal(storage)
        self.clock = clock
        self.jobs = jobs
        self.data_dir = data_dir
        self.batches = batch_store_for(storage, data_dir)
        self.stop = stop
        self.log = logger
        self.services = services
        self.events = events

    def apply(self, action: Action) -> None:
        """Execute *action* (``wait`` and unrecorded ``skip`` do nothing)."""
        now = self.clock.now()
        key = action.key
        if action.kind in RUNNABLE or action.record:
            self._note_crash(action)
        if action.kind is ActionKind.ADOPT:
            self._rebuild_selection_row(key)
            self.journal.adopt(key, now, action.reason)
        elif action.kind is ActionKind.SKIP:
            if action.record:
                self.journal.skip(key, now, action.reason)
        elif action.kind is ActionKind.RECONCILE:
            self._reconcile(action)
            self._report(action, now)
        elif action.kind in (ActionKind.RUN, ActionKind.RESUME):
            self._run(action)
            self._report(action, now)

    def _note_crash(self, action: Action) -> None:
        """Emit :class:`CrashRecovered` when *action* is about a unit the journal says is
        ``running``: the scheduler runs jobs synchronously under the lock, so that run's
        process died."""
        record = self.journal.get(action.key)
        if record is not None and record.state is JobState.RUNNING:
            event = CrashRecovered(action.key, action.kind.value, action.reason, self.clock.now())
            emit_safely(self.events, event)

    def _report(self, action: Action, started: dt.datetime) -> None:
        """Emit :class:`JobFinished` from the journal row the run (or reconcile) just left."""
        record = self.journal.get(action.key)
        if record is None:
            return
        reconcile = action.kind is ActionKind.RECONCILE
        if record.state is JobState.FAILED:
            state = "failed"
        elif record.state is JobState.DONE:
            state = "done"
        elif reconcile and record.state is JobState.PENDING:
            state = "reconciled"
        else:
            state = "interrupted"
        error = record.error if state == "failed" else None
        event = JobFinished(
            action.key, record.attempts, state, started, self.clock.now(), error=error
        )
        emit_safely(self.events, event)

    def _rebuild_selection_row(self, key: JobKey) -> None:
        """Store a valid batch file's items as its selection row (the file is the evidence)."""
        if key.job != SELECTION or key.batch is None:
            return
        items = self.batches.read(key.trading_date, key.batch)
        if items is not None:
            self.storage.put_selection(key.trading_date, key.batch, items)
            self.log.info("%s: selection row rebuilt from its batch file", key)

    def _context(self, key: JobKey, attempt: int, resume: bool) -> JobContext:
        session = self.calendar.session(key.trading_date)
        if session is None:  # the planner never schedules a closed day
            raise RuntimeError(f"{key}: {key.trading_date} is not a trading day")
        return JobContext(
            key=key,
            session=session,
            storage=self.storage,
            clock=self.clock,
            data_dir=self.data_dir,
            batches=self.batches,
            logger=self.log.getChild(key.job),
            stop=self.stop,
            batch_ids=self.config.batch_ids,
            attempt=attempt,
            resume=resume,
            services=self.services,
            events=self.events,
        )

    def _reconcile(self, action: Action) -> None:
        key = action.key
        record = self.journal.get(key)
        if record is None or record.state is not JobState.NEEDS_RECONCILE:
            self.journal.needs_reconcile(key, self.clock.now(), action.reason)
        reconciler = self.jobs[key.job].reconcile
        if reconciler is None:
            self.journal.pending(
                key, self.clock.now(), "no reconciler registered; the job reconciles on resume"
            )
            return
        attempts = record.attempts if record else 0
        self.journal.begin_reconcile(key, self.clock.now(), action.reason)
        try:
            reconciler(self._context(key, attempts, resume=True))
        except DeposedError:
            raise
        except Exception as exc:
            self.log.exception("reconcile of %s failed", key)
            self.journal.fail(
                key,
                self.clock.now(),
                f"reconcile failed: {_error_text(exc)}",
                count_attempt=True,
            )
            return
        self.journal.pending(key, self.clock.now(), f"reconciled at {self.clock.now():%H:%M:%S}")

    def _run(self, action: Action) -> None:
        key = action.key
        registered = self.jobs[key.job]
        policy = self.config.policy(key.job)
        if action.overrides_journal:
            self.journal.pending(key, self.clock.now(), action.reason)
        record = self.journal.start(
            key, self.clock.now(), note=action.reason, kind=action.kind.value
        )
        ctx = self._context(key, record.attempts, resume=action.kind is ActionKind.RESUME)
        self.log.info("start %s (attempt %d): %s", key, record.attempts, action.reason)
        try:
            registered.run(ctx)
        except JobInterrupted:
            now = self.clock.now()
            if policy.side_effects:
                self.journal.needs_reconcile(key, now, "stopped on request before finishing")
            else:
                self.journal.pending(key, now, "stopped on request before finishing")
            self.log.warning("%s stopped on request before finishing", key)
            return
        except DeposedError:
            raise
        except Exception as exc:
            self.log.exception("%s failed (attempt %d)", key, record.attempts)
            self.journal.fail(key, self.clock.now(), _error_text(exc))
            return
        problem = self._output_problem(key)
        if problem is not None:
            self.log.error("%s returned but %s", key, problem)
            self.journal.fail(key, self.clock.now(), f"returned but {problem}")
            return
        self.journal.done(key, self.clock.now())
        self.log.info("done %s", key)

    def _output_problem(self, key: JobKey) -> str | None:
        """Check the job's output contract (see :mod:`hantu_sched._jobs`)."""
        if key.job == SCREENING and self.storage.get_watchlist(key.trading_date) is None:
            return f"no watchlist was stored for {key.trading_date}"
        if key.job == SELECTION and key.batch is not None:
            health = self.batches.health(key.trading_date, key.batch)
            if health.value != "valid":
                return f"batch file {key.batch} is {health.value}"
        return None
