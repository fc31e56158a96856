"""The exception tree. Each branch says what happened to the request.

- :class:`RequestNotSent` — nothing reached KIS; sending again is safe.
- :class:`KISRejected` — KIS answered and definitely refused (auth, rate limit, business rule,
  wrong environment, bad request, a gateway failure reported with an envelope).
- :class:`OutcomeUnknown` — the request may or may not have been processed (read timeout,
  connection lost after sending, a 5xx without a KIS envelope, a malformed answer).
  :class:`OrderOutcomeUnknown` is the order-specific case: reconcile before resending.

Input validation errors are :class:`ValueError` subclasses and are raised before anything is sent.
No exception text or repr ever contains an app key, secret, token or account number; ``raw_body``
and ``msg1`` pass through :func:`kisclient._redaction.redact` when the error is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._codes import CodeInfo, lookup
from ._redaction import redact

__all__ = [
    "AuthError",
    "BadRequest",
    "BusinessRejection",
    "ConfigurationError",
    "EndpointUnavailable",
    "GatewayError",
    "InvalidAccount",
    "InvalidISIN",
    "InvalidStockCode",
    "KISConnectionError",
    "KISError",
    "KISRejected",
    "MarketClosed",
    "OrderNotRevisable",
    "OrderOutcomeUnknown",
    "OutcomeUnknown",
    "RateLimited",
    "RequestNotSent",
    "RetryBudgetExhausted",
    "ServiceUnavailable",
    "StreamSlotBusy",
    "SubscriptionLimitExceeded",
    "TokenError",
    "TokenIssueThrottled",
    "ValidationError",
    "WrongEnvironment",
]


class KISError(Exception):
    """Base of every error the client raises about a request.

    Attributes: ``msg_cd`` and ``msg1`` (KIS's code and text, or the token endpoint's
    ``error_code`` / ``error_description``), ``http_status``, ``tr_id``, ``raw_body`` (the response
    text, if any, with account numbers, paging keys and credentials masked; never part of
    ``str()`` or ``repr()``) and ``attempts`` (how many times the request was sent). ``msg1`` is
    masked the same way.
    """

    def __init__(
        self,
        message: str,
        *,
        msg_cd: str | None = None,
        msg1: str | None = None,
        http_status: int | None = None,
        tr_id: str | None = None,
        raw_body: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.msg_cd = msg_cd
        self.msg1 = None if msg1 is None else redact(msg1)
        self.http_status = http_status
        self.tr_id = tr_id
        self.raw_body = None if raw_body is None else redact(raw_body)
        self.attempts = attempts

    def __str__(self) -> str:
        details = []
        if self.msg_cd:
            details.append(f"{self.msg_cd}: {self.msg1 or ''}".rstrip(": "))
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.tr_id:
            details.append(f"tr_id {self.tr_id}")
        if self.attempts > 1:
            details.append(f"after {self.attempts} attempts")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @property
    def code_info(self) -> CodeInfo | None:
        """The message-code table's row for :attr:`msg_cd`, if the code is known."""
        return lookup(self.msg_cd)


# --- not sent -------------------------------------------------------------------------------


class RequestNotSent(KISError):
    """Nothing reached KIS; the same request can be sent again safely."""


class KISConnectionError(RequestNotSent):
    """No connection could be made (DNS, refused, connect timeout)."""


class EndpointUnavailable(RequestNotSent):
    """The endpoint does not exist in this environment (for example a real-only call on paper)."""


class RetryBudgetExhausted(RequestNotSent):
    """The client's retry budget is spent (an outage is in progress); the retry was not sent."""


# --- rejected -------------------------------------------------------------------------------


class KISRejected(KISError):
    """KIS answered and refused the request. The outcome is definite: nothing was done."""


class AuthError(KISRejected):
    """Credentials, permission or identity refused (EGW00103, EGW00105, EGW00206...)."""


class TokenError(AuthError):
    """The access token was refused (expired, revoked, unknown) and could not be renewed."""


class TokenIssueThrottled(AuthError):
    """Token issuance refused: at most one issuance per minute per app key (EGW00133)."""


class RateLimited(KISRejected):
    """The per-second limit was exceeded (EGW00201) and retries did not get through."""


class WrongEnvironment(KISRejected):
    """The call does not belong to this environment (EGW02004, a real-only tr_id on paper)."""


class BadRequest(KISRejected):
    """The request is malformed (HTTP 4xx or a request-format code); repeating cannot help."""


class BusinessRejection(KISRejected):
    """A business rule refused the request: HTTP 200 with ``rt_cd`` other than ``"0"``."""


class MarketClosed(BusinessRejection):
    """A paper order outside market hours (40580000)."""


class OrderNotRevisable(BusinessRejection):
    """A revision or cancellation was refused because the order has nothing (or less than
    asked) left to change: it already filled, was cancelled, or was revised away."""


class ServiceUnavailable(KISRejected):
    """The gateway reported a temporary failure with an envelope, and retries did not help."""


# --- outcome unknown ------------------------------------------------------------------------


class OutcomeUnknown(KISError):
    """The request may or may not have been processed (timeout, lost connection, bare 5xx)."""


class GatewayError(OutcomeUnknown):
    """An answer that is not a KIS envelope: a bare 5xx, malformed or truncated JSON."""


class OrderOutcomeUnknown(OutcomeUnknown):
    """An order may have been executed although no answer says so.

    ``request`` holds what was sent (side, code, quantity, price, tr_id; no secrets). Reconcile it
    with :meth:`kisclient.KISClient.reconcile_order` before sending anything again.
    """

    def __init__(self, message: str, *, request: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request = dict(request)


# --- real-time streams ----------------------------------------------------------------------


class StreamSlotBusy(KISError):
    """Another process on this app key and state directory owns the WebSocket session.

    KIS allows one session per app key; a second socket is refused with OPSP8996 and can keep the
    slot locked for a long time. ``owner_pid`` and ``owner_host`` name the owner when known.
    """

    def __init__(
        self, message: str, *, owner_pid: int | None = None, owner_host: str | None = None
    ) -> None:
        super().__init__(message)
        self.owner_pid = owner_pid
        self.owner_host = owner_host


class SubscriptionLimitExceeded(KISError):
    """Subscribing would take the session past KIS's 41 registrations; nothing was sent."""


# --- bad input ------------------------------------------------------------------------------


class ValidationError(ValueError):
    """Bad input, found before anything was sent."""


class InvalidStockCode(ValidationError):
    """Not a KRX short code (the grammar: ``docs/kisclient-guide.md``, stock codes)."""


class InvalidISIN(ValidationError):
    """Not a well-formed ISIN, or its check digit is wrong."""


class InvalidAccount(ValidationError):
    """Not an 8+2 digit KIS account number."""


class ConfigurationError(ValueError):
    """Client configuration is missing or inconsistent (for example an unset variable)."""
