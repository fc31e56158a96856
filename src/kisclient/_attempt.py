"""One call's attempts as a flow of effects: the single attempt loop of both clients.

:func:`attempt_flow` is a generator that decides everything about sending one :class:`Call`
and yields the effects it needs performed; the sync and async clients only perform them (block,
or await) and send the result back. One attempt is::

    admit (rate limit) → token → headers → send → settle the admission → classify
    → budget → penalise the limiter → invalidate a refused token → retry decision → sleep

Effects and what the shell sends back:

========================  ============================================================
``Step.ADMIT``            the limiter's admission stamp (``acquire``)
``Step.TOKEN``            a :class:`~kisclient._token_store.Token`, or the ``KISError``
                          getting one raised
:class:`Send`             the ``httpx.Response`` (body read), or the ``httpx.HTTPError``
:class:`Settle`           nothing (the answer arrived: ``limiter.settle``)
:class:`Penalize`         nothing (EGW00201: ``limiter.penalize``)
:class:`Invalidate`       the replacement token, or the ``KISError`` raised getting one
:class:`Sleep`            nothing (sleep on the client's clock)
========================  ============================================================

The flow returns the :class:`~kisclient.Response` or the :class:`~kisclient.KISError` that
ends the call; it never raises one, so the client raises it where the user's call is (short
tracebacks). The retry decision is the pure :func:`retry_delay`. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import random
from collections.abc import Generator, Mapping
from typing import Any, TypeAlias

import attrs
import httpx

from ._clock import Clock
from ._config import KST
from ._core import (
    Call,
    RetryBudget,
    RetryPolicy,
    Verdict,
    attempt_from_exception,
    attempt_from_response,
    build_headers,
    classify,
    parse_http_date,
)
from ._errors import (
    ConfigurationError,
    GatewayError,
    KISConnectionError,
    KISError,
    OrderOutcomeUnknown,
    RetryBudgetExhausted,
    ValidationError,
)
from ._observe import AdmissionWaited, Observer, RequestObserved, notify
from ._operations import Flow, Gather, Response, Sleep
from ._token_store import Token

__all__ = [
    "ONE_ATTEMPT",
    "UNREADABLE",
    "AttemptFlow",
    "Finished",
    "GatewayClock",
    "Invalidate",
    "Penalize",
    "Send",
    "Settle",
    "Sleep",
    "Step",
    "advance",
    "attempt_flow",
    "retry_delay",
    "unreadable_answer",
]

log = logging.getLogger("kisclient")

#: Token and revoke calls run while the token locks are held, and nobody sleeps holding them:
#: they are sent once, and the token manager does its own (lock-free) waiting.
ONE_ATTEMPT = RetryPolicy(max_attempts=1)

_TOKEN_RETRY_WAIT_S = 0.5


class Step(enum.Enum):
    """Effects without arguments."""

    #: Wait for the rate limiter; answer its admission stamp.
    ADMIT = "admit"
    #: A valid access token (may issue one); answer the token or the ``KISError`` raised.
    TOKEN = "token"


@attrs.frozen
class Send:
    """Send one HTTP request; answer the response (body read) or the ``httpx.HTTPError``."""

    method: str
    url: str
    params: Mapping[str, str] | None
    body: Mapping[str, Any] | None
    headers: Mapping[str, str] = attrs.field(repr=False)


@attrs.frozen
class Settle:
    """The answer to the admission stamped *admitted* arrived (``limiter.settle``)."""

    admitted: float


@attrs.frozen
class Penalize:
    """KIS said the rate limit was exceeded: hold the limiter *seconds*."""

    seconds: float


@attrs.frozen
class Invalidate:
    """KIS refused *token*: get a replacement (answer it, or the ``KISError`` raised)."""

    token: Token = attrs.field(repr=False)


Effect: TypeAlias = Step | Send | Settle | Penalize | Invalidate | Sleep
#: Yields effects, receives their results, returns what ends the call.
AttemptFlow: TypeAlias = Generator[Effect, Any, "Response | KISError"]


def retry_delay(
    policy: RetryPolicy, number: int, verdict: Verdict, elapsed_s: float, rng: random.Random
) -> float | None:
    """Seconds to wait before another attempt after attempt *number* (1-based) ended in a
    ``"retry"`` *verdict*, or ``None`` when no attempt is left. A pure function.

    No attempt is left after ``policy.max_attempts``, or once *elapsed_s* (the call's time, less
    the time spent waiting for tokens) has reached ``policy.deadline_s``, except after a refused
    token (not the call's fault; the token manager bounds that wait). The wait is
    :meth:`RetryPolicy.delay` (never below the code's own wait), cut to what is left of the
    deadline.
    """
    if number >= policy.max_attempts:
        return None
    if not verdict.refresh_token and elapsed_s >= policy.deadline_s:
        return None
    delay = policy.delay(number, verdict.wait_s, rng)
    return max(0.0, min(delay, policy.deadline_s - elapsed_s))


class GatewayClock:
    """KIS's clock as the ``Date`` headers of its answers show it.

    ``offset`` is KIS's clock minus the local (injected) clock, in seconds, from the latest
    answer that carried a ``Date``; ``None`` before any. ``Date`` has whole seconds and is
    stamped before the answer travels, so the estimate runs up to a second early, never late.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.offset: float | None = None
        self._last: tuple[str, float | None] = ("", None)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Measure the offset from an answer's ``date`` header (one parse per new value)."""
        value = headers.get("date")
        if not value:
            return
        last_value, stamp = self._last
        if value != last_value:
            stamp = parse_http_date(value)
            self._last = (value, stamp)
        if stamp is not None:
            self.offset = stamp - self._clock.time()

    def stamp(self, call: Call) -> Call:
        """An order call whose ``request`` says when this attempt left: ``sent_at`` (local clock)
        and ``sent_at_kis`` (KIS's clock estimate, ``None`` before any ``Date`` was seen).

        Stamped as the attempt is sent, after rate-limit and token waits, so the settle window
        of a lost answer starts when the request really left."""
        if call.request is None or not call.is_order:
            return call
        offset = self.offset
        now = self._clock.now().astimezone(KST)
        kis = None if offset is None else (now + dt.timedelta(seconds=offset)).isoformat()
        return attrs.evolve(
            call, request={**call.request, "sent_at": now.isoformat(), "sent_at_kis": kis}
        )


def attempt_flow(  # noqa: PLR0915 - one attempt, read top to bottom, in one place
    call: Call,
    *,
    base_url: str,
    app_key: str,
    app_secret: str,
    policy: RetryPolicy,
    budget: RetryBudget,
    rng: random.Random,
    gateway: GatewayClock,
    clock: Clock,
    limited: bool = True,
    observer: Observer | None = None,
    route: str = "account",
) -> AttemptFlow:
    """Send *call* until it succeeds, fails for good, or *policy* / *budget* stop it.

    Rate-limited only when *limited* and the endpoint needs a token (token endpoints are not
    counted). Time spent waiting for a token is not counted against ``policy.deadline_s``. A
    token that could not be had because no connection was made (tokenP refused the connection:
    nothing was sent, so it is no issuance attempt) is retried like any connect error. Each
    retry of a failure costs its ``budget_cost`` from *budget* (then
    :class:`~kisclient.RetryBudgetExhausted`, chained to the failure); a success refunds what
    its retries cost (1 when it needed none). *observer* (see :mod:`kisclient._observe`) is told
    each admission's wait and each request's outcome, tagged with *route*.
    """
    endpoint = call.endpoint
    authenticated = endpoint.authenticated
    limited = limited and authenticated
    url = base_url + endpoint.path
    started = clock.monotonic()
    excluded = 0.0
    spent = 0
    number = 0
    while True:
        number += 1
        if limited:
            asked = clock.monotonic()
            admitted = yield Step.ADMIT
            if observer is not None:
                notify(observer, AdmissionWaited(route, clock.monotonic() - asked))
        else:
            admitted = None
        token: Token | None = None
        verdict: Verdict | None = None
        headers: Mapping[str, str] = {}
        if authenticated:
            waited_from = clock.monotonic()
            got = yield Step.TOKEN
            excluded += clock.monotonic() - waited_from
            if isinstance(got, KISError):
                verdict = _token_failure(got, call, number)
            else:
                token = got
        if verdict is None:
            sending = build_headers(
                call,
                app_key=app_key,
                app_secret=app_secret,
                authorization=token.authorization if token is not None else None,
            )
            call = gateway.stamp(call)
            answer = yield Send(endpoint.method, url, call.params, call.body, sending)
            attempt = (
                attempt_from_exception(number, answer)
                if isinstance(answer, httpx.HTTPError)
                else attempt_from_response(number, answer)
            )
            if admitted is not None:
                yield Settle(admitted)
            headers = attempt.headers
            gateway.observe(headers)
            verdict = classify(call, attempt)
            if observer is not None:
                notify(observer, _observed(call, attempt.status, number, verdict, route))
            if verdict.action == "success":
                budget.refund(spent or 1)
                return Response(
                    data=verdict.data or {},
                    headers=headers,
                    status=attempt.status or 200,
                    attempts=number,
                    request=call.request if call.is_order else None,
                )
        if verdict.penalize_s:
            log.warning("KIS rate limit hit (EGW00201) on %s; backing off", call.tr_id)
            yield Penalize(verdict.penalize_s)
        if verdict.refresh_token and token is not None:
            waited_from = clock.monotonic()
            renewed = yield Invalidate(token)
            excluded += clock.monotonic() - waited_from
            if isinstance(renewed, KISError):
                return renewed
        error = verdict.error
        assert error is not None, "a verdict other than success carries its error"
        if verdict.action == "fail":
            return error
        elapsed = clock.monotonic() - started - excluded
        delay = retry_delay(policy, number, verdict, elapsed, rng)
        if delay is None:
            return error
        if verdict.budget_cost:
            if not budget.try_spend(verdict.budget_cost):
                return _budget_exhausted(error, number)
            spent += verdict.budget_cost
        yield Sleep(delay)


def _observed(
    call: Call, status: int | None, number: int, verdict: Verdict, route: str
) -> RequestObserved:
    """The observer's record of one answered (or unanswered) request."""
    if verdict.action == "success":
        outcome = "ok"
    elif verdict.error is not None and verdict.error.msg_cd:
        outcome = verdict.error.msg_cd
    elif status is not None:
        outcome = f"http_{status}"
    else:
        outcome = "transport"
    return RequestObserved(route, call.endpoint.path, call.tr_id or "", number, status, outcome)


def _token_failure(error: KISError, call: Call, number: int) -> Verdict:
    """The verdict on an attempt that could not get a token: a connect error on the token
    endpoint is retried (nothing was sent), anything else ends the call with *error*."""
    if isinstance(error, KISConnectionError):
        retry = KISConnectionError(
            f"could not connect to get an access token: {error.message}",
            tr_id=call.tr_id,
            attempts=number,
        )
        return Verdict("retry", error=retry, wait_s=_TOKEN_RETRY_WAIT_S, budget_cost=5)
    return Verdict("fail", error=error)


def _budget_exhausted(error: KISError, number: int) -> RetryBudgetExhausted:
    exhausted = RetryBudgetExhausted(
        "retry budget exhausted; not retrying",
        msg_cd=error.msg_cd,
        msg1=error.msg1,
        http_status=error.http_status,
        tr_id=error.tr_id,
        attempts=number,
    )
    exhausted.__cause__ = error
    return exhausted


# --- driving an operation ------------------------------------------------------------------------

#: What parsing a successful answer raises when the answer is not what the model expects.
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError)


@attrs.frozen
class Finished:
    """An operation's return value."""

    value: Any


def advance(operation: Flow[Any], outcome: object) -> Call | Sleep | Gather | Finished | Exception:
    """Feed *outcome* to *operation* (a :class:`~kisclient._operations.Flow`): its next step, its
    result, or the exception to raise where the user's call is. ``None`` starts it (and answers a
    :class:`Sleep`); a :class:`Gather` is answered with its list of outcomes; a call with what
    :func:`attempt_flow` returned, a :class:`~kisclient._operations.Response` or a
    :class:`~kisclient.KISError`, which is thrown into the operation.

    A :class:`~kisclient.KISError` the operation does not handle comes back without the frames
    it crossed. A successful answer the operation cannot read (``ModelError`` and kin) becomes
    :func:`unreadable_answer`'s ``KISError``: the request did leave. A
    :class:`~kisclient.ValidationError` or :class:`~kisclient.ConfigurationError` the operation
    raises after reading an answer (it refuses what was asked, e.g. nothing left to sell)
    propagates as it is.
    """
    try:
        if isinstance(outcome, KISError):
            return operation.throw(outcome)
        if type(outcome) is not Response:
            return operation.send(outcome)
        try:
            return operation.send(outcome)
        except (ValidationError, ConfigurationError):
            raise  # the operation refusing what was asked, after reading an answer: as it is
        except UNREADABLE as exc:
            error = unreadable_answer(outcome, exc)
            error.__cause__ = exc
            return error
    except StopIteration as done:
        return Finished(done.value)
    except KISError as exc:
        return exc.with_traceback(None) if exc is outcome else exc


def unreadable_answer(response: Response, problem: Exception) -> KISError:
    """The error for a successful answer (HTTP 2xx, ``rt_cd`` "0") that cannot be read.

    For an order (a call with market side effects) it is :class:`~kisclient.OrderOutcomeUnknown`
    carrying the request as sent: KIS said yes, so the order may have been placed; reconcile it.
    For a read it is :class:`~kisclient.GatewayError` (an unexpected response).
    """
    what = f"{type(problem).__name__}: {problem}"
    raw = json.dumps(response.data, ensure_ascii=False, default=str)
    common: dict[str, Any] = {
        "msg_cd": response.msg_cd or None,
        "msg1": response.msg1 or None,
        "http_status": response.status,
        "raw_body": raw,
        "attempts": response.attempts,
    }
    if response.request is not None:
        return OrderOutcomeUnknown(
            f"KIS accepted the order but its answer could not be read ({what}); "
            "reconcile before resending",
            request=response.request,
            tr_id=response.request.get("tr_id"),
            **common,
        )
    return GatewayError(f"unexpected answer from KIS ({what})", **common)
