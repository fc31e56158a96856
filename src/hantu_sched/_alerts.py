"""Alerts: which events the operator hears of (pure), and their delivery off the scheduler's path.

:func:`alert_for` maps a scheduler event (:mod:`hantu_sched._events`) or a kisclient observer
event to an :class:`~hantu_sched._notifiers.Alert`, or ``None`` when it is not alert-worthy.

:class:`AlertDispatcher` never blocks or breaks the caller: :meth:`~AlertDispatcher.submit`
puts the alert in each channel's bounded queue and returns (when a queue is full its oldest
alert is dropped and counted); every channel has its own worker thread that delivers in order,
paced by a per-channel rate limit (a token bucket: a burst of ``rate_per_minute``, then one
every ``60 / rate_per_minute`` s) and retried with doubling backoff (honouring the receiver's
``Retry-After``) up to ``max_attempts``. A failing channel delays only itself. Time — the rate
limit and the backoff — is the injected clock's (``clock.monotonic`` / ``clock.sleep``), so
tests run on a fake clock; waiting for work is a condition variable, not a clock.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Iterable, Sequence

import attrs

from kisclient import ClientEvent, RequestObserved, StreamObserved

from ._clock import Clock, SystemClock
from ._constants import KST
from ._events import (
    CrashRecovered,
    DayEnded,
    Event,
    JobFinished,
    OrderOutcomeUnknownSeen,
    OrderReconciled,
    PerformanceSummary,
    unit_label,
)
from ._notifiers import Alert, DeliveryError, Notifier
from ._telemetry_config import ALERT_KINDS, SEVERITIES

__all__ = ["TOKEN_PATH", "AlertDispatcher", "ChannelStats", "alert_for"]

_LOG = logging.getLogger("hantu_sched.alerts")

#: The token endpoint's path (a kisclient request there is a token issuance).
TOKEN_PATH = "/oauth2/tokenP"
_MAX_BACKOFF_S = 300.0


def _pct(value: object) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "n/a"


def _hms(at: dt.datetime) -> str:
    return f"{at.astimezone(KST):%H:%M:%S}"


def alert_for(event: Event | ClientEvent, now: dt.datetime) -> Alert | None:
    """The alert for *event* (stamped *now* when the event carries no time), or ``None``."""
    if isinstance(event, JobFinished):
        if event.state != "failed":
            return None
        unit = unit_label(event.key)
        return Alert(
            "job_failed",
            "critical",
            f"{unit} failed (attempt {event.attempt})",
            event.error or "no error recorded",
            event.finished_at,
            {"date": event.key.trading_date.isoformat(), "at": _hms(event.finished_at)},
        )
    if isinstance(event, DayEnded):
        if event.complete:
            return None
        return Alert(
            "day_incomplete",
            "critical",
            f"{event.trading_date} ended incomplete",
            f"not done: {', '.join(event.not_done)}",
            event.at,
            {"date": event.trading_date.isoformat(), "units": str(len(event.not_done))},
        )
    if isinstance(event, CrashRecovered):
        return Alert(
            "crash_recovered",
            "warning",
            f"recovered {unit_label(event.key)} after a crash: {event.action}",
            event.reason,
            event.at,
            {"date": event.key.trading_date.isoformat(), "at": _hms(event.at)},
        )
    if isinstance(event, OrderOutcomeUnknownSeen):
        return Alert(
            "order_outcome_unknown",
            "critical",
            f"{event.side} {event.quantity} {event.code}: outcome unknown, reconciling",
            event.error,
            event.at,
            {"code": event.code, "side": event.side, "quantity": str(event.quantity)},
        )
    if isinstance(event, OrderReconciled):
        severity = "info" if event.result == "found" else "warning"
        if event.result == "unknown":
            severity = "critical"
        return Alert(
            "order_reconciled",
            severity,
            f"{event.side} {event.code} reconciled: {event.result}",
            event.reason,
            event.at,
            {"code": event.code, "result": event.result, "order": event.order_no or "-"},
        )
    if isinstance(event, PerformanceSummary):
        report = event.report
        return Alert(
            "performance",
            "info",
            f"performance {event.trading_date}",
            f"daily {_pct(report.get('daily_return'))}, cumulative "
            f"{_pct(report.get('cumulative_return'))}, max drawdown "
            f"{_pct(report.get('max_drawdown'))}",
            now,
            {
                "end value": str(report.get("end_value")),
                "snapshots": str(report.get("snapshots")),
                "sharpe": str(report.get("sharpe_ratio")),
            },
        )
    if (
        isinstance(event, RequestObserved)
        and event.path == TOKEN_PATH
        and event.status is not None  # KIS answered (no answer is a network problem)
        and not event.ok
    ):
        return Alert(
            "token_refused",
            "critical",
            "KIS refused to issue an access token",
            f"tokenP answered {event.outcome} (HTTP {event.status})",
            now,
            {"route": event.route, "outcome": event.outcome},
        )
    if isinstance(event, StreamObserved) and event.kind == "slot_busy":
        return Alert(
            "stream_slot_locked",
            "warning",
            "the app key's real-time session is held elsewhere",
            "another process (or KIS, OPSP8996) holds the stream slot: fill notices fall back "
            "to polling",
            now,
            {},
        )
    return None


@attrs.define
class ChannelStats:
    """One channel's counters (read them with :meth:`AlertDispatcher.stats`)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    queued: int = 0


