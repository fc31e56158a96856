"""kis.stream(): the real client's real-time session, both shells, against FakeWSServer.

Every test drives the real :class:`~kisclient.KISClient` / :class:`~kisclient.AsyncKISClient`
and its stream through the fake KIS WebSocket on loopback (and the REST fake in-process for
approval keys and orders). The ``shell`` fixture runs each scenario twice: ``sync`` calls the
blocking :class:`~kisclient._stream.Stream` from the test thread; ``async`` drives the
:class:`~kisclient._stream.AsyncStream` on one :class:`asyncio.Runner` that lives as long as
the client (the loop only runs while a call is awaited, as in an application that awaits
``recv``). Waits are deadlines on events or server state, not blind sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import pytest

from kis_support import async_client, make_fake, sync_client
from kisclient import (
    AsyncKISClient,
    ClientEvent,
    ConfigurationError,
    FakeClock,
    KISClient,
    KISConnectionError,
    OrderResult,
    RequestObserved,
    StreamObserved,
    StreamSlotBusy,
    SubscriptionLimitExceeded,
)
from kisclient._config import Side
from kisclient._stream import AsyncStream, Stream, StreamStats
from kisclient._stream_events import (
    Fill,
    OrderBook,
    StreamConnected,
    StreamEvent,
    StreamOverflow,
    StreamReconnecting,
    StreamResubscribed,
    SubscriptionRefused,
    Trade,
    TradeBatch,
)
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer, FakeWSServer

T = TypeVar("T")
ShellKind = Literal["sync", "async"]

CODE = "005930"
TRADE = "H0STCNT0"
BOOK = "H0STASP0"
SRC = Path(__file__).resolve().parents[2] / "src"
#: Fast test defaults for kis.stream(): quick reconnects, no subscribe pacing to wait for.
FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2, "subscribe_rate": 1000.0}


# --- driving either shell -------------------------------------------------------------------


class Client:
    """A real client of either shell; ``stream()`` opens a :class:`StreamDriver`."""

    def __init__(
        self,
        kind: ShellKind,
        fake: FakeKIS,
        app: FakeApp,
        clock: FakeClock | None,
        state_dir: Path,
        **kwargs: Any,
    ) -> None:
        self.kind = kind
        self.runner: asyncio.Runner | None = None
        self.kis: KISClient | AsyncKISClient
        any_clock = cast("FakeClock", clock)  # None: the system clock
        if kind == "sync":
            self.kis = sync_client(fake, app, any_clock, state_dir, **kwargs)
        else:
            self.runner = asyncio.Runner()

            async def make() -> AsyncKISClient:
                return async_client(fake, app, any_clock, state_dir, **kwargs)

            self.kis = self.runner.run(make())

    def settle(self, value: T | Coroutine[Any, Any, T]) -> T:
        """A call's result: as returned (sync) or awaited on the runner (async)."""
        if self.runner is None:
            assert not isinstance(value, Coroutine), "the sync shell answered with a coroutine"
            return value
        assert isinstance(value, Coroutine), "the async shell answered without an awaitable"
        return self.runner.run(cast("Coroutine[Any, Any, T]", value))

    def wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await *coroutine* on the async shell's runner."""
        assert self.runner is not None, "only the async shell has a runner"
        return self.runner.run(coroutine)

    def stream(self, **options: Any) -> StreamDriver:
        return StreamDriver(self, {**FAST, **options})

    def order_cash(self, side: Side, code: str, qty: int) -> OrderResult:
        return self.settle(self.kis.order_cash(side, code, qty))

    def close(self) -> None:
        self.settle(self.kis.close())
        if self.runner is not None:
            self.runner.close()


