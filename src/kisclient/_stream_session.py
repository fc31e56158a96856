"""The stream session's decisions, without I/O: what to (re)subscribe, when, and what to drop.

Pure pieces an asyncio or a blocking shell drives (KIS's session limits):

- :class:`Registry` — the wanted ``(tr_id, tr_key)`` registrations and what KIS said about each;
  enforces the 41-registration limit before anything is sent and plans the replay after a
  reconnect.
- :func:`reconnect_delay` — exponential backoff with jitter.
- :class:`SendPacer` — spacing between subscribe messages (the shell sleeps, not the pacer).
- :class:`EventBuffer` — the bounded queue between the socket and a slow consumer: order books are
  dropped first, and any lost trade or fill is reported with a
  :class:`~kisclient._stream_events.StreamOverflow`.

Nothing here sleeps, reads a clock or is thread-safe: the shell passes the time in and serialises
calls.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final, Literal, TypeAlias

from ._errors import SubscriptionLimitExceeded
from ._stream_events import (
    Fill,
    OrderBook,
    StreamEvent,
    StreamOverflow,
    SubscriptionRefused,
    Trade,
    TradeBatch,
)
from ._stream_protocol import Ack

__all__ = [
    "MAX_REGISTRATIONS",
    "EventBuffer",
    "Pair",
    "RegistrationState",
    "Registry",
    "SendPacer",
    "reconnect_delay",
]

#: KIS's limit of registrations per session (per app key), all tr_ids together.
MAX_REGISTRATIONS: Final = 41

#: A registration: ``(tr_id, tr_key)``.
Pair: TypeAlias = tuple[str, str]
#: What the registry knows about a pair: sent and unanswered, confirmed, refused by KIS, or
#: being unregistered (still counted against the limit until KIS confirms).
RegistrationState: TypeAlias = Literal["pending", "registered", "refused", "unsubscribing"]

_REGISTERED_CODES: Final = frozenset({"OPSP0000", "OPSP0002"})
#: OPSP0001 UNSUBSCRIBE SUCCESS, OPSP0003 UNSUBSCRIBE ERROR(not found!): either way it is gone.
_REMOVED_CODES: Final = frozenset({"OPSP0001", "OPSP0003"})
_SLOT_BUSY: Final = "OPSP8996"


class Registry:
    """The registrations a session wants, in the order they were first asked for.

    Every pair has a :data:`RegistrationState`. Pairs in any state but ``refused`` occupy one of
    the :data:`MAX_REGISTRATIONS` slots (an ``unsubscribing`` pair too, until KIS confirms: whether
    an unregistration frees a slot at once is unknown). The shell sends exactly what
    :meth:`plan_subscribe`, :meth:`plan_unsubscribe` and :meth:`replay` return, and feeds every
    :class:`~kisclient._stream_protocol.Ack` to :meth:`on_ack`.
    """

    def __init__(self, limit: int = MAX_REGISTRATIONS) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._states: dict[Pair, RegistrationState] = {}

    def __repr__(self) -> str:
        return (
            f"Registry(registered={self.registered_count}, pending={self.pending_count}, "
            f"refused={len(self.refused)}, limit={self.limit})"
        )

    def __len__(self) -> int:
        """The number of slots in use (every pair not refused)."""
        return sum(1 for state in self._states.values() if state != "refused")

    def __contains__(self, pair: object) -> bool:
        """Whether *pair* is wanted (pending or registered)."""
        state = self._states.get(pair) if isinstance(pair, tuple) else None
        return state in {"pending", "registered"}

    def state(self, pair: Pair) -> RegistrationState | None:
        """*pair*'s state, ``None`` if the registry does not hold it."""
        return self._states.get(pair)

    @property
    def registered_count(self) -> int:
        """Pairs KIS confirmed (OPSP0000 or OPSP0002)."""
        return sum(1 for state in self._states.values() if state == "registered")

    @property
    def pending_count(self) -> int:
        """Pairs sent and not yet answered."""
        return sum(1 for state in self._states.values() if state == "pending")

    @property
    def refused(self) -> list[Pair]:
        """Pairs KIS refused, in insertion order (not replayed; subscribe again to retry)."""
        return [pair for pair, state in self._states.items() if state == "refused"]

    @property
    def wanted(self) -> list[Pair]:
        """Pairs pending or registered, in insertion order."""
        return [pair for pair, state in self._states.items() if state in {"pending", "registered"}]

    def plan_subscribe(self, pairs: Iterable[Pair]) -> list[Pair]:
        """Mark *pairs* wanted and return those to send, once each, in the given order.

        Pairs already pending or registered are not sent again. A refused pair, or one being
        unregistered, is sent again. Raises
        :class:`~kisclient._errors.SubscriptionLimitExceeded`, changing nothing, if the slots in
        use plus the new pairs would exceed the limit.
        """
        to_send: list[Pair] = []
        new_slots = 0
        for pair in dict.fromkeys(pairs):
            state = self._states.get(pair)
            if state in {"pending", "registered"}:
                continue
            to_send.append(pair)
            if state is None or state == "refused":
                new_slots += 1
        used = len(self)
        if used + new_slots > self.limit:
            raise SubscriptionLimitExceeded(
                f"subscribing {new_slots} more would make {used + new_slots} registrations; "
                f"KIS allows {self.limit} per session"
            )
        for pair in to_send:
            self._states[pair] = "pending"
        return to_send

    def plan_unsubscribe(self, pairs: Iterable[Pair]) -> list[Pair]:
        """Return the *pairs* to unregister (those pending or registered), once each, and mark
        them ``unsubscribing``. A refused pair is forgotten without sending anything."""
        to_send: list[Pair] = []
        for pair in dict.fromkeys(pairs):
            state = self._states.get(pair)
            if state in {"pending", "registered"}:
                self._states[pair] = "unsubscribing"
                to_send.append(pair)
            elif state == "refused":
                del self._states[pair]
        return to_send

    def on_ack(self, ack: Ack) -> list[StreamEvent]:
        """Apply a control answer; the events it produces (``[]`` or one SubscriptionRefused).

        - OPSP0000 / OPSP0002: a pending (or refused) pair becomes registered.
        - OPSP0001 / OPSP0003: a pair being unregistered is removed.
        - OPSP8996 (slot busy, tr_id "(null)"): nothing here; the shell handles it.
        - any other code with ``rt_cd`` not "0" (OPSP0008 MAX SUBSCRIBE OVER, OPSP0007, format
          errors): a pending or registered pair becomes refused, with a
          :class:`~kisclient._stream_events.SubscriptionRefused`; a pair being unregistered is
          removed (it is not wanted either way).
        - anything else with ``rt_cd`` "0": a pending pair becomes registered.

        Acks for pairs the registry does not hold are ignored.
        """
        if ack.msg_cd == _SLOT_BUSY:
            return []
        pair = (ack.tr_id, ack.tr_key)
        state = self._states.get(pair)
        if state is None:
            return []
        if ack.msg_cd in _REGISTERED_CODES:
            if state in {"pending", "refused"}:
                self._states[pair] = "registered"
            return []
        if ack.msg_cd in _REMOVED_CODES:
            if state == "unsubscribing":
                del self._states[pair]
            return []
        if ack.rt_cd == "0":
            if state == "pending":
                self._states[pair] = "registered"
            return []
        if state == "unsubscribing":
            del self._states[pair]
            return []
        if state == "refused":
            return []
        self._states[pair] = "refused"
        return [
            SubscriptionRefused(tr_id=ack.tr_id, tr_key=ack.tr_key, msg_cd=ack.msg_cd, msg=ack.msg)
        ]

    def replay(self) -> list[Pair]:
        """After a reconnect: every wanted pair once, in insertion order, all marked pending.

        Pairs being unregistered are forgotten (the new session never had them); refused pairs
        stay refused and are not sent.
        """
        for pair, state in list(self._states.items()):
            if state == "unsubscribing":
                del self._states[pair]
        pairs = self.wanted
        for pair in pairs:
            self._states[pair] = "pending"
        return pairs


