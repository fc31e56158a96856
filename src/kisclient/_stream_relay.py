"""The relayed stream: ``kis.stream(relay=True)`` in any process, one WebSocket session per key.

A :class:`RelayStream` is a participant of the app key's one session. It tries to take the
stream lease; if it wins it is the **owner**: it runs the session (:class:`~kisclient._stream.
AsyncStream`, whose data frames it takes through the session's ``tap``) and serves the other
participants on a :mod:`channel <kisclient._relay_channels>`, registering the union of
everyone's registrations once (:class:`~kisclient._relay_hub.RelayHub`, counted against the
41). Otherwise it is a **client**: it sends its registrations to the owner and decodes the frames
the owner forwards with its own :class:`~kisclient._stream_protocol.FrameDecoder` (fill notices
arrive decrypted, as plain frames).

When the owner goes (closed, or dead: its socket ends / its Redis heartbeat stops), each client
tries to take the lease again; the winner becomes the owner and every other participant
re-sends its registrations (``hello``), so the union is registered once on the new session.
A dead owner's lease lapses as the lease says (on Redis after its lease plus the slot-hold
margin; a file lease at once); a clean close releases it at once.

The consumer API is :class:`~kisclient._stream.AsyncStream`'s (``recv``, iteration,
``subscribe_*``/``unsubscribe_*``, ``registrations``, ``stats``, ``dropped``), so the blocking
:class:`~kisclient._stream.Stream` shell runs over it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

from ._config import Env
from ._errors import (
    ConfigurationError,
    KISConnectionError,
    KISError,
    StreamSlotBusy,
    SubscriptionLimitExceeded,
)
from ._relay_channels import ClientLink, OwnerLink, RelayChannel
from ._relay_hub import RelayHub, frame_route, pairs_of
from ._stream import AsyncStream, StreamOptions, StreamStats, _Consumer, _Inbox
from ._stream_events import StreamConnected, StreamEvent
from ._stream_protocol import TR_FILL_PAPER, TR_FILL_REAL, TR_ORDERBOOK, TR_TRADE, FrameDecoder
from ._stream_session import Pair, reconnect_delay
from ._validation import normalize_code

__all__ = ["RelayStream"]

log = logging.getLogger("kisclient.stream")

#: How long to wait between attempts to become owner or client while neither works.
RETRY_S: Final = 0.2
_RNG: Final = random.Random()


class RelayStream(_Consumer):
    """One participant of the app key's relayed session (see the module docstring).

    *make_owner* builds the session core with the given tap (called only when this participant
    wins the lease); *channel* is how participants reach the owner.
    """

    def __init__(
        self,
        *,
        make_owner: Callable[[Callable[[str], None]], AsyncStream],
        channel: RelayChannel,
        env: Env,
        hts_id: str | None,
        options: StreamOptions,
        threaded: bool = False,
        retry_s: float = RETRY_S,
    ) -> None:
        self._make_owner = make_owner
        self._channel = channel
        self._env = env
        self._hts_id = hts_id
        self.options = options
        self._retry_s = retry_s
        self._inbox = _Inbox(options.queue_size, threaded=threaded)
        self._decoder = FrameDecoder(trade_batches=options.trade_batches)
        self._id = secrets.token_hex(8)
        self._mine: dict[Pair, None] = {}
        self._hub = RelayHub()
        self._owner: AsyncStream | None = None
        self._owner_link: OwnerLink | None = None
        self._pump: asyncio.Task[None] | None = None
        self._client: ClientLink | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._request_ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._stats = StreamStats()
        self._roles = 0

    def __repr__(self) -> str:
        role = "owner" if self._owner else "client" if self._client else "between owners"
        return f"RelayStream({role}, {len(self._mine)} registrations)"

    @property
    def is_owner(self) -> bool:
        """Whether this participant holds the session now."""
        return self._owner is not None

    # --- lifecycle ---

    async def open(self) -> None:
        """Become the owner or reach the owner, trying for up to ``connect_timeout``; raise
        :class:`StreamSlotBusy` if another process holds the lease but does not answer, and
        what prevents connecting (as :meth:`AsyncStream.open`) if this one wins the lease."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.connect_timeout
        while True:
            try:
                await self._take_a_role()
                break
            except (StreamSlotBusy, ConnectionError) as exc:
                if loop.time() >= deadline:
                    raise StreamSlotBusy(
                        f"the stream's owner does not answer on its relay channel ({exc})"
                    ) from None
                await asyncio.sleep(self._retry_s)
        self._supervisor = loop.create_task(self._supervise(), name="kisclient-stream-relay")

    async def aclose(self) -> None:
        """Leave: a client says goodbye, an owner closes the session (releasing the lease, so
        a client takes over at once)."""
        if self._closing:
            return
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._leave_role(bye=True)
        for task in list(self._tasks):
            task.cancel()
        self._inbox.finish()

    async def _take_a_role(self) -> None:
        """Become the owner, else a client; raises StreamSlotBusy / ConnectionError if neither."""
        try:
            await self._become_owner()
            return
        except StreamSlotBusy:
            pass
        link = await self._channel.connect(self._id, self._on_owner_message, self._hello)
        self._client = link
        self._roles += 1
        self._inbox.put([StreamConnected(attempt=self._roles)])

    async def _become_owner(self) -> None:
        stream = self._make_owner(self._on_frame)
        await stream.open()  # takes the lease (or raises StreamSlotBusy), then connects
        try:
            self._hub = RelayHub()
            self._hub.add(self._id, self._mine)
            self._owner_link = await self._channel.serve(
                self._id, self._on_participant, self._on_participant_gone
            )
        except BaseException:
            await stream.aclose()
            raise
        self._owner = stream
        self._roles += 1
        self._pump = asyncio.get_running_loop().create_task(self._pump_status(stream))
        log.info("stream relay: this process owns the session and relays it")
        if self._mine:
            await stream._subscribe(list(self._mine))

    async def _leave_role(self, *, bye: bool = False) -> None:
        """End the current role; *bye* tells the owner this participant leaves (not sent when
        the owner is gone: its successor must not drop what the hello is about to bring)."""
        client, self._client = self._client, None
        if client is not None:
            if bye:
                client.send({"op": "bye", "client": self._id})
            await client.aclose()
        link, self._owner_link = self._owner_link, None
        if link is not None:
            await link.aclose()
        owner, self._owner = self._owner, None
        if owner is not None:
            await owner.aclose()
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("the stream's owner is gone"))
        self._replies.clear()

    async def _supervise(self) -> None:
        """Wait for the current role to end, then take a new one (owner or client)."""
        while not self._closing:
            if self._owner is not None and self._pump is not None:
                await asyncio.wait([self._pump])
            elif self._client is not None:
                await self._client.closed.wait()
                log.warning("stream relay: the session's owner is gone; taking over or rejoining")
            await self._leave_role()
            if self._inbox.closed:
                return  # the session failed for good (its error is raised by recv)
            failures = 0
            while not self._closing:
                try:
                    await self._take_a_role()
                    break
                except (StreamSlotBusy, ConnectionError):
                    await asyncio.sleep(self._retry_s)
                except KISConnectionError as exc:  # won the lease, KIS unreachable: back off
                    failures += 1
                    o = self.options
                    delay = reconnect_delay(failures, o.reconnect_initial, o.reconnect_max, _RNG)
                    log.warning("stream relay: cannot connect (%s); again in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                except KISError as exc:  # e.g. the app key is refused
                    self._inbox.finish(exc)
                    return

    async def _pump_status(self, stream: AsyncStream) -> None:
        """The owned session's own events (status: data frames go through the tap)."""
        try:
            async for event in stream:
                self._inbox.put([event])
        except StreamSlotBusy:
            return  # the lease was lost: become a client (or owner again) like the others
        except Exception as exc:  # a fatal session error: the consumer hears it
            self._inbox.finish(exc)

    # --- the owner's side ---

    def _on_frame(self, text: str) -> None:
        """A plain data frame of the owned session: to each participant that wants it."""
        route = frame_route(text)
        if route is None:
            return
        for who in self._hub.targets(route):
            if who == self._id:
                self._deliver(text)
            elif self._owner_link is not None:
                self._owner_link.send(who, {"op": "frame", "text": text})

    async def _on_participant(self, who: str, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "hello":
            fresh, gone = self._hub.replace(who, pairs_of(message))
            self._spawn(self._apply(fresh, gone))
        elif op in ("sub", "unsub"):
            self._spawn(self._request_from(who, message))
        elif op == "bye":
            await self._on_participant_gone(who)

    async def _on_participant_gone(self, who: str) -> None:
        gone = self._hub.drop(who)
        if gone:
            self._spawn(self._apply([], gone))

    async def _request_from(self, who: str, message: dict[str, Any]) -> None:
        pairs = pairs_of(message)
        reply: dict[str, Any] = {"op": "ok", "id": message.get("id")}
        try:
            if message["op"] == "sub":
                await self._owner_subscribe(who, pairs)
            else:
                await self._apply([], self._hub.remove(who, pairs))
        except SubscriptionLimitExceeded as exc:
            reply = {"op": "err", "id": message.get("id"), "message": str(exc)}
        if self._owner_link is not None:
            self._owner_link.send(who, reply)

    async def _owner_subscribe(self, who: str, pairs: list[Pair]) -> None:
        fresh = self._hub.add(who, pairs)  # the union's 41 check, before anything is sent
        owner = self._owner
        if owner is None or not fresh:
            return
        try:
            await owner._subscribe(fresh)
        except SubscriptionLimitExceeded:
            self._hub.remove(who, fresh)
            raise

    async def _apply(self, fresh: list[Pair], gone: list[Pair]) -> None:
        owner = self._owner
        if owner is None:
            return
        if gone:
            await owner._unsubscribe(gone)
        if fresh:
            try:
                await owner._subscribe(fresh)
            except SubscriptionLimitExceeded as exc:
                log.warning("stream relay: a participant's registration is refused: %s", exc)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the client's side ---

    def _hello(self) -> dict[str, Any]:
        return {"op": "hello", "client": self._id, "pairs": [list(p) for p in self._mine]}

    def _on_owner_message(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "frame" and isinstance(message.get("text"), str):
            self._deliver(message["text"])
        elif op in ("ok", "err"):
            future = self._replies.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)

    def _deliver(self, text: str) -> None:
        self._stats.frames += 1
        events = self._decoder.decode(text)
        if events:
            self._inbox.put(cast(list[StreamEvent], events))

    async def _request(self, client: ClientLink, op: str, pairs: list[Pair]) -> dict[str, Any]:
        self._request_ids += 1
        ident = self._request_ids
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        client.send({"op": op, "client": self._id, "id": ident, "pairs": [list(p) for p in pairs]})
        try:
            async with asyncio.timeout(self.options.ack_timeout + self.options.connect_timeout):
                return await future
        finally:
            self._replies.pop(ident, None)

    # --- subscriptions (the consumer API of AsyncStream) ---

    async def subscribe_trades(self, codes: Iterable[str]) -> None:
        """Trades of *codes* (see :meth:`AsyncStream.subscribe_trades`)."""
        await self._subscribe([(TR_TRADE, normalize_code(c).query_code) for c in codes])

    async def subscribe_orderbook(self, codes: Iterable[str]) -> None:
        await self._subscribe([(TR_ORDERBOOK, normalize_code(c).query_code) for c in codes])

    async def subscribe_fills(self) -> None:
        await self._subscribe([self._fill_pair()])

    async def unsubscribe_trades(self, codes: Iterable[str]) -> None:
        await self._unsubscribe([(TR_TRADE, normalize_code(c).query_code) for c in codes])

    async def unsubscribe_orderbook(self, codes: Iterable[str]) -> None:
        await self._unsubscribe([(TR_ORDERBOOK, normalize_code(c).query_code) for c in codes])

    async def unsubscribe_fills(self) -> None:
        await self._unsubscribe([self._fill_pair()])

    @property
    def registrations(self) -> list[tuple[str, str]]:
        """This participant's registrations ``(tr_id, tr_key)``."""
        return list(self._mine)

    def _fill_pair(self) -> Pair:
        if not self._hts_id:
            raise ConfigurationError("fill notices need hts_id= (or KIS_HTS_ID)")
        return (TR_FILL_PAPER if self._env is Env.PAPER else TR_FILL_REAL, self._hts_id)

    def _check_open(self) -> None:
        if self._closing or self._supervisor is None:
            raise RuntimeError("the stream is not open: use it inside 'async with kis.stream()'")

    async def _subscribe(self, pairs: list[Pair]) -> None:
        """Raise :class:`SubscriptionLimitExceeded` if the session's union would exceed 41;
        otherwise register through the owner (this process's session, or another's)."""
        self._check_open()
        new = [p for p in dict.fromkeys(pairs) if p not in self._mine]
        if not new:
            return
        self._mine.update(dict.fromkeys(new))  # in every hello from now on (or dropped below)
        try:
            if self._owner is not None:
                await self._owner_subscribe(self._id, new)
            elif self._client is not None:
                reply = await self._request(self._client, "sub", new)
                if reply["op"] == "err":
                    raise SubscriptionLimitExceeded(str(reply.get("message")))
        except SubscriptionLimitExceeded:
            for pair in new:
                del self._mine[pair]
            raise
        except (ConnectionError, TimeoutError):
            pass  # between owners: the hello to the next owner carries them

    async def _unsubscribe(self, pairs: list[Pair]) -> None:
        self._check_open()
        mine = [p for p in dict.fromkeys(pairs) if p in self._mine]
        for pair in mine:
            del self._mine[pair]
        if not mine:
            return
        if self._owner is not None:
            await self._apply([], self._hub.remove(self._id, mine))
        elif self._client is not None:
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self._request(self._client, "unsub", mine)

    # --- events ---

    @property
    def stats(self) -> StreamStats:
        """The owned session's counters while this participant owns it; else frames relayed."""
        return self._owner.stats if self._owner is not None else self._stats
