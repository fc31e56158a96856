"""Real-time streams over the KIS WebSocket: one asyncio session core, two thin shells.

:class:`AsyncStream` is the session: it takes the app key's stream lease (one session per app
key and state directory), gets an approval key from the shared store, connects, answers every
``PINGPONG`` with its exact text, watches for silence, decodes frames into events
(:mod:`kisclient._stream_protocol`), tracks registrations (:class:`~kisclient._stream_session.
Registry`), and after an abnormal close, a silence timeout or ``OPSP8996`` reconnects with a
growing, jittered delay and replays every registration once. One supervisor task owns the socket,
so there is never more than one connection attempt in flight, and the lease is released only
after the socket is closed.

:class:`Stream` is the blocking twin: it runs the same session on a private event loop in a
daemon thread (the heartbeat must be answered while the caller is busy, so a blocking stream
needs a background reader anyway; running the one session core there means reconnects,
replays and the heartbeat exist once). ``recv`` takes events from a thread-safe buffer without
a round trip through the loop.

Socket timing (silence, backoff, pacing) runs on the event loop's real clock: it is about the
connection, not about trading time. The approval key's age runs on the client's clock.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import attrs
import websockets
from websockets.asyncio.client import ClientConnection, connect

from ._approval import ApprovalKey, ApprovalKeys
from ._config import Env
from ._errors import AuthError, ConfigurationError, KISConnectionError, KISError, StreamSlotBusy
from ._observe import Observer, StreamObserved, notify
from ._redaction import without_frame_traces
from ._stream_events import StreamConnected, StreamEvent, StreamReconnecting, StreamResubscribed
from ._stream_lease import StreamLease
from ._stream_protocol import (
    TR_FILL_PAPER,
    TR_FILL_REAL,
    TR_ORDERBOOK,
    TR_TRADE,
    Ack,
    FrameDecoder,
    PingPong,
    encode_subscription,
)
from ._stream_session import EventBuffer, Pair, Registry, SendPacer, reconnect_delay
from ._validation import normalize_code

if TYPE_CHECKING:
    from ._stream_relay import RelayStream

__all__ = ["STREAM_DEFAULTS", "AsyncStream", "Stream", "StreamOptions", "StreamStats"]

log = logging.getLogger("kisclient.stream")

T = TypeVar("T")

_SLOT_BUSY: Final = "OPSP8996"
_INVALID_APPROVAL: Final = "OPSP0011"


#: ``websockets.client`` without its DEBUG frame traces (they carry keys and the HTS ID).
_WS_LOG: Final = without_frame_traces("websockets.client")


@attrs.frozen(kw_only=True)
class StreamOptions:
    """How a stream behaves; the keyword arguments of ``kis.stream()``.

    ``reconnect_initial`` / ``reconnect_max``: the first wait before reconnecting and its cap
    (doubling with jitter in between; KIS keeps a slot busy after an unclean end, and tight
    reconnect loops have locked app keys for hours). ``silence_timeout``: no frame of any kind
    for this long means the connection is dead (PINGPONG comes about every 10 s).
    ``queue_size``: events buffered for a slow consumer before order books, then other events,
    are dropped (see :class:`~kisclient._stream_session.EventBuffer`). ``subscribe_rate``:
    subscribe messages per second. ``ack_timeout``: how long ``subscribe_*`` waits for KIS's
    answers. ``connect_timeout`` / ``close_timeout``: the opening and closing handshakes.
    ``relay``: share the session with other processes (see :mod:`kisclient._stream_relay`).
    ``trade_batches``: deliver each frame's trades as one
    :class:`~kisclient._stream_events.TradeBatch` instead of a :class:`~kisclient.Trade` per
    record (for heavy feeds; ``queue_size`` then counts batches).
    """

    reconnect_initial: float = 20.0
    reconnect_max: float = 300.0
    silence_timeout: float = 60.0
    queue_size: int = 10_000
    subscribe_rate: float = 5.0
    ack_timeout: float = 10.0
    connect_timeout: float = 10.0
    close_timeout: float = 5.0
    relay: bool = False
    trade_batches: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            raise ConfigurationError("need 0 < reconnect_initial <= reconnect_max")
        if min(self.silence_timeout, self.subscribe_rate, self.ack_timeout) <= 0:
            raise ConfigurationError("silence_timeout, subscribe_rate, ack_timeout must be > 0")
        if self.queue_size < 1:
            raise ConfigurationError("queue_size must be at least 1")


#: The defaults of ``kis.stream()``'s arguments.
STREAM_DEFAULTS = StreamOptions()


#: What a frame decodes to besides events: the session answers or applies these itself.
_CONTROL_ITEMS: Final = frozenset({PingPong, Ack})


class _Inbox:
    """The events between the session and its consumer: an :class:`EventBuffer` plus a way to
    wake the consumer, for an asyncio consumer on the session's loop or a thread elsewhere."""

    def __init__(self, maxsize: int, *, threaded: bool) -> None:
        self._buffer = EventBuffer(maxsize)
        self._threaded = threaded
        self._condition = threading.Condition()
        # An asyncio consumer (on the session's loop) waits on a future; one timer serves all
        # its timeouts (see _arm), so a consumer that keeps up with the feed and waits for
        # every frame does not schedule and cancel a timer each time.
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.error: BaseException | None = None

    def put(self, events: Sequence[StreamEvent]) -> None:
        if not self._threaded:  # the consumer is on this loop: no lock needed
            self._buffer.push_all(events)
            self._wake()
            return
        with self._condition:
            self._buffer.push_all(events)
            self._condition.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """No more events will come (the stream closed, or failed with *error*)."""
        with self._condition:
            self.closed = True
            self.error = self.error or error
            self._condition.notify_all()
        if not self._threaded:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure a wake-up comes no later than *deadline*. A timer that fires earlier is
        kept (the waiter then finds its deadline not reached and waits again), so a consumer
        calling ``recv(30)`` over and over re-arms about once every 30 s, not once a frame."""
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = loop.call_at(deadline, self._on_timer)

    def _take(self) -> StreamEvent | None:
        if not self._threaded:
            event = self._buffer.pop()
        else:
            with self._condition:
                event = self._buffer.pop()
        if event is None and self.error is not None:
            raise self.error
        return event

    async def get_async(self, timeout: float | None) -> StreamEvent | None:
        """The next event; ``None`` once closed and drained; ``TimeoutError`` after *timeout*."""
        assert not self._threaded
        event = self._take()  # the common case, a buffered event: nothing to arm
        if event is not None or self.closed:
            return event
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if deadline is not None:
                if loop.time() >= deadline:
                    raise TimeoutError(f"no stream event within {timeout:g}s")
                self._arm(loop, deadline)
            self._waiter = waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
            event = self._take()
            if event is not None or self.closed:
                return event

    def get_blocking(self, timeout: float | None) -> StreamEvent | None:
        """The blocking :meth:`get_async`."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._buffer) or self.closed, timeout):
                raise TimeoutError(f"no stream event within {timeout:g}s")
        return self._take()

    @property
    def dropped_total(self) -> int:
        b = self._buffer
        return b.dropped_orderbooks + b.dropped_trades + b.dropped_fills + b.dropped_status

    @property
    def dropped(self) -> dict[str, int]:
        b = self._buffer
        return {
            "orderbooks": b.dropped_orderbooks,
            "trades": b.dropped_trades,
            "fills": b.dropped_fills,
            "status": b.dropped_status,
        }


