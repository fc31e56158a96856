"""The alerts' and metrics' configuration (the ``[alerts]`` and ``[metrics]`` tables).

:class:`TelemetryConfig` holds what may be written in the TOML file; the rows of
:data:`hantu_sched._settings.SETTINGS` (``alerts.*``, ``metrics.*``) fill it. The secrets —
webhook URLs (they carry their own token), the Telegram bot token and the SMTP password — are
never configuration: only the environment or the credentials file sets them
(:data:`ALERT_SECRET_VARS`), and :class:`AlertSecrets` keeps them out of every repr.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "ALERT_KINDS",
    "ALERT_SECRET_KEYS",
    "ALERT_SECRET_VARS",
    "SEVERITIES",
    "AlertSecrets",
    "TelemetryConfig",
]

#: Every kind of alert (``alerts.events`` picks among them).
ALERT_KINDS: Final = (
    "job_failed",
    "day_incomplete",
    "crash_recovered",
    "order_outcome_unknown",
    "order_reconciled",
    "token_refused",
    "stream_slot_locked",
    "performance",
)
#: Severities, least to most severe.
SEVERITIES: Final = ("info", "warning", "critical")

#: The secret environment variables (also accepted in the credentials file).
ALERT_SECRET_VARS: Final = (
    "HANTU_ALERT_WEBHOOK_URL",
    "HANTU_ALERT_SLACK_WEBHOOK_URL",
    "HANTU_ALERT_TELEGRAM_BOT_TOKEN",
    "HANTU_ALERT_SMTP_PASSWORD",
)
#: The same secrets as ``[alerts]`` keys: refused in the TOML file with a clear message.
ALERT_SECRET_KEYS: Final = frozenset(
    {"webhook_url", "slack_webhook_url", "telegram_bot_token", "bot_token", "smtp_password"}
)


@attrs.frozen
class AlertSecrets:
    """The alert channels' secrets (from the environment or the credentials file)."""

    webhook_url: str | None = attrs.field(default=None, repr=False)
    slack_webhook_url: str | None = attrs.field(default=None, repr=False)
    telegram_bot_token: str | None = attrs.field(default=None, repr=False)
    smtp_password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_vars(cls, values: Mapping[str, str]) -> AlertSecrets:
        """From ``HANTU_ALERT_*`` variables (empty values count as unset)."""

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        return cls(
            webhook_url=get("HANTU_ALERT_WEBHOOK_URL"),
            slack_webhook_url=get("HANTU_ALERT_SLACK_WEBHOOK_URL"),
            telegram_bot_token=get("HANTU_ALERT_TELEGRAM_BOT_TOKEN"),
            smtp_password=get("HANTU_ALERT_SMTP_PASSWORD"),
        )


@attrs.frozen
class TelemetryConfig:
    """Alerts and metrics settings (see ``docs/configuration.md``, "Alerts and metrics")."""

    alert_events: tuple[str, ...] = ALERT_KINDS
    alert_min_severity: str = "info"
    alert_rate_per_minute: float = 20.0
    alert_queue_size: int = 100
    alert_max_attempts: int = 5
    alert_backoff_seconds: float = 2.0
    alert_timeout_seconds: float = 10.0
    telegram_chat_id: str | None = None
    telegram_base_url: str = "https://api.telegram.org"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_user: str | None = None
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    metrics_enabled: bool = True
    metrics_textfile: pathlib.Path | None = None
    metrics_http_port: int = 0
    metrics_interval_seconds: float = 15.0

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TelemetryConfig:
        """From the resolved ``alerts.*`` / ``metrics.*`` settings (``None``: the default)."""
        names = {
            "alerts.events": "alert_events",
            "alerts.min_severity": "alert_min_severity",
            "alerts.rate_per_minute": "alert_rate_per_minute",
            "alerts.queue_size": "alert_queue_size",
            "alerts.max_attempts": "alert_max_attempts",
            "alerts.backoff_seconds": "alert_backoff_seconds",
            "alerts.timeout_seconds": "alert_timeout_seconds",
            "alerts.telegram_chat_id": "telegram_chat_id",
            "alerts.telegram_base_url": "telegram_base_url",
            "alerts.smtp_host": "smtp_host",
            "alerts.smtp_port": "smtp_port",
            "alerts.smtp_security": "smtp_security",
            "alerts.smtp_user": "smtp_user",
            "alerts.email_from": "email_from",
            "alerts.email_to": "email_to",
            "metrics.enabled": "metrics_enabled",
            "metrics.textfile": "metrics_textfile",
            "metrics.http_port": "metrics_http_port",
            "metrics.interval_seconds": "metrics_interval_seconds",
        }
        kwargs = {field: values[key] for key, field in names.items() if values.get(key) is not None}
        if "alert_min_severity" in kwargs:
            kwargs["alert_min_severity"] = str(kwargs["alert_min_severity"]).lower()
        if "smtp_security" in kwargs:
            kwargs["smtp_security"] = str(kwargs["smtp_security"]).lower()
        return cls(**kwargs)

    def textfile(self, data_dir: pathlib.Path) -> pathlib.Path:
        """The node-exporter textfile (default ``<data_dir>/metrics/hantu_sched.prom``)."""
        return self.metrics_textfile or data_dir / "metrics" / "hantu_sched.prom"
