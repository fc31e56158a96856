"""What the sync and async clients share: the one constructor, settings, token manager,
limiter, retry budget, the attempt flow's parameters and the operation behind each method.

Nothing here sends or sleeps: :mod:`kisclient._client` and :mod:`kisclient._async_client` only
perform the effects of :func:`kisclient._attempt.attempt_flow` (blocking or awaiting) and drive
the operations of :mod:`kisclient._operations`.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Self, TypeAlias, TypeVar

from . import _operations as ops
from ._attempt import ONE_ATTEMPT, AttemptFlow, GatewayClock, attempt_flow
from ._clock import Clock
from ._config import ENDPOINTS, KST, Endpoint, Env, EnvName, Side, endpoint_by_path
from ._core import Call, RetryBudget, RetryPolicy
from ._errors import KISError, OrderOutcomeUnknown
from ._models import Balance, DailyBar, DailyOrder, OrderResult, PriceBatch, Quote, Reconciliation
from ._operations import Operation, Reconciler, prepare_codes
from ._quote_cache import QuoteCache
from ._ratelimit import RateLimiter, Window, make_limiter
from ._redaction import install_log_redaction
from ._settings import DEFAULTS, ClientOptions, ClientSettings, settings_from_env
from ._token import TokenManager
from ._token_store import TokenStore
from ._validation import Account, StockCode, normalize_code

__all__ = ["ClientBase", "Lookup", "ProgressCallback"]

#: The transport type a client takes (``httpx.BaseTransport`` or ``httpx.AsyncBaseTransport``).
TransportT = TypeVar("TransportT")

#: Called as ``progress(done, total)`` as the codes of a batch settle.
ProgressCallback = Callable[[int, int], None]
#: One reconciliation look-up's result: the day's orders and KIS's time, or the error.
Lookup: TypeAlias = "tuple[list[DailyOrder], float | None] | KISError"

log = logging.getLogger("kisclient")


class ClientBase(abc.ABC, Generic[TransportT]):
    """State and decisions common to :class:`KISClient` and :class:`AsyncKISClient`, and their
    one constructor.

    ``base_url`` overrides every endpoint's host (tokens included). ``state_dir`` holds the token
    store, its lock and the shared rate state (default: the user's cache directory).
    ``rate_limits`` is a list of :class:`~kisclient.Window` (``None``: the documented limits;
    ``[]``: no client-side limit). ``transport`` is an httpx transport of the client's kind, e.g.
    ``kisclient.testing.FakeKIS().transport()``; with one, the host in httpx's log lines is
    nominal (the client logs the effective target once, see below). Every default comes from
    :data:`kisclient._settings.DEFAULTS`. Raises :class:`~kisclient.ConfigurationError` for a bad
    argument.
    """

    _settings: ClientSettings

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        env: EnvName | Env = DEFAULTS.env,
        account: str | Account | None = DEFAULTS.account,
        base_url: str | None = DEFAULTS.base_url,
        state_dir: str | os.PathLike[str] | None = DEFAULTS.state_dir,
        rate_limits: Sequence[Window] | None = DEFAULTS.rate_limits,
        transport: TransportT | None = None,
        *,
        clock: Clock | None = DEFAULTS.clock,
        timeout: float = DEFAULTS.timeout,
        retry: RetryPolicy | None = DEFAULTS.retry,
        retry_budget: int = DEFAULTS.retry_budget,
        refresh_margin: float = DEFAULTS.refresh_margin,
        token_min_interval: float = DEFAULTS.token_min_interval,
        legacy_order_tr_ids: bool = DEFAULTS.legacy_order_tr_ids,
        quote_cache_ttl: float = DEFAULTS.quote_cache_ttl,
        rate_margin: float = DEFAULTS.rate_margin,
        order_settle: float = DEFAULTS.order_settle,
    ) -> None:
        options = ClientOptions(
            env=env,
            account=account,
            base_url=base_url,
            state_dir=state_dir,
            rate_limits=rate_limits,
            clock=clock,
            timeout=timeout,
            retry=retry,
            retry_budget=retry_budget,
            refresh_margin=refresh_margin,
            token_min_interval=token_min_interval,
            legacy_order_tr_ids=legacy_order_tr_ids,
            quote_cache_ttl=quote_cache_ttl,
            rate_margin=rate_margin,
            order_settle=order_settle,
        )
        settings = ClientSettings.build(app_key, app_secret, options)
        self._init_common(settings)
        self._open(transport, settings.timeout_s)
        level = logging.DEBUG if transport is None else logging.INFO
        log.log(
            level,
            "kisclient: env %s, base URL %s, transport %s%s",
            settings.env.value,
            settings.base_url,
            "httpx default" if transport is None else type(transport).__name__,
            "" if transport is None else " (the host in httpx's log lines is nominal)",
        )

    @abc.abstractmethod
    def _open(self, transport: TransportT | None, timeout_s: float) -> None:
        """Create the httpx client (sync or async) over *transport*."""

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
        self._gateway = GatewayClock(settings.clock)

    def _attempts(self, call: Call, *, limited: bool = True, once: bool = False) -> AttemptFlow:
        """The attempt flow of *call* with this client's settings, budget and clocks."""
        s = self._settings
        return attempt_flow(
            call,
            base_url=s.base_url,
            app_key=s.app_key,
            app_secret=s.app_secret,
            policy=ONE_ATTEMPT if once else s.retry,
            budget=self._budget,
            rng=self._rng,
            gateway=self._gateway,
            clock=s.clock,
            limited=limited,
        )

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
        return self._gateway.offset

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

    def _lookup(self, reconciler: Reconciler) -> Operation[tuple[list[DailyOrder], float | None]]:
        """The next look-up operation of *reconciler*."""
        s = self._settings
        return reconciler.lookup(s.env, s.require_account(), self._gateway.offset, s.clock.time())

    def _feed(self, reconciler: Reconciler, result: Lookup) -> Reconciliation | float:
        """Give *reconciler* one look-up's result: the answer, or seconds to sleep."""
        now = self._settings.clock.time()
        return reconciler.feed(result, local_now=now, offset=self._gateway.offset)

    # --- the operations behind the public methods (the shells run them) ---

    def _price_op(self, code: str) -> Operation[Quote]:
        return ops.get_price(self._settings.env, code)

    def _daily_prices_op(
        self, code: str, start: dt.date, end: dt.date
    ) -> Operation[list[DailyBar]]:
        return ops.get_daily_prices(self._settings.env, code, start, end)

    def _balance_op(self) -> Operation[Balance]:
        return ops.get_balance(self._settings.env, self._settings.require_account())

    def _order_op(
        self, side: Side, code: str, qty: int, price: int | None
    ) -> Operation[OrderResult]:
        s = self._settings
        return ops.order_cash(
            s.env, s.require_account(), side, code, qty, price, legacy_tr_id=s.legacy_order_tr_ids
        )

    def _cancel_op(self, order: DailyOrder) -> Operation[OrderResult]:
        return ops.cancel_order(self._settings.env, self._settings.require_account(), order)

    def _daily_orders_op(
        self, start: dt.date | None, end: dt.date | None, code: str | None, side: Side | None
    ) -> Operation[list[DailyOrder]]:
        """Orders of ``[start, end]``, both defaulting to today (KST) on the client's clock."""
        today = self._today()
        s = self._settings
        first, last = start or today, end or start or today
        return ops.get_daily_orders(s.env, s.require_account(), first, last, code=code, side=side)

    def _batch_plan(
        self, codes: Iterable[str], multi: bool | None, concurrency: int
    ) -> tuple[PriceBatch, list[StockCode], list[list[StockCode]], int]:
        """A batch's start: the batch so far (invalid codes, cache hits), the codes to fetch,
        their groups (one operation each, see :func:`ops.batch_groups`) and the input count.
        Raises before anything is sent."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        batch, todo, total = self._start_batch(codes)
        return batch, todo, ops.batch_groups(self._settings.env, todo, multi), total

    def _group_op(self, group: list[StockCode], batch: PriceBatch) -> Operation[None]:
        return ops.get_prices_for(self._settings.env, group, batch)

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