class StreamDriver:
    """An open stream of either shell, called like the blocking :class:`Stream`."""

    def __init__(self, client: Client, options: dict[str, Any]) -> None:
        self.client = client
        self.options = options
        self.s: Stream | AsyncStream | None = None

    def __enter__(self) -> StreamDriver:
        kis = self.client.kis
        if isinstance(kis, KISClient):
            stream = kis.stream(**self.options)
            stream.__enter__()
            self.s = stream
        else:
            akis = kis

            async def open_stream() -> AsyncStream:
                stream = akis.stream(**self.options)
                assert isinstance(stream, AsyncStream)  # not relay=True
                await stream.__aenter__()
                return stream

            self.s = self.client.wait(open_stream())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        s = self.s
        if isinstance(s, Stream):
            s.__exit__(None, None, None)
        elif s is not None:
            self.client.wait(s.__aexit__(None, None, None))

    @property
    def stream(self) -> Stream | AsyncStream:
        assert self.s is not None
        return self.s

    def subscribe_trades(self, codes: list[str]) -> None:
        s = self.stream
        if isinstance(s, Stream):
            s.subscribe_trades(codes)
        else:
            self.client.wait(s.subscribe_trades(codes))

    def subscribe_orderbook(self, codes: list[str]) -> None:
        s = self.stream
        if isinstance(s, Stream):
            s.subscribe_orderbook(codes)
        else:
            self.client.wait(s.subscribe_orderbook(codes))

    def subscribe_fills(self) -> None:
        s = self.stream
        if isinstance(s, Stream):
            s.subscribe_fills()
        else:
            self.client.wait(s.subscribe_fills())

    def unsubscribe_trades(self, codes: list[str]) -> None:
        s = self.stream
        if isinstance(s, Stream):
            s.unsubscribe_trades(codes)
        else:
            self.client.wait(s.unsubscribe_trades(codes))

    def recv(self, timeout: float | None = 3.0) -> StreamEvent:
        s = self.stream
        if isinstance(s, Stream):
            return s.recv(timeout)
        return self.client.wait(s.recv(timeout))

    @property
    def registrations(self) -> list[tuple[str, str]]:
        return self.stream.registrations

    @property
    def stats(self) -> StreamStats:
        return self.stream.stats

    @property
    def dropped(self) -> dict[str, int]:
        return self.stream.dropped

    def iterate(self, n: int | None) -> list[StreamEvent]:
        """Events by iterating the stream (``for`` / ``async for``), breaking after *n*
        (``None``: until the iteration ends by itself)."""
        s = self.stream
        out: list[StreamEvent] = []
        if isinstance(s, Stream):
            for event in s:
                out.append(event)
                if len(out) == n:
                    break
            return out
        astream = s

        async def collect() -> list[StreamEvent]:
            async for event in astream:
                out.append(event)
                if len(out) == n:
                    break
            return out

        return self.client.wait(collect())

    def run_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Let the session run (without reading events) until *predicate* holds."""
        deadline = time.monotonic() + timeout

        async def poll() -> bool:
            while not predicate():
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.01)
            return True

        if self.client.runner is None:
            while not predicate():
                assert time.monotonic() < deadline, "condition not met in time"
                time.sleep(0.01)
        else:
            assert self.client.runner.run(poll()), "condition not met in time"

    def events_until(
        self, done: Callable[[StreamEvent], bool], timeout: float = 5.0
    ) -> list[StreamEvent]:
        """Events up to and including the first for which *done* holds."""
        deadline = time.monotonic() + timeout
        seen: list[StreamEvent] = []
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.recv(max(left, 0.001))
            except TimeoutError:
                raise AssertionError(f"no matching event in {timeout}s; saw {seen!r}") from None
            seen.append(event)
            if done(event):
                return seen

    def take(self, kind: type[T], n: int, timeout: float = 5.0) -> list[T]:
        """The next *n* events of type *kind*; any other event fails the test."""
        out: list[T] = []
        for _ in range(n):
            event = self.recv(timeout)
            assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
            out.append(event)
        return out

    def drain(self, quiet: float = 0.2) -> list[StreamEvent]:
        """Every event until none comes for *quiet* seconds."""
        out: list[StreamEvent] = []
        while True:
            try:
                out.append(self.recv(quiet))
            except TimeoutError:
                return out

    def connected(self) -> None:
        """Read the first event: StreamConnected(attempt=1)."""
        assert self.recv() == StreamConnected(attempt=1)


class World:
    """A fake KIS (REST in-process) with a WebSocket server and one app; makes clients."""

    def __init__(self, stack: ExitStack, state_dir: Path, env: str, ws_options: dict[str, Any]):
        self.fake, self.clock = make_fake()
        self.app = self.fake.add_app(env)
        options = {"pingpong_interval_s": 0.2, "slot_hold_s": 0.3, **ws_options}
        self.ws = stack.enter_context(FakeWSServer(self.fake, env=env, **options))
        self.state_dir = state_dir
        self._stack = stack

    @property
    def key(self) -> str:
        return self.app.app_key

    def client(self, kind: ShellKind, **kwargs: Any) -> Client:
        kwargs.setdefault("hts_id", self.app.hts_id)
        kwargs.setdefault("ws_url", self.ws.url)
        client = Client(kind, self.fake, self.app, self.clock, self.state_dir, **kwargs)
        self._stack.callback(client.close)
        return client


MakeWorld = Callable[..., World]


@pytest.fixture(params=["sync", "async"])
def shell(request: pytest.FixtureRequest) -> ShellKind:
    kind: ShellKind = request.param
    return kind


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    with ExitStack() as stack:

        def make(env: str = "real", **ws_options: Any) -> World:
            return World(stack, tmp_path, env, ws_options)

        yield make


def stock_codes(fake: FakeKIS, n: int) -> list[str]:
    """*n* distinct listed stock codes (6 digits)."""
    codes = [c for c in fake.universe if fake.listing(c).kind == "stock" and c.isdigit()]
    assert len(codes) >= n, f"the fake lists only {len(codes)} stocks"
    return codes[:n]


def assert_contiguous(trades: list[Trade]) -> None:
    """The trades are consecutive records of one tape: each ACML_VOL is the previous plus this
    record's CNTG_VOL (nothing lost, duplicated or reordered)."""
    for before, after in itertools.pairwise(trades):
        assert int(after.fields["ACML_VOL"]) == int(before.fields["ACML_VOL"]) + after.volume


