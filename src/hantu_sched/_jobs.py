"""Pluggable jobs: the :class:`Job` protocol, the context every job receives, and the registry.

A job is any callable taking a :class:`JobContext`. Returning normally means "done"; raising
:class:`JobInterrupted` means "stopped on request before finishing" (the journal records it as
unfinished, not failed); any other exception is a failure, recorded and retried per policy.
Long-running jobs must watch ``ctx.stop`` (or use ``ctx.sleep_until``) so a graceful stop is
prompt. Output contracts checked after a job returns: ``screening`` stores today's watchlist
(``ctx.storage.put_watchlist``) and each ``selection`` batch leaves a valid batch file
(``ctx.publish_batch``).
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs

from ._batch import BatchStore
from ._calendar import Session
from ._clock import Clock
from ._events import Event, EventSink, discard, emit_safely
from ._journal import JobKey
from ._services import Services, coerce_services
from ._storage import Storage

__all__ = ["Job", "JobContext", "JobInterrupted", "JobRegistry", "RegisteredJob"]


class JobInterrupted(Exception):
    """Raised by a job that stopped early because ``ctx.stop`` was set."""


@attrs.frozen
class JobContext:
    """Everything a job may use. ``services`` is a :class:`~hantu_sched.Services`: typed
    clients (``ctx.services.kis``, ``ctx.services.kis_async``), ``universe`` and ``extra``; it
    is also a read-only mapping (``ctx.services["kis"]``), and a plain mapping given here is
    converted (see :meth:`Services.coerce`); ``resume`` is True when a side-effecting job runs
    again after an unfinished run (it should re-read orders and positions first if no reconciler
    was registered); ``batch_ids`` are the configured selection batches; ``attempt`` is the
    journal's attempt number, from 1; ``events`` receives what the operator should hear of
    (:mod:`hantu_sched._events`; send through :meth:`emit`)."""

    key: JobKey
    session: Session
    storage: Storage
    clock: Clock
    data_dir: pathlib.Path
    batches: BatchStore
    logger: logging.Logger
    stop: threading.Event
    batch_ids: tuple[str, ...] = ()
    attempt: int = 1
    resume: bool = False
    services: Services = attrs.field(factory=Services, converter=coerce_services)
    events: EventSink = discard

    @property
    def trading_date(self) -> dt.date:
        """The trading date this run belongs to (may be yesterday for a catch-up)."""
        return self.key.trading_date

    @property
    def batch_id(self) -> str | None:
        """The selection batch id, or ``None`` for unbatched jobs."""
        return self.key.batch

    @property
    def stop_requested(self) -> bool:
        """True once a graceful stop was requested."""
        return self.stop.is_set()

    def emit(self, event: Event) -> None:
        """Tell the operator's sink (alerts, metrics) about *event*; never raises."""
        emit_safely(self.events, event)

    def check_stop(self) -> None:
        """Raise :class:`JobInterrupted` if a stop was requested."""
        if self.stop.is_set():
            raise JobInterrupted(f"{self.key} stopped on request")

    def sleep_until(self, when: dt.datetime) -> None:
        """Sleep on the injected clock until *when*; raise :class:`JobInterrupted` on stop."""
        self.clock.sleep_until(when, self.stop)
        self.check_stop()

    def selection_complete(self) -> bool:
        """True iff every configured batch file is valid for this trading date."""
        return all(self.batches.is_complete(self.trading_date, b) for b in self.batch_ids)

    def publish_batch(self, items: Any) -> pathlib.Path:
        """Write this batch's file atomically and store the same items as selection rows."""
        if self.batch_id is None:
            raise ValueError(f"{self.key} is not a selection batch")
        self.storage.put_selection(self.trading_date, self.batch_id, items)
        now = self.clock.now()
        return self.batches.write(self.trading_date, self.batch_id, items, written_at=now)


class Job(Protocol):
    """A unit of work. Return on success; raise on failure (never swallow errors)."""

    def __call__(self, ctx: JobContext, /) -> None: ...


@attrs.frozen
class RegisteredJob:
    """A job and its optional reconciler (for jobs with market side effects)."""

    run: Job
    reconcile: Job | None = None


class JobRegistry(Mapping[str, RegisteredJob]):
    """Jobs by name. ``register(name, run, reconcile=...)``; lookups behave like a mapping."""

    def __init__(self, jobs: Mapping[str, Job] | None = None) -> None:
        self._jobs: dict[str, RegisteredJob] = {}
        for name, job in (jobs or {}).items():
            self.register(name, job)

    def register(self, name: str, run: Job, *, reconcile: Job | None = None) -> None:
        """Register (or replace) *name*."""
        if not name:
            raise ValueError("job name must be non-empty")
        self._jobs[name] = RegisteredJob(run, reconcile)

    def __getitem__(self, name: str) -> RegisteredJob:
        try:
            return self._jobs[name]
        except KeyError:
            raise KeyError(f"no job registered under {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)
