"""Alert channels: a generic JSON webhook, Telegram, Slack (all over httpx) and e-mail (smtplib).

A :class:`Notifier` delivers one :class:`Alert` or raises :class:`DeliveryError` saying whether
trying again may help (and, when the receiver said so, after how long). Payloads are built by
pure functions (:func:`webhook_payload`, :func:`telegram_payload`, :func:`slack_payload`,
:func:`email_message`) so their shapes are tested without a network.

Secrets (webhook URLs, the bot token, the SMTP password) are held with ``repr=False``, never put
in an error message, and registered with :func:`redact_in_logs` so httpx's request log line
(``HTTP Request: POST https://api.telegram.org/bot<token>/...``) shows ``***`` instead.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import html
import logging
import smtplib
import ssl
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import httpx

__all__ = [
    "Alert",
    "DeliveryError",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "TelegramNotifier",
    "WebhookNotifier",
    "email_message",
    "redact_in_logs",
    "slack_payload",
    "telegram_payload",
    "webhook_payload",
]


@attrs.frozen
class Alert:
    """One message for the operator. ``kind`` is one of
    :data:`~hantu_sched._telemetry_config.ALERT_KINDS`; ``severity`` ``info``, ``warning`` or
    ``critical``; ``fields`` are the facts as short strings (shown as a list)."""

    kind: str
    severity: str
    title: str
    text: str
    at: dt.datetime
    fields: Mapping[str, str] = attrs.field(factory=dict)


class DeliveryError(Exception):
    """A delivery failed. ``retryable``: trying again may succeed (network, 5xx, 429);
    ``retry_after``: seconds the receiver asked to wait, if it did. The message never holds a
    secret (no URL, no token)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """A channel. ``name`` labels metrics and log lines; ``send`` delivers or raises
    :class:`DeliveryError`; ``close`` releases connections."""

    name: str

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


# --- redaction ------------------------------------------------------------------------------------

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


class _RedactSecrets(logging.Filter):
    """Replaces every registered secret in a record's message with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _SECRETS_LOCK:
            secrets = sorted(_SECRETS, key=len, reverse=True)
        if not secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = _RedactSecrets()


def redact_in_logs(*secrets: str | None) -> None:
    """Never let *secrets* reach a log line of httpx or httpcore (their request lines carry
    the URL, and a webhook URL or the Telegram URL holds a token)."""
    with _SECRETS_LOCK:
        _SECRETS.update(s for s in secrets if s)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# --- payloads (pure) ------------------------------------------------------------------------------

_ICONS = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The generic webhook's JSON body: every field of the alert, the time in ISO 8601."""
    return {
        "source": "hantu_sched",
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "text": alert.text,
        "at": alert.at.isoformat(),
        "fields": dict(alert.fields),
    }


def telegram_payload(alert: Alert, chat_id: str) -> dict[str, Any]:
    """The Bot API ``sendMessage`` body (HTML parse mode, escaped; at most 4096 characters)."""
    lines = [f"{_ICONS.get(alert.severity, '')} <b>{html.escape(alert.title)}</b>"]
    if alert.text:
        lines.append(html.escape(alert.text))
    lines += [f"<i>{html.escape(k)}</i>: {html.escape(v)}" for k, v in alert.fields.items()]
    text = "\n".join(lines)
    return {
        "chat_id": chat_id,
        "text": text if len(text) <= 4096 else text[:4093] + "...",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """An incoming webhook's JSON body: ``text`` (the notification's fallback) and blocks."""
    title = f"{_ICONS.get(alert.severity, '')} {_slack_escape(alert.title)}".strip()
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}
    ]
    if alert.text:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.text)}}
        )
    if alert.fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_slack_escape(k)}*\n{_slack_escape(v)}"}
                    for k, v in list(alert.fields.items())[:10]  # Slack's limit per section
                ],
            }
        )
    return {"text": f"{title}: {_slack_escape(alert.text)}", "blocks": blocks}


def email_message(
    alert: Alert, sender: str, recipients: Sequence[str]
) -> email.message.EmailMessage:
    """The e-mail: ``[hantu_sched] SEVERITY: title``, a plain-text body with the facts."""
    message = email.message.EmailMessage()
    message["Subject"] = f"[hantu_sched] {alert.severity.upper()}: {alert.title}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.format_datetime(alert.at)
    message["Message-ID"] = email.utils.make_msgid(domain="hantu-sched.local")
    body = [alert.title, "", alert.text, ""] if alert.text else [alert.title, ""]
    body += [f"{k}: {v}" for k, v in alert.fields.items()]
    body += ["", f"at {alert.at.isoformat()} ({alert.kind})"]
    message.set_content("\n".join(body))
    return message


