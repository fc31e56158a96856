"""The asynchronous client: the same core as :class:`~kisclient.KISClient`, an async send loop.

Everything but sending and sleeping is shared (:mod:`kisclient._base`,
:mod:`kisclient._operations`, :mod:`kisclient._core`). Token refresh and the cross-process file
locks run in worker threads, so nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ._attempt import Effect, Finished, Invalidate, Penalize, Send, Settle, Sleep, Step, advance
from ._base import ClientBase, Route
from ._core import Call
from ._errors import KISError
from ._operations import Flow, Gather, Response
from ._stream import AsyncStream, StreamOptions
from ._stream_relay import RelayStream
from ._surface import PageFlow, operation, pages
from ._token_store import Token

__all__ = ["AsyncKISClient"]

T = TypeVar("T")


class AsyncKISClient(ClientBase[httpx.AsyncBaseTransport, AsyncStream | RelayStream]):
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

    # --- what is not an operation ---

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

    def _bind(self, method: operation[Any, Any] | pages[Any]) -> Callable[..., Any]:
        """This client's awaitable form of a public method (see :mod:`kisclient._surface`)."""
        flow = method.flow

        if isinstance(method, pages):

            async def paged(*args: Any, **kwargs: Any) -> AsyncIterator[Response]:
                async for response in self._pages(flow(self, *args, **kwargs)):
                    yield response

            return method.dress(paged, type(self))

        async def awaiting(*args: Any, **kwargs: Any) -> Any:
            return await self._run(flow(self, *args, **kwargs))

        return method.dress(awaiting, type(self))

    async def _run(self, flow: Flow[T]) -> T:
        """Drive a flow (see :meth:`KISClient._run`); a :class:`Gather` runs its operations
        concurrently, at most ``limit`` at once, in one task group."""
        step = advance(flow, None)
        while True:
            if type(step) is Call:
                outcome: object = await self._send(step)
            elif type(step) is Sleep:
                await self._settings.clock.asleep(step.seconds)
                outcome = None
            elif type(step) is Gather:
                outcome = await self._gather(step)
            elif type(step) is Finished:
                return step.value  # type: ignore[no-any-return]
            else:
                raise step  # type: ignore[misc]
            step = advance(flow, outcome)

    async def _gather(self, gather: Gather) -> list[object]:
        outcomes: list[object] = [None] * len(gather.operations)
        semaphore = asyncio.Semaphore(gather.limit)

        async def run_one(index: int) -> None:
            async with semaphore:
                try:
                    outcomes[index] = await self._run(gather.operations[index])
                except KISError as exc:
                    outcomes[index] = exc
            gather.done(index)

        async with asyncio.TaskGroup() as tasks:
            for index in range(len(gather.operations)):
                tasks.create_task(run_one(index))
        return outcomes

    async def _pages(self, flow: PageFlow) -> AsyncIterator[Response]:
        """Send every call *flow* yields and yield each answer."""
        step = advance(flow, None)
        while type(step) is Call:
            response = await self._execute(step)
            yield response
            step = advance(flow, response)
        if isinstance(step, Exception):
            raise step

    async def _execute(
        self, call: Call, *, limited: bool = True, once: bool = False, route: str | None = None
    ) -> Response:
        """Send one call outside an operation; raise its error."""
        outcome = await self._send(call, limited=limited, once=once, route=route)
        if isinstance(outcome, Response):
            return outcome
        raise outcome

    async def _send(
        self, call: Call, *, limited: bool = True, once: bool = False, route: str | None = None
    ) -> Response | KISError:
        """Perform *call*'s attempt flow (see :mod:`kisclient._attempt`) over its route,
        awaiting."""
        via = self._route(call, route)
        flow = self._attempts(call, via, limited=limited, once=once)
        try:
            effect = next(flow)
            while True:
                effect = flow.send(await self._perform(effect, via))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _perform(self, effect: Effect, route: Route) -> object:
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
            return await route.limiter.aacquire()
        if effect is Step.TOKEN:
            try:
                return await route.tokens.aget()
            except KISError as exc:
                return exc
        if type(effect) is Settle:
            await route.limiter.asettle(effect.admitted)
        elif type(effect) is Sleep:
            await self._settings.clock.asleep(effect.seconds)
        elif type(effect) is Penalize:
            await route.limiter.apenalize(effect.seconds)
        elif type(effect) is Invalidate:
            try:
                return await route.tokens.ainvalidate(effect.token)
            except KISError as exc:
                return exc
        return None

    async def _apost_once(self, call: Call, route: str) -> Mapping[str, Any]:
        return (await self._execute(call, limited=False, once=True, route=route)).data

    def _make_stream(self, options: StreamOptions) -> AsyncStream | RelayStream:
        return self._stream_session(options, threaded=False)
