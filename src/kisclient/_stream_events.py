"""The events a real-time stream delivers: market data, fill notices and the stream's own status.

Market data and notices come from KIS's WebSocket data frames (KIS's real-time field lists):

- :class:`Trade` — one H0STCNT0 record (KRX trades; H0NXCNT0 NXT and H0UNCNT0 combined share the
  layout).
- :class:`OrderBook` — one H0STASP0 record (ten ask and ten bid levels).
- :class:`Fill` — one H0STCNI0 / H0STCNI9 execution notice (decrypted).
- :class:`TradeBatch` — instead of :class:`Trade` events when the stream was opened with
  ``trade_batches=True``: the trades of one frame, column-wise.

Each keeps every field of its record, as the documented name → raw string, in ``fields``; fields
past the documented list (KIS adds fields without notice) are kept as ``field_47``, ``field_48``…
(1-based position). Only a few fields are typed attributes; everything else is read from
``fields``.

Status events describe the connection: :class:`StreamConnected`, :class:`StreamReconnecting`,
:class:`StreamResubscribed`, :class:`SubscriptionRefused` and :class:`StreamOverflow` (the
consumer fell behind and events were dropped).

All events are frozen attrs classes. No repr shows ``fields`` (a fill notice holds the account
number, the HTS ID and the account holder's name) nor the HTS ID used as the notices' ``tr_key``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Final, TypeAlias, overload

import attrs

from ._config import Side

__all__ = [
    "Fill",
    "Level",
    "OrderBook",
    "RecordFields",
    "StreamConnected",
    "StreamEvent",
    "StreamOverflow",
    "StreamReconnecting",
    "StreamResubscribed",
    "SubscriptionRefused",
    "Trade",
    "TradeBatch",
]


class RecordFields(Mapping[str, str]):
    """A record's fields by name, read-only: every documented name, and fields KIS added since
    as ``field_47``, ... . A view over the record's values, built only when read: a stream
    delivers tens of thousands of records a second, and most consumers read a few fields.

    The record is ``values[start : start + len(names)]``: the view can point into the split
    fields of the whole frame, so a record costs no copy of its values (and one object fewer
    for the garbage collector, which a fast feed otherwise keeps busy)."""

    __slots__ = ("_index", "_names", "_start", "_values")

    def __init__(
        self,
        names: tuple[str, ...],
        index: Mapping[str, int],
        values: Sequence[str],
        start: int = 0,
    ) -> None:
        self._names = names
        self._index = index
        self._values = values
        self._start = start

    def __getitem__(self, name: str) -> str:
        return self._values[self._start + self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"RecordFields({dict(self)!r})"


#: The execution-notice tr_ids, whose ``tr_key`` is the customer's HTS ID (masked in reprs).
_NOTICE_TR_IDS: Final = frozenset({"H0STCNI0", "H0STCNI9"})
_MASK: Final = "***"


def _shown_tr_key(tr_id: str, tr_key: str) -> str:
    """*tr_key* as a repr may show it: an execution notice's key (an HTS ID) is masked."""
    return _MASK if tr_id in _NOTICE_TR_IDS else tr_key


# --- market data and notices ----------------------------------------------------------------


@attrs.frozen(slots=True)
class Level:
    """One order-book level: a price (KRW) and the quantity resting at it (shares)."""

    price: int
    qty: int


@attrs.frozen(slots=True)
class Trade:
    """One trade tick (H0STCNT0; also H0NXCNT0 / H0UNCNT0, see ``tr_id``).

    ``code`` is MKSC_SHRN_ISCD, ``price`` STCK_PRPR (this trade's price), ``volume`` CNTG_VOL
    (this trade's volume, not the day's), ``time`` STCK_CNTG_HOUR as sent (``"HHMMSS"``, KST).
    ``fields`` holds every field of the record as a string, extras as ``field_N``. ``tr_id`` says
    which feed the tick came from (KRX ``H0STCNT0`` unless told otherwise).
    """

    code: str
    price: int
    volume: int
    time: str
    fields: Mapping[str, str] = attrs.field(repr=False)
    tr_id: str = "H0STCNT0"