class _Channel:
    """One notifier's bounded queue, rate limit and worker thread."""

    def __init__(self, notifier: Notifier, owner: AlertDispatcher) -> None:
        self.notifier = notifier
        self.owner = owner
        self.queue: collections.deque[Alert] = collections.deque()
        self.stats = ChannelStats()
        self.busy = False
        self.tokens = owner.rate_per_minute  # a full bucket: the first burst goes at once
        self.refilled = owner.clock.monotonic()
        self.thread = threading.Thread(
            target=self._work, name=f"hantu-alerts-{notifier.name}", daemon=True
        )

    def put(self, alert: Alert) -> None:
        """Called under the owner's condition."""
        if len(self.queue) >= self.owner.queue_size:
            self.queue.popleft()
            self.stats.dropped += 1
        self.queue.append(alert)
        self.stats.queued += 1

    def _work(self) -> None:
        cond = self.owner.cond
        while True:
            with cond:
                while not self.queue and not self.owner.closing:
                    cond.wait()
                if self.owner.closing:  # close() delivered what it could: the rest is dropped
                    self.stats.dropped += len(self.queue)
                    self.queue.clear()
                    return
                alert = self.queue.popleft()
                self.busy = True
            try:
                self._deliver(alert)
            except Exception as exc:  # never let a bug kill the worker; no traceback: its text
                # could hold the channel's URL (a secret)
                with cond:
                    self.stats.failed += 1
                _LOG.error("alert channel %s failed: %s", self.notifier.name, type(exc).__name__)
            finally:
                with cond:
                    self.busy = False
                    cond.notify_all()

    def _admit(self) -> None:
        """Wait (on the injected clock) for the rate limit's next token."""
        clock, rate = self.owner.clock, self.owner.rate_per_minute
        while True:
            now = clock.monotonic()
            self.tokens = min(rate, self.tokens + (now - self.refilled) * rate / 60.0)
            self.refilled = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            clock.sleep((1.0 - self.tokens) * 60.0 / rate)

    def _deliver(self, alert: Alert) -> None:
        owner = self.owner
        name = self.notifier.name
        for attempt in range(1, owner.max_attempts + 1):
            self._admit()
            try:
                self.notifier.send(alert)
            except DeliveryError as exc:
                last = attempt == owner.max_attempts or not exc.retryable
                if last:
                    with owner.cond:
                        self.stats.failed += 1
                    _LOG.warning(
                        "alert %s not delivered to %s after %d attempt(s): %s",
                        alert.kind, name, attempt, exc,
                    )  # fmt: skip
                    return
                wait = min(owner.backoff_s * 2 ** (attempt - 1), _MAX_BACKOFF_S)
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, _MAX_BACKOFF_S))
                with owner.cond:
                    self.stats.retried += 1
                _LOG.info("alert %s to %s: %s; retrying in %.1fs", alert.kind, name, exc, wait)
                owner.clock.sleep(wait)
                continue
            with owner.cond:
                self.stats.sent += 1
            return


class AlertDispatcher:
    """Delivers alerts to *channels* without blocking the caller (see the module docstring).

    *kinds* and *min_severity* filter what :meth:`submit` accepts. Call :meth:`start` once and
    :meth:`close` at the end (it delivers what is queued, waiting at most *timeout* real
    seconds, then abandons the rest: the workers are daemon threads).
    """

    def __init__(
        self,
        channels: Sequence[Notifier],
        *,
        clock: Clock | None = None,
        kinds: Iterable[str] = ALERT_KINDS,
        min_severity: str = "info",
        rate_per_minute: float = 20.0,
        queue_size: int = 100,
        max_attempts: int = 5,
        backoff_s: float = 2.0,
    ) -> None:
        if rate_per_minute <= 0 or queue_size < 1 or max_attempts < 1 or backoff_s < 0:
            raise ValueError("need rate_per_minute > 0, queue_size >= 1, max_attempts >= 1")
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {SEVERITIES}")
        self.clock = clock or SystemClock()
        self.kinds = frozenset(kinds)
        self.min_rank = SEVERITIES.index(min_severity)
        self.rate_per_minute = float(rate_per_minute)
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.cond = threading.Condition()
        self.closing = False
        self._started = False
        self._channels = [_Channel(n, self) for n in channels]

    @property
    def started(self) -> bool:
        """True once :meth:`start` was called."""
        return self._started

    @property
    def channels(self) -> list[str]:
        """The channels' names."""
        return [c.notifier.name for c in self._channels]

    def start(self) -> AlertDispatcher:
        """Start the workers (idempotent)."""
        if not self._started:
            self._started = True
            for channel in self._channels:
                channel.thread.start()
        return self

    def wants(self, alert: Alert) -> bool:
        """True if *alert* passes the kind and severity filters."""
        rank = SEVERITIES.index(alert.severity) if alert.severity in SEVERITIES else 0
        return alert.kind in self.kinds and rank >= self.min_rank

    def submit(self, alert: Alert) -> bool:
        """Queue *alert* on every channel (never blocks, never raises); False if filtered."""
        if not self.wants(alert) or not self._channels:
            return False
        with self.cond:
            if self.closing:
                return False
            for channel in self._channels:
                channel.put(alert)
            self.cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queue is empty and no delivery is under way (at most *timeout*
        real seconds); True if so."""
        with self.cond:
            return self.cond.wait_for(
                lambda: all(not c.queue and not c.busy for c in self._channels), timeout
            )

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued (bounded by *timeout*), then stop the workers and the
        channels."""
        if self._started:
            self.flush(timeout)
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        for channel in self._channels:
            if channel.thread.is_alive():
                channel.thread.join(timeout=1.0)
            try:
                channel.notifier.close()
            except Exception:
                _LOG.exception("closing alert channel %s failed", channel.notifier.name)

    def stats(self) -> dict[str, ChannelStats]:
        """A snapshot of every channel's counters."""
        with self.cond:
            return {c.notifier.name: attrs.evolve(c.stats) for c in self._channels}

    def __repr__(self) -> str:
        return f"AlertDispatcher(channels={self.channels})"
