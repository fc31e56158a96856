"""The synchronous client: the shared core plus a blocking send loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ._attempt import Effect, Finished, Invalidate, Penalize, Send, Settle, Sleep, Step, advance
from ._base import ClientBase, Route
from ._core import Call
from ._errors import KISError
from ._operations import Flow, Gather, Response
from ._stream import Stream, StreamOptions
from ._surface import PageFlow, operation, pages
from ._token_store import Token

__all__ = ["KISClient"]

T = TypeVar("T")


class KISClient(ClientBase[httpx.BaseTransport, Stream]):
    """A blocking KIS client. Use it as a context manager, or call :meth:`close`.

    Every call goes: shared rate limit → a valid token from the shared store → attempts bounded
    by :class:`~kisclient.RetryPolicy` and the client's retry budget → a typed result or a
    :class:`~kisclient.KISError`. Orders are resent only when they certainly did not arrive.
    The constructor's arguments are described on :class:`~kisclient._base.ClientBase`;
    ``transport`` is any :class:`httpx.BaseTransport`. The operations (``get_price``,
    ``order_cash``, ``reconcile_order``, ...) are written once on the base class and run here,
    blocking.
    """

    # --- lifecycle ---

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what is not an operation ---

    def revoke(self) -> None:
        """Revoke the current access token on the server and forget it locally."""

        def revoke_fn(token: Token) -> None:
            self._execute(self._revoke_call(token.access_token), limited=False, once=True)

        self._tokens.revoke(revoke_fn)

    def token_expires_at(self) -> dt.datetime | None:
        """When the stored access token expires (KST), or ``None`` when there is none."""
        token = self._tokens.peek()
        return token.expires_at if token else None

    # --- performing the flows ---

    def _open(self, transport: httpx.BaseTransport | None, timeout_s: float) -> None:
        self._http = httpx.Client(transport=transport, timeout=timeout_s)

    def _bind(self, method: operation[Any, Any] | pages[Any]) -> Callable[..., Any]:
        """This client's blocking form of a public method (see :mod:`kisclient._surface`)."""
        flow = method.flow

        if isinstance(method, pages):

            def paged(*args: Any, **kwargs: Any) -> Iterator[Response]:
                return self._pages(flow(self, *args, **kwargs))

            return method.dress(paged, type(self))

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._run(flow(self, *args, **kwargs))

        return method.dress(blocking, type(self))

    def _run(self, flow: Flow[T]) -> T:
        """Drive a flow: perform each step it yields, feed back the outcome; raise what ends it
        here, where the user's call is."""
        step = advance(flow, None)
        while True:
            if type(step) is Call:
                outcome: object = self._send(step)
            elif type(step) is Sleep:
                self._settings.clock.sleep(step.seconds)
                outcome = None
            elif type(step) is Gather:
                outcome = [self._gathered(step, index) for index in range(len(step.operations))]
            elif type(step) is Finished:
                return step.value  # type: ignore[no-any-return]
            else:
                raise step  # type: ignore[misc]
            step = advance(flow, outcome)

    def _gathered(self, gather: Gather, index: int) -> object:
        """Run operation *index* of *gather* to its end: its result, or its ``KISError``."""
        try:
            return self._run(gather.operations[index])
        except KISError as exc:
            return exc
        finally:
            gather.done(index)

    def _pages(self, flow: PageFlow) -> Iterator[Response]:
        """Send every call *flow* yields and yield each answer (see :class:`pages`)."""
        step = advance(flow, None)
        while type(step) is Call:
            response = self._execute(step)
            yield response
            step = advance(flow, response)
        if isinstance(step, Exception):
            raise step

    def _execute(
        self, call: Call, *, limited: bool = True, once: bool = False, route: str | None = None
    ) -> Response:
        """Send one call outside an operation (token, revoke, a page); raise its error."""
        outcome = self._send(call, limited=limited, once=once, route=route)
        if isinstance(outcome, KISError):
            raise outcome
        return outcome

    def _send(
        self, call: Call, *, limited: bool = True, once: bool = False, route: str | None = None
    ) -> Response | KISError:
        """Perform *call*'s attempt flow (see :mod:`kisclient._attempt`) over its route,
        blocking."""
        via = self._route(call, route)
        flow = self._attempts(call, via, limited=limited, once=once)
        try:
            effect = next(flow)
            while True:
                effect = flow.send(self._perform(effect, via))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _perform(self, effect: Effect, route: Route) -> object:
        """Perform one effect of the attempt flow and return what the flow expects back."""
        if type(effect) is Send:
            try:
                response = self._http.request(
                    effect.method,
                    effect.url,
                    params=effect.params,
                    json=effect.body,
                    headers=effect.headers,
                )
            except httpx.HTTPError as exc:
                return exc
            return response
        if effect is Step.ADMIT:
            return route.limiter.acquire()
        if effect is Step.TOKEN:
            try:
                return route.tokens.get()
            except KISError as exc:
                return exc
        if type(effect) is Settle:
            route.limiter.settle(effect.admitted)
        elif type(effect) is Sleep:
            self._settings.clock.sleep(effect.seconds)
        elif type(effect) is Penalize:
            route.limiter.penalize(effect.seconds)
        elif type(effect) is Invalidate:
            try:
                return route.tokens.invalidate(effect.token)
            except KISError as exc:
                return exc
        return None

    def _post_once(self, call: Call, route: str) -> Mapping[str, Any]:
        return self._execute(call, limited=False, once=True, route=route).data

    def _make_stream(self, options: StreamOptions) -> Stream:
        return Stream(lambda: self._stream_session(options, threaded=True))
