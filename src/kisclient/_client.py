"""The synchronous client: the shared core plus a blocking send loop."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import tenacity

from . import _operations as ops
from ._base import ONE_ATTEMPT, ClientBase, ProgressCallback, RetryControls, RetrySignal
from ._clock import Clock
from ._config import Env, Side
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
from ._validation import Account

__all__ = ["KISClient"]

T = TypeVar("T")


class KISClient(ClientBase):
    """A blocking KIS client. Use it as a context manager, or call :meth:`close`.

    Every call goes: shared rate limit → a valid token from the shared store → attempts bounded
    by :class:`~kisclient.RetryPolicy` and the client's retry budget → a typed result or a
    :class:`~kisclient.KISError`. Orders are resent only when they certainly did not arrive.

    ``base_url`` overrides every endpoint's host (tokens included). ``state_dir`` holds the token
    store, its lock and the shared rate state (default: the user's cache directory).
    ``rate_limits`` is a list of :class:`~kisclient.Window` (``None``: the documented limits;
    ``[]``: no client-side limit). ``transport`` is any :class:`httpx.BaseTransport`, e.g.
    ``kisclient.testing.FakeKIS().transport()``.
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
        transport: httpx.BaseTransport | None = None,
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
        self._http = httpx.Client(transport=transport, timeout=settings.timeout_s)

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
        return self._remember_quote(self._run(ops.get_price(self._settings.env, code)))

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
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        started = self._settings.clock.monotonic()
        batch, todo, total = self._start_batch(codes)
        done = total - len(todo)
        for group in ops.batch_groups(self._settings.env, todo, multi):
            self._run(ops.get_prices_for(self._settings.env, group, batch))
            done += len(group)
            if progress is not None:
                progress(done, total)
        return self._finish_batch(batch, todo, started)

    def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """Daily bars in ``[start, end]``, oldest first (paging past the 100-row limit)."""
        return self._run(ops.get_daily_prices(self._settings.env, code, start, end))

    def get_balance(self) -> Balance:
        """Holdings (every page) and the account summary. An empty account is an empty
        :class:`~kisclient.Balance`; a failed call raises."""
        return self._run(ops.get_balance(self._settings.env, self._settings.require_account()))

    def order_cash(
        self,
        side: Side,
        code: str,
        qty: int,
        price: int | None = None,
    ) -> OrderResult:
        """Place a cash order: a limit order at *price*, or a market order when it is ``None``.

        Raises :class:`~kisclient.OrderOutcomeUnknown` when the order may have been executed
        without an answer saying so; pass it to :meth:`reconcile_order` before resending.
        """
        s = self._settings
        return self._run(
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

    def cancel_order(self, order: DailyOrder) -> OrderResult:
        """Cancel what remains of *order* (from :meth:`get_daily_orders`)."""
        return self._run(
            ops.cancel_order(self._settings.env, self._settings.require_account(), order)
        )

    def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> list[DailyOrder]:
        """Orders and fills between *start* and *end* (default: today, KST), all pages."""
        today = self._today()
        return self._run(
            ops.get_daily_orders(
                self._settings.env,
                self._settings.require_account(),
                start or today,
                end or start or today,
                code=code,
                side=side,
            )
        )

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
        s = self._settings
        reconciler = self._reconciler(unknown, exclude, wait)
        while True:
            result: tuple[list[DailyOrder], float | None] | KISError
            try:
                result = self._run(
                    reconciler.lookup(
                        s.env, s.require_account(), self._clock_offset, s.clock.time()
                    )
                )
            except KISError as exc:
                result = exc
            step = reconciler.feed(result, local_now=s.clock.time(), offset=self._clock_offset)
            if isinstance(step, Reconciliation):
                return step
            s.clock.sleep(step)

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

    # --- the send loop ---

    def _run(self, operation: Operation[T]) -> T:
        """Drive an operation: send each call it yields, feed back responses or errors."""
        try:
            call = next(operation)
            while True:
                try:
                    response = self._execute(call)
                except KISError as exc:
                    call = operation.throw(exc)
                else:
                    call = operation.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _execute(self, call: Call, *, limited: bool = True, once: bool = False) -> Response:
        """Send *call* until it succeeds, fails for good, or the retry policy stops it."""
        s = self._settings
        controls = RetryControls(ONE_ATTEMPT if once else s.retry, s.clock, self._rng)
        retrying = tenacity.Retrying(sleep=s.clock.sleep, **controls.tenacity_kwargs())
        number = 0
        try:
            for attempt_ctx in retrying:
                with attempt_ctx:
                    number += 1
                    limited = limited and call.endpoint.authenticated
                    return self._attempt(call, number, controls, limited=limited)
        except RetrySignal as signal:
            raise self._final_error(signal) from None
        raise AssertionError("unreachable: tenacity re-raises the last attempt")  # pragma: no cover

    def _attempt(
        self, call: Call, number: int, controls: RetryControls, *, limited: bool
    ) -> Response:
        s = self._settings
        admitted = self._limiter.acquire() if limited else None
        waited_from = s.clock.monotonic()
        token = self._tokens.get() if call.endpoint.authenticated else None
        controls.exclude(s.clock.monotonic() - waited_from)
        headers = build_headers(
            call,
            app_key=s.app_key,
            app_secret=s.app_secret,
            authorization=token.authorization if token else None,
        )
        call = self._stamp_sent(call)
        try:
            http_response = self._http.request(
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
            self._limiter.settle(admitted)
        verdict = self._settle(call, attempt)
        if verdict.penalize_s:
            self._limiter.penalize(verdict.penalize_s)
        if verdict.refresh_token and token is not None:
            waited_from = s.clock.monotonic()
            self._tokens.invalidate(token)
            controls.exclude(s.clock.monotonic() - waited_from)
        if verdict.action == "success":
            return self._response(verdict, attempt)
        if verdict.action == "retry":
            raise RetrySignal(verdict)
        raise self._final_error(RetrySignal(verdict))

    def _issue_token_sync(self) -> Mapping[str, Any]:
        return self._execute(self._token_call(), limited=False, once=True).data

    @property
    def account(self) -> Account | None:
        """The account (its repr is masked)."""
        return self._settings.account

    @property
    def environment(self) -> Env:
        return self._settings.env
