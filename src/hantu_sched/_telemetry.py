"""The runner's telemetry: one object that turns events into alerts and metrics.

:class:`Telemetry` is the scheduler's event sink (:meth:`Telemetry.emit`) and the clients'
observer (:meth:`Telemetry.observe`). Each event is counted (:class:`~hantu_sched._prometheus.
Metrics`) and, when alert-worthy (:func:`~hantu_sched._alerts.alert_for`), queued for delivery
(:class:`~hantu_sched._alerts.AlertDispatcher`); neither blocks nor raises into the caller. A
writer thread rewrites the metrics textfile every ``metrics.interval_seconds`` and soon after a
job ends (at most once a second); :meth:`Telemetry.close` writes it a last time and delivers
what is queued.

:func:`build_telemetry` makes it from the settings (``run`` and ``simulate`` both call it);
:func:`load_alert_secrets` reads the channels' secrets from the environment, then the
credentials file.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
from collections.abc import Mapping

from kisclient import ClientEvent

from ._alerts import AlertDispatcher, alert_for
from ._clock import Clock, SystemClock
from ._events import DayEnded, Event, JobFinished
from ._notifiers import (
    EmailNotifier,
    Notifier,
    SlackNotifier,
    TelegramNotifier,
    WebhookNotifier,
)
from ._prometheus import Metrics
from ._telemetry_config import ALERT_SECRET_VARS, AlertSecrets, TelemetryConfig

__all__ = ["Telemetry", "build_telemetry", "load_alert_secrets", "make_channels"]

_LOG = logging.getLogger("hantu_sched.telemetry")

#: Real seconds between two textfile writes at least (the last write at exit is immediate).
MIN_WRITE_GAP_S = 1.0


class Telemetry:
    """Events → metrics and alerts (see the module docstring).

    *clock* stamps kisclient's events (they carry no time); *alerts* and *metrics* may each be
    ``None`` (off). With *textfile*, :meth:`start` starts the writer thread (every *interval_s*
    real seconds, and when a job ends); with *http_port* (> 0) it serves ``/metrics`` on
    127.0.0.1.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        alerts: AlertDispatcher | None = None,
        metrics: Metrics | None = None,
        textfile: pathlib.Path | None = None,
        interval_s: float = 15.0,
        http_port: int = 0,
    ) -> None:
        self.clock = clock
        self.alerts = alerts
        self.metrics = metrics
        self.textfile = textfile if metrics is not None else None
        self.interval_s = interval_s
        self.http_port = http_port
        self.port: int | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> Telemetry:
        """Start the alert workers, the textfile writer and the HTTP endpoint (as configured)."""
        if self.alerts is not None:
            self.alerts.start()
        if self.metrics is not None and self.http_port > 0:
            self.port = self.metrics.serve(self.http_port)
            _LOG.info("metrics served on http://127.0.0.1:%d/metrics", self.port)
        if self.textfile is not None and self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="hantu-metrics-writer", daemon=True
            )
            self._writer.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Deliver queued alerts (at most *timeout* s), write the textfile a last time (with
        those deliveries counted), stop."""
        self._stopping = True
        self._closing.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=timeout)
            self._writer = None
        if self.alerts is not None and self.alerts.started:
            self.alerts.flush(timeout)
        self.write()
        if self.alerts is not None:
            self.alerts.close(0)
        if self.metrics is not None:
            self.metrics.close()

    def __enter__(self) -> Telemetry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inputs ---

    def emit(self, event: Event) -> None:
        """The scheduler's event sink."""
        if self.metrics is not None:
            self.metrics.record(event)
        if self.alerts is not None:
            alert = alert_for(event, self.clock.now())
            if alert is not None:
                self.alerts.submit(alert)
        if isinstance(event, JobFinished | DayEnded):
            self._wake.set()

    def observe(self, event: ClientEvent) -> None:
        """The clients' observer (``observer=``)."""
        if self.metrics is not None:
            self.metrics.observe(event)
        if self.alerts is not None:
            alert = alert_for(event, self.clock.now())
            if alert is not None:
                self.alerts.submit(alert)

    # --- the textfile ---

    def write(self) -> None:
        """Write the metrics textfile now (if configured); a failure is logged, not raised."""
        if self.metrics is None or self.textfile is None:
            return
        try:
            self.metrics.write_textfile(self.textfile)
        except OSError as exc:
            _LOG.warning("cannot write the metrics textfile %s: %s", self.textfile, exc)

    def _write_loop(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopping:
                return
            self.write()
            # at most one write per MIN_WRITE_GAP_S (rendering holds the GIL: a burst of job ends
            # must not take the scheduler's time); a wake during the gap writes right after it
            if self._closing.wait(MIN_WRITE_GAP_S):
                return


def load_alert_secrets(
    credentials_file: pathlib.Path | None, environ: Mapping[str, str] | None = None
) -> AlertSecrets:
    """The channels' secrets: the environment's ``HANTU_ALERT_*`` variables, completed from the
    credentials file (same file and mode rule as the KIS credentials)."""
    from ._settings import _read_credentials_file  # noqa: PLC0415 - _settings imports us

    environ = os.environ if environ is None else environ
    values = {k: environ[k] for k in ALERT_SECRET_VARS if environ.get(k, "").strip()}
    if credentials_file is not None and len(values) < len(ALERT_SECRET_VARS):
        from_file = _read_credentials_file(credentials_file)
        values = {**{k: v for k, v in from_file.items() if k in ALERT_SECRET_VARS}, **values}
    return AlertSecrets.from_vars(values)


def make_channels(config: TelemetryConfig, secrets: AlertSecrets) -> list[Notifier]:
    """The channels the configuration enables (see ``docs/operations.md``)."""
    timeout = config.alert_timeout_seconds
    channels: list[Notifier] = []
    if secrets.webhook_url:
        channels.append(WebhookNotifier(secrets.webhook_url, timeout))
    if secrets.slack_webhook_url:
        channels.append(SlackNotifier(secrets.slack_webhook_url, timeout))
    if secrets.telegram_bot_token and config.telegram_chat_id:
        channels.append(
            TelegramNotifier(
                secrets.telegram_bot_token,
                config.telegram_chat_id,
                config.telegram_base_url,
                timeout,
            )
        )
    if config.smtp_host and config.email_to:
        channels.append(
            EmailNotifier(
                config.smtp_host,
                config.smtp_port,
                config.email_to,
                config.email_from or (config.smtp_user or "hantu_sched@localhost"),
                security=config.smtp_security,
                user=config.smtp_user,
                password=secrets.smtp_password,
                timeout_s=timeout,
            )
        )
    return channels


def build_telemetry(
    config: TelemetryConfig,
    data_dir: pathlib.Path,
    clock: Clock,
    *,
    secrets: AlertSecrets | None = None,
    delivery_clock: Clock | None = None,
    textfile: pathlib.Path | None = None,
) -> Telemetry:
    """The runner's :class:`Telemetry` (not started). *clock* stamps events (the scheduler's);
    *delivery_clock* paces deliveries (default the system clock: a simulated day's fake clock
    must not be advanced by a delivery's backoff). *textfile* overrides the configured path."""
    channels = make_channels(config, secrets or AlertSecrets())
    alerts = (
        AlertDispatcher(
            channels,
            clock=delivery_clock or SystemClock(),
            kinds=config.alert_events,
            min_severity=config.alert_min_severity,
            rate_per_minute=config.alert_rate_per_minute,
            queue_size=config.alert_queue_size,
            max_attempts=config.alert_max_attempts,
            backoff_s=config.alert_backoff_seconds,
        )
        if channels
        else None
    )
    metrics = Metrics(alerts) if config.metrics_enabled else None
    return Telemetry(
        clock=clock,
        alerts=alerts,
        metrics=metrics,
        textfile=textfile or config.textfile(data_dir),
        interval_s=config.metrics_interval_seconds,
        http_port=config.metrics_http_port,
    )
