"""The asynchronous client: the same core as :class:`~kisclient.KISClient`, an async send loop.

Everything but sending and sleeping is shared (:mod:`kisclient._base`,
:mod:`kisclient._operations`, :mod:`kisclient._core`). Token refresh and the cross-process file
locks run in worker threads, so nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import tenacity

from . import _operations as ops
from ._base import ONE_ATTEMPT, ClientBase, ProgressCallback, RetryControls, RetrySignal
from ._clock import Clock
from ._config import Side
from ._core import (
    Call,
    RetryPolicy,
    attempt_from_exception,
    attempt_from_response,
    build_headers,
    next_page,
)
from ._errors import KISError, OrderOutcomeUnknown
from ._models import (
    Balance,
    DailyBar,
    DailyOrder,
    OrderResult,
    PriceBatch,
    Quote,
    Reconciliation,
)
from ._operations import Operation, Response
from ._ratelimit import Window
from ._settings import ClientSettings
from ._token_store import Token
from ._validation import StockCode

__all__ = ["AsyncKISClient"]

T = TypeVar("T")


class AsyncKISClient(ClientBase):
    """The awaitable twin of :class:`~kisclient.KISClient`: same arguments, same methods.

    It shares its token and its rate budget with every sync client and process of the same
    (environment, app key) through ``state_dir``. ``transport`` is any
    :class:`httpx.AsyncBaseTransport`, e.g. ``FakeKIS().async_transport()``.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        env: str = "real",
        account: str | None = None,
        base_url: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        rate_limits: Sequence[Window] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        clock: Clock | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        retry_budget: int = 100,
        refresh_margin: float = 300.0,
        token_min_interval: float = 60.0,
        legacy_order_tr_ids: bool = False,
        quote_cache_ttl: float = 0.0,
        rate_margin: float = 0.0,
        order_settle: float = 60.0,
    ) -> None:
        settings = ClientSettings.build(
            app_key=app_key,
            app_secret=app_secret,
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
        self._init_common(settings)
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout_s)

    # --- lifecycle ---

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- public operations ---

    async def get_price(self, code: str) -> Quote:
        """The current quote of one stock (``inquire-price``), from the cache when fresh."""
        cached = self._cached_quote(code)
        if cached is not None:
            return cached
        return self._remember_quote(await self._run(ops.get_price(self._settings.env, code)))

    async def get_prices(
        self,
        codes: Iterable[str],
        *,
        multi: bool | None = None,
        concurrency: int = 8,
        progress: ProgressCallback | None = None,
    ) -> PriceBatch:
        """Quotes for many codes, concurrently, at the rate the limiter allows.

        One bad code or failed request never aborts the batch: every input code ends in
        ``.succeeded`` or ``.failed``. Fresh cached quotes are used first; duplicates are
        fetched once; the 30-code endpoint is used where the environment has it. At most
        *concurrency* requests are in flight, and never more than the smallest rate window
        admits at once (1 on paper: more would only queue in the limiter).
        *progress(done, total)* is called as codes settle. Cancelling the awaiting task cancels
        every request of the batch and leaves no task behind.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        env = self._settings.env
        started = self._settings.clock.monotonic()
        batch, todo, total = self._start_batch(codes)
        done = total - len(todo)
        semaphore = asyncio.Semaphore(self._useful_concurrency(concurrency))

        async def fetch(group: list[StockCode]) -> None:
            nonlocal done
            async with semaphore:
                await self._run(ops.get_prices_for(env, group, batch))
            done += len(group)
            if progress is not None:
                progress(done, total)

        async with asyncio.TaskGroup() as tasks:
            for group in ops.batch_groups(env, todo, multi):
                tasks.create_task(fetch(group))
        return self._finish_batch(batch, todo, started)

    async def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """Daily bars in ``[start, end]``, oldest first (paging past the 100-row limit)."""
        return await self._run(ops.get_daily_prices(self._settings.env, code, start, end))

    async def get_balance(self) -> Balance:
        """Holdings (every page) and the account summary."""
        return await self._run(
            ops.get_balance(self._settings.env, self._settings.require_account())
        )

    async def order_cash(
        self,
        side: Side,
        code: str,
        qty: int,
        price: int | None = None,
    ) -> OrderResult:
        """Place a cash order; see :meth:`KISClient.order_cash`."""
        s = self._settings
        return await self._run(
            ops.order_cash(
                s.env,
                s.require_account(),
                side,
                code,
                qty,
                price,
                legacy_tr_id=s.legacy_order_tr_ids,
            )
        )

    async def cancel_order(self, order: DailyOrder) -> OrderResult:
        """Cancel what remains of *order*."""
        return await self._run(
            ops.cancel_order(self._settings.env, self._settings.require_account(), order)
        )

    async def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> list[DailyOrder]:
        """Orders and fills between *start* and *end* (default: today, KST), all pages."""
        today = self._today()
        return await self._run(
            ops.get_daily_orders(
                self._settings.env,
                self._settings.require_account(),
                start or today,
                end or start or today,
                code=code,
                side=side,
            )
        )

    async def reconcile_order(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        *,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> Reconciliation:
        """Establish whether an order whose answer was lost reached KIS; see
        :meth:`KISClient.reconcile_order` (same contract; waits with ``clock.asleep``)."""
        s = self._settings
        reconciler = self._reconciler(unknown, exclude, wait)
        while True:
            result: tuple[list[DailyOrder], float | None] | KISError
            try:
                result = await self._run(
                    reconciler.lookup(
                        s.env, s.require_account(), self._clock_offset, s.clock.time()
                    )
                )
            except KISError as exc:
                result = exc
            step = reconciler.feed(result, local_now=s.clock.time(), offset=self._clock_offset)
            if isinstance(step, Reconciliation):
                return step
            await s.clock.asleep(step)

    async def request(
        self,
        method: str,
        path: str,
        *,
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Call any endpoint; see :meth:`KISClient.request`."""
        return await self._execute(
            self._escape_hatch_call(method, path, tr_id, params, body, headers)
        )

    async def paginate(
        self,
        method: str,
        path: str,
        *,
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[Response]:
        """Yield every page of a paginated call; see :meth:`KISClient.paginate`."""
        call: Call | None = self._escape_hatch_call(method, path, tr_id, params, body, headers)
        pages = 0
        while call is not None and (max_pages is None or pages < max_pages):
            response = await self._execute(call)
            pages += 1
            yield response
            call = next_page(call, response.headers, response.data)

    async def hashkey(self, body: Mapping[str, Any]) -> str:
        """The ``HASH`` of *body* from ``/uapi/hashkey``."""
        return str((await self._execute(self._hashkey_call(body))).data.get("HASH", ""))

    async def revoke(self) -> None:
        """Revoke the current access token on the server and forget it locally."""

        async def revoke_fn(token: Token) -> None:
            await self._execute(self._revoke_call(token.access_token), limited=False, once=True)

        await self._tokens.arevoke(revoke_fn)

    async def token_expires_at(self) -> dt.datetime | None:
        """When the stored access token expires (KST), or ``None`` when there is none."""
        token = await asyncio.to_thread(self._tokens.peek)
        return token.expires_at if token else None

    # --- the send loop ---

    async def _run(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                try:
                    response = await self._execute(call)
                except KISError as exc:
                    call = operation.throw(exc)
                else:
                    call = operation.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _execute(self, call: Call, *, limited: bool = True, once: bool = False) -> Response:
        s = self._settings
        controls = RetryControls(ONE_ATTEMPT if once else s.retry, s.clock, self._rng)
        retrying = tenacity.AsyncRetrying(sleep=s.clock.asleep, **controls.tenacity_kwargs())
        number = 0
        try:
            async for attempt_ctx in retrying:
                with attempt_ctx:
                    number += 1
                    limited = limited and call.endpoint.authenticated
                    return await self._attempt(call, number, controls, limited=limited)
        except RetrySignal as signal:
            raise self._final_error(signal) from None
        raise AssertionError("unreachable: tenacity re-raises the last attempt")  # pragma: no cover

    async def _attempt(
        self, call: Call, number: int, controls: RetryControls, *, limited: bool
    ) -> Response:
        s = self._settings
        admitted = await self._limiter.aacquire() if limited else None
        waited_from = s.clock.monotonic()
        token = await self._tokens.aget() if call.endpoint.authenticated else None
        controls.exclude(s.clock.monotonic() - waited_from)
        headers = build_headers(
            call,
            app_key=s.app_key,
            app_secret=s.app_secret,
            authorization=token.authorization if token else None,
        )
        call = self._stamp_sent(call)
        try:
            http_response = await self._http.request(
                call.endpoint.method,
                s.url(call.endpoint.path),
                params=call.params,
                json=call.body,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            attempt = attempt_from_exception(number, exc)
        else:
            attempt = attempt_from_response(number, http_response)
        if admitted is not None:
            await self._limiter.asettle(admitted)
        verdict = self._settle(call, attempt)
        if verdict.penalize_s:
            await asyncio.to_thread(self._limiter.penalize, verdict.penalize_s)
        if verdict.refresh_token and token is not None:
            waited_from = s.clock.monotonic()
            await self._tokens.ainvalidate(token)
            controls.exclude(s.clock.monotonic() - waited_from)
        if verdict.action == "success":
            return self._response(verdict, attempt)
        if verdict.action == "retry":
            raise RetrySignal(verdict)
        raise self._final_error(RetrySignal(verdict))

    async def _issue_token_async(self) -> Mapping[str, Any]:
        return (await self._execute(self._token_call(), limited=False, once=True)).data
