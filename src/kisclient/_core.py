"""The no-I/O core of both clients: building requests, classifying attempts, deciding retries.

The sync and async clients differ only in how they send and sleep; every decision about a
request lives here as plain functions over attrs records, so one test suite covers both.

The flow of one call (see :func:`classify`)::

    rate limit → valid token → build headers from the current token → send → Attempt → Verdict
    Verdict.action: "success" | "retry" | "fail"; side effects: refresh_token, penalize_s
"""

from __future__ import annotations

import email.utils
import enum
import json
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import httpx

from ._codes import MARKET_CLOSED, CodeInfo, Kind, lookup
from ._config import Endpoint
from ._errors import (
    AuthError,
    BadRequest,
    BusinessRejection,
    GatewayError,
    KISConnectionError,
    KISError,
    MarketClosed,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    TokenError,
    TokenIssueThrottled,
    WrongEnvironment,
)
from ._retries import RetryBudget, RetryPolicy

__all__ = [
    "FORBIDDEN_CALLER_HEADERS",
    "Attempt",
    "Call",
    "Phase",
    "RetryBudget",
    "RetryPolicy",
    "Verdict",
    "attempt_from_exception",
    "attempt_from_response",
    "build_headers",
    "classify",
    "next_page",
    "parse_http_date",
]

#: Headers the client owns. Callers may add ``tr_cont``, ``hashkey``, ``custtype`` and the like,
#: never these (they are rebuilt from the current token and credentials on every attempt).
FORBIDDEN_CALLER_HEADERS = frozenset({"authorization", "appkey", "appsecret", "secretkey"})


@attrs.frozen
class Call:
    """One logical request, independent of credentials and token.

    ``request`` is what an :class:`~kisclient.OrderOutcomeUnknown` reports for an order: a
    description without secrets.
    """

    endpoint: Endpoint
    tr_id: str | None = None
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    request: Mapping[str, Any] | None = None

    def __attrs_post_init__(self) -> None:
        clash = sorted(h for h in self.headers if h.lower() in FORBIDDEN_CALLER_HEADERS)
        if clash:
            raise ValueError(f"headers {clash} are set by the client and cannot be passed")

    @property
    def is_order(self) -> bool:
        """Whether the call has market side effects (never resent once it may have arrived)."""
        return not self.endpoint.idempotent


def build_headers(
    call: Call, *, app_key: str, app_secret: str, authorization: str | None
) -> dict[str, str]:
    """Return the request headers for one attempt of *call*.

    Called on every attempt so that a refreshed token is always the one sent.
    """
    headers = {"content-type": "application/json; charset=utf-8"}
    if call.endpoint.authenticated:
        if authorization is None:
            raise ValueError(f"{call.endpoint.name} needs an access token")
        headers["authorization"] = authorization
        headers["custtype"] = "P"
    if call.endpoint.key_headers:
        headers["appkey"] = app_key
        headers["appsecret"] = app_secret
    if call.tr_id:
        headers["tr_id"] = call.tr_id
    headers.update({k.lower(): v for k, v in call.headers.items()})
    return headers


class Phase(enum.Enum):
    """How far an attempt got."""

    #: Nothing left this process: no connection was made.
    NOT_SENT = "not_sent"
    #: The request may have been received, but no answer came back.
    MAYBE_SENT = "maybe_sent"
    #: An HTTP response arrived.
    RESPONDED = "responded"


