"""What happened, for the operator: the typed events alerts and metrics are made from.

The scheduler, the executor and the default jobs hand these to an :data:`EventSink` (a
callable; ``ctx.events`` in a job, ``IntegratedScheduler(..., events=...)``); the runner's sink
(:class:`~hantu_sched._telemetry.Telemetry`) turns them into alerts and metrics. kisclient's own
events (requests, limiter waits, token issuances, streams) arrive separately through the
client's observer (:mod:`kisclient`'s ``observer=``). Events are plain data: no secret, no
account number, nothing that is not already in the journal or the log.

A sink must be quick and must not raise; :func:`emit_safely` is how the scheduler calls one, so
a faulty sink is logged and never stops the day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from ._journal import JobKey

__all__ = [
    "CrashRecovered",
    "DayEnded",
    "Event",
    "EventSink",
    "JobFinished",
    "OrderOutcomeUnknownSeen",
    "OrderReconciled",
    "OrdersTallied",
    "PerformanceSummary",
    "discard",
    "emit_safely",
    "unit_label",
]

_LOG = logging.getLogger("hantu_sched")


def unit_label(key: JobKey) -> str:
    """``job`` or ``job[batch]``."""
    return key.job if key.batch is None else f"{key.job}[{key.batch}]"


@attrs.frozen
class JobFinished:
    """One run of a unit ended: ``state`` is ``done``, ``failed``, ``interrupted`` or
    ``reconciled`` (a reconciler's run; ``failed`` when it raised); ``error`` the recorded error
    (failures only); times on the scheduler's clock."""

    key: JobKey
    attempt: int
    state: str
    started_at: dt.datetime
    finished_at: dt.datetime
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@attrs.frozen
class CrashRecovered:
    """A unit found ``running`` in the journal (its process died) is being recovered:
    ``action`` is the recovery decision (``run``, ``reconcile``, ``skip``...) and ``reason``
    its reason."""

    key: JobKey
    action: str
    reason: str
    at: dt.datetime


@attrs.frozen
class DayEnded:
    """Nothing more is due today: ``not_done`` lists the units of the day plan that are not
    ``done`` (empty: the day is complete)."""

    trading_date: dt.date
    not_done: tuple[str, ...]
    at: dt.datetime

    @property
    def complete(self) -> bool:
        return not self.not_done


@attrs.frozen
class OrderOutcomeUnknownSeen:
    """An order's outcome is unknown (``kisclient.OrderOutcomeUnknown``); reconciling next."""

    trading_date: dt.date
    code: str
    side: str
    quantity: int
    error: str
    at: dt.datetime


@attrs.frozen
class OrderReconciled:
    """What reconciling an unknown order found: ``result`` is ``found`` (``order_no`` set),
    ``absent`` (it never reached KIS) or ``unknown`` (still unknown; counted as ordered)."""

    trading_date: dt.date
    code: str
    side: str
    result: str
    reason: str
    at: dt.datetime
    order_no: str | None = None


@attrs.frozen
class OrdersTallied:
    """Today's orders by record status and the fills seen so far (order number → filled
    quantity), as the trading job last saved them."""

    trading_date: dt.date
    orders: Mapping[str, int]
    fills: Mapping[str, int]


@attrs.frozen
class PerformanceSummary:
    """The performance report of a day (the ``performance`` record)."""

    trading_date: dt.date
    report: Mapping[str, Any]


#: Everything a sink may receive.
Event: TypeAlias = (
    JobFinished
    | CrashRecovered
    | DayEnded
    | OrderOutcomeUnknownSeen
    | OrderReconciled
    | OrdersTallied
    | PerformanceSummary
)
#: Where events go.
EventSink: TypeAlias = Callable[[Event], None]


def discard(event: Event) -> None:
    """The sink that ignores everything (the default)."""


def emit_safely(sink: EventSink, event: Event) -> None:
    """Give *event* to *sink*; a sink that raises is logged, never propagated."""
    try:
        sink(event)
    except Exception:
        _LOG.exception("event sink failed on %s (ignored)", type(event).__name__)