@attrs.define
class StreamStats:
    """Counters of one stream, for operators and benchmarks."""

    connects: int = 0
    reconnects: int = 0
    slot_busy: int = 0
    frames: int = 0
    subscribe_messages: int = 0
    pings_echoed: int = 0


class _Consumer(abc.ABC):
    """The consumer's side of a session's :class:`_Inbox`, and ``async with`` over the
    session's ``open`` and ``aclose``: shared by :class:`AsyncStream` and the relayed stream
    (``kisclient._stream_relay``)."""

    _inbox: _Inbox

    @abc.abstractmethod
    async def open(self) -> None:
        """Start the session (the ``async with`` entry)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """End the session (the ``async with`` exit)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def recv(self, timeout: float | None = None) -> StreamEvent:
        """The next event; :class:`TimeoutError` if none comes within *timeout* seconds;
        :class:`EOFError` once the stream is closed and drained; a fatal error (such as a
        refused app key) is raised here."""
        event = await self._inbox.get_async(timeout)
        if event is None:
            raise EOFError("the stream is closed")
        return event

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        while True:
            event = await self._inbox.get_async(None)
            if event is None:
                return
            yield event

    @property
    def dropped(self) -> dict[str, int]:
        """Events dropped for a slow consumer, by kind, since the stream opened."""
        return self._inbox.dropped


