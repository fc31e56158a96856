"""What the sync and async clients share: settings, token manager, limiter, retry control.

Everything here is free of send and sleep loops; :mod:`kisclient._client` and
:mod:`kisclient._async_client` add only those.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

import attrs
import tenacity

from ._clock import Clock
from ._config import ENDPOINTS, KST, Endpoint, Env, endpoint_by_path
from ._core import Attempt, Call, RetryBudget, RetryPolicy, Verdict, classify, parse_http_date
from ._errors import KISError, OrderOutcomeUnknown, RetryBudgetExhausted
from ._models import PriceBatch, Quote
from ._operations import Reconciler, Response, prepare_codes
from ._quote_cache import QuoteCache
from ._ratelimit import RateLimiter, make_limiter
from ._redaction import install_log_redaction
from ._settings import ClientSettings, settings_from_env
from ._token import TokenManager
from ._token_store import TokenStore
from ._validation import Account, StockCode, normalize_code

__all__ = ["ONE_ATTEMPT", "ClientBase", "ProgressCallback", "RetryControls", "RetrySignal"]

#: Called as ``progress(done, total)`` as the codes of a batch settle.
ProgressCallback = Callable[[int, int], None]

log = logging.getLogger("kisclient")


class RetrySignal(Exception):
    """Raised inside an attempt to ask tenacity for another one."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.error)
        self.verdict = verdict


#: Token and revoke calls run while the token locks are held, and nobody sleeps holding them:
#: they are sent once, and the token manager does its own (lock-free) waiting.
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


class RetryControls:
    """tenacity arguments shared by the sync and async attempt loops (they add their own sleep).

    Stops after ``policy.max_attempts`` or once ``policy.deadline_s`` has passed on the injected
    clock; waits per :meth:`RetryPolicy.delay`, never less than the server-specific wait. Time
    spent waiting for a token issuance (which KIS allows once a minute, and which the token
    manager bounds by its own ``max_wait_s``) is :meth:`excluded <exclude>` from the deadline.
    """

    def __init__(self, policy: RetryPolicy, clock: Clock, rng: random.Random) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._started = clock.monotonic()
        self._excluded = 0.0

    def exclude(self, seconds: float) -> None:
        """Do not count *seconds* (spent waiting for a token) against the deadline."""
        self._excluded += seconds

    def _elapsed(self) -> float:
        return self._clock.monotonic() - self._started - self._excluded

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self._policy.max_attempts:
            return True
        # A refused token is not the call's fault: the token manager bounds that wait itself.
        signal = state.outcome.exception() if state.outcome is not None else None
        if isinstance(signal, RetrySignal) and signal.verdict.refresh_token:
            return False
        return self._elapsed() >= self._policy.deadline_s

    def _wait(self, state: tenacity.RetryCallState) -> float:
        signal = state.outcome.exception() if state.outcome is not None else None
        server_wait = signal.verdict.wait_s if isinstance(signal, RetrySignal) else 0.0
        delay = self._policy.delay(state.attempt_number, server_wait, self._rng)
        return max(0.0, min(delay, self._policy.deadline_s - self._elapsed()))

    def tenacity_kwargs(self) -> dict[str, Any]:
        return {
            "stop": self._stop,
            "wait": self._wait,
            "retry": tenacity.retry_if_exception_type(RetrySignal),
            "reraise": True,
        }