# --- market data ------------------------------------------------------------------------------


def test_trade_bundles_of_1_to_11_give_one_event_per_record_in_order(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([CODE])
        assert s.registrations == [(TRADE, CODE)]
        assert w.ws.registrations(w.key) == {(TRADE, CODE)}
        for k in range(1, 12):
            assert w.ws.publish_trades(CODE, n=k, bundle=k) == 1
        trades = s.take(Trade, 66)
        assert w.ws.stats.data_frames == 11
        assert w.ws.stats.data_records == 66
        assert int(trades[0].fields["ACML_VOL"]) == trades[0].volume  # the tape's first record
        assert_contiguous(trades)
        for t in trades:
            assert (t.code, t.tr_id) == (CODE, TRADE)
            assert type(t.price) is int
            assert type(t.volume) is int
            assert t.price == int(t.fields["STCK_PRPR"]) == w.fake.price_of(CODE)
            assert t.volume == int(t.fields["CNTG_VOL"]) > 0
            assert t.time == t.fields["STCK_CNTG_HOUR"] == "100000"
            assert len(t.fields) == 46
        # KIS widens the record without notice: the 47th field is kept by position
        w.ws.trade_fields = 47
        w.ws.publish_trades(CODE, n=2, bundle=2)
        wide = s.take(Trade, 2)
        assert_contiguous([trades[-1], *wide])
        for t in wide:
            assert len(t.fields) == 47
            assert t.fields["field_47"] == "0"
            assert t.fields["VI_STND_PRC"] == trades[-1].fields["VI_STND_PRC"]
        assert s.drain(0.1) == []


def test_trade_batches_give_one_event_per_frame_holding_every_record(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell)
    with kis.stream(trade_batches=True) as s:
        s.connected()
        s.subscribe_trades([CODE])
        s.subscribe_orderbook([CODE])
        for k in range(1, 12):
            w.ws.publish_trades(CODE, n=k, bundle=k)
        batches = s.take(TradeBatch, 11)
        assert [len(b) for b in batches] == list(range(1, 12))
        trades = [t for b in batches for t in b]
        assert int(trades[0].fields["ACML_VOL"]) == trades[0].volume  # the tape's first record
        assert_contiguous(trades)
        price = w.fake.price_of(CODE)
        for b in batches:
            assert b.tr_id == TRADE
            assert list(b.codes) == [CODE] * len(b)
            assert list(b.prices) == [price] * len(b)
            assert list(b.volumes) == [int(b.fields(i)["CNTG_VOL"]) for i in range(len(b))]
            assert list(b.times) == ["100000"] * len(b)
        # order books are not batched; a widened trade record keeps its extra field
        w.ws.publish_orderbook(CODE)
        assert len(s.take(OrderBook, 1)[0].asks) == 10
        w.ws.trade_fields = 47
        w.ws.publish_trades(CODE, n=3, bundle=3)
        [wide] = s.take(TradeBatch, 1)
        assert_contiguous([trades[-1], *wide])
        assert [wide.fields(i)["field_47"] for i in range(3)] == ["0"] * 3
        assert s.drain(0.1) == []


def test_order_books_list_asks_and_bids_best_first(shell: ShellKind, make_world: MakeWorld) -> None:
    w = make_world()
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_orderbook([CODE])
        assert w.ws.registrations(w.key) == {(BOOK, CODE)}
        w.ws.publish_orderbook(CODE)
        [book] = s.take(OrderBook, 1)
        assert book.code == CODE
        assert len(book.asks) == len(book.bids) == 10
        asks, bids = [lv.price for lv in book.asks], [lv.price for lv in book.bids]
        assert asks == sorted(set(asks))  # lowest ask first
        assert bids == sorted(set(bids), reverse=True)  # highest bid first
        assert asks[0] > bids[0] == w.fake.price_of(CODE)
        f = book.fields
        for i in range(10):
            assert book.asks[i].price == int(f[f"ASKP{i + 1}"])
            assert book.asks[i].qty == int(f[f"ASKP_RSQN{i + 1}"])
            assert book.bids[i].price == int(f[f"BIDP{i + 1}"])
            assert book.bids[i].qty == int(f[f"BIDP_RSQN{i + 1}"])
        assert len(f) == 59


@pytest.mark.parametrize(("env", "tr_id"), [("real", "H0STCNI0"), ("paper", "H0STCNI9")])
def test_an_order_through_the_same_client_gives_acceptance_and_fill_notices(
    shell: ShellKind, make_world: MakeWorld, env: str, tr_id: str
) -> None:
    w = make_world(env)
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_fills()
        assert w.ws.registrations(w.key) == {(tr_id, w.app.hts_id)}
        assert s.registrations == [(tr_id, w.app.hts_id)]
        result = kis.order_cash("buy", CODE, 1)
        accepted, filled = s.take(Fill, 2)
        assert w.ws.stats.notices == 2
    assert (accepted.filled, accepted.rejected, filled.filled, filled.rejected) == (
        False,
        False,
        True,
        False,
    )
    for notice in (accepted, filled):
        assert (notice.order_no, notice.code, notice.side, notice.qty) == (
            result.order_no,
            CODE,
            "buy",
            1,
        )
        assert notice.fields["CUST_ID"] == w.app.hts_id
    [order] = w.fake.orders(w.key)
    assert (order.order_no, order.filled_qty) == (result.order_no, 1)
    assert filled.price == order.price > 0


def test_fills_without_hts_id_are_a_configuration_error(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell, hts_id=None)
    with kis.stream() as s:
        s.connected()
        with pytest.raises(ConfigurationError, match="hts_id"):
            s.subscribe_fills()
        assert s.stats.subscribe_messages == 0
        assert w.ws.stats.acks == 0


def test_unsubscribe_stops_the_trades(shell: ShellKind, make_world: MakeWorld) -> None:
    w = make_world()
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([CODE, "000660"])
        s.unsubscribe_trades([CODE])
        s.run_until(lambda: w.ws.stats.unsubscribes == 1)
        assert w.ws.registrations(w.key) == {(TRADE, "000660")}
        assert s.registrations == [(TRADE, "000660")]
        assert w.ws.publish_trades(CODE) == 0
        w.ws.publish_trades("000660")
        [t] = s.take(Trade, 1)
        assert t.code == "000660"


# --- heartbeat ----------------------------------------------------------------------------------


def test_pingpong_is_echoed_and_the_session_stays_up(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    # the server closes a session whose PINGPONG is not echoed within 0.5 s
    w = make_world(pingpong_interval_s=0.1, pingpong_timeout_s=0.5)
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([CODE])
        with pytest.raises(TimeoutError):
            s.recv(1.2)  # about 12 heartbeats and no status event (no StreamReconnecting)
        assert w.ws.was_echoed(w.key)
        assert w.ws.echoes(w.key) >= 5
        assert s.stats.pings_echoed >= 5
        stats = w.ws.stats
        assert (stats.connections, stats.pingpong_timeouts, stats.abnormal_disconnects) == (
            1,
            0,
            0,
        )
        assert w.ws.sessions(w.key) == 1
        w.ws.publish_trades(CODE)
        s.take(Trade, 1)


# --- registrations ------------------------------------------------------------------------------


def test_a_42nd_registration_raises_before_anything_is_sent(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    codes = stock_codes(w.fake, 42)
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        with pytest.raises(SubscriptionLimitExceeded):
            s.subscribe_trades(codes)
        assert s.stats.subscribe_messages == 0
        assert w.ws.stats.acks == 0
        assert w.ws.registrations(w.key) == frozenset()
        assert s.registrations == []
        s.subscribe_trades(codes[:41])  # 41 fit
        assert w.ws.registrations(w.key) == {(TRADE, c) for c in codes[:41]}
        assert w.ws.stats.registrations == 41
        assert s.registrations == [(TRADE, c) for c in codes[:41]]
        # every TR counts: neither a 42nd trade nor a first order book fits
        with pytest.raises(SubscriptionLimitExceeded):
            s.subscribe_trades([codes[41]])
        with pytest.raises(SubscriptionLimitExceeded):
            s.subscribe_orderbook([CODE])
        assert s.stats.subscribe_messages == 41
        assert w.ws.stats.acks == 41
        assert s.drain(0.1) == []  # and no SubscriptionRefused


def test_a_refused_registration_is_an_event_and_the_others_flow(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(max_registrations=2)
    a, b, c = stock_codes(w.fake, 3)
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([a, b, c])
        [refused] = s.take(SubscriptionRefused, 1)
        assert (refused.tr_id, refused.tr_key, refused.msg_cd) == (TRADE, c, "OPSP0008")
        assert w.ws.registrations(w.key) == {(TRADE, a), (TRADE, b)}
        assert s.registrations == [(TRADE, a), (TRADE, b)]
        assert w.ws.publish_trades(c) == 0
        w.ws.publish_trades(a, n=2)
        w.ws.publish_trades(b, n=2)
        trades = s.take(Trade, 4)
        assert [t.code for t in trades] == [a, a, b, b]
        assert s.stats.reconnects == 0


# --- reconnects -------------------------------------------------------------------------------


def test_a_dropped_connection_reconnects_and_replays_every_registration(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(slot_hold_s=0.0)
    a, b = CODE, "000660"
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([a, b])
        s.subscribe_orderbook([a])
        wanted = {(TRADE, a), (TRADE, b), (BOOK, a)}
        assert w.ws.registrations(w.key) == wanted
        assert w.ws.drop_all() == 1
        events = s.events_until(lambda e: isinstance(e, StreamResubscribed))
        assert len(events) == 3, events
        reconnecting, connected, resubscribed = events
        assert isinstance(reconnecting, StreamReconnecting)
        assert reconnecting.attempt == 1
        assert reconnecting.reason.startswith("connection closed")
        assert 0.04 <= reconnecting.delay_s <= 0.06
        assert connected == StreamConnected(attempt=2)
        assert resubscribed == StreamResubscribed(count=3)
        s.run_until(lambda: w.ws.stats.registrations == 6)
        assert w.ws.registrations(w.key) == wanted == set(s.registrations)
        stats = w.ws.stats
        assert (stats.connections, stats.duplicates, stats.slot_busy) == (2, 0, 0)
        assert (s.stats.connects, s.stats.reconnects) == (2, 1)
        w.ws.publish_trades(a)
        w.ws.publish_trades(b)
        w.ws.publish_orderbook(a)
        got = [s.recv(), s.recv(), s.recv()]
        assert [type(e).__name__ for e in got] == ["Trade", "Trade", "OrderBook"]
        assert [cast("Trade", e).code for e in got[:2]] == [a, b]
        assert s.drain(0.1) == []


def test_a_held_slot_gets_opsp8996_and_growing_backoff_then_recovers(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(slot_hold_s=0.6, pingpong_interval_s=0.1)
    kis = w.client(shell)
    with kis.stream(reconnect_initial=0.05, reconnect_max=0.4) as s:
        s.connected()
        s.subscribe_trades([CODE])
        s.run_until(lambda: s.stats.pings_echoed > 0)  # a working session: backoff starts at 1
        w.ws.drop_all()
        s.run_until(lambda: w.ws.registrations(w.key) == {(TRADE, CODE)}, timeout=8)
        events = s.drain()
        assert w.ws.stats.slot_busy_for(w.key) >= 2
        reconnects = [e for e in events if isinstance(e, StreamReconnecting)]
        assert len(reconnects) == w.ws.stats.slot_busy_for(w.key) + 1, events
        assert [r.attempt for r in reconnects] == list(range(1, len(reconnects) + 1))
        assert reconnects[0].reason.startswith("connection closed")
        assert all("OPSP8996" in r.reason for r in reconnects[1:])
        delays = [r.delay_s for r in reconnects]
        # doubling with ±20 % jitter strictly grows until the 0.4 s cap (reached by attempt 4)
        assert all(x < y for x, y in itertools.pairwise(delays[:4])), delays
        assert all(0.04 <= d <= 0.4 for d in delays), delays
        # the events tell the whole story, in order, ending on the successful replay
        assert events[-2:] == [StreamConnected(attempt=len(reconnects) + 1), StreamResubscribed(1)]
        assert s.stats.slot_busy == w.ws.stats.slot_busy_for(w.key)
        w.ws.publish_trades(CODE)
        s.take(Trade, 1)


def test_silence_closes_the_connection_and_reconnects(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(pingpong_interval_s=0.1)
    kis = w.client(shell)
    with kis.stream(silence_timeout=0.5) as s:
        s.connected()
        s.subscribe_trades([CODE])
        with pytest.raises(TimeoutError):
            s.recv(0.7)  # heartbeats alone keep a quiet session alive
        w.ws.stall(1.0)
        stall_end = time.monotonic() + 1.0
        reconnecting = s.events_until(lambda e: isinstance(e, StreamReconnecting))[-1]
        assert isinstance(reconnecting, StreamReconnecting)
        assert reconnecting.reason == "no frame for 0.5s"
        # (a session opened during the stall may go silent too: wait for one that works)
        s.run_until(lambda: time.monotonic() > stall_end, timeout=3)
        echoes = w.ws.echoes(w.key)
        s.run_until(lambda: w.ws.echoes(w.key) >= echoes + 3, timeout=5)
        assert w.ws.registrations(w.key) == {(TRADE, CODE)}
        w.ws.publish_trades(CODE)
        events = s.events_until(lambda e: isinstance(e, Trade), timeout=5)
        reasons = [e.reason for e in events if isinstance(e, StreamReconnecting)]
        assert all(r.startswith(("no frame", "OPSP8996")) for r in reasons), reasons
        assert w.ws.stats.abnormal_disconnects == 0  # it closed with a close frame


# --- faults -------------------------------------------------------------------------------------


def test_invalid_utf8_unknown_tr_ids_and_oversized_frames_do_not_break_the_stream(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([CODE])
        w.ws.publish_trades(CODE)
        first = s.take(Trade, 1)
        # an invalid UTF-8 byte in a text frame: decoded leniently, the record still delivered
        assert w.ws.send_invalid_utf8() == 1
        w.ws.publish_trades(CODE)
        bad, after = s.take(Trade, 2)
        assert "\ufffd" in bad.fields["MRKT_TRTM_CLS_CODE"]
        assert_contiguous([*first, bad, after])
        # an unknown TR: ignored
        assert w.ws.send_unknown_tr_id() == 1
        w.ws.publish_trades(CODE)
        [next_one] = s.take(Trade, 1)
        assert_contiguous([after, next_one])
        # a frame of at least 20 000 bytes: every record in it arrives, then a marker trade
        size = w.ws.send_oversized(20_000)
        assert size >= 20_000
        w.ws.publish_trades(CODE)
        events = s.drain()
        assert all(isinstance(e, Trade) for e in events), events
        trades = cast("list[Trade]", events)
        assert_contiguous([next_one, *trades])
        big, _marker = trades[:-1], trades[-1]
        record = "^".join(big[0].fields.values())
        assert len(big) == math.ceil(20_000 / (len(record) + 1)) > 1
        # the session never reconnected
        assert (s.stats.connects, w.ws.stats.connections) == (1, 1)
        assert w.ws.stats.abnormal_disconnects == 0


# --- approval key and the session slot ----------------------------------------------------------


def test_one_approval_key_serves_sequential_streams_and_a_second_client(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell)
    for _ in range(2):
        with kis.stream() as s:
            s.connected()
            s.subscribe_trades([CODE])
            assert w.ws.registrations(w.key) == {(TRADE, CODE)}
    other = w.client("async" if shell == "sync" else "sync")  # same state_dir, other shell
    with other.stream() as s:
        s.connected()
        s.subscribe_trades([CODE])
        w.ws.publish_trades(CODE)
        s.events_until(lambda e: isinstance(e, Trade))
    [record] = w.fake.approval_keys(w.key)
    assert w.ws.stats.invalid_approvals == 0
    assert w.ws.stats.connections >= 3
    [path] = w.state_dir.rglob("approval.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["approval"]["value"] == record.value


def test_a_second_stream_in_this_process_is_refused(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    kis = w.client(shell)
    other = w.client(shell)  # another client on the same app key and state_dir
    with kis.stream() as s:
        s.connected()
        s.run_until(lambda: w.ws.stats.connections == 1)
        for client in (kis, other):
            with pytest.raises(StreamSlotBusy) as info, client.stream():
                pass
            assert info.value.owner_pid == os.getpid()
            assert f"pid {os.getpid()}" in str(info.value)
        assert w.ws.stats.connections == 1  # the refused streams never connected
        s.subscribe_trades([CODE])  # the first one is unaffected
        w.ws.publish_trades(CODE)
        s.take(Trade, 1)
    with other.stream() as s2:  # free again once the first closed
        s2.connected()


def test_a_refused_approval_key_is_replaced_and_the_session_recovers(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(slot_hold_s=0.0)
    kis = w.client(shell)
    with kis.stream() as s:
        s.connected()
    # the stored key is one KIS does not know (as after a key revoked on KIS's side)
    [path] = w.state_dir.rglob("approval.json")
    stored = json.loads(path.read_text())
    stored["approval"]["value"] = "00000000-dead-4bad-8bad-000000000000"
    path.write_text(json.dumps(stored))
    with kis.stream() as s:
        s.connected()
        s.subscribe_trades([CODE])
        events = s.events_until(lambda e: isinstance(e, StreamResubscribed))
        reconnecting = events[0]
        assert isinstance(reconnecting, StreamReconnecting)
        assert reconnecting.reason.startswith("OPSP0011")
        assert events[1:] == [StreamConnected(attempt=2), StreamResubscribed(count=1)]
        s.run_until(lambda: w.ws.registrations(w.key) == {(TRADE, CODE)})
        assert w.ws.stats.invalid_approvals == 1
        w.ws.publish_trades(CODE)
        s.take(Trade, 1)
    old, new = w.fake.approval_keys(w.key)
    assert json.loads(path.read_text())["approval"]["value"] == new.value != old.value


def test_a_failed_connection_raises_and_releases_the_slot(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world()
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    broken = w.client(shell, ws_url=dead)
    with pytest.raises(KISConnectionError, match="cannot open the stream"), broken.stream():
        pass
    good = w.client(shell)
    with good.stream() as s:  # the failed attempt left the slot free
        s.connected()


CHILD_STREAM = textwrap.dedent(
    """
    import json, os
    from kisclient import KISClient, StreamSlotBusy

    kis = KISClient.from_env()
    try:
        with kis.stream(reconnect_initial=0.05, reconnect_max=0.2, ack_timeout=5) as s:
            first = s.recv(timeout=5)
            s.subscribe_trades(["005930"])
            result = {"busy": False, "first": repr(first), "registrations": s.registrations,
                      "slot_busy": s.stats.slot_busy}
    except StreamSlotBusy as exc:
        result = {"busy": True, "pid": exc.owner_pid, "host": exc.owner_host,
                  "message": str(exc)}
    print(json.dumps(result))
    """
)


@pytest.mark.multiprocess
def test_another_process_gets_stream_slot_busy_until_the_owner_closes(
    shell: ShellKind, tmp_path: Path
) -> None:
    fake = FakeKIS(seed=7)  # the system clock: the child process shares it
    fake.set_market_open(True)
    app = fake.add_app()
    with FakeKISServer(fake) as rest, FakeWSServer(fake, slot_hold_s=0.3) as ws:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "KIS_APP_KEY": app.app_key,
            "KIS_APP_SECRET": app.app_secret,
            "KIS_ENV": "real",
            "KIS_ACCOUNT": app.account,
            "KIS_BASE_URL": rest.base_url("real"),
            "KIS_STATE_DIR": str(tmp_path),
            "KIS_WS_URL": ws.url,
        }

        def child() -> dict[str, Any]:
            proc = subprocess.run(
                [sys.executable, "-c", CHILD_STREAM],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
            return result

        kis = Client(shell, fake, app, None, tmp_path, ws_url=ws.url)
        try:
            with kis.stream() as s:
                s.connected()
                s.subscribe_trades([CODE])
                refused = child()
                assert refused["busy"] is True
                assert refused["pid"] == os.getpid()
                assert refused["host"] == socket.gethostname()
                assert f"pid {os.getpid()}" in refused["message"]
                assert ws.stats.connections == 1
                assert ws.registrations(app.app_key) == {(TRADE, CODE)}
            taken = child()
        finally:
            kis.close()
        assert taken["busy"] is False, taken
        assert taken["first"] == "StreamConnected(attempt=1)"
        assert taken["registrations"] == [[TRADE, CODE]]
        assert ws.stats.connections >= 2
        assert len(fake.approval_keys(app.app_key)) == 1  # the child reused the stored key


# --- recv, iteration, close ---------------------------------------------------------------------


def test_recv_times_out_iterates_and_ends_with_eof(shell: ShellKind, make_world: MakeWorld) -> None:
    w = make_world(pingpong_interval_s=30.0)  # no heartbeat: every frame counted is ours
    kis = w.client(shell)
    with kis.stream() as s:
        iterated = s.iterate(1)
        assert iterated == [StreamConnected(attempt=1)]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recv(0.05)
        assert time.monotonic() - started < 1.0
        s.subscribe_trades([CODE])
        w.ws.publish_trades(CODE, n=5, bundle=5)
        first = s.iterate(3)  # break after three of five
        assert all(isinstance(e, Trade) for e in first)
        w.ws.publish_trades(CODE, n=2)
        s.run_until(lambda: s.stats.frames == 4)  # the ack, the 5-bundle, two singles
    # closed: what was buffered is still delivered, then the iteration ends by itself...
    rest = s.iterate(None)
    assert all(isinstance(e, Trade) for e in rest)
    assert_contiguous(cast("list[Trade]", [*first, *rest]))
    assert len(first) + len(rest) == 7
    # ...and recv raises EOFError; subscribing is refused
    with pytest.raises(EOFError):
        s.recv(0.5)
    with pytest.raises(RuntimeError, match="not open"):
        s.subscribe_trades([CODE])
    s.__exit__(None, None, None)  # closing again is harmless


# --- back-pressure ------------------------------------------------------------------------------


def test_a_slow_consumer_loses_order_books_first_and_is_told_about_lost_trades(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    w = make_world(pingpong_interval_s=30.0)  # no heartbeat: every frame counted is ours
    kis = w.client(shell)
    with kis.stream(queue_size=5) as s:
        s.connected()
        s.subscribe_trades([CODE])
        s.subscribe_orderbook([CODE])
        frames = s.stats.frames  # the two acks
        # 20 books and 3 trades, not read until all arrived: books make room for the trades
        for _ in range(20):
            w.ws.publish_orderbook(CODE)
        w.ws.publish_trades(CODE, n=3)
        s.run_until(lambda: s.stats.frames == frames + 23)
        events = s.drain(0.1)
        assert [type(e).__name__ for e in events] == ["OrderBook"] * 2 + ["Trade"] * 3
        trades = cast("list[Trade]", events[2:])
        assert int(trades[0].fields["ACML_VOL"]) == trades[0].volume  # the tape's first trade
        assert_contiguous(trades)
        assert s.dropped == {"orderbooks": 18, "trades": 0, "fills": 0, "status": 0}
        # 20 books and 8 trades: the books go, then the 3 oldest trades, reported first
        for _ in range(20):
            w.ws.publish_orderbook(CODE)
        w.ws.publish_trades(CODE, n=8)
        s.run_until(lambda: s.stats.frames == frames + 23 + 28)
        events = s.drain(0.1)
        # the report counts every drop since the previous report: the 18 silent book drops
        # of the first batch too
        assert events[0] == StreamOverflow(
            dropped_orderbooks=38, dropped_trades=3, dropped_fills=0, dropped_status=0
        )
        kept = events[1:]
        assert len(kept) == 5
        assert all(isinstance(e, Trade) for e in kept)
        kept_trades = cast("list[Trade]", kept)
        assert_contiguous(kept_trades)
        # the 3 lost are exactly the gap between the first batch and what was kept
        gap = int(kept_trades[0].fields["ACML_VOL"]) - kept_trades[0].volume
        assert gap > int(trades[-1].fields["ACML_VOL"])
        assert s.dropped == {"orderbooks": 38, "trades": 3, "fills": 0, "status": 0}


def test_the_observer_hears_of_connects_reconnects_and_drops(
    shell: ShellKind, make_world: MakeWorld
) -> None:
    """The observer seam (issue 15): one event per connect and reconnect, and the drops as they
    happen, adding up to what the session reports."""
    w = make_world(pingpong_interval_s=30.0, slot_hold_s=0.0)
    seen: list[ClientEvent] = []
    kis = w.client(shell, observer=seen.append)
    with kis.stream(queue_size=5) as s:
        s.connected()
        s.subscribe_trades([CODE])
        s.subscribe_orderbook([CODE])
        frames = s.stats.frames
        for _ in range(20):
            w.ws.publish_orderbook(CODE)
        w.ws.publish_trades(CODE, n=3)
        s.run_until(lambda: s.stats.frames == frames + 23)
        s.drain(0.1)
        dropped = sum(s.dropped.values())
        reported = [e for e in seen if isinstance(e, StreamObserved) and e.kind == "dropped"]
        assert sum(e.count for e in reported) == dropped  # told as the data came, not later
        assert w.ws.drop_all() == 1
        s.events_until(lambda e: isinstance(e, StreamResubscribed))
    stream = [e for e in seen if isinstance(e, StreamObserved)]
    kinds = [e.kind for e in stream if e.kind != "dropped"]
    assert kinds == ["connected", "reconnected"]
    assert sum(e.count for e in stream if e.kind == "dropped") == dropped == 18  # the books
    assert not any(isinstance(e, RequestObserved) and not e.ok for e in seen)


# --- secrets ------------------------------------------------------------------------------------


def test_no_secret_reaches_a_log_line_or_a_repr(
    shell: ShellKind, make_world: MakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kisclient")
    caplog.set_level(logging.DEBUG, logger="websockets")
    w = make_world(slot_hold_s=0.0, pingpong_interval_s=0.1)
    kis = w.client(shell)
    shown: list[str] = []
    with kis.stream() as s:
        shown.append(repr(s.stream))
        s.connected()
        s.subscribe_trades([CODE])
        s.subscribe_fills()
        kis.order_cash("buy", CODE, 1)
        shown += [repr(e) for e in s.take(Fill, 2)]
        w.ws.publish_trades(CODE)
        shown += [repr(e) for e in s.take(Trade, 1)]
        s.run_until(lambda: s.stats.pings_echoed > 0)
        w.ws.send_invalid_utf8()
        w.ws.send_unknown_tr_id()
        w.ws.drop_all()
        shown += [repr(e) for e in s.events_until(lambda e: isinstance(e, StreamResubscribed))]
        s.run_until(lambda: len(w.ws.registrations(w.key)) == 2)
        shown.append(repr(s.stream))
        shown.append(repr(s.stats))
    [approval] = w.fake.approval_keys(w.key)
    secrets = {
        "app key": w.app.app_key,
        "app secret": w.app.app_secret,
        "approval key": approval.value[:8],  # websockets' traces elide the middle of a frame
        "account": w.app.account,
        "account digits": w.app.account.replace("-", "")[:8],
        "HTS id": w.app.hts_id,
    }
    # (websockets.server is the fake KIS's side of the socket, not the client's)
    lines = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.name != "websockets.server"]
    assert any(r.name.startswith("kisclient.stream") for r in caplog.records)  # it did log
    leaks = [(what, text) for text in [*lines, *shown] for what, v in secrets.items() if v in text]
    assert leaks == [], "\n".join(map(repr, leaks))
