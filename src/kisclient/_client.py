"""The synchronous client: the shared core plus a blocking send loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
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

__all__ = ["KISClient"]

T = TypeVar("T")


class KISClient(ClientBase[httpx.BaseTransport]):
    """A blocking KIS client. Use it as a context manager, or call :meth:`close`.

    Every call goes: shared rate limit → a valid token from the shared store → attempts bounded
    by :class:`~kisclient.RetryPolicy` and the client's retry budget → a typed result or a
    :class:`~kisclient.KISError`. Orders are resent only when they certainly did not arrive.
    The constructor's arguments are described on :class:`~kisclient._base.ClientBase`;
    ``transport`` is any :class:`httpx.BaseTransport`.
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

    # --- public operations ---

    def get_price(self, code: str) -> Quote:
        """The current quote of one stock (``inquire-price``), from the cache when fresh."""
        cached = self._cached_quote(code)
        if cached is not None:
            return cached
        return self._remember_quote(self._run(self._price_op(code)))

    def get_prices(
        self,
        codes: Iterable[str],
        *,
        multi: bool | None = None,
        concurrency: int = 8,
        progress: ProgressCallback | None = None,
    ) -> PriceBatch:
        """Quotes for many codes; one bad code or failed call never aborts the batch.

        Uses the 30-code multi-price endpoint where the environment has it (``multi=None``),
        per-code calls otherwise. Invalid codes land in ``.failed`` with their
        :class:`~kisclient.InvalidStockCode`; duplicates are fetched once; fresh cached quotes
        are used first. *concurrency* exists for parity with the async client; a sync client
        sends one request at a time. *progress(done, total)* is called as codes settle.
        """
        started = self._settings.clock.monotonic()
        batch, todo, groups, total = self._batch_plan(codes, multi, concurrency)
        done = total - len(todo)
        for group in groups:
            self._run(self._group_op(group, batch))
            done += len(group)
            if progress is not None:
                progress(done, total)
        return self._finish_batch(batch, todo, started)

    def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """Daily bars in ``[start, end]``, oldest first (paging past the 100-row limit)."""
        return self._run(self._daily_prices_op(code, start, end))

    def get_balance(self) -> Balance:
        """Holdings (every page) and the account summary. An empty account is an empty
        :class:`~kisclient.Balance`; a failed call raises."""
        return self._run(self._balance_op())

    def order_cash(self, side: Side, code: str, qty: int, price: int | None = None) -> OrderResult:
        """Place a cash order: a limit order at *price*, or a market order when it is ``None``.

        Raises :class:`~kisclient.OrderOutcomeUnknown` when the order may have been executed
        without an answer saying so; pass it to :meth:`reconcile_order` before resending.
        """
        return self._run(self._order_op(side, code, qty, price))

    def cancel_order(self, order: DailyOrder) -> OrderResult:
        """Cancel what remains of *order* (from :meth:`get_daily_orders`)."""
        return self._run(self._cancel_op(order))

    def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> list[DailyOrder]:
        """Orders and fills between *start* and *end* (default: today, KST), all pages."""
        return self._run(self._daily_orders_op(start, end, code, side))

    def reconcile_order(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        *,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> Reconciliation:
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
        while True:
            try:
                result: Lookup = self._run(self._lookup(reconciler))
            except KISError as exc:
                result = exc
            step = self._feed(reconciler, result)
            if isinstance(step, Reconciliation):
                return step
            self._settings.clock.sleep(step)

    def request(
        self,
        method: str,
        path: str,
        *,
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Call any endpoint: the escape hatch, with the same limits, token and retries.

        A POST to a path the registry does not know is treated as non-idempotent (never resent
        once it may have arrived).
        """
        return self._execute(self._escape_hatch_call(method, path, tr_id, params, body, headers))

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
    ) -> Iterator[Response]:
        """Yield every page of a ``tr_cont`` / ``CTX_AREA_*`` paginated call (facts §4.3)."""
        call: Call | None = self._escape_hatch_call(method, path, tr_id, params, body, headers)
        pages = 0
        while call is not None and (max_pages is None or pages < max_pages):
            response = self._execute(call)
            pages += 1
            yield response
            call = next_page(call, response.headers, response.data)

    def hashkey(self, body: Mapping[str, Any]) -> str:
        """The ``HASH`` of *body* from ``/uapi/hashkey`` (optional for orders; facts §3)."""
        return str(self._execute(self._hashkey_call(body)).data.get("HASH", ""))

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

    def _run(self, operation: Operation[T]) -> T:
        """Drive an operation: send each call it yields, feed back responses or errors; raise
        what ends it here, where the user's call is."""
        call = next(operation)
        while True:
            step = advance(operation, self._send(call))
            if isinstance(step, Call):
                call = step
            elif isinstance(step, Finished):
                return step.value  # type: ignore[no-any-return]
            else:
                raise step

    def _execute(self, call: Call, *, limited: bool = True, once: bool = False) -> Response:
        """Send one call outside an operation (escape hatch, token, revoke); raise its error."""
        outcome = self._send(call, limited=limited, once=once)
        if isinstance(outcome, KISError):
            raise outcome
        return outcome

    def _send(self, call: Call, *, limited: bool = True, once: bool = False) -> Response | KISError:
        """Perform *call*'s attempt flow (see :mod:`kisclient._attempt`), blocking."""
        flow = self._attempts(call, limited=limited, once=once)
        try:
            effect = next(flow)
            while True:
                effect = flow.send(self._perform(effect))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _perform(self, effect: Effect) -> object:
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
            return self._limiter.acquire()
        if effect is Step.TOKEN:
            try:
                return self._tokens.get()
            except KISError as exc:
                return exc
        if type(effect) is Settle:
            self._limiter.settle(effect.admitted)
        elif type(effect) is Sleep:
            self._settings.clock.sleep(effect.seconds)
        elif type(effect) is Penalize:
            self._limiter.penalize(effect.seconds)
        elif type(effect) is Invalidate:
            try:
                return self._tokens.invalidate(effect.token)
            except KISError as exc:
                return exc
        return None

    def _issue_token_sync(self) -> Mapping[str, Any]:
        return self._execute(self._token_call(), limited=False, once=True).data