def reconnect_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait before connection *attempt* (1 is the first retry).

    ``initial × 2^(attempt-1)``, capped at *maximum*, times a uniform jitter in [0.8, 1.2], then
    capped at *maximum* again: the result lies in ``[0.8 × initial, maximum]`` and grows with
    *attempt* until the cap. Raises ``ValueError`` if *attempt* < 1, *initial* ≤ 0 or *maximum* <
    *initial*. Pure apart from drawing one number from *rng*.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not (initial > 0 and math.isfinite(initial)):
        raise ValueError("initial must be a positive number of seconds")
    if not (maximum >= initial and math.isfinite(maximum)):
        raise ValueError("maximum must be at least initial")
    base = maximum if attempt > 64 else min(initial * 2.0 ** (attempt - 1), maximum)
    return min(base * rng.uniform(0.8, 1.2), maximum)


class SendPacer:
    """Spaces subscribe messages at most *rate_per_s* per second (``1 / rate_per_s`` apart).

    ``delay(now)`` is how long to wait before the next message may go; after sending, call
    ``sent(now)``. *now* is any monotonic reading in seconds (the shell's clock). The first
    message may go at once.
    """

    def __init__(self, rate_per_s: float) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError("rate_per_s must be a positive number")
        self.interval = 1.0 / rate_per_s
        self._next: float | None = None

    def __repr__(self) -> str:
        return f"SendPacer(rate_per_s={1.0 / self.interval:g})"

    def delay(self, now: float) -> float:
        """Seconds (≥ 0) to wait from *now* before the next message may be sent."""
        if self._next is None:
            return 0.0
        return max(0.0, self._next - now)

    def sent(self, now: float) -> None:
        """Record that a message went at *now*; the next may go ``interval`` later."""
        self._next = now + self.interval


