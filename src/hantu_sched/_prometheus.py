"""Prometheus metrics of the runner, on a private registry (``prometheus_client``).

:class:`Metrics` counts what kisclient's observer reports (:meth:`Metrics.observe`: requests by
route, endpoint and outcome, EGW00201 answers, token issuances and refusals, the rate limiter's
waits, stream connects, reconnects, locked slots and dropped events) and what the scheduler's
events say (:meth:`Metrics.record`: job runs by state, their durations, crash recoveries, the
day's end, today's orders by status and fills, unknown orders and their reconciliation).
Alert deliveries are read from the :class:`~hantu_sched._alerts.AlertDispatcher` at each
collection. The text format comes from the library (:meth:`Metrics.render`); the node-exporter
textfile is written atomically (:meth:`Metrics.write_textfile`, mode 0644); :meth:`Metrics.serve`
exposes ``/metrics`` on 127.0.0.1. Every metric lives in the instance's own
:class:`~prometheus_client.CollectorRegistry`, never the process-global one.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kisclient import AdmissionWaited, ClientEvent, RequestObserved, StreamObserved

from ._alerts import TOKEN_PATH, AlertDispatcher
from ._events import (
    CrashRecovered,
    DayEnded,
    Event,
    JobFinished,
    OrderOutcomeUnknownSeen,
    OrderReconciled,
    OrdersTallied,
)
from ._files import atomic_write_bytes

__all__ = ["Metrics"]

_WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_JOB_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
_JOB_STATES = ("done", "failed", "interrupted", "reconciled")


class _AlertCollector(Collector):
    """``hantu_alerts_{sent,failed,retried,dropped}_total{channel}``, read at collection."""

    def __init__(self, alerts: AlertDispatcher) -> None:
        self.alerts = alerts

    def collect(self) -> Iterator[Metric]:
        stats = self.alerts.stats()
        for field, doc in (
            ("sent", "Alerts delivered"),
            ("failed", "Alerts given up on after their last attempt"),
            ("retried", "Alert delivery attempts that failed and were retried"),
            ("dropped", "Alerts dropped because the channel's queue was full"),
        ):
            family = CounterMetricFamily(f"hantu_alerts_{field}", doc, labels=["channel"])
            for channel, counts in stats.items():
                family.add_metric([channel], getattr(counts, field))
            yield family
        queued = GaugeMetricFamily(
            "hantu_alerts_channels", "Configured alert channels", labels=["channel"]
        )
        for channel in stats:
            queued.add_metric([channel], 1)
        yield queued


class Metrics:
    """The runner's metrics (see the module docstring). Thread-safe: the observer is called
    from the clients' threads and event loops, :meth:`record` from the scheduler's."""

    def __init__(self, alerts: AlertDispatcher | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "kis_requests", "KIS requests sent, by route, endpoint and outcome (ok, KIS's message "
            "code, http_<status> or transport)", ["route", "endpoint", "outcome"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "kis_rate_limited", "EGW00201 answers (KIS's rate limit exceeded)", ["route"],
            registry=r,
        )  # fmt: skip
        self.token_issuances = Counter(
            "kis_token_issuances", "Access tokens issued (tokenP answered ok)", ["route"],
            registry=r,
        )  # fmt: skip
        self.token_refusals = Counter(
            "kis_token_refusals", "tokenP requests KIS refused", ["route", "outcome"], registry=r
        )
        self.limiter_wait = Histogram(
            "kis_limiter_wait_seconds", "Time the client-side rate limiter held a request",
            ["route"], buckets=_WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.stream = Counter(
            "kis_stream_events", "Stream sessions' connects, reconnects and locked slots",
            ["kind"], registry=r,
        )  # fmt: skip
        self.stream_dropped = Counter(
            "kis_stream_dropped_events", "Stream events dropped for a slow consumer", registry=r
        )
        self.job_runs = Counter(
            "hantu_job_runs", "Job runs by job and final state", ["job", "state"], registry=r
        )
        self.job_duration = Histogram(
            "hantu_job_duration_seconds", "Job run durations on the scheduler's clock", ["job"],
            buckets=_JOB_BUCKETS, registry=r,
        )  # fmt: skip
        self.job_state = Gauge(
            "hantu_job_last_state", "1 for the state the job's last run ended in",
            ["job", "state"], registry=r,
        )  # fmt: skip
        self.crash_recoveries = Counter(
            "hantu_crash_recoveries", "Units recovered after their process died", ["job"],
            registry=r,
        )  # fmt: skip
        self.day_not_done = Gauge(
            "hantu_day_units_not_done", "Units of the last ended day that are not done",
            registry=r,
        )  # fmt: skip
        self.days = Counter(
            "hantu_days_ended", "Trading days ended, complete or not", ["complete"], registry=r
        )
        self.orders = Gauge(
            "hantu_orders", "Today's orders by record status", ["status"], registry=r
        )
        self.filled_orders = Gauge("hantu_filled_orders", "Today's orders with fills", registry=r)
        self.filled_quantity = Gauge(
            "hantu_filled_quantity", "Shares filled today (sum over orders)", registry=r
        )
        self.orders_unknown = Counter(
            "hantu_order_outcome_unknown", "Orders whose outcome was unknown", registry=r
        )
        self.orders_reconciled = Counter(
            "hantu_orders_reconciled", "Reconciliations of unknown orders by result", ["result"],
            registry=r,
        )  # fmt: skip
        self.written = Gauge(
            "hantu_metrics_written_timestamp_seconds", "When this file was written (Unix time)",
            registry=r,
        )  # fmt: skip
        if alerts is not None:
            r.register(_AlertCollector(alerts))
        self._lock = threading.Lock()
        self._order_statuses: set[str] = set()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- inputs ---

    def observe(self, event: ClientEvent) -> None:
        """kisclient's observer (pass it as ``observer=``)."""
        if type(event) is RequestObserved:
            self.requests.labels(event.route, event.path, event.outcome).inc()
            if event.outcome == "EGW00201":
                self.rate_limited.labels(event.route).inc()
            if event.path == TOKEN_PATH:
                if event.ok:
                    self.token_issuances.labels(event.route).inc()
                elif event.status is not None:  # KIS answered with a refusal
                    self.token_refusals.labels(event.route, event.outcome).inc()
        elif type(event) is AdmissionWaited:
            self.limiter_wait.labels(event.route).observe(event.seconds)
        elif type(event) is StreamObserved:
            if event.kind == "dropped":
                self.stream_dropped.inc(event.count)
            else:
                self.stream.labels(event.kind).inc(event.count)

    def record(self, event: Event) -> None:
        """A scheduler event (:mod:`hantu_sched._events`)."""
        if isinstance(event, JobFinished):
            job = event.key.job
            self.job_runs.labels(job, event.state).inc()
            self.job_duration.labels(job).observe(max(event.seconds, 0.0))
            for state in _JOB_STATES:
                self.job_state.labels(job, state).set(1 if state == event.state else 0)
        elif isinstance(event, CrashRecovered):
            self.crash_recoveries.labels(event.key.job).inc()
        elif isinstance(event, DayEnded):
            self.day_not_done.set(len(event.not_done))
            self.days.labels("true" if event.complete else "false").inc()
        elif isinstance(event, OrdersTallied):
            with self._lock:
                for status in self._order_statuses - set(event.orders):
                    self.orders.labels(status).set(0)
                self._order_statuses |= set(event.orders)
            for status, count in event.orders.items():
                self.orders.labels(status).set(count)
            self.filled_orders.set(sum(1 for q in event.fills.values() if q))
            self.filled_quantity.set(sum(event.fills.values()))
        elif isinstance(event, OrderOutcomeUnknownSeen):
            self.orders_unknown.inc()
        elif isinstance(event, OrderReconciled):
            self.orders_reconciled.labels(event.result).inc()

    # --- outputs ---

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def write_textfile(self, path: pathlib.Path) -> None:
        """Write :meth:`render` to *path* atomically (readers see the old or the new file),
        mode 0644, creating the directory; stamps ``hantu_metrics_written_timestamp_seconds``."""
        self.written.set_to_current_time()
        atomic_write_bytes(path, self.render(), mode=0o644)

    def serve(self, port: int) -> int:
        """Serve ``/metrics`` on 127.0.0.1:*port* (0: any free port) in a daemon thread; the
        port. Only loopback: put a reverse proxy in front to expose it."""
        if self._server is not None:
            raise RuntimeError("the metrics endpoint is already served")
        self._server, self._thread = start_http_server(
            port, addr="127.0.0.1", registry=self.registry
        )
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint, if served."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
