"""The asynchronous client: the same core as :class:`~kisclient.KISClient`, an async send loop.

Everything but sending and sleeping is shared (:mod:`kisclient._base`,
:mod:`kisclient._operations`, :mod:`kisclient._core`). Token refresh and the cross-process file
locks run in worker threads, so nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ._attempt import Effect, Finished, Invalidate, Penalize, Send, Settle, Sleep, Step, advance
from ._base import ClientBase, Lookup, ProgressCallback
from ._config import Side
from ._core import Call, next_page
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
from ._token_store import Token
from ._validation import StockCode

__all__ = ["AsyncKISClient"]

T = TypeVar("T")


class AsyncKISClient(ClientBase[httpx.AsyncBaseTransport]):
    """The awaitable twin of :class:`~kisclient.KISClient`: same arguments, same methods.

    It shares its token and its rate budget with every sync client and process of the same
    (environment, app key) through ``state_dir``. ``transport`` is any
    :class:`httpx.AsyncBaseTransport`, e.g. ``FakeKIS().async_transport()``.
    """

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
        return self._remember_quote(await self._run(self._price_op(code)))

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
        started = self._settings.clock.monotonic()
        batch, todo, groups, total = self._batch_plan(codes, multi, concurrency)
        done = total - len(todo)
        semaphore = asyncio.Semaphore(self._useful_concurrency(concurrency))

        async def fetch(group: list[StockCode]) -> None:
            nonlocal done
            async with semaphore:
                await self._run(self._group_op(group, batch))
            done += len(group)
            if progress is not None:
                progress(done, total)

        async with asyncio.TaskGroup() as tasks:
            for group in groups:
                tasks.create_task(fetch(group))
        return self._finish_batch(batch, todo, started)

    async def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """Daily bars in ``[start, end]``, oldest first (paging past the 100-row limit)."""
        return await self._run(self._daily_prices_op(code, start, end))

    async def get_balance(self) -> Balance:
        """Holdings (every page) and the account summary."""
        return await self._run(self._balance_op())

    async def order_cash(
        self, side: Side, code: str, qty: int, price: int | None = None
    ) -> OrderResult:
        """Place a cash order; see :meth:`KISClient.order_cash`."""
        return await self._run(self._order_op(side, code, qty, price))

    async def cancel_order(self, order: DailyOrder) -> OrderResult:
        """Cancel what remains of *order*."""
        return await self._run(self._cancel_op(order))

    async def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> list[DailyOrder]:
        """Orders and fills between *start* and *end* (default: today, KST), all pages."""
        return await self._run(self._daily_orders_op(start, end, code, side))

    async def reconcile_order(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        *,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> Reconciliation:
        """Establish whether an order whose answer was lost reached KIS; see
        :meth:`KISClient.reconcile_order` (same contract; waits with ``clock.asleep``)."""
        reconciler = self._reconciler(unknown, exclude, wait)
        while True:
            try:
                result: Lookup = await self._run(self._lookup(reconciler))
            except KISError as exc:
                result = exc
            step = self._feed(reconciler, result)
            if isinstance(step, Reconciliation):
                return step
            await self._settings.clock.asleep(step)

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

    # --- performing the flows ---

    def _open(self, transport: httpx.AsyncBaseTransport | None, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout_s)

    async def _run(self, operation: Operation[T]) -> T:
        """Drive an operation (see :meth:`KISClient._run`), awaiting each call."""
        call = next(operation)
        while True:
            step = advance(operation, await self._send(call))
            if isinstance(step, Finished):
                return step.value  # type: ignore[no-any-return]
            if not isinstance(step, Call):
                raise step
            call = step

    async def _execute(self, call: Call, *, limited: bool = True, once: bool = False) -> Response:
        """Send one call outside an operation; raise its error."""
        outcome = await self._send(call, limited=limited, once=once)
        if isinstance(outcome, Response):
            return outcome
        raise outcome

    async def _send(
        self, call: Call, *, limited: bool = True, once: bool = False
    ) -> Response | KISError:
        """Perform *call*'s attempt flow (see :mod:`kisclient._attempt`), awaiting."""
        flow = self._attempts(call, limited=limited, once=once)
        try:
            effect = next(flow)
            while True:
                effect = flow.send(await self._perform(effect))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _perform(self, effect: Effect) -> object:
        """Perform one effect of the attempt flow; nothing here blocks the event loop (token
        files and the shared limiter's penalty run in worker threads)."""
        if type(effect) is Send:
            try:
                return await self._http.request(
                    effect.method, effect.url, params=effect.params, json=effect.body,
                    headers=effect.headers,
                )  # fmt: skip
            except httpx.HTTPError as exc:
                return exc
        if effect is Step.ADMIT:
            return await self._limiter.aacquire()
        if effect is Step.TOKEN:
            try:
                return await self._tokens.aget()
            except KISError as exc:
                return exc
        if type(effect) is Settle:
            await self._limiter.asettle(effect.admitted)
        elif type(effect) is Sleep:
            await self._settings.clock.asleep(effect.seconds)
        elif type(effect) is Penalize:
            await self._limiter.apenalize(effect.seconds)
        elif type(effect) is Invalidate:
            try:
                return await self._tokens.ainvalidate(effect.token)
            except KISError as exc:
                return exc
        return None

    async def _issue_token_async(self) -> Mapping[str, Any]:
        return (await self._execute(self._token_call(), limited=False, once=True)).data
