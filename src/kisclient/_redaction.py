"""Keeping secrets out of logs and exception details.

:func:`redact` masks the values of sensitive fields in any text kisclient might show: query
strings (``CANO=12345678&...``), JSON or Python-literal bodies (``"ctx_area_fk100": "..."``,
including a body cut off in the middle of a value), ``Bearer`` credentials and bare JWTs.
Sensitive fields are the account (``CANO``, ``ACNT_PRDT_CD``), the paging keys that embed it
(``CTX_AREA_*``), and every credential (app key and secret, access token, approval key, token);
names match case-insensitively.

:func:`install_log_redaction` puts a :class:`RedactingFilter` on the loggers of the HTTP stack,
whose request lines carry full URLs (``HTTP Request: GET https://...?CANO=...``).
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "RedactingFilter", "install_log_redaction", "redact", "without_frame_traces"]

#: What a secret value is replaced with.
MASK = "***"

#: Field names whose values are secret (a regular expression, matched case-insensitively).
_SECRET_FIELD = (
    r"cano|acnt_prdt_cd|ctx_area_\w+|appkey|appsecret|secretkey|access_token|approval_key|token"
)
#: ``name=value`` in a query string or form (value up to ``&``, whitespace or a quote).
_QUERY_FIELD = re.compile(rf"(?i)(?<![\w-])({_SECRET_FIELD})=([^&\s\"'#]*)")
#: ``"name": "value"`` or ``'name': 'value'`` in JSON or a Python literal; the value may be cut
#: off (no closing quote) in a truncated body.
_QUOTED_FIELD = re.compile(
    rf"""(?i)(["'])({_SECRET_FIELD})\1(\s*:\s*)(["'])(?:\\.|(?!\4).)*(?:\4|$)""", re.DOTALL
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+")
#: A JWT (header starts with ``{"`` → ``eyJ``), whole or cut off after its first part.
_JWT = re.compile(r"\beyJ[\w-]+(?:\.[\w-]*){0,2}")

#: The loggers that print request URLs (httpx: ``HTTP Request: GET <url> ...`` at INFO). httpcore's
#: DEBUG traces name the method and host only.
_HTTP_LOGGERS = ("httpx",)


def redact(text: str) -> str:
    """*text* with every secret value replaced by :data:`MASK`; field names stay readable.

    Pure and idempotent; never raises. Text without a secret field comes back unchanged.
    """
    text = _QUERY_FIELD.sub(rf"\1={MASK}", text)
    text = _QUOTED_FIELD.sub(rf"\1\2\1\3\4{MASK}\4", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    return _JWT.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through :func:`redact` (never drops a record).

    The message is formatted once here and its arguments dropped, so every handler, whatever
    its formatter, sees only the redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Put the redacting filter on the HTTP stack's loggers. Idempotent; called by every client.

    A logger's filters apply to the records it creates itself, so the filter is installed on
    each logger that logs requests, not on a parent.
    """
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class _NoFrameTraces(logging.LoggerAdapter[logging.Logger]):
    """A websockets logger without its DEBUG traces.

    At DEBUG, websockets logs every frame's text (``> TEXT '{"header":{"approval_key":...'``):
    the approval key, the HTS ID of the notices' registration and the AES key/iv of their acks
    would reach the logs. Its INFO and higher records (none carries a payload) pass.
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def without_frame_traces(name: str) -> logging.LoggerAdapter[logging.Logger]:
    """The logger *name* (``websockets.client`` / ``websockets.server``) for a connection
    whose frames carry secrets: everything but the DEBUG frame traces."""
    return _NoFrameTraces(logging.getLogger(name))