class ClientBase:
    """State and decisions common to :class:`KISClient` and :class:`AsyncKISClient`."""

    _settings: ClientSettings

    def _init_common(self, settings: ClientSettings) -> None:
        self._settings = settings
        install_log_redaction()
        store = TokenStore(settings.state_dir, settings.env, settings.app_key)
        self._tokens = TokenManager(
            store,
            clock=settings.clock,
            issue=self._issue_token_sync,
            aissue=self._issue_token_async,
            refresh_margin_s=settings.refresh_margin_s,
            min_issue_interval_s=settings.token_min_interval_s,
        )
        self._limiter: RateLimiter = make_limiter(
            settings.windows(),
            env=settings.env,
            app_key=settings.app_key,
            state_dir=settings.state_dir,
            clock=settings.clock,
        )
        self._budget = RetryBudget(capacity=settings.retry_budget)
        self._rng = random.Random()
        self._quotes = QuoteCache(settings.quote_cache_ttl_s, settings.clock)
        self._clock_offset: float | None = None
        self._last_date: tuple[str, float | None] = ("", None)

    @property
    def quote_cache(self) -> QuoteCache:
        """The quote cache (``quote_cache_ttl``), with its ``hits`` and ``misses`` counters."""
        return self._quotes

    def _cached_quote(self, raw_code: str) -> Quote | None:
        return self._quotes.get(normalize_code(raw_code).code)

    def _remember_quote(self, quote: Quote) -> Quote:
        self._quotes.put(quote.code, quote)
        return quote

    def _useful_concurrency(self, requested: int) -> int:
        """*requested*, capped at the smallest window's limit: more requests in flight than one
        window admits cannot go faster, they only queue in the limiter (1 on paper)."""
        windows = self._settings.windows()
        return min(requested, *(w.limit for w in windows)) if windows else requested

    def _start_batch(self, codes: Iterable[str]) -> tuple[PriceBatch, list[StockCode], int]:
        """Validate and de-duplicate *codes*, answer what the cache can.

        Returns the batch so far, the codes still to fetch, and the number of input codes.
        """
        valid, invalid = prepare_codes(codes)
        batch = PriceBatch(failed=dict(invalid))
        todo: list[StockCode] = []
        for code in valid:
            cached = self._quotes.get(code.code)
            if cached is not None:
                batch.succeeded[code.code] = cached
            else:
                todo.append(code)
        return batch, todo, len(valid) + len(invalid)

    def _finish_batch(
        self, batch: PriceBatch, fetched: list[StockCode], started: float
    ) -> PriceBatch:
        """Cache what *fetched* brought (not the cached answers, whose age must not reset)."""
        for code in fetched:
            quote = batch.succeeded.get(code.code)
            if quote is not None:
                self._quotes.put(code.code, quote)
        batch.elapsed_s = self._settings.clock.monotonic() - started
        return batch

    # Subclasses provide these two I/O functions for the token manager.
    def _issue_token_sync(self) -> Mapping[str, Any]:
        raise NotImplementedError("this client issues tokens asynchronously")

    async def _issue_token_async(self) -> Mapping[str, Any]:
        raise NotImplementedError("this client issues tokens synchronously")

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Build a client from ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ENV``, ``KIS_ACCOUNT``,
        ``KIS_BASE_URL`` and ``KIS_STATE_DIR``; keyword arguments override them.

        Raises :class:`~kisclient.ConfigurationError` naming every missing variable.
        """
        return cls(**{**settings_from_env(), **overrides})

    # --- read-only facts ---

    @property
    def account(self) -> Account | None:
        """The account (its repr is masked)."""
        return self._settings.account

    @property
    def environment(self) -> Env:
        return self._settings.env

    def _today(self) -> dt.date:
        """Today's date in Korea, on the injected clock."""
        return self._settings.clock.now().astimezone(KST).date()

    @property
    def env(self) -> str:
        """``"real"`` or ``"paper"``."""
        return self._settings.env.value

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def token_issuances(self) -> int:
        """How many access tokens this client issued (each one notifies the account holder)."""
        return self._tokens.issuances

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env!r}, base_url={self.base_url!r})"

    # --- KIS's clock ---

    @property
    def clock_offset(self) -> float | None:
        """KIS's clock minus the local (injected) clock, in seconds, from the ``Date`` header of
        the latest answer; ``None`` until an answer carried one.

        ``Date`` has whole seconds and is stamped before the answer travels, so the estimate runs
        up to about a second early, never late.
        """
        return self._clock_offset

    def _observe(self, attempt: Attempt) -> None:
        """Measure the clock offset from a response's ``Date`` (one header parse per answer)."""
        value = attempt.headers.get("date")
        if not value:
            return
        last_value, stamp = self._last_date
        if value != last_value:
            stamp = parse_http_date(value)
            self._last_date = (value, stamp)
        if stamp is not None:
            self._clock_offset = stamp - self._settings.clock.time()

    def _stamp_sent(self, call: Call) -> Call:
        """An order call whose ``request`` says when this attempt left: ``sent_at`` (local clock)
        and ``sent_at_kis`` (KIS's clock estimate, ``None`` before any ``Date`` was seen).

        Stamped as the attempt is sent, after rate-limit and token waits, so the settle window
        of a lost answer starts when the request really left."""
        if call.request is None or not call.is_order:
            return call
        offset = self._clock_offset
        now = self._settings.clock.now().astimezone(KST)
        kis = None if offset is None else (now + dt.timedelta(seconds=offset)).isoformat()
        return attrs.evolve(
            call, request={**call.request, "sent_at": now.isoformat(), "sent_at_kis": kis}
        )

    def _reconciler(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        exclude: Iterable[str],
        wait: bool,
    ) -> Reconciler:
        request = unknown.request if isinstance(unknown, OrderOutcomeUnknown) else unknown
        if not request.get("code") or request.get("side") not in ("buy", "sell"):
            raise ValueError("reconcile_order needs an order request with 'code' and 'side'")
        return Reconciler(
            request,
            self._settings.settle_window_s,
            self._settings.clock.time(),
            exclude=frozenset(str(n) for n in exclude),
            wait=wait,
        )

    # --- calls ---

    def _token_call(self) -> Call:
        s = self._settings
        return Call(
            ENDPOINTS["token"],
            body={
                "grant_type": "client_credentials",
                "appkey": s.app_key,
                "appsecret": s.app_secret,
            },
        )

    def _revoke_call(self, access_token: str) -> Call:
        s = self._settings
        return Call(
            ENDPOINTS["revoke"],
            body={"appkey": s.app_key, "appsecret": s.app_secret, "token": access_token},
        )

    def _hashkey_call(self, body: Mapping[str, Any]) -> Call:
        return Call(ENDPOINTS["hashkey"], body=dict(body))

    def _escape_hatch_call(
        self,
        method: str,
        path: str,
        tr_id: str | None,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> Call:
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, not {method!r}")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        endpoint = endpoint_by_path(path) or Endpoint(
            name=path,
            method="GET" if method == "GET" else "POST",
            path=path,
            idempotent=method == "GET",
        )
        request = (
            {"method": method, "path": path, "tr_id": tr_id} if not endpoint.idempotent else None
        )
        return Call(
            endpoint, tr_id, params=params, body=body, headers=dict(headers or {}), request=request
        )

    # --- settling one attempt ---

    def _settle(self, call: Call, attempt: Attempt) -> Verdict:
        """Note KIS's clock, classify *attempt*; on a retry, spend the budget or raise the final
        error."""
        self._observe(attempt)
        verdict = classify(call, attempt)
        if verdict.action == "success":
            self._budget.refund()
        elif verdict.action == "retry" and not self._budget.try_spend(verdict.budget_cost):
            error = verdict.error
            assert error is not None
            raise RetryBudgetExhausted(
                "retry budget exhausted; not retrying",
                msg_cd=error.msg_cd,
                msg1=error.msg1,
                http_status=error.http_status,
                tr_id=error.tr_id,
                attempts=attempt.number,
            ) from error
        if verdict.penalize_s:
            log.warning("KIS rate limit hit (EGW00201) on %s; backing off", call.tr_id)
        return verdict

    @staticmethod
    def _final_error(signal: RetrySignal) -> KISError:
        error = signal.verdict.error
        assert error is not None
        return error

    @staticmethod
    def _response(verdict: Verdict, attempt: Attempt) -> Response:
        return Response(
            data=verdict.data or {}, headers=attempt.headers, status=attempt.status or 200
        )