@attrs.frozen(slots=True)
class TradeBatch(Sequence[Trade]):
    """The trades of one data frame (1 to about 11 records), column-wise: what a stream opened
    with ``trade_batches=True`` delivers instead of one :class:`Trade` per record.

    ``codes``, ``times``, ``prices`` and ``volumes`` hold each record's ``Trade.code``,
    ``.time``, ``.price`` and ``.volume``, in the frame's order, typed and checked exactly as for
    :class:`Trade` (a record whose price or volume is not a number is left out and counted as
    malformed). The batch is also a read-only sequence of :class:`Trade`: ``batch[i]``,
    ``len(batch)`` and iteration build each ``Trade``, with its ``fields``, only when asked.
    For consumers of heavy feeds: one event per frame and no object per record.
    """

    tr_id: str
    codes: Sequence[str]
    times: Sequence[str]
    prices: Sequence[int]
    volumes: Sequence[int]
    _names: tuple[str, ...] = attrs.field(repr=False, eq=False)
    _index: Mapping[str, int] = attrs.field(repr=False, eq=False)
    _values: Sequence[str] = attrs.field(repr=False, eq=False)  # every field, record after record

    def __len__(self) -> int:
        return len(self.prices)

    @overload
    def __getitem__(self, i: int) -> Trade: ...
    @overload
    def __getitem__(self, i: slice) -> list[Trade]: ...
    def __getitem__(self, i: int | slice) -> Trade | list[Trade]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        i = range(len(self))[i]  # negative indexes count from the end; IndexError past it
        return Trade(
            self.codes[i],
            self.prices[i],
            self.volumes[i],
            self.times[i],
            self.fields(i),
            self.tr_id,
        )

    def fields(self, i: int) -> Mapping[str, str]:
        """Record *i*'s fields by name (``Trade.fields`` without building the ``Trade``)."""
        start = range(0, len(self._values), len(self._names))[i]
        return RecordFields(self._names, self._index, self._values, start)


@attrs.frozen(slots=True)
class OrderBook:
    """One order-book snapshot (H0STASP0).

    ``asks`` and ``bids`` are best first (``asks[0]`` is ASKP1, the lowest ask; ``bids[0]`` is
    BIDP1, the highest bid), with their quantities from ASKP_RSQN* / BIDP_RSQN*. Levels whose price
    is 0 (empty levels) are left out, so each list has at most ten entries. ``time`` is BSOP_HOUR
    as sent (``"HHMMSS"``). ``fields`` holds every field of the record, extras as ``field_N``.
    """

    code: str
    asks: list[Level]
    bids: list[Level]
    time: str
    fields: Mapping[str, str] = attrs.field(repr=False)


@attrs.frozen(slots=True, kw_only=True)
class Fill:
    """One execution notice (H0STCNI0 real / H0STCNI9 paper), decrypted.

    A notice is sent when an order, revision, cancellation or refusal is received and on each
    fill. ``filled`` is CNTG_YN == "2" (this notice is a fill); ``rejected`` is RFUS_YN == "1".
    On a fill ``qty`` and ``price`` are the fill's quantity and price (CNTG_QTY / CNTG_UNPR);
    otherwise they are the order's (ODER_QTY / ODER_PRC; an empty value is 0). ``side`` is from
    SELN_BYOV_CLS (01 sell, 02 buy). ``order_no`` is ODER_NO, ``code`` STCK_SHRN_ISCD, ``time``
    STCK_CNTG_HOUR as sent. ``fields`` (every field, including the account number, the HTS ID
    and the holder's name) is never part of the repr.
    """

    order_no: str
    code: str
    side: Side
    qty: int
    price: int
    filled: bool
    rejected: bool
    time: str
    fields: Mapping[str, str] = attrs.field(repr=False)


# --- status ---------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class StreamConnected:
    """The socket is open (``attempt`` 1 for the first connection, then counting reconnects)."""

    attempt: int


@attrs.frozen(slots=True, kw_only=True)
class StreamReconnecting:
    """The connection was lost (``reason``); connection ``attempt`` follows in ``delay_s`` s."""

    attempt: int
    delay_s: float
    reason: str


@attrs.frozen(slots=True)
class StreamResubscribed:
    """After a reconnect, ``count`` registrations were sent again."""

    count: int


@attrs.frozen(slots=True, kw_only=True, repr=False)
class SubscriptionRefused:
    """KIS refused a registration (``msg_cd`` such as OPSP0008 MAX SUBSCRIBE OVER).

    The pair stays refused (and silent) until it is subscribed again. For execution notices the
    ``tr_key`` is the HTS ID, masked in the repr.
    """

    tr_id: str
    tr_key: str
    msg_cd: str
    msg: str

    def __repr__(self) -> str:
        return (
            f"SubscriptionRefused(tr_id={self.tr_id!r}, "
            f"tr_key={_shown_tr_key(self.tr_id, self.tr_key)!r}, "
            f"msg_cd={self.msg_cd!r}, msg={self.msg!r})"
        )


@attrs.frozen(slots=True, kw_only=True)
class StreamOverflow:
    """The consumer fell behind and events were dropped since the previous overflow report.

    Counts are per kind since the last :class:`StreamOverflow` delivered. Order books are dropped
    first and only counted; an overflow event is delivered as soon as any trade, fill or status
    event had to be dropped (``dropped_status`` counts the status events).
    """

    dropped_orderbooks: int
    dropped_trades: int
    dropped_fills: int
    dropped_status: int = 0


#: Everything a stream can deliver to its consumer.
StreamEvent: TypeAlias = (
    Trade
    | TradeBatch
    | OrderBook
    | Fill
    | StreamConnected
    | StreamReconnecting
    | StreamResubscribed
    | SubscriptionRefused
    | StreamOverflow
)