# --- HTTP channels --------------------------------------------------------------------------------


def _post(http: httpx.Client, url: str, body: Mapping[str, Any], what: str) -> httpx.Response:
    """POST *body* as JSON; the answer if 2xx, else :class:`DeliveryError` (no URL in it)."""
    try:
        response = http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}", retryable=True) from None
    if response.is_success:
        return response
    retry_after = _retry_after(response)
    retryable = response.status_code == 429 or response.status_code >= 500
    raise DeliveryError(
        f"{what}: HTTP {response.status_code}", retryable=retryable, retry_after=retry_after
    )


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:  # Telegram: {"ok": false, "parameters": {"retry_after": 5}}
            value = response.json().get("parameters", {}).get("retry_after")
        except (ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, int | float) else None
    return None


@attrs.define
class WebhookNotifier:
    """POSTs :func:`webhook_payload` to a URL (``HANTU_ALERT_WEBHOOK_URL``)."""

    url: str = attrs.field(repr=False)
    timeout_s: float = 10.0
    name: str = "webhook"
    _http: httpx.Client = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        redact_in_logs(self.url)
        self._http = httpx.Client(timeout=self.timeout_s)

    def send(self, alert: Alert) -> None:
        _post(self._http, self.url, webhook_payload(alert), self.name)

    def close(self) -> None:
        self._http.close()


@attrs.define
class SlackNotifier:
    """POSTs :func:`slack_payload` to a Slack incoming webhook
    (``HANTU_ALERT_SLACK_WEBHOOK_URL``)."""

    url: str = attrs.field(repr=False)
    timeout_s: float = 10.0
    name: str = "slack"
    _http: httpx.Client = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        redact_in_logs(self.url)
        self._http = httpx.Client(timeout=self.timeout_s)

    def send(self, alert: Alert) -> None:
        _post(self._http, self.url, slack_payload(alert), self.name)

    def close(self) -> None:
        self._http.close()


@attrs.define
class TelegramNotifier:
    """Calls the Bot API's ``sendMessage`` (:func:`telegram_payload`) at *base_url*
    (``alerts.telegram_base_url``) with the bot token (``HANTU_ALERT_TELEGRAM_BOT_TOKEN``)."""

    token: str = attrs.field(repr=False)
    chat_id: str
    base_url: str = "https://api.telegram.org"
    timeout_s: float = 10.0
    name: str = "telegram"
    _http: httpx.Client = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        redact_in_logs(self.token)
        self._http = httpx.Client(timeout=self.timeout_s)

    def send(self, alert: Alert) -> None:
        url = f"{self.base_url.rstrip('/')}/bot{self.token}/sendMessage"
        response = _post(self._http, url, telegram_payload(alert, self.chat_id), self.name)
        try:
            ok = response.json().get("ok")
        except (ValueError, AttributeError):
            ok = None
        if ok is not True:
            raise DeliveryError(f"{self.name}: the Bot API did not say ok", retryable=False)

    def close(self) -> None:
        self._http.close()


# --- e-mail ---------------------------------------------------------------------------------------


@attrs.define
class EmailNotifier:
    """Sends :func:`email_message` through an SMTP server (standard library ``smtplib``):
    ``security`` is ``starttls``, ``ssl`` or ``none``; it logs in when *user* is set."""

    host: str
    port: int
    recipients: tuple[str, ...]
    sender: str
    security: str = "starttls"
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout_s: float = 10.0
    name: str = "email"

    def __attrs_post_init__(self) -> None:
        redact_in_logs(self.password)

    def send(self, alert: Alert) -> None:
        message = email_message(alert, self.sender, self.recipients)
        try:
            with self._connect() as smtp:
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError(f"{self.name}: login refused", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(f"{self.name}: recipients refused", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{self.name}: SMTP {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}", retryable=True) from None

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            try:
                smtp.starttls(context=ssl.create_default_context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def close(self) -> None:
        """Nothing to release: each delivery has its own connection."""
