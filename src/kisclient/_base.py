"""What the sync and async clients share: the one constructor, settings, token manager,
limiter, retry budget, the attempt flow's parameters and the operation behind each method.

Nothing here sends or sleeps: :mod:`kisclient._client` and :mod:`kisclient._async_client` only
perform the effects of :func:`kisclient._attempt.attempt_flow` (blocking or awaiting) and drive
the operations of :mod:`kisclient._operations`.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import functools
import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Self, TypeVar

import attrs

from . import _market
from . import _operations as ops
from . import _order_lifecycle as life
from ._approval import ApprovalKeys
from ._attempt import ONE_ATTEMPT, AttemptFlow, GatewayClock, attempt_flow
from ._clock import Clock
from ._config import ENDPOINTS, KST, Endpoint, Env, EnvName, Side, endpoint_by_path
from ._core import Call, next_page
from ._errors import KISError, OrderOutcomeUnknown, ValidationError
from ._market_models import (
    MarketDay,
    MinuteBar,
    OrderBookSnapshot,
    PeriodProfit,
    RankedStock,
    StockInfo,
)
from ._models import Balance, DailyBar, DailyOrder, OrderResult, PriceBatch, Quote, Reconciliation
from ._observe import Observer
from ._operations import Flow, Gather, Reconciler, Response, Sleep, prepare_codes
from ._order_lifecycle import OrderRef
from ._order_models import Buyable, OrderCondition, PendingOrder, Sellable
from ._quote_cache import QuoteCache
from ._ratelimit import RateLimiter, Window
from ._redaction import install_log_redaction
from ._retries import RetryBudget, RetryPolicy
from ._settings import DEFAULTS, ClientOptions, ClientSettings, settings_from_env
from ._shared_state import SharedStateStatus, make_shared_state
from ._stream import STREAM_DEFAULTS, AsyncStream, StreamOptions
from ._stream_relay import RelayStream
from ._surface import PageFlow, operation, pages
from ._token import TokenManager
from ._validation import Account, StockCode, normalize_code

__all__ = ["ClientBase", "ProgressCallback"]

#: The transport type a client takes (``httpx.BaseTransport`` or ``httpx.AsyncBaseTransport``).
TransportT = TypeVar("TransportT")
#: The stream a client makes (:class:`~kisclient._stream.Stream` or ``AsyncStream``).
StreamT = TypeVar("StreamT")

#: Called as ``progress(done, total)`` as the codes of a batch settle.
ProgressCallback = Callable[[int, int], None]

log = logging.getLogger("kisclient")


@attrs.frozen
class Route:
    """Where a call goes and whose key, token and rate budget it spends: the account's route,
    or a real *data key*'s for market data beside a paper account. Each key has its own token
    store, lock and windows in ``state_dir`` (shared with every process on that key)."""

    name: str
    env: Env
    base_url: str
    app_key: str = attrs.field(repr=False)
    app_secret: str = attrs.field(repr=False)
    tokens: TokenManager
    limiter: RateLimiter


class ClientBase(abc.ABC, Generic[TransportT, StreamT]):
    """State and decisions common to :class:`KISClient` and :class:`AsyncKISClient`, and their
    one constructor.

    ``base_url`` overrides every endpoint's host (tokens included). ``state_dir`` holds the token
    store, its lock and the shared rate state (default: the user's cache directory).
    ``shared_state`` (``KIS_SHARED_STATE``) moves that state to Redis, shared across hosts:
    ``"redis://host:6379/0"`` or ``"rediss://..."`` (docs/shared-state.md); ``state_dir`` then
    keeps the local-mode files used while Redis is unreachable.
    ``rate_limits`` is a list of :class:`~kisclient.Window` (``None``: the documented limits;
    ``[]``: no client-side limit). ``transport`` is an httpx transport of the client's kind, e.g.
    ``kisclient.testing.FakeKIS().transport()``; with one, the host in httpx's log lines is
    nominal (the client logs the effective target once, see below). Every default comes from
    :data:`kisclient._settings.DEFAULTS`. Raises :class:`~kisclient.ConfigurationError` for a bad
    argument. ``observer`` is called with a typed event for every request, rate-limit admission
    and stream connection (:mod:`kisclient._observe`; for metrics, never given a secret).
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
        ws_url: str | None = DEFAULTS.ws_url,
        hts_id: str | None = DEFAULTS.hts_id,
        data_key: str | None = DEFAULTS.data_key,
        data_secret: str | None = DEFAULTS.data_secret,
        data_base_url: str | None = DEFAULTS.data_base_url,
        observer: Observer | None = DEFAULTS.observer,
        shared_state: str | None = DEFAULTS.shared_state,
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
            ws_url=ws_url,
            hts_id=hts_id,
            data_key=data_key,
            data_secret=data_secret,
            data_base_url=data_base_url,
            observer=observer,
            shared_state=shared_state,
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
        self._shared = make_shared_state(settings.shared_state, settings.state_dir)
        self._account_route = self._make_route(
            "account", settings.env, settings.base_url, settings.app_key, settings.app_secret
        )
        self._data_route = self._account_route
        if settings.data_key and settings.data_secret and settings.data_base_url:
            self._data_route = self._make_route(
                "data", Env.REAL, settings.data_base_url, settings.data_key, settings.data_secret
            )
        self._tokens = self._account_route.tokens
        self._limiter = self._account_route.limiter
        self._budget = RetryBudget(capacity=settings.retry_budget)
        self._rng = random.Random()
        self._quotes = QuoteCache(settings.quote_cache_ttl_s, settings.clock)
        self._names: dict[tuple[dt.date, str], str] = {}
        self._gateway = GatewayClock(settings.clock)
        self._approval_keys = ApprovalKeys(
            self._shared.approval_store(settings.env, settings.app_key),
            settings.clock,
            self._issue_approval_sync,
            aissue_fn=self._issue_approval_async,
        )

    def _make_route(
        self, name: str, env: Env, base_url: str, app_key: str, app_secret: str
    ) -> Route:
        """One key's host, token manager and shared rate windows (see :class:`Route`)."""
        s = self._settings
        tokens = TokenManager(
            self._shared.token_store(env, app_key),
            clock=s.clock,
            issue=functools.partial(self._issue_token_sync, name),
            aissue=functools.partial(self._issue_token_async, name),
            refresh_margin_s=s.refresh_margin_s,
            min_issue_interval_s=s.token_min_interval_s,
        )
        limiter = self._shared.limiter(s.windows(env), env, app_key, s.clock)
        return Route(name, env, base_url, app_key, app_secret, tokens, limiter)

    def _route(self, call: Call, name: str | None = None) -> Route:
        """Where *call* goes: the route *name*, or by its endpoint (market data to the data
        key when there is one)."""
        if name == "data" or (name is None and call.endpoint.is_market_data):
            return self._data_route
        return self._account_route

    @property
    def _data_env(self) -> Env:
        """The environment market-data operations are built for (real with a data key)."""
        return self._data_route.env

    def _attempts(
        self, call: Call, route: Route, *, limited: bool = True, once: bool = False
    ) -> AttemptFlow:
        """The attempt flow of *call* over *route*, with this client's budget and clocks."""
        s = self._settings
        return attempt_flow(
            call,
            base_url=route.base_url,
            app_key=route.app_key,
            app_secret=route.app_secret,
            policy=ONE_ATTEMPT if once else s.retry,
            budget=self._budget,
            rng=self._rng,
            gateway=self._gateway,
            clock=s.clock,
            limited=limited,
            observer=s.observer,
            route=route.name,
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
        windows = self._settings.windows(self._data_env)
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

    # --- the token and approval-key calls (sent once: their managers pace and retry) ---

    def _issue_token_sync(self, route: str) -> Mapping[str, Any]:
        return self._post_once(self._token_call(route), route)

    async def _issue_token_async(self, route: str) -> Mapping[str, Any]:
        return await self._apost_once(self._token_call(route), route)

    def _issue_approval_sync(self) -> Mapping[str, Any]:
        return self._post_once(self._approval_call(), "account")

    async def _issue_approval_async(self) -> Mapping[str, Any]:
        return await self._apost_once(self._approval_call(), "account")

    def _post_once(self, call: Call, route: str) -> Mapping[str, Any]:
        """Send *call* once over the route *route*, outside the rate limit; its body. The sync
        shell provides it."""
        raise NotImplementedError("this client sends asynchronously")

    async def _apost_once(self, call: Call, route: str) -> Mapping[str, Any]:
        """The async :meth:`_post_once`: the async shell's own, or the sync one in a thread."""
        return await asyncio.to_thread(self._post_once, call, route)

    # --- real-time streams ---

    def stream(
        self,
        *,
        reconnect_initial: float = STREAM_DEFAULTS.reconnect_initial,
        reconnect_max: float = STREAM_DEFAULTS.reconnect_max,
        silence_timeout: float = STREAM_DEFAULTS.silence_timeout,
        queue_size: int = STREAM_DEFAULTS.queue_size,
        subscribe_rate: float = STREAM_DEFAULTS.subscribe_rate,
        ack_timeout: float = STREAM_DEFAULTS.ack_timeout,
        relay: bool = STREAM_DEFAULTS.relay,
        trade_batches: bool = STREAM_DEFAULTS.trade_batches,
    ) -> StreamT:
        """The app key's real-time session (trades, order books, fill notices) over KIS's
        WebSocket at ``ws_url``; use it as a context manager (``with`` / ``async with``).

        Entering it takes the app key's one session (raising
        :class:`~kisclient.StreamSlotBusy` when another process on this ``state_dir`` owns it),
        gets an approval key from the shared store and connects. The arguments are described on
        :class:`~kisclient._stream.StreamOptions`.

        ``relay=True`` shares the session instead: the first process to enter owns it and
        every other process (on this host, or on every host of a Redis ``shared_state``)
        subscribes through it, all registrations together counted against KIS's 41; when the
        owner leaves or dies another participant takes it over (see ``docs/shared-state.md``).

        ``trade_batches=True`` delivers each frame's trades as one
        :class:`~kisclient.TradeBatch` (column-wise, a ``Trade`` built only when asked for)
        instead of a :class:`~kisclient.Trade` per record: for consumers of heavy feeds.
        """
        options = StreamOptions(
            reconnect_initial=reconnect_initial,
            reconnect_max=reconnect_max,
            silence_timeout=silence_timeout,
            queue_size=queue_size,
            subscribe_rate=subscribe_rate,
            ack_timeout=ack_timeout,
            relay=relay,
            trade_batches=trade_batches,
        )
        return self._make_stream(options)

    @abc.abstractmethod
    def _make_stream(self, options: StreamOptions) -> StreamT:
        """The shell's stream (:class:`Stream` or :class:`AsyncStream`) over
        :meth:`_stream_session`."""

    def _stream_session(
        self, options: StreamOptions, *, threaded: bool
    ) -> AsyncStream | RelayStream:
        """A new session core, or a relay participant with ``options.relay`` (it must be made
        on the loop that will run it)."""
        s = self._settings

        def session(tap: Callable[[str], None] | None, threaded: bool) -> AsyncStream:
            return AsyncStream(
                url=s.ws_url,
                env=s.env,
                hts_id=s.hts_id,
                approval=self._approval_keys,
                lease=self._shared.stream_lease(s.env, s.app_key),
                options=options,
                threaded=threaded,
                observer=s.observer,
                tap=tap,
            )

        if not options.relay:
            return session(None, threaded)
        return RelayStream(
            make_owner=lambda tap: session(tap, False),
            channel=self._shared.relay_channel(s.env, s.app_key),
            env=s.env,
            hts_id=s.hts_id,
            options=options,
            threaded=threaded,
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Build a client from ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ENV``, ``KIS_ACCOUNT``,
        ``KIS_BASE_URL``, ``KIS_STATE_DIR``, ``KIS_SHARED_STATE`` (and the others of
        :data:`kisclient._settings.ENV_VARS`); keyword arguments override them.

        Raises :class:`~kisclient.ConfigurationError` naming every missing variable.
        """
        return cls(**{**settings_from_env(), **overrides})

    # --- read-only properties ---

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
        """How many access tokens this client issued (each one notifies the account holder),
        the data key's included."""
        data = self._data_route.tokens
        return self._tokens.issuances + (data.issuances if data is not self._tokens else 0)

    @property
    def shared_state_status(self) -> SharedStateStatus:
        """Where the state shared with other processes lives (the ``state_dir`` files, or
        Redis with ``shared_state``) and whether it is shared right now: ``mode == "local"``
        while Redis is unreachable (see docs/shared-state.md)."""
        return self._shared.status

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

    # --- the public operations, one flow each (see kisclient._surface) ---

    @operation
    def get_price(self, code: str, *, with_name: bool = False) -> Flow[Quote]:
        """The current quote of one stock (``inquire-price``), from the cache when fresh.

        inquire-price has no name field. ``Quote.name`` is filled when the client already knows
        the name today (from :meth:`get_stock_info`, a 30-code batch or a ranking); with
        *with_name* an unknown name costs one ``search-stock-info`` (kept for the KST day; a
        failed look-up leaves it ``""``). It is not fetched by default because it would double
        the requests of every first quote of a code.
        """
        cached = self._cached_quote(code)
        if cached is not None:
            return cached
        quote = yield from ops.get_price(self._data_env, code)
        return self._remember_quote((yield from self._named(quote, fetch=with_name)))

    @operation
    def get_prices(
        self,
        codes: Iterable[str],
        *,
        multi: bool | None = None,
        concurrency: int = 8,
        progress: ProgressCallback | None = None,
    ) -> Flow[PriceBatch]:
        """Quotes for many codes; one bad code or failed call never aborts the batch.

        Every input code ends in ``.succeeded`` or ``.failed`` (invalid codes with their
        :class:`~kisclient.InvalidStockCode`). Fresh cached quotes are used first; duplicates are
        fetched once; the 30-code multi-price endpoint is used where the environment has it
        (``multi=None``), per-code calls otherwise. The async client keeps at most *concurrency*
        requests in flight, never more than the smallest rate window admits at once (1 on
        paper); a sync client sends one at a time. *progress(done, total)* is called as codes
        settle. Cancelling an async batch cancels every request of it and leaves no task behind.
        """
        started = self._settings.clock.monotonic()
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        batch, todo, total = self._start_batch(codes)
        groups = ops.batch_groups(self._data_env, todo, multi)
        settled = total - len(todo)

        def group_done(index: int) -> None:
            nonlocal settled
            settled += len(groups[index])
            if progress is not None:
                progress(settled, total)

        outcomes = yield Gather(
            [ops.get_prices_for(self._data_env, group, batch) for group in groups],
            limit=self._useful_concurrency(concurrency),
            on_done=group_done,
        )
        for outcome in outcomes:
            if isinstance(outcome, KISError):
                raise outcome
        return self._finish_batch(batch, todo, started)

    @operation
    def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> Flow[list[DailyBar]]:
        """Daily bars in ``[start, end]``, oldest first (paging past the 100-row limit)."""
        return (yield from ops.get_daily_prices(self._data_env, code, start, end))

    @operation
    def get_balance(self) -> Flow[Balance]:
        """Holdings (every page) and the account summary. An empty account is an empty
        :class:`~kisclient.Balance`; a failed call raises."""
        s = self._settings
        return (yield from ops.get_balance(s.env, s.require_account()))

    @operation
    def order_cash(
        self,
        side: Side,
        code: str,
        qty: int,
        price: int | None = None,
        *,
        condition: OrderCondition | None = None,
    ) -> Flow[OrderResult]:
        """Place a cash order: a limit order at *price*, or a market order when it is ``None``;
        or the :class:`~kisclient.OrderCondition` *condition* (``ORD_DVSN``). A condition that
        needs a price without one, one that takes none with one, or one KIS does not take on
        paper (all but LIMIT and MARKET) raises :class:`~kisclient.ValidationError` before
        anything is sent.

        The :class:`~kisclient.OrderResult` keeps the order's terms, so :meth:`revise_order`
        and :meth:`cancel_order` take it without a look-up. Raises
        :class:`~kisclient.OrderOutcomeUnknown` when the order may have been executed without an
        answer saying so; pass it to :meth:`reconcile_order` before resending.
        """
        s = self._settings
        account, legacy = s.require_account(), s.legacy_order_tr_ids
        return (
            yield from ops.order_cash(
                s.env, account, side, code, qty, price, legacy_tr_id=legacy, condition=condition
            )
        )

    @operation
    def cancel_order(self, order: OrderRef, *, qty: int | None = None) -> Flow[OrderResult]:
        """Cancel *qty* shares of *order*, or all that remains (``qty=None``:
        ``QTY_ALL_ORD_YN`` ``Y``), with ``order-rvsecncl``.

        *order* is the :class:`~kisclient.OrderResult` of :meth:`order_cash` (or of a
        revision), a :class:`~kisclient.DailyOrder`, a :class:`~kisclient.PendingOrder` (one
        request), or a bare order number (looked up among today's orders first: two requests).
        An order with nothing left raises :class:`~kisclient.OrderNotRevisable` (before sending
        when the object you pass already shows it); a lost answer raises
        :class:`~kisclient.OrderOutcomeUnknown` and is never resent (see :meth:`reconcile_order`).
        """
        return (yield from self._revise_or_cancel(order, "02", qty, None))

    @operation
    def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> Flow[list[DailyOrder]]:
        """Orders and fills between *start* and *end* (default: today, KST, on the client's
        clock), all pages, newest first, every documented field kept.

        Orders within three calendar months of today go to the current id (``TTTC0081R`` /
        ``VTTC0081R``; ``TTTC8001R`` with ``legacy_order_tr_ids``), older ones to the archive
        id (``CTSC9215R`` / ``VTSC9215R``); a range crossing the boundary is split in two."""
        s, today = self._settings, self._today()
        first, last = start or today, end or start or today
        account, legacy = s.require_account(), s.legacy_order_tr_ids
        return (
            yield from ops.get_daily_orders(
                s.env, account, first, last, code=code, side=side, today=today, legacy_tr_id=legacy
            )
        )

    @operation
    def reconcile_order(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        *,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> Flow[Reconciliation]:
        """Establish whether an order whose answer was lost reached KIS.

        *unknown* is the :class:`~kisclient.OrderOutcomeUnknown` (or its ``request``). KIS has no
        client order id, so the order is matched on every field it carries (side, code,
        quantity, price, order division; never a revision or cancellation row, never an order
        number in *exclude*, never an order placed before the request left, on KIS's clock).

        The answer is a :class:`~kisclient.Reconciliation`: ``FOUND`` (with the order),
        ``ABSENT`` only once the settle window (``order_settle`` seconds after the request left,
        measured on KIS's clock via the ``Date`` header) has passed without the order appearing,
        and ``UNKNOWN`` otherwise: still inside the window, or a look-up failed. Resend only on
        ``ABSENT``. With *wait* (default) the day's orders are looked up again every few seconds
        on the client's clock until the order is found or the window has passed; without it one
        look-up is made.
        """
        reconciler = self._reconciler(unknown, exclude, wait)
        s = self._settings
        while True:
            lookup = reconciler.lookup(
                s.env, s.require_account(), self._gateway.offset, s.clock.time()
            )
            (result,) = yield Gather([lookup])
            step = reconciler.feed(result, local_now=s.clock.time(), offset=self._gateway.offset)
            if isinstance(step, Reconciliation):
                return step
            yield Sleep(step)

    # --- market data (issue 12) ---

    @operation
    def get_orderbook(self, code: str) -> Flow[OrderBookSnapshot]:
        """The ten-level order book (best first) and the expected trade of *code*
        (``inquire-asking-price-exp-ccn``: ``output1`` the book, ``output2`` the expected trade)."""
        return (yield from _market.get_orderbook(self._data_env, code))

    @operation
    def get_minute_bars(
        self, code: str, *, day: dt.date | None = None, until: dt.time | None = None
    ) -> Flow[list[MinuteBar]]:
        """*day*'s one-minute bars (default today, KST) from 09:00 to *until* (default: now for
        today, the close for a past day), oldest first.

        Today's come from ``inquire-time-itemchartprice`` (30 bars a call), a past day's from
        ``inquire-time-dailychartprice`` (120 a call; KIS keeps about a year); both page back
        one minute before the oldest bar received.
        """
        now = self._settings.clock.now().astimezone(KST)
        today = now.date()
        day = today if day is None else day
        if until is None:
            until = now.time().replace(microsecond=0) if day == today else _market.MARKET_CLOSE
        return (
            yield from _market.get_minute_bars(
                self._data_env, code, day=day, today=today, until=until
            )
        )

    @operation
    def get_bars(
        self,
        code: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        period: _market.Period = "D",
        adjusted: bool = True,
    ) -> Flow[list[DailyBar]]:
        """Bars of *period* (``"D"`` day, ``"W"`` week, ``"M"`` month, ``"Y"`` year) in
        ``[start, end]``, oldest first (``inquire-daily-itemchartprice``).

        *end* defaults to today (KST); without *start* the answer is the newest 100 periods up
        to *end* (one call). *adjusted* sends ``FID_ORG_ADJ_PRC`` ``"0"`` (수정주가: prices
        adjusted for splits and rights issues), ``False`` sends ``"1"`` (원주가, as traded); KIS's
        official sample gives these meanings for this chart. Week, month and year bars overlapping
        ``[start, end]`` are whole periods, as KIS computes them.
        """
        last = self._today() if end is None else end
        return (
            yield from _market.get_bars(
                self._data_env, code, start, last, period=period, adjusted=adjusted
            )
        )

    @operation
    def get_stock_info(self, code: str) -> Flow[StockInfo]:
        """*code*'s master data (``search-stock-info``): names, market and listing dates, sector
        and industry classifications, shares, par value, status flags."""
        info = yield from _market.get_stock_info(self._data_env, code)
        if info.name:
            self._stock_names()[(self._today(), info.code)] = info.name
        return info

    @operation
    def get_volume_rank(
        self, market: _market.Market = "all", *, by: str = "volume"
    ) -> Flow[list[RankedStock]]:
        """The top codes by today's volume (``volume-rank``; KIS answers 30), by rank. *market*:
        ``"all"``, ``"kospi"`` or ``"kosdaq"``; *by*: ``"volume"``, ``"volume_increase"``,
        ``"turnover"``, ``"traded_value"`` or ``"traded_value_turnover"``."""
        return (yield from _market.get_volume_rank(self._data_env, market, by))

    @operation
    def get_fluctuation_rank(
        self, market: _market.Market = "all", *, direction: str = "up"
    ) -> Flow[list[RankedStock]]:
        """Today's biggest risers (*direction* ``"up"``) or fallers (``"down"``) by change rate
        (``ranking/fluctuation``), by rank."""
        return (yield from _market.get_fluctuation_rank(self._data_env, market, direction))

    @operation
    def get_market_cap_rank(self, market: _market.Market = "all") -> Flow[list[RankedStock]]:
        """The largest companies by market capitalisation (``ranking/market-cap``), by rank."""
        return (yield from _market.get_market_cap_rank(self._data_env, market))

    @operation
    def get_holidays(self, start: dt.date | None = None) -> Flow[list[MarketDay]]:
        """KRX's calendar from *start* (default today, KST) as KIS answers it in one call
        (``chk-holiday``, real only: on paper it needs a data key; KIS asks for at most one call
        a day)."""
        first = self._today() if start is None else start
        return (yield from _market.get_holidays(self._data_env, first))

    @operation
    def get_period_profit(
        self, start: dt.date, end: dt.date | None = None, *, code: str | None = None
    ) -> Flow[PeriodProfit]:
        """Realised profit per day in ``[start, end]`` (default end: today) and the period's
        totals (``inquire-period-profit``, every page; real accounts only)."""
        s = self._settings
        last = self._today() if end is None else end
        account = s.require_account()
        return (yield from _market.get_period_profit(s.env, account, start, last, code=code))

    def _stock_names(self) -> dict[tuple[dt.date, str], str]:
        """Names by (KST day, code): ``get_price`` fills ``Quote.name`` from them
        (inquire-price has no name field)."""
        return self._names

    def _named(self, quote: Quote, *, fetch: bool) -> Flow[Quote]:
        """*quote* with its name: from today's name cache, else (with *fetch*) one
        ``search-stock-info`` (whose failure leaves the name empty rather than failing the
        quote)."""
        if quote.name:
            return quote
        names, today = self._stock_names(), self._today()
        name = names.get((today, quote.code))
        if name is None and not fetch:
            return quote
        if name is None:
            for key in [k for k in names if k[0] != today]:
                names.pop(key, None)
            (info,) = yield Gather([_market.get_stock_info(self._data_env, quote.code)])
            if isinstance(info, KISError) or not info.name:
                return quote
            name = names[(today, quote.code)] = info.name
        return attrs.evolve(quote, name=name)

    # --- the order lifecycle (issue 12) ---

    @operation
    def revise_order(
        self, order: OrderRef, *, price: int | None = None, qty: int | None = None
    ) -> Flow[OrderResult]:
        """Revise *order* (``order-rvsecncl``, ``RVSE_CNCL_DVSN_CD`` ``01``): *qty* of its
        remaining shares (``None``: all that remains) move to the new *price* (``None``: the
        order's own price). Re-pricing a market-type order makes it a limit order.

        *order* as for :meth:`cancel_order`: an :class:`~kisclient.OrderResult`,
        :class:`~kisclient.DailyOrder` or :class:`~kisclient.PendingOrder` costs one request, a
        bare order number two (a look-up first). Revising an order that already filled raises
        :class:`~kisclient.OrderNotRevisable`; a lost answer raises
        :class:`~kisclient.OrderOutcomeUnknown` and is never resent. The result is the new
        order (its own order number), with its terms.
        """
        return (yield from self._revise_or_cancel(order, "01", qty, price))

    def _revise_or_cancel(
        self, order: OrderRef, kind: life.RvseCncl, qty: int | None, price: int | None
    ) -> Flow[OrderResult]:
        s = self._settings
        change = life.revise_or_cancel(
            s.env,
            s.require_account(),
            order,
            kind,
            qty=qty,
            price=price,
            today=self._today(),
            legacy_tr_id=s.legacy_order_tr_ids,
        )
        return (yield from change)

    @operation
    def get_pending_orders(self) -> Flow[list[PendingOrder]]:
        """The orders that can still be revised or cancelled (remaining quantity > 0).

        Real: ``inquire-psbl-rvsecncl``, every page. Paper: KIS does not offer that call there,
        so the same answer is derived from today's orders (``inquire-daily-ccld``, open orders
        only: a remaining quantity, not a cancellation), as :class:`~kisclient.PendingOrder`.
        """
        s = self._settings
        return (yield from life.pending_orders(s.env, s.require_account(), self._today()))

    @operation
    def get_buyable(self, code: str, price: int | None = None) -> Flow[Buyable]:
        """Cash and quantity orderable for *code* (``inquire-psbl-order``): at *price* (limit),
        or at the market without one. Open buy orders already hold their cash."""
        s = self._settings
        return (yield from life.buyable(s.env, s.require_account(), code, price))

    @operation
    def get_sellable(self, code: str) -> Flow[Sellable]:
        """The quantity of *code* a sell order may take now (``.orderable_qty``).

        Real: ``inquire-psbl-sell``. Paper, where KIS does not offer it: from the balance
        (the holding's ``ord_psbl_qty``; every page of the balance, at paper's 1/s).
        """
        s = self._settings
        return (yield from life.sellable(s.env, s.require_account(), code))

    @operation
    def sell_all(self, code: str, price: int | None = None) -> Flow[OrderResult]:
        """Sell everything of *code* that can be sold, in one order: at the market, or a limit
        at *price*. The quantity is :meth:`get_sellable`'s ``orderable_qty`` (shares already
        held by open sell orders are left alone).

        Nothing to sell raises :class:`~kisclient.ValidationError` (no order is sent). The
        order keeps every safety of :meth:`order_cash` (never resent; reconcile a lost answer).
        """
        s = self._settings
        account = s.require_account()
        available = yield from life.sellable(s.env, account, code)
        if available.orderable_qty <= 0:
            raise ValidationError(f"nothing to sell: no sellable quantity of {available.code}")
        return (
            yield from ops.order_cash(
                s.env,
                account,
                "sell",
                code,
                available.orderable_qty,
                price,
                legacy_tr_id=s.legacy_order_tr_ids,
            )
        )

    # --- any endpoint ---

    @operation
    def request(
        self,
        method: str,
        path: str,
        *,
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Flow[Response]:
        """Call any endpoint: the escape hatch, with the same limits, token and retries.

        A POST to a path the registry does not know is treated as non-idempotent (never resent
        once it may have arrived).
        """
        response: Response = yield self._escape_hatch_call(
            method, path, tr_id, params, body, headers
        )
        return response

    @pages
    def paginate(
        self,
        method: str,
        path: str,
        *,
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int | None = None,
    ) -> PageFlow:
        """Yield every page of a ``tr_cont`` / ``CTX_AREA_*`` paginated call (KIS's 연속조회)."""
        call: Call | None = self._escape_hatch_call(method, path, tr_id, params, body, headers)
        pages_seen = 0
        while call is not None and (max_pages is None or pages_seen < max_pages):
            response = yield call
            pages_seen += 1
            call = next_page(call, response.headers, response.data)

    @operation
    def hashkey(self, body: Mapping[str, Any]) -> Flow[str]:
        """The ``HASH`` of *body* from ``/uapi/hashkey`` (optional for orders)."""
        response = yield self._hashkey_call(body)
        return str(response.data.get("HASH", ""))

    # --- calls ---

    def _token_call(self, route: str) -> Call:
        key = self._data_route if route == "data" else self._account_route
        return Call(
            ENDPOINTS["token"],
            body={
                "grant_type": "client_credentials",
                "appkey": key.app_key,
                "appsecret": key.app_secret,
            },
        )

    def _revoke_call(self, access_token: str) -> Call:
        s = self._settings
        return Call(
            ENDPOINTS["revoke"],
            body={"appkey": s.app_key, "appsecret": s.app_secret, "token": access_token},
        )

    def _approval_call(self) -> Call:
        s = self._settings
        return Call(
            ENDPOINTS["approval"],
            body={
                "grant_type": "client_credentials",
                "appkey": s.app_key,
                "secretkey": s.app_secret,
            },
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
