"""One call surface over both client shells, for the shared scenario suite.

``KISClient`` and ``AsyncKISClient`` have the same public methods; only the way they are called
differs. A scenario takes the ``shell`` fixture (a :class:`Shell`, parametrized ``sync`` /
``async``), opens a :class:`ClientDriver` with it and calls the driver like a sync client:

* ``sync``: every call goes straight to a :class:`~kisclient.KISClient`, in a thread with no
  event loop, the way a blocking program calls it;
* ``async``: the :class:`~kisclient.AsyncKISClient` is built and driven on one
  :class:`asyncio.Runner` that lives as long as the driver, the way an application keeps one
  event loop for a client's life. Each call is awaited to completion on that loop, so
  ``get_prices`` still fans out concurrently inside the call.

The driver checks the dispatch too: a sync method answering with a coroutine, or an async one
answering without, fails the scenario instead of being papered over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

from kis_support import async_client, sync_client
from kisclient import (
    Account,
    AsyncKISClient,
    Balance,
    Buyable,
    DailyBar,
    DailyOrder,
    Env,
    FakeClock,
    KISClient,
    MarketDay,
    MinuteBar,
    OrderBookSnapshot,
    OrderCondition,
    OrderOutcomeUnknown,
    OrderResult,
    PendingOrder,
    PeriodProfit,
    PriceBatch,
    Quote,
    RankedStock,
    Reconciliation,
    Response,
    Sellable,
    StockInfo,
)
from kisclient._config import Side
from kisclient._quote_cache import QuoteCache
from kisclient._shared_state import SharedStateStatus
from kisclient.testing import FakeApp, FakeKIS

__all__ = ["SHELLS", "ClientDriver", "Shell", "ShellKind"]

T = TypeVar("T")
ShellKind = Literal["sync", "async"]
#: The parameters of the ``shell`` fixture, in test-id order.
SHELLS: tuple[ShellKind, ...] = ("sync", "async")


class ClientDriver:
    """An open client of either shell, called like :class:`~kisclient.KISClient`.

    Methods mirror the client's public methods and return what the sync client returns
    (``paginate`` returns the list of pages). Properties read the client directly. Use it as a
    context manager, or call :meth:`close`, which also closes the async shell's event loop.
    """

    def __init__(self, client: KISClient | AsyncKISClient, runner: asyncio.Runner | None) -> None:
        if isinstance(client, AsyncKISClient) != (runner is not None):
            raise TypeError("an AsyncKISClient needs a runner, a KISClient none")
        self.client = client
        self._runner = runner

    @property
    def kind(self) -> ShellKind:
        """Which shell this driver drives."""
        return "sync" if self._runner is None else "async"

    def _settle(self, value: T | Coroutine[Any, Any, T]) -> T:
        """The result of one client call: as returned (sync) or awaited on the runner (async)."""
        if self._runner is None:
            assert not isinstance(value, Coroutine), "the sync client answered with a coroutine"
            return value
        assert isinstance(value, Coroutine), "the async client answered without an awaitable"
        # (narrowing leaves Coroutine[Any, Any, Any]: T itself could be a coroutine)
        return self._runner.run(cast("Coroutine[Any, Any, T]", value))

    # --- properties, read as they are on either client ---

    @property
    def quote_cache(self) -> QuoteCache:
        """The client's quote cache (hit and miss counters)."""
        return self.client.quote_cache

    @property
    def token_issuances(self) -> int:
        """How many tokens this client has had issued."""
        return self.client.token_issuances

    @property
    def environment(self) -> Env:
        """The client's environment."""
        return self.client.environment

    @property
    def env(self) -> str:
        """The client's environment name."""
        return self.client.env

    @property
    def account(self) -> Account | None:
        """The client's account (masked repr)."""
        return self.client.account

    @property
    def base_url(self) -> str:
        """The client's base URL."""
        return self.client.base_url

    @property
    def clock_offset(self) -> float | None:
        """The client's measure of KIS's clock against its own."""
        return self.client.clock_offset

    @property
    def shared_state_status(self) -> SharedStateStatus:
        """Where the client's shared state lives and whether it is shared right now."""
        return self.client.shared_state_status

    # --- the public methods ---

    def get_price(self, code: str, *, with_name: bool = False) -> Quote:
        """``get_price`` on the driven client."""
        return self._settle(self.client.get_price(code, with_name=with_name))

    def get_prices(
        self,
        codes: Iterable[str],
        *,
        multi: bool | None = None,
        concurrency: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> PriceBatch:
        """``get_prices`` on the driven client."""
        return self._settle(
            self.client.get_prices(codes, multi=multi, concurrency=concurrency, progress=progress)
        )

    def get_daily_prices(self, code: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """``get_daily_prices`` on the driven client."""
        return self._settle(self.client.get_daily_prices(code, start, end))

    # --- market data (issue 12) ---

    def get_orderbook(self, code: str) -> OrderBookSnapshot:
        """``get_orderbook`` on the driven client."""
        return self._settle(self.client.get_orderbook(code))

    def get_minute_bars(
        self, code: str, *, day: dt.date | None = None, until: dt.time | None = None
    ) -> list[MinuteBar]:
        """``get_minute_bars`` on the driven client."""
        return self._settle(self.client.get_minute_bars(code, day=day, until=until))

    def get_bars(
        self,
        code: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        period: Literal["D", "W", "M", "Y"] = "D",
        adjusted: bool = True,
    ) -> list[DailyBar]:
        """``get_bars`` on the driven client."""
        return self._settle(
            self.client.get_bars(code, start, end, period=period, adjusted=adjusted)
        )

    def get_stock_info(self, code: str) -> StockInfo:
        """``get_stock_info`` on the driven client."""
        return self._settle(self.client.get_stock_info(code))

    def get_volume_rank(
        self, market: Literal["all", "kospi", "kosdaq"] = "all", *, by: str = "volume"
    ) -> list[RankedStock]:
        """``get_volume_rank`` on the driven client."""
        return self._settle(self.client.get_volume_rank(market, by=by))

    def get_fluctuation_rank(
        self, market: Literal["all", "kospi", "kosdaq"] = "all", *, direction: str = "up"
    ) -> list[RankedStock]:
        """``get_fluctuation_rank`` on the driven client."""
        return self._settle(self.client.get_fluctuation_rank(market, direction=direction))

    def get_market_cap_rank(
        self, market: Literal["all", "kospi", "kosdaq"] = "all"
    ) -> list[RankedStock]:
        """``get_market_cap_rank`` on the driven client."""
        return self._settle(self.client.get_market_cap_rank(market))

    def get_holidays(self, start: dt.date | None = None) -> list[MarketDay]:
        """``get_holidays`` on the driven client."""
        return self._settle(self.client.get_holidays(start))

    def get_period_profit(
        self, start: dt.date, end: dt.date | None = None, *, code: str | None = None
    ) -> PeriodProfit:
        """``get_period_profit`` on the driven client."""
        return self._settle(self.client.get_period_profit(start, end, code=code))

    def get_balance(self) -> Balance:
        """``get_balance`` on the driven client."""
        return self._settle(self.client.get_balance())

    def order_cash(
        self,
        side: Side,
        code: str,
        qty: int,
        price: int | None = None,
        *,
        condition: OrderCondition | None = None,
    ) -> OrderResult:
        """``order_cash`` on the driven client."""
        return self._settle(self.client.order_cash(side, code, qty, price, condition=condition))

    def cancel_order(
        self, order: OrderResult | DailyOrder | PendingOrder | str, *, qty: int | None = None
    ) -> OrderResult:
        """``cancel_order`` on the driven client."""
        return self._settle(self.client.cancel_order(order, qty=qty))

    def revise_order(
        self,
        order: OrderResult | DailyOrder | PendingOrder | str,
        *,
        price: int | None = None,
        qty: int | None = None,
    ) -> OrderResult:
        """``revise_order`` on the driven client."""
        return self._settle(self.client.revise_order(order, price=price, qty=qty))

    def get_pending_orders(self) -> list[PendingOrder]:
        """``get_pending_orders`` on the driven client."""
        return self._settle(self.client.get_pending_orders())

    def get_buyable(self, code: str, price: int | None = None) -> Buyable:
        """``get_buyable`` on the driven client."""
        return self._settle(self.client.get_buyable(code, price))

    def get_sellable(self, code: str) -> Sellable:
        """``get_sellable`` on the driven client."""
        return self._settle(self.client.get_sellable(code))

    def sell_all(self, code: str, price: int | None = None) -> OrderResult:
        """``sell_all`` on the driven client."""
        return self._settle(self.client.sell_all(code, price))

    def get_daily_orders(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        code: str | None = None,
        side: Side | None = None,
    ) -> list[DailyOrder]:
        """``get_daily_orders`` on the driven client."""
        return self._settle(self.client.get_daily_orders(start, end, code=code, side=side))

    def reconcile_order(
        self,
        unknown: OrderOutcomeUnknown | Mapping[str, Any],
        *,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> Reconciliation:
        """``reconcile_order`` on the driven client."""
        return self._settle(self.client.reconcile_order(unknown, exclude=exclude, wait=wait))

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
        """``request`` (the escape hatch) on the driven client."""
        return self._settle(
            self.client.request(
                method, path, tr_id=tr_id, params=params, body=body, headers=headers
            )
        )

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
    ) -> list[Response]:
        """Every page ``paginate`` yields on the driven client, in order."""
        pages = self.client.paginate(
            method,
            path,
            tr_id=tr_id,
            params=params,
            body=body,
            headers=headers,
            max_pages=max_pages,
        )
        if self._runner is None:
            assert not isinstance(pages, AsyncIterator), "the sync client paged asynchronously"
            return list(pages)
        assert isinstance(pages, AsyncIterator), "the async client paged synchronously"
        return self._runner.run(_collect(pages))

    def hashkey(self, body: Mapping[str, Any]) -> str:
        """``hashkey`` on the driven client."""
        return self._settle(self.client.hashkey(body))

    def revoke(self) -> None:
        """``revoke`` on the driven client."""
        self._settle(self.client.revoke())

    def token_expires_at(self) -> dt.datetime | None:
        """``token_expires_at`` on the driven client."""
        return self._settle(self.client.token_expires_at())

    # --- lifecycle ---

    def close(self) -> None:
        """Close the client, then (async shell) its event loop."""
        try:
            self._settle(self.client.close())
        finally:
            if self._runner is not None:
                self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _collect(pages: AsyncIterator[Response]) -> list[Response]:
    """Drain an async page iterator."""
    return [page async for page in pages]


async def _build_in_loop(build: Callable[[], T]) -> T:
    """Call *build* inside the running event loop (an async client is made where it is used)."""
    return build()


@dataclass(frozen=True)
class Shell:
    """Opens clients of one shell (the ``shell`` fixture's value)."""

    kind: ShellKind

    def _drive(
        self,
        build_sync: Callable[[], KISClient],
        build_async: Callable[[], AsyncKISClient],
    ) -> ClientDriver:
        """Build the client of this shell and wrap it; a failing constructor leaks no loop."""
        if self.kind == "sync":
            return ClientDriver(build_sync(), None)
        runner = asyncio.Runner()
        try:
            client = runner.run(_build_in_loop(build_async))
        except BaseException:
            runner.close()
            raise
        return ClientDriver(client, runner)

    def connect(
        self,
        fake: FakeKIS,
        app: FakeApp,
        clock: FakeClock,
        state_dir: pathlib.Path,
        **kwargs: Any,
    ) -> ClientDriver:
        """A client of *app* on *fake*'s in-process transport (``kis_support`` defaults)."""
        return self._drive(
            lambda: sync_client(fake, app, clock, state_dir, **kwargs),
            lambda: async_client(fake, app, clock, state_dir, **kwargs),
        )

    def open(
        self, app_key: str, app_secret: str, *, fake: FakeKIS | None = None, **kwargs: Any
    ) -> ClientDriver:
        """The client built from these constructor arguments; *fake* supplies this shell's
        in-process transport (without it the client uses the network, e.g. a loopback
        ``base_url``)."""
        return self._drive(
            lambda: KISClient(
                app_key, app_secret, transport=fake.transport() if fake else None, **kwargs
            ),
            lambda: AsyncKISClient(
                app_key, app_secret, transport=fake.async_transport() if fake else None, **kwargs
            ),
        )

    def from_env(self, fake: FakeKIS | None = None, **overrides: Any) -> ClientDriver:
        """The client ``from_env`` builds; *fake* supplies this shell's in-process transport."""

        def arguments(transport: Callable[[FakeKIS], object]) -> dict[str, Any]:
            """*overrides*, plus the transport of *fake* when there is one."""
            return overrides if fake is None else {**overrides, "transport": transport(fake)}

        return self._drive(
            lambda: KISClient.from_env(**arguments(FakeKIS.transport)),
            lambda: AsyncKISClient.from_env(**arguments(FakeKIS.async_transport)),
        )
