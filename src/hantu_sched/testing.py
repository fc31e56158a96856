"""Built-in test jobs: fast, deterministic stand-ins for the real pipeline.

:func:`make_test_jobs` returns a :class:`~hantu_sched._jobs.JobRegistry` with all five jobs.
Each records what it did in a shared :class:`JobLog`, honours the output contracts (screening
stores a watchlist, each batch publishes its file) and takes *duration* of clock time, so
crashes can land in the middle of a job. ``trading`` runs until the session close, checking
``ctx.stop``; it records whether the selection was complete when it started.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import attrs

from ._clock import FakeClock
from ._constants import RISK_FREE_RATE
from ._day import MARKET_CLOSE, PERFORMANCE, SCREENING, SELECTION, TRADING
from ._jobs import Job, JobContext, JobRegistry

__all__ = ["CrashingClock", "JobEvent", "JobLog", "SimulatedCrash", "make_test_jobs"]


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing records it."""


class CrashingClock(FakeClock):
    """A :class:`FakeClock` that "kills the process" when time reaches :attr:`crash_at`.

    Any wait that would pass ``crash_at`` stops there and raises :class:`SimulatedCrash`
    (once; set ``crash_at`` again for another crash).
    """

    def __init__(self, start: dt.datetime, crash_at: dt.datetime | None = None) -> None:
        super().__init__(start)
        self.crash_at = crash_at

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        crash = self.crash_at
        if crash is not None and when >= crash and not (cancel is not None and cancel.is_set()):
            self.crash_at = None
            super().sleep_until(crash, cancel)
            raise SimulatedCrash(f"simulated crash at {crash.isoformat()}")
        super().sleep_until(when, cancel)


@attrs.frozen
class JobEvent:
    """One thing a test job did: ``kind`` is ``start``, ``end`` or ``reconcile``."""

    kind: str
    job: str
    trading_date: dt.date
    batch: str | None
    at: dt.datetime
    selection_complete: bool | None = None
    resume: bool = False


@attrs.define
class JobLog:
    """Events from the test jobs, in order (shared across scheduler restarts)."""

    events: list[JobEvent] = attrs.field(factory=list)

    def of(self, kind: str, job: str | None = None) -> list[JobEvent]:
        """Events of *kind*, optionally only for *job*."""
        return [e for e in self.events if e.kind == kind and (job is None or e.job == job)]


def _event(log: JobLog, kind: str, ctx: JobContext, **extra: bool) -> None:
    key = ctx.key
    log.events.append(
        JobEvent(kind, key.job, key.trading_date, key.batch, ctx.clock.now(), **extra)
    )


def make_test_jobs(
    log: JobLog | None = None,
    *,
    duration: dt.timedelta = dt.timedelta(minutes=1),
    wrap: Callable[[str, Job], Job] | None = None,
) -> JobRegistry:
    """All five jobs as quick fakes. *wrap(name, job)* may decorate each (e.g. to inject
    failures); the trading reconciler is registered too."""
    events = log if log is not None else JobLog()

    def work(ctx: JobContext) -> None:
        ctx.sleep_until(ctx.clock.now() + duration)

    def screening(ctx: JobContext) -> None:
        _event(events, "start", ctx)
        work(ctx)
        ctx.storage.put_watchlist(ctx.trading_date, ["005930", "000660", "035420"])
        _event(events, "end", ctx)

    def selection(ctx: JobContext) -> None:
        _event(events, "start", ctx)
        work(ctx)
        ctx.publish_batch([{"code": "005930", "score": 1.0, "batch": ctx.batch_id}])
        _event(events, "end", ctx)

    def trading(ctx: JobContext) -> None:
        complete = ctx.selection_complete()
        _event(events, "start", ctx, selection_complete=complete, resume=ctx.resume)
        ctx.sleep_until(ctx.session.close)
        _event(events, "end", ctx)

    def reconcile(ctx: JobContext) -> None:
        _event(events, "reconcile", ctx)

    def market_close(ctx: JobContext) -> None:
        _event(events, "start", ctx)
        work(ctx)
        ctx.storage.put_record("balance_snapshot", ctx.trading_date.isoformat(), {"cash": 0})
        _event(events, "end", ctx)

    def performance(ctx: JobContext) -> None:
        _event(events, "start", ctx)
        work(ctx)
        report = {"risk_free_rate": RISK_FREE_RATE, "return": 0.0}
        ctx.storage.put_record("performance", ctx.trading_date.isoformat(), report)
        _event(events, "end", ctx)

    jobs: dict[str, Job] = {
        SCREENING: screening,
        SELECTION: selection,
        TRADING: trading,
        MARKET_CLOSE: market_close,
        PERFORMANCE: performance,
    }
    registry = JobRegistry()
    for name, job in jobs.items():
        wrapped = wrap(name, job) if wrap is not None else job
        registry.register(name, wrapped, reconcile=reconcile if name == TRADING else None)
    return registry