@attrs.frozen
class Attempt:
    """Everything known about one attempt: the single record classification works on."""

    number: int
    phase: Phase
    status: int | None = None
    text: str | None = attrs.field(default=None, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    error: BaseException | None = None


def attempt_from_response(number: int, response: httpx.Response) -> Attempt:
    """Record a received response (its body must already be read).

    KIS answers in UTF-8 JSON; decoding directly skips httpx's charset detection, which costs
    more than the rest of the classification.
    """
    return Attempt(
        number=number,
        phase=Phase.RESPONDED,
        status=response.status_code,
        text=response.content.decode("utf-8", errors="replace"),
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def parse_http_date(value: str | None) -> float | None:
    """Unix seconds of an HTTP ``Date`` header (RFC 7231, whole seconds), or ``None``.

    The gateway stamps every answer with its own clock; this is how the client learns KIS's
    time (see ``ClientBase.clock_offset``).
    """
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000": RFC 5322 for "UTC, source unknown"
        return None
    return parsed.timestamp()


def attempt_from_exception(number: int, error: httpx.HTTPError) -> Attempt:
    """Record a transport failure, deciding whether the request could have been received."""
    not_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Attempt(
        number=number,
        phase=Phase.NOT_SENT if not_sent else Phase.MAYBE_SENT,
        error=error,
    )


@attrs.frozen
class Verdict:
    """What to do after an attempt.

    ``action``: ``"success"`` (``data`` holds the parsed body), ``"retry"`` (after ``wait_s``;
    ``error`` is what to raise if no retry is left) or ``"fail"`` (raise ``error``).
    ``refresh_token``: the server refused the token; get a new one before the next attempt.
    ``penalize_s``: the server said the rate limit was exceeded; hold the limiter this long.
    """

    action: Literal["success", "retry", "fail"]
    data: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    error: KISError | None = None
    wait_s: float = 0.0
    refresh_token: bool = False
    penalize_s: float = 0.0
    #: What the retry costs from the client's retry budget (0 for safe, expected retries).
    budget_cost: int = 0


_TRANSPORT_RETRY_WAIT_S = 0.5


def classify(call: Call, attempt: Attempt) -> Verdict:
    """Map every attempt of *call* to exactly one :class:`Verdict` (a total function).

    Rules (see ``docs/kisclient-guide.md``, errors and retries):

    - no connection made → retry (orders too);
    - possibly sent, no answer → reads retry; an order fails with
      :class:`~kisclient.OrderOutcomeUnknown`;
    - ``2xx`` with ``rt_cd == "0"`` (or a body with no envelope, as the token endpoints send)
      → success;
    - a known code → what the code table says: token codes refresh the token and retry,
      EGW00201 penalises the limiter and retries, transient codes retry reads, the rest fail
      with the matching :class:`~kisclient.KISRejected` subclass;
    - ``2xx`` with ``rt_cd != "0"`` and an unknown code → business rejection;
    - ``5xx`` without a usable envelope, or an unparseable body → reads retry; orders fail
      with :class:`~kisclient.OrderOutcomeUnknown`;
    - other ``4xx`` → :class:`~kisclient.BadRequest`, no retry.
    """
    if attempt.phase is Phase.NOT_SENT:
        error = KISConnectionError(
            f"could not connect: {type(attempt.error).__name__}",
            tr_id=call.tr_id,
            attempts=attempt.number,
        )
        return Verdict("retry", error=error, wait_s=_TRANSPORT_RETRY_WAIT_S, budget_cost=5)
    if attempt.phase is Phase.MAYBE_SENT:
        return _unknown(call, attempt, f"no response: {type(attempt.error).__name__}")

    status = attempt.status or 0
    body = _parse_json(attempt.text)
    if body is None:
        if 200 <= status < 300 or status >= 500:
            what = (
                "malformed JSON" if 200 <= status < 300 else f"HTTP {status} without a KIS envelope"
            )
            return _unknown(call, attempt, what)
        return Verdict(
            "fail", error=_error(BadRequest, f"HTTP {status}", call, attempt, None, None)
        )

    if "error_code" in body:  # the token endpoints' OAuth error shape
        return _token_endpoint_error(call, attempt, body)

    rt_cd = body.get("rt_cd")
    if rt_cd is None:
        if 200 <= status < 300:
            return Verdict("success", data=body)
        if status >= 500:
            return _unknown(call, attempt, f"HTTP {status} without a KIS envelope")
        return Verdict(
            "fail", error=_error(BadRequest, f"HTTP {status}", call, attempt, None, None)
        )

    msg_cd = _text(body.get("msg_cd"))
    msg1 = _text(body.get("msg1"))
    if str(rt_cd) == "0" and 200 <= status < 300:
        return Verdict("success", data=body)
    info = lookup(msg_cd)
    if info is None:
        return _unknown_code(call, attempt, status, msg_cd, msg1)
    return _known_code(call, attempt, status, info, msg_cd, msg1)


def _known_code(
    call: Call, attempt: Attempt, status: int, info: CodeInfo, msg_cd: str, msg1: str
) -> Verdict:
    """A code of the table: its ``kind`` picks the error class, its ``retryable`` and ``wait_s``
    whether and when to retry (the table users see through :func:`kisclient.lookup_code` is the
    one applied). An order is retried only on a refusal that certainly did nothing (rate limit,
    refused token); a transient failure of an order is final, or unknown on a 5xx."""

    def err(cls: type[KISError], what: str) -> KISError:
        return _error(cls, what, call, attempt, msg_cd, msg1)

    kind = info.kind
    retry: Literal["retry", "fail"] = "retry" if info.retryable else "fail"
    if kind is Kind.RATE_LIMITED:
        # The limiter does the waiting, for every caller sharing it.
        return Verdict(retry, error=err(RateLimited, "rate limit exceeded"), penalize_s=info.wait_s)
    if info.token_related:
        return Verdict(
            retry, error=err(TokenError, "access token refused"), refresh_token=info.retryable
        )
    if kind is Kind.TOKEN_THROTTLED:
        return Verdict(
            "fail" if call.is_order else retry,
            error=err(TokenIssueThrottled, "token issuance throttled"),
            wait_s=info.wait_s,
        )
    if kind is Kind.TRANSIENT:
        if call.is_order and status >= 500:
            return _unknown(call, attempt, f"gateway error {msg_cd} on an order", msg_cd, msg1)
        return Verdict(
            "fail" if call.is_order else retry,
            error=err(ServiceUnavailable, "temporary KIS failure"),
            wait_s=info.wait_s,
            budget_cost=5,
        )
    cls = _FINAL_ERRORS.get(kind, BusinessRejection)
    if msg_cd == MARKET_CLOSED.code:
        cls = MarketClosed
    what = _FINAL_TEXT.get(kind, "request refused")
    return Verdict(
        "fail" if call.is_order else retry, error=err(cls, what), wait_s=info.wait_s, budget_cost=5
    )


#: The error class of a code that is not retried, by kind (a success code in a failure envelope
#: is trusted as a failure: business rejection).
_FINAL_ERRORS: dict[Kind, type[KISError]] = {
    Kind.WRONG_ENVIRONMENT: WrongEnvironment,
    Kind.AUTH: AuthError,
    Kind.BAD_REQUEST: BadRequest,
}
_FINAL_TEXT = {
    Kind.WRONG_ENVIRONMENT: "wrong environment for this call",
    Kind.AUTH: "credentials refused",
    Kind.BAD_REQUEST: "request refused as malformed",
}


def _unknown_code(call: Call, attempt: Attempt, status: int, msg_cd: str, msg1: str) -> Verdict:
    if 200 <= status < 300:
        return Verdict(
            "fail", error=_error(BusinessRejection, "request refused", call, attempt, msg_cd, msg1)
        )
    if status >= 500:
        return _unknown(call, attempt, f"HTTP {status} with unknown code", msg_cd, msg1)
    return Verdict("fail", error=_error(BadRequest, f"HTTP {status}", call, attempt, msg_cd, msg1))


def _token_endpoint_error(call: Call, attempt: Attempt, body: Mapping[str, Any]) -> Verdict:
    """The token endpoints' ``error_code`` shape, read through the same code table."""
    code = _text(body.get("error_code"))
    description = _text(body.get("error_description"))
    info = lookup(code)
    if info is not None and info.kind is Kind.TRANSIENT and call.is_order:
        return _unknown(call, attempt, f"gateway error {code} on an order", code, description)
    cls: type[KISError] = AuthError
    what = "token endpoint refused"
    if info is not None and info.kind is Kind.TOKEN_THROTTLED:
        cls = TokenIssueThrottled
    elif info is not None and info.kind is Kind.TRANSIENT:
        cls, what = ServiceUnavailable, "token endpoint failed"
    # Only a failure of the endpoint itself, or throttling, is worth repeating; a code about the
    # token in this shape is a refusal of the credentials (there is no token to refresh yet).
    retryable = (
        info is not None
        and info.retryable
        and info.kind in (Kind.TRANSIENT, Kind.TOKEN_THROTTLED)
        and not call.is_order
    )
    return Verdict(
        "retry" if retryable else "fail",
        error=_error(cls, what, call, attempt, code, description),
        wait_s=info.wait_s if info is not None else 0.0,
        budget_cost=5 if cls is ServiceUnavailable else 0,
    )


def _unknown(
    call: Call, attempt: Attempt, what: str, msg_cd: str | None = None, msg1: str | None = None
) -> Verdict:
    """The request may have been processed: reads retry, orders must be reconciled."""
    if call.is_order:
        error: KISError = OrderOutcomeUnknown(
            f"order outcome unknown ({what}); reconcile before resending",
            request=call.request or {},
            msg_cd=msg_cd,
            msg1=msg1,
            http_status=attempt.status,
            tr_id=call.tr_id,
            raw_body=attempt.text,
            attempts=attempt.number,
        )
        return Verdict("fail", error=error)
    cls = GatewayError if attempt.phase is Phase.RESPONDED else OutcomeUnknown
    return Verdict(
        "retry",
        error=_error(cls, what, call, attempt, msg_cd, msg1),
        wait_s=_TRANSPORT_RETRY_WAIT_S,
        budget_cost=10 if attempt.error else 5,
    )


def _error(
    cls: type[KISError],
    what: str,
    call: Call,
    attempt: Attempt,
    msg_cd: str | None,
    msg1: str | None,
) -> KISError:
    return cls(
        what,
        msg_cd=msg_cd,
        msg1=msg1,
        http_status=attempt.status,
        tr_id=call.tr_id,
        raw_body=attempt.text,
        attempts=attempt.number,
    )


def _parse_json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    # Paper messages are right-padded with spaces.
    return str(value).strip() if value is not None else ""


# --- pagination --------------------------------------------------------------------------------


def next_page(
    call: Call, response_headers: Mapping[str, str], body: Mapping[str, Any]
) -> Call | None:
    """Return the call that fetches the next page, or ``None`` on the last page (KIS's 연속조회).

    More data is signalled by the response header ``tr_cont`` ``F``/``M``; the next request sends
    ``tr_cont: N`` and copies every ``ctx_area_*`` value of the body into the matching upper-case
    query parameter.
    """
    if response_headers.get("tr_cont", "").strip().upper() not in ("F", "M"):
        return None
    params = dict(call.params or {})
    cursors = {k: v for k, v in body.items() if k.lower().startswith("ctx_area_")}
    if not cursors:
        return None
    for key, value in cursors.items():
        # Copied verbatim: the server pads cursors and expects them back unchanged.
        params[key.upper()] = "" if value is None else str(value)
    headers = {**call.headers, "tr_cont": "N"}
    return attrs.evolve(call, params=params, headers=headers)