class _Slot:
    """An order book's place in :class:`EventBuffer`; emptied when the book is dropped."""

    __slots__ = ("book",)

    def __init__(self, book: OrderBook) -> None:
        self.book: OrderBook | None = book


class _OverflowMark:
    """Where the pending :class:`StreamOverflow` sits in :class:`EventBuffer` (always first)."""

    __slots__ = ()


_MARK: Final = _OverflowMark()


class EventBuffer:
    """A bounded FIFO of stream events between the socket and the consumer.

    Holds at most *maxsize* events, plus at most one pending
    :class:`~kisclient._stream_events.StreamOverflow`. :meth:`push` on a full buffer makes room:

    1. by dropping the oldest order book, if there is one (counted, not reported by itself);
    2. otherwise by dropping the oldest event (a trade, fill or status event), counted per kind.
       A :class:`StreamOverflow` is then placed at the head of the buffer (where the lost events
       were), carrying every drop since the previous report, order books included. While it waits
       to be popped, further drops add to its counts. It is never dropped.

    Events keep their order. :meth:`push` and :meth:`pop` are O(1) amortized (dropped order books
    leave placeholders that :meth:`pop` skips; they are swept when they outnumber *maxsize*).
    ``dropped_orderbooks``, ``dropped_trades``, ``dropped_fills`` and ``dropped_status`` are
    totals since creation (a dropped :class:`~kisclient._stream_events.TradeBatch` counts as
    its records). Not thread-safe.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: deque[StreamEvent | _Slot | _OverflowMark] = deque()
        self._books: deque[_Slot] = deque()  # live order books, oldest first
        self._live = 0  # events in _items (not placeholders, not the mark)
        self._holes = 0  # emptied slots still in _items
        self._marked = False
        self.dropped_orderbooks = 0
        self.dropped_trades = 0
        self.dropped_fills = 0
        self.dropped_status = 0
        self._since = [0, 0, 0, 0]  # books, trades, fills, status since the last report

    def __len__(self) -> int:
        """Events waiting, the pending overflow report included."""
        return self._live + self._marked

    def __repr__(self) -> str:
        return f"EventBuffer(len={len(self)}, maxsize={self.maxsize})"

    def push(self, event: StreamEvent) -> None:
        """Append *event*, first dropping one as described in the class doc if full."""
        if self._live >= self.maxsize:
            self._make_room()
        if isinstance(event, OrderBook):
            slot = _Slot(event)
            self._books.append(slot)
            self._items.append(slot)
        else:
            self._items.append(event)
        self._live += 1

    def push_all(self, events: Sequence[StreamEvent]) -> None:
        """:meth:`push` each of *events* in order (one frame's records: a single append of the
        lot when they fit and hold no order book)."""
        if self._live + len(events) <= self.maxsize and OrderBook not in set(map(type, events)):
            self._items.extend(events)
            self._live += len(events)
            return
        for event in events:
            self.push(event)

    def pop(self) -> StreamEvent | None:
        """The oldest event (a pending overflow report first), or ``None`` if empty."""
        items = self._items
        while items:
            item = items.popleft()
            if isinstance(item, _Slot):
                book = item.book
                if book is None:
                    self._holes -= 1
                    continue
                self._books.popleft()
                self._live -= 1
                return book
            if isinstance(item, _OverflowMark):
                self._marked = False
                books, trades, fills, status = self._since
                self._since = [0, 0, 0, 0]
                return StreamOverflow(
                    dropped_orderbooks=books,
                    dropped_trades=trades,
                    dropped_fills=fills,
                    dropped_status=status,
                )
            self._live -= 1
            return item
        return None

    def _make_room(self) -> None:
        self._live -= 1
        if self._books:
            slot = self._books.popleft()
            slot.book = None
            self._holes += 1
            self.dropped_orderbooks += 1
            self._since[0] += 1
            if self._holes > self.maxsize:
                self._items = deque(
                    item for item in self._items if type(item) is not _Slot or item.book is not None
                )
                self._holes = 0
            return
        items = self._items
        while True:
            item = items.popleft()
            if item is _MARK:
                continue  # put back at the head below
            if isinstance(item, _Slot):
                self._holes -= 1  # no live books are left: every slot here is a hole
                continue
            break
        if isinstance(item, Trade | TradeBatch):
            lost = len(item) if isinstance(item, TradeBatch) else 1
            self.dropped_trades += lost
            self._since[1] += lost
        elif isinstance(item, Fill):
            self.dropped_fills += 1
            self._since[2] += 1
        else:
            self.dropped_status += 1
            self._since[3] += 1
        items.appendleft(_MARK)
        self._marked = True