class AsyncStream(_Consumer):
    """The asyncio session of one app key (see the module docstring). Made by
    ``AsyncKISClient.stream()``; use it with ``async with``.

    ``subscribe_*`` raise :class:`~kisclient.SubscriptionLimitExceeded` before sending anything
    when the session's registrations would exceed 41, then send (paced) and wait up to
    ``ack_timeout`` for KIS's answers; a registration KIS refuses arrives as a
    :class:`~kisclient.SubscriptionRefused` event. ``recv`` returns the next event (data or
    status), raising the builtin :class:`TimeoutError` when none comes in time; iterating yields
    events until the stream is closed.
    """

    def __init__(
        self,
        *,
        url: str,
        env: Env,
        hts_id: str | None,
        approval: ApprovalKeys,
        lease: StreamLease,
        options: StreamOptions,
        threaded: bool = False,
        rng: random.Random | None = None,
        observer: Observer | None = None,
        tap: Callable[[str], None] | None = None,
    ) -> None:
        self._url = url
        self._tap = tap  # the relay's: takes every data frame, as plain text, instead of _inbox
        self._observer = observer
        self._dropped_seen = 0
        self._env = env
        self._hts_id = hts_id
        self._approval = approval
        self._lease = lease
        self.options = options
        self._rng = rng or random.Random()
        self._registry = Registry()
        self._decoder = FrameDecoder(trade_batches=options.trade_batches)
        self._pacer = SendPacer(options.subscribe_rate)
        self._inbox = _Inbox(options.queue_size, threaded=threaded)
        self.stats = StreamStats()
        self._ws: ClientConnection | None = None
        self._key: ApprovalKey | None = None
        self._send_lock = asyncio.Lock()
        self._acked = asyncio.Condition()
        self._supervisor: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None  # the close after a lost lease
        self._closing = False
        self._last_frame = 0.0
        self._silent = False
        self._replaying: set[Pair] = set()  # replayed registrations KIS has not answered yet
        self._replayed = 0

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open" if self._ws is not None else "connecting"
        return f"AsyncStream({self._url}, {state}, {self._registry!r})"

    # --- lifecycle ---

    async def open(self) -> None:
        """Take the lease (or raise :class:`~kisclient.StreamSlotBusy`), connect once (raising
        what prevents it), then keep the session up in the background."""
        try:
            self._lease.acquire()
        except StreamSlotBusy:
            notify(self._observer, StreamObserved("slot_busy"))
            raise
        try:
            self._ws = await self._connect()
        except BaseException:
            self._lease.release()
            raise
        self.stats.connects += 1
        notify(self._observer, StreamObserved("connected"))
        self._inbox.put([StreamConnected(attempt=1)])
        self._supervisor = asyncio.create_task(self._supervise(), name="kisclient-stream")
        loop = asyncio.get_running_loop()

        def lost() -> None:  # called on the lease's renewal thread
            loop.call_soon_threadsafe(self._on_lease_lost)

        self._lease.on_lost = lost

    def _on_lease_lost(self) -> None:
        """Another host took the session's lease (this one was silent too long): stop at once,
        without reconnecting, so two sockets never share the app key; recv raises the reason."""
        if self._closing:
            return
        notify(self._observer, StreamObserved("slot_busy"))
        self._inbox.finish(
            StreamSlotBusy(
                "the stream's lease was taken over by another host (this session was silent "
                "longer than the lease): the session is closed and will not reconnect"
            )
        )
        self._closer = asyncio.get_running_loop().create_task(self.aclose())

    async def aclose(self) -> None:
        """Close the socket with a close frame, stop the session, then release the lease."""
        if self._closing:
            closer = self._closer  # a close already started after a lost lease: wait for it
            if closer is not None and closer is not asyncio.current_task():
                await asyncio.shield(closer)
            return
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._lease.release()
        self._inbox.finish()

    # --- subscriptions ---

    async def subscribe_trades(self, codes: Iterable[str]) -> None:
        """Trades of *codes* (``H0STCNT0``) as :class:`~kisclient.Trade` events."""
        await self._subscribe([(TR_TRADE, normalize_code(c).query_code) for c in codes])

    async def subscribe_orderbook(self, codes: Iterable[str]) -> None:
        """The 10-level order book of *codes* (``H0STASP0``) as :class:`~kisclient.OrderBook`."""
        await self._subscribe([(TR_ORDERBOOK, normalize_code(c).query_code) for c in codes])

    async def subscribe_fills(self) -> None:
        """This HTS id's order and fill notices (``H0STCNI0`` / paper ``H0STCNI9``) as
        :class:`~kisclient.Fill` events. Needs ``hts_id``."""
        await self._subscribe([self._fill_pair()])

    async def unsubscribe_trades(self, codes: Iterable[str]) -> None:
        await self._unsubscribe([(TR_TRADE, normalize_code(c).query_code) for c in codes])

    async def unsubscribe_orderbook(self, codes: Iterable[str]) -> None:
        await self._unsubscribe([(TR_ORDERBOOK, normalize_code(c).query_code) for c in codes])

    async def unsubscribe_fills(self) -> None:
        await self._unsubscribe([self._fill_pair()])

    @property
    def registrations(self) -> list[tuple[str, str]]:
        """The wanted registrations ``(tr_id, tr_key)``, refused ones excluded."""
        return [p for p in self._registry.wanted if self._registry.state(p) != "refused"]

    def _fill_pair(self) -> Pair:
        if not self._hts_id:
            raise ConfigurationError("fill notices need hts_id= (or KIS_HTS_ID)")
        return (TR_FILL_PAPER if self._env is Env.PAPER else TR_FILL_REAL, self._hts_id)

    async def _subscribe(self, pairs: list[Pair]) -> None:
        self._check_open()
        to_send = self._registry.plan_subscribe(pairs)
        await self._send_registrations(to_send, register=True)
        await self._await_acks(to_send)

    async def _unsubscribe(self, pairs: list[Pair]) -> None:
        self._check_open()
        to_send = self._registry.plan_unsubscribe(pairs)
        await self._send_registrations(to_send, register=False)

    async def _send_registrations(self, pairs: list[Pair], *, register: bool) -> None:
        """Send each message, paced; while disconnected the pairs wait for the replay."""
        loop = asyncio.get_running_loop()
        for tr_id, tr_key in pairs:
            ws, key = self._ws, self._key
            if ws is None or key is None:
                return
            delay = self._pacer.delay(loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            text = encode_subscription(key.value, tr_id, tr_key, register=register)
            try:
                async with self._send_lock:
                    await ws.send(text)
            except websockets.ConnectionClosed:
                return  # the supervisor reconnects and replays
            self._pacer.sent(loop.time())
            self.stats.subscribe_messages += 1

    async def _await_acks(self, pairs: list[Pair]) -> None:
        def answered() -> bool:
            return all(self._registry.state(p) != "pending" for p in pairs)

        with contextlib.suppress(TimeoutError):
            async with self._acked, asyncio.timeout(self.options.ack_timeout):
                await self._acked.wait_for(answered)

    def _ended(self) -> bool:
        return self._closing

    def _check_open(self) -> None:
        if self._closing or self._supervisor is None:
            raise RuntimeError("the stream is not open: use it inside 'async with kis.stream()'")

    # --- events ---

    # --- the session ---

    async def _connect(self) -> ClientConnection:
        """One connection attempt with a current approval key."""
        self._key = await self._approval.aget()
        try:
            return await connect(
                self._url,
                ping_interval=None,  # KIS's heartbeat is PINGPONG, answered below
                max_size=None,
                compression=None,
                open_timeout=self.options.connect_timeout,
                close_timeout=self.options.close_timeout,
                logger=_WS_LOG,  # never the frames' text: they carry keys and the HTS ID
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise KISConnectionError(f"cannot open the stream at {self._url}: {exc}") from None

    async def _supervise(self) -> None:
        attempt = 0
        try:
            while not self._closing:
                ws = self._ws
                if ws is not None:
                    pings = self.stats.pings_echoed
                    reason = await self._serve(ws)
                    if self._ended():
                        return
                    self._ws = None
                    await self._drop(ws)
                    if self.stats.pings_echoed > pings:
                        attempt = 0  # it was a working session: start the backoff afresh
                else:
                    reason = "not connected"
                attempt += 1
                delay = reconnect_delay(
                    attempt, self.options.reconnect_initial, self.options.reconnect_max, self._rng
                )
                log.warning("stream ended (%s); reconnecting in %.1fs", reason, delay)
                self._inbox.put([StreamReconnecting(attempt=attempt, delay_s=delay, reason=reason)])
                await asyncio.sleep(delay)
                try:
                    self._ws = await self._connect()
                except (AuthError, ConfigurationError):
                    raise  # the key itself is refused: reconnecting cannot help
                except KISError as exc:  # no connection, or the approval key call failed
                    log.warning("stream reconnect failed: %s", exc)
                    continue
                self.stats.connects += 1
                self.stats.reconnects += 1
                notify(self._observer, StreamObserved("reconnected"))
                replay = self._registry.replay()
                self._inbox.put([StreamConnected(attempt=attempt + 1)])
                # StreamResubscribed comes when KIS has answered every replayed registration
                # (see _on_ack), never for a session refused with OPSP8996 meanwhile
                self._replaying = set(replay)
                self._replayed = len(replay)
                if not replay:
                    self._inbox.put([StreamResubscribed(count=0)])
                await self._send_registrations(replay, register=True)
        except KISError as exc:  # e.g. the app key is refused: reconnecting cannot help
            log.error("stream stopped: %s", exc)
            self._inbox.finish(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: surface it to the consumer rather than hang it
            log.exception("stream session failed")
            self._inbox.finish(exc)

    async def _serve(self, ws: ClientConnection) -> str:
        """Read *ws* until it ends; return why (for the reconnect's report)."""
        loop = asyncio.get_running_loop()
        self._last_frame = loop.time()
        self._silent = False
        watch = asyncio.create_task(self._watch(ws))
        try:
            while True:
                try:
                    frame = await ws.recv(decode=False)
                except websockets.ConnectionClosed as exc:
                    if self._silent:
                        return f"no frame for {self.options.silence_timeout:g}s"
                    return f"connection closed ({exc.rcvd.code if exc.rcvd else 'abnormally'})"
                self._last_frame = loop.time()
                self.stats.frames += 1
                data = frame if isinstance(frame, bytes) else frame.encode()
                if self._tap is not None and data[:1] in (b"0", b"1"):
                    plain = self._decoder.plain(data.decode("utf-8", errors="replace"))
                    if plain is not None:
                        self._tap(plain)
                    continue
                items = self._decoder.decode_bytes(data)
                if items and type(items[0]) not in _CONTROL_ITEMS:
                    # a data frame, the common case by far: only events, nothing to answer
                    self._inbox.put(items)  # type: ignore[arg-type]
                    if self._observer is not None:
                        self._report_drops()
                    continue
                end = await self._handle(ws, items)
                if end:
                    return end
        finally:
            watch.cancel()

    async def _watch(self, ws: ClientConnection) -> None:
        """Close *ws* (with a close frame, bounded by ``close_timeout``) once no frame of any
        kind has come for ``silence_timeout``: a dead connection often never says so."""
        loop = asyncio.get_running_loop()
        silence = self.options.silence_timeout
        while (quiet := loop.time() - self._last_frame) < silence:
            await asyncio.sleep(silence - quiet)
        self._silent = True
        log.warning("no frame on the stream for %gs: treating the connection as dead", silence)
        await ws.close()

    async def _handle(self, ws: ClientConnection, items: list[Any]) -> str:
        """Deliver data events, answer PINGPONG, apply acks; a reason to reconnect, or ''."""
        events: list[StreamEvent] = []
        for item in items:
            if type(item) is PingPong:
                async with self._send_lock:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(item.text)
                self.stats.pings_echoed += 1
            elif type(item) is Ack:
                reason = await self._on_ack(item, events)
                if reason:
                    self._inbox.put(events)
                    return reason
            else:
                events.append(item)
        if events:
            self._inbox.put(events)
            if self._observer is not None:
                self._report_drops()
        return ""

    def _report_drops(self) -> None:
        """Tell the observer how many events were dropped since its last report."""
        total = self._inbox.dropped_total
        if total > self._dropped_seen:
            notify(self._observer, StreamObserved("dropped", total - self._dropped_seen))
            self._dropped_seen = total

    async def _on_ack(self, ack: Ack, events: list[StreamEvent]) -> str:
        if ack.msg_cd == _SLOT_BUSY:
            self.stats.slot_busy += 1
            notify(self._observer, StreamObserved("slot_busy"))
            self._replaying = set()
            return "OPSP8996: the app key's session slot is busy"
        if ack.msg_cd == _INVALID_APPROVAL and self._key is not None:
            await self._approval.ainvalidate(self._key)
            return "OPSP0011: approval key refused"
        events.extend(self._registry.on_ack(ack))
        if self._replaying:
            self._replaying = {p for p in self._replaying if self._registry.state(p) == "pending"}
            if not self._replaying:
                events.append(StreamResubscribed(count=self._replayed))
        async with self._acked:
            self._acked.notify_all()
        return ""

    async def _drop(self, ws: ClientConnection) -> None:
        """End a connection the session gave up on, with a close frame where possible."""
        with contextlib.suppress(Exception):
            await ws.close()


class Stream:
    """The blocking twin of :class:`AsyncStream`: same methods, run on a private event loop in
    a daemon thread (see the module docstring). Made by ``KISClient.stream()``; use it with
    ``with``. Iterating yields events until the stream is closed."""

    def __init__(self, make_session: Callable[[], AsyncStream | RelayStream]) -> None:
        self._make_session = make_session
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kisclient-stream", daemon=True
        )
        self._session: AsyncStream | RelayStream | None = None

    def __repr__(self) -> str:
        return f"Stream({self._session!r})"

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        self._thread.start()

        async def start() -> AsyncStream | RelayStream:
            session = self._make_session()
            await session.open()
            return session

        try:
            self._session = self._call(start())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Close the session (see :meth:`AsyncStream.aclose`) and stop its loop; idempotent."""
        if self._loop.is_closed():
            return
        if self._session is not None:
            self._call(self._session.aclose())
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():  # closed: say so, and leave no never-awaited coroutine
            coroutine.close()
            raise RuntimeError("the stream is not open: use it inside 'with kis.stream()'")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def _open_session(self) -> AsyncStream | RelayStream:
        if self._session is None:
            raise RuntimeError("the stream is not open: use it inside 'with kis.stream()'")
        return self._session

    def subscribe_trades(self, codes: Iterable[str]) -> None:
        self._call(self._open_session.subscribe_trades(list(codes)))

    def subscribe_orderbook(self, codes: Iterable[str]) -> None:
        self._call(self._open_session.subscribe_orderbook(list(codes)))

    def subscribe_fills(self) -> None:
        self._call(self._open_session.subscribe_fills())

    def unsubscribe_trades(self, codes: Iterable[str]) -> None:
        self._call(self._open_session.unsubscribe_trades(list(codes)))

    def unsubscribe_orderbook(self, codes: Iterable[str]) -> None:
        self._call(self._open_session.unsubscribe_orderbook(list(codes)))

    def unsubscribe_fills(self) -> None:
        self._call(self._open_session.unsubscribe_fills())

    def recv(self, timeout: float | None = None) -> StreamEvent:
        """The next event (see :meth:`AsyncStream.recv`), blocking the calling thread."""
        event = self._open_session._inbox.get_blocking(timeout)
        if event is None:
            raise EOFError("the stream is closed")
        return event

    def __iter__(self) -> Iterator[StreamEvent]:
        while True:
            event = self._open_session._inbox.get_blocking(None)
            if event is None:
                return
            yield event

    @property
    def registrations(self) -> list[tuple[str, str]]:
        return self._open_session.registrations

    @property
    def stats(self) -> StreamStats:
        return self._open_session.stats

    @property
    def dropped(self) -> dict[str, int]:
        return self._open_session.dropped
