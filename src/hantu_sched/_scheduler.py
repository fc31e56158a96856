"""The integrated scheduler: lock the data directory, then plan → execute → sleep, forever.

Each loop iteration gathers the evidence, asks :class:`~hantu_sched._recovery.RecoveryManager`
for the plan at ``clock.now()``, records decisions (adopt, recorded skips), runs the first
runnable action, and otherwise sleeps on the injected clock until the earliest timed wait (or
the next midnight). A restart is therefore just the first iteration: recovery and the normal
day are the same rules. With a :class:`~hantu_sched._clock.FakeClock` a whole day runs
instantly.

Single instance, twice over: ``run`` first takes the data directory's OS lock
(:class:`~hantu_sched._lock.DataDirLock`), then claims the storage's owner epoch
(``storage.claim``). Every journal and record write of this instance checks that epoch in its
own transaction, and the stop event handed to jobs reads as set once the epoch moved on, so an
instance that was deposed by a later claim stops at its next write, stop check or loop
iteration: it logs one line and ``run`` raises :class:`~hantu_sched._storage.DeposedError`
without running, recording or sending anything more.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pathlib
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from ._batch import batch_store_for
from ._calendar import KRXCalendar
from ._clock import Clock
from ._constants import KST
from ._day import JOB_ORDER, SchedulerConfig, build_day_plan
from ._events import DayEnded, EventSink, discard, emit_safely, unit_label
from ._executor import Executor
from ._jobs import Job, JobRegistry
from ._journal import JobState
from ._leadership import LeasedStorage, LeaseKeeper, acquire
from ._lock import DataDirLock
from ._recovery import RUNNABLE, Action, ActionKind, RecoveryManager, gather_state
from ._services import Services
from ._storage import DeposedError, Storage, StorageError

__all__ = ["IntegratedScheduler"]

_LOG = logging.getLogger("hantu_sched")


class _StopOrDeposed(threading.Event):
    """The stop event: set by :meth:`IntegratedScheduler.stop`, and also reads as set once the
    storage says this instance was deposed (checked on every ``is_set``), so a running job
    stops at its next ``ctx.check_stop()`` / ``ctx.sleep_until``."""

    def __init__(self, storage: Storage) -> None:
        super().__init__()
        self._storage = storage

    def is_set(self) -> bool:
        if super().is_set():
            return True
        try:
            self._storage.check_owner()
        except DeposedError:
            self.set()
            return True
        except StorageError:
            return False  # an unreadable store is reported by the next write, not here
        return False


class IntegratedScheduler:
    """Runs the trading day's jobs with crash/restart recovery.

    Args:
        config: batches, policies, incomplete-selection behaviour.
        storage: journal and results (:class:`~hantu_sched._storage.SQLiteStorage` in prod).
        clock: the injected clock; all waits go through ``clock.sleep_until``.
        jobs: a :class:`~hantu_sched._jobs.JobRegistry` or a mapping name → job; every job of
            the day plan must be registered.
        calendar: the KRX calendar (default :class:`KRXCalendar()`).
        data_dir: holds the lock file and ``daily_selection/``.
        services: what jobs get as ``ctx.services``: a :class:`~hantu_sched.Services` (see
            :func:`~hantu_sched.build_services`) or a mapping converted by
            :meth:`Services.coerce` (``"kis"``, ``"kis_async"``, ``"universe"``, the rest extra).
        events: where operator events go (:mod:`hantu_sched._events`: job runs, crash
            recoveries, the end of the day; jobs emit theirs through ``ctx.emit``).
        standby: with a leased storage (PostgreSQL, :mod:`hantu_sched._leadership`): wait while
            another host leads and take over when its lease lapses; without it a held lease
            raises :class:`~hantu_sched._pg_storage.LeaseHeldError`. While leading, the lease
            is renewed in the background and released on a clean stop; a database outage is
            retried while the lease is locally valid, then ``run`` raises ``DeposedError``.

    ``run`` takes the per-directory lock for its duration; a second instance on the same
    directory raises :class:`~hantu_sched._lock.SchedulerAlreadyRunningError`. It then claims
    the storage's owner epoch (:attr:`epoch`); if a later claim deposes it, ``run`` logs one
    line and raises :class:`~hantu_sched._storage.DeposedError`. ``stop()`` (or
    SIGTERM once :meth:`install_signal_handlers` was called) makes ``run`` return after the
    current job notices ``ctx.stop``, with the journal describing exactly what finished.
    """

    def __init__(
        self,
        config: SchedulerConfig,
        storage: Storage,
        clock: Clock,
        jobs: JobRegistry | Mapping[str, Job],
        calendar: KRXCalendar | None = None,
        data_dir: str | os.PathLike[str] = "data",
        *,
        services: Services | Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
        events: EventSink = discard,
        standby: bool = False,
    ) -> None:
        self.config = config
        self.standby = standby
        self.storage = storage
        self.clock = clock
        self.jobs = jobs if isinstance(jobs, JobRegistry) else JobRegistry(jobs)
        missing = [name for name in JOB_ORDER if name not in self.jobs]
        if missing:
            raise ValueError(f"no job registered for {missing}")
        self.calendar = calendar or KRXCalendar()
        self.data_dir = pathlib.Path(data_dir)
        self.log = logger or _LOG
        self.manager = RecoveryManager(config, self.calendar)
        self._stop = _StopOrDeposed(storage)
        self.epoch: int | None = None
        self._lock = DataDirLock(self.data_dir)
        self._batches = batch_store_for(storage, self.data_dir)
        self._logged: set[tuple[str, str | None, str, str, str]] = set()
        self._logged_day: dt.date | None = None
        self.events = events
        self._day_ended: dt.date | None = None
        self.executor = Executor(
            config=config,
            calendar=self.calendar,
            storage=storage,
            clock=clock,
            jobs=self.jobs,
            data_dir=self.data_dir,
            stop=self._stop,
            logger=self.log,
            services=Services.coerce(services),
            events=events,
        )

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Request a graceful stop (thread- and signal-safe)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def install_signal_handlers(
        self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    ) -> Callable[[], None]:
        """Make *signals* call :meth:`stop` (main thread only); returns a function that
        restores the previous handlers."""
        previous: dict[signal.Signals, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            self.log.warning("signal %s received: stopping gracefully", signal.Signals(signum).name)
            self.stop()

        for sig in signals:
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- running ----------------------------------------------------------------------------

    def plan(self) -> list[Action]:
        """The plan at ``clock.now()`` from the current evidence (no side effects)."""
        now = self.clock.now()
        state = gather_state(now, self.calendar, self.config, self.storage, self._batches)
        return self.manager.plan(now, state)

    def run(self, until: dt.datetime | None = None) -> None:
        """Hold the lock and run until *until* (aware) or until stopped."""
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        self._lock.acquire()
        try:
            owner = f"hantu_sched pid {os.getpid()} on {socket.gethostname()}"
            epoch = acquire(
                self.storage,
                owner,
                self.clock,
                self._stop,
                standby=self.standby,
                until=until,
                log=self.log,
            )
            if epoch is None:
                self.log.info("standby stopped at %s without leading", self.clock.now())
                return
            self.epoch = epoch
            self.log.info(
                "scheduler started at %s on %s (owner epoch %d)",
                self.clock.now(),
                self.data_dir,
                self.epoch,
            )
            keeper = LeaseKeeper(self.storage, self.clock, self.log)
            try:
                self._loop(until)
            except BaseException:
                keeper.close()
                raise
            keeper.close(release=True)
            self.log.info("scheduler stopped at %s", self.clock.now())
        except DeposedError as exc:
            self.log.critical("%s", exc)
            raise
        finally:
            self._lock.release()

    def _loop(self, until: dt.datetime | None) -> None:
        while True:
            self.storage.check_owner()
            if self._stop.is_set():
                return
            self._lock.refresh()
            now = self.clock.now()
            if until is not None and now >= until:
                return
            try:
                self._step(now, until)
            except DeposedError:
                raise
            except StorageError as exc:
                if not isinstance(self.storage, LeasedStorage):
                    raise
                self._storage_outage(now, exc)

    def _storage_outage(self, now: dt.datetime, exc: StorageError) -> None:
        """A shared database could not be reached: retry shortly. The leader keeps leading
        while its lease is locally valid (a short outage is ridden out; the journal then says
        what finished); once it is not, the loop's ``check_owner`` ends ``run`` with
        :class:`DeposedError`, before any standby may take over."""
        assert isinstance(self.storage, LeasedStorage)
        self.log.error("storage unreachable (%s); retrying while this leader's lease holds", exc)
        retry = now + dt.timedelta(seconds=self.storage.lease_s / 10)
        self.clock.sleep_until(retry, self._stop)

    def _step(self, now: dt.datetime, until: dt.datetime | None) -> bool:
        """One iteration; returns True if it slept (nothing was executed)."""
        actions = self.plan()
        if self._logged_day != now.astimezone(KST).date():
            self._logged_day = now.astimezone(KST).date()
            self._logged.clear()
        self._log_decisions(actions)
        recorded = [a for a in actions if a.kind is ActionKind.ADOPT or a.record]
        for action in recorded:
            self.executor.apply(action)
        if recorded:
            return False
        runnable = next((a for a in actions if a.kind in RUNNABLE), None)
        if runnable is not None:
            self.executor.apply(runnable)
            return False
        timed = [a.at for a in actions if a.kind is ActionKind.WAIT and a.at is not None]
        if not timed:
            self._end_day(now)
        tomorrow = now.astimezone(KST).date() + dt.timedelta(days=1)
        wake = min([*timed, dt.datetime.combine(tomorrow, dt.time(0), KST)])
        if until is not None:
            wake = min(wake, until)
        self.clock.sleep_until(wake, self._stop)
        return True

    def _end_day(self, now: dt.datetime) -> None:
        """Nothing more is due today: emit :class:`DayEnded` once for a trading day, listing
        the day plan's units that are not ``done``."""
        today = now.astimezone(KST).date()
        if self._day_ended == today:
            return
        self._day_ended = today
        plan = build_day_plan(self.config, self.calendar, today)
        if plan is None:
            return
        done = {r.key for r in self.storage.list_jobs(today) if r.state is JobState.DONE}
        missing = tuple(unit_label(p.key) for p in plan.jobs if p.key not in done)
        emit_safely(self.events, DayEnded(today, missing, now))

    def _log_decisions(self, actions: list[Action]) -> None:
        for action in actions:
            mark = (
                action.job,
                action.batch,
                action.trading_date.isoformat(),
                action.kind.value,
                action.reason,
            )
            if mark in self._logged:
                continue
            self._logged.add(mark)
            level = logging.DEBUG if action.kind is ActionKind.WAIT else logging.INFO
            self.log.log(level, "plan: %s", action.describe(), extra={"action": action})

    def __repr__(self) -> str:
        return f"IntegratedScheduler(data_dir={str(self.data_dir)!r}, clock={self.clock!r})"
