"""KIS's WebSocket wire format, without I/O: subscription messages out, events and controls in.

KIS's real-time WebSocket protocol. Outgoing, :func:`encode_subscription` builds a register or
unregister message. Incoming, a :class:`FrameDecoder` turns each text frame into items:

- :class:`PingPong` — the server's heartbeat; the shell must send ``text`` back verbatim as a
  text frame (the only safe answer).
- :class:`Ack` — a JSON control answer (subscribe / unsubscribe results, OPSP8996 "already in
  use" whose header tr_id is ``"(null)"``, format errors). Decoding an ack that carries a
  key/iv pair stores the pair for its tr_id: later encrypted frames of that tr_id use it.
- :class:`~kisclient._stream_events.Trade`, :class:`~kisclient._stream_events.OrderBook`,
  :class:`~kisclient._stream_events.Fill` — one per record of a data frame
  ``flag|tr_id|count|f1^f2^...``, in the frame's order; with ``trade_batches=True`` a frame's
  trades come as one :class:`~kisclient._stream_events.TradeBatch` instead.

The decoder never raises on what the server sends: unknown tr_ids and malformed frames (bad
header, a field count not divisible by the record count, an encrypted frame without a key or
failing to decrypt, a record too short or with a non-numeric typed field) are counted in
:attr:`FrameDecoder.stats` and logged once per kind on the ``kisclient.stream`` logger. Record
width is computed per frame (``len(fields) // count``), never assumed: known fields are named by
position and extra ones kept as ``field_N``; each new width of a tr_id is logged once. Logs never
contain payloads, keys or ivs (fill notices hold account numbers).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Final, TypeAlias, cast

import attrs

from ._aes import CbcCipher
from ._config import Side
from ._errors import ValidationError
from ._stream_events import (
    _NOTICE_TR_IDS,
    Fill,
    Level,
    OrderBook,
    RecordFields,
    Trade,
    TradeBatch,
    _shown_tr_key,
)

__all__ = [
    "FIELD_NAMES",
    "FILL_FIELDS",
    "NOTICE_TR_IDS",
    "ORDERBOOK_FIELDS",
    "TRADE_FIELDS",
    "TR_FILL_PAPER",
    "TR_FILL_REAL",
    "TR_ORDERBOOK",
    "TR_PINGPONG",
    "TR_TRADE",
    "TR_TRADE_NXT",
    "TR_TRADE_UNIFIED",
    "Ack",
    "DecodedItem",
    "DecoderStats",
    "FrameDecoder",
    "PingPong",
    "encode_subscription",
]

_log = logging.getLogger("kisclient.stream")

# --- tr_ids ---------------------------------------------------------------------------------

#: KRX trades.
TR_TRADE: Final = "H0STCNT0"
#: NXT trades (real only; same layout as :data:`TR_TRADE`).
TR_TRADE_NXT: Final = "H0NXCNT0"
#: Combined KRX + NXT trades (real only; same layout as :data:`TR_TRADE`).
TR_TRADE_UNIFIED: Final = "H0UNCNT0"
#: KRX order book.
TR_ORDERBOOK: Final = "H0STASP0"
#: Execution notices on the real host (encrypted; ``tr_key`` is the HTS ID).
TR_FILL_REAL: Final = "H0STCNI0"
#: Execution notices on the paper host (encrypted; ``tr_key`` is the HTS ID).
TR_FILL_PAPER: Final = "H0STCNI9"
#: The heartbeat's header tr_id.
TR_PINGPONG: Final = "PINGPONG"
#: The execution-notice tr_ids.
NOTICE_TR_IDS: Final = _NOTICE_TR_IDS

# --- field tables (KIS's documented order) -------------------------------------------------------

#: H0STCNT0 / H0NXCNT0 / H0UNCNT0, the 46 documented fields in order.
TRADE_FIELDS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
)

#: H0STASP0, the 59 documented fields in order.
ORDERBOOK_FIELDS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)),
    *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)),
    *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "OVTM_TOTAL_ASKP_RSQN",
    "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR",
    "ANTC_CNQN",
    "ANTC_VOL",
    "ANTC_CNTG_VRSS",
    "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT",
    "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC",
    "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC",
    "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)

#: H0STCNI0 / H0STCNI9, the 26 documented fields in order (since 2025-03).
FILL_FIELDS: Final[tuple[str, ...]] = (
    "CUST_ID",
    "ACNT_NO",
    "ODER_NO",
    "OODER_NO",
    "SELN_BYOV_CLS",
    "RCTF_CLS",
    "ODER_KIND",
    "ODER_COND",
    "STCK_SHRN_ISCD",
    "CNTG_QTY",
    "CNTG_UNPR",
    "STCK_CNTG_HOUR",
    "RFUS_YN",
    "CNTG_YN",
    "ACPT_YN",
    "BRNC_NO",
    "ODER_QTY",
    "ACNT_NAME",
    "ORD_COND_PRC",
    "ORD_EXG_GB",
    "POPUP_YN",
    "FILLER",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)

#: The documented field names of every tr_id the decoder understands.
FIELD_NAMES: Final[Mapping[str, tuple[str, ...]]] = {
    TR_TRADE: TRADE_FIELDS,
    TR_TRADE_NXT: TRADE_FIELDS,
    TR_TRADE_UNIFIED: TRADE_FIELDS,
    TR_ORDERBOOK: ORDERBOOK_FIELDS,
    TR_FILL_REAL: FILL_FIELDS,
    TR_FILL_PAPER: FILL_FIELDS,
}

# --- outgoing -------------------------------------------------------------------------------


def encode_subscription(approval_key: str, tr_id: str, tr_key: str, *, register: bool) -> str:
    """The JSON text that registers (``register=True``, tr_type "1") or unregisters (tr_type
    "2") ``(tr_id, tr_key)`` on a session opened with *approval_key*.

    ``tr_key`` is the 6-character code (``Q`` + 6 for an ETN) or, for execution notices, the HTS
    ID. Raises :class:`~kisclient._errors.ValidationError` if any argument is empty. The result
    contains the approval key: never log it.
    """
    if not approval_key or not tr_id or not tr_key:
        raise ValidationError("approval_key, tr_id and tr_key must be non-empty")
    message = {
        "header": {
            "approval_key": approval_key,
            "custtype": "P",
            "tr_type": "1" if register else "2",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


# --- control items --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class PingPong:
    """The server's heartbeat. Send ``text`` back unchanged, as a text frame."""

    text: str


@attrs.frozen(slots=True, kw_only=True, repr=False)
class Ack:
    """A JSON control answer: ``header.tr_id`` / ``header.tr_key`` and ``body.rt_cd`` /
    ``msg_cd`` / ``msg1`` (as ``msg``), missing values as ``""``.

    ``rt_cd`` "0" is success ("1" business error, "9" system error); OPSP8996 (a second session
    on the app key) comes with tr_id ``"(null)"``. ``key`` (32 chars) and ``iv`` (16 chars) are
    the AES pair of ``body.output`` when present. The repr leaves out ``key`` and ``iv`` and masks
    a notice's ``tr_key`` (an HTS ID); ``msg`` has UUIDs (approval keys) masked.
    """

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg: str
    key: str | None = None
    iv: str | None = None

    @property
    def ok(self) -> bool:
        """``rt_cd == "0"``."""
        return self.rt_cd == "0"

    def __repr__(self) -> str:
        return (
            f"Ack(tr_id={self.tr_id!r}, tr_key={_shown_tr_key(self.tr_id, self.tr_key)!r}, "
            f"rt_cd={self.rt_cd!r}, msg_cd={self.msg_cd!r}, msg={self.msg!r})"
        )


#: What :meth:`FrameDecoder.decode` returns items of.
DecodedItem: TypeAlias = Trade | TradeBatch | OrderBook | Fill | PingPong | Ack


@attrs.define(slots=True)
class DecoderStats:
    """Counters of a :class:`FrameDecoder` (mutable; never reset by the decoder).

    ``frames``: data frames seen; ``records``: records turned into events; ``controls``: JSON
    control frames (acks and heartbeats); ``unknown_tr_id``: data frames of a tr_id without a
    field table (skipped); ``malformed``: frames or records that could not be read (skipped);
    ``widths_seen``: every record width seen, per tr_id.
    """

    frames: int = 0
    records: int = 0
    controls: int = 0
    unknown_tr_id: int = 0
    malformed: int = 0
    widths_seen: dict[str, set[int]] = attrs.field(factory=dict)


# --- record builders ------------------------------------------------------------------------

_UUID: Final = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_SIDES: Final[Mapping[str, Side]] = {"01": "sell", "02": "buy", "1": "sell", "2": "buy"}


def _int(text: str) -> int:
    """An integer field: optional sign and ASCII digits, surrounding blanks allowed, ``""`` is 0,
    a zero fraction (``"128500.00"``) accepted. Anything else raises ``ValueError``."""
    try:
        return int(text)
    except ValueError:
        stripped = text.strip()
        if not stripped:
            return 0
        head, dot, tail = stripped.partition(".")
        if dot and head and not tail.strip("0"):
            return int(head)
        raise


def _trade(tr_id: str, rec: Sequence[str], fields: Mapping[str, str]) -> Trade:
    return Trade(rec[0], _int(rec[2]), _int(rec[12]), rec[1], fields, tr_id)


def _orderbook(_tr_id: str, rec: Sequence[str], fields: Mapping[str, str]) -> OrderBook:
    asks = []
    bids = []
    for i in range(10):
        price = _int(rec[3 + i])
        if price:
            asks.append(Level(price, _int(rec[23 + i])))
        price = _int(rec[13 + i])
        if price:
            bids.append(Level(price, _int(rec[33 + i])))
    return OrderBook(rec[0], asks, bids, rec[1], fields)


def _fill(_tr_id: str, rec: Sequence[str], fields: Mapping[str, str]) -> Fill:
    side = _SIDES.get(rec[4].strip())
    if side is None:
        raise ValueError("SELN_BYOV_CLS is neither 01 nor 02")
    filled = rec[13].strip() == "2"
    if filled:
        qty, price = _int(rec[9]), _int(rec[10])
    else:
        qty = _int(rec[16])
        price = _int(rec[25]) if len(rec) > 25 else 0
    return Fill(
        order_no=rec[2].strip(),
        code=rec[8].strip(),
        side=side,
        qty=qty,
        price=price,
        filled=filled,
        rejected=rec[12].strip() == "1",
        time=rec[11],
        fields=fields,
    )


def _trade_columns(
    fields: list[str], width: int
) -> tuple[list[str], list[str], list[int], list[int]] | None:
    """A frame's trades column-wise (``map`` over strided slices, no per-record Python loop):
    codes, times, prices and volumes; ``None`` when a price or volume is not a plain integer
    (the caller then goes record by record, dropping only the bad ones)."""
    try:
        prices = list(map(int, fields[2::width]))
        volumes = list(map(int, fields[12::width]))
    except ValueError:
        return None
    return fields[0::width], fields[1::width], prices, volumes


def _trades_fast(
    tr_id: str,
    names: tuple[str, ...],
    index: Mapping[str, int],
    fields: list[str],
    width: int,
) -> list[DecodedItem] | None:
    """The trades of one frame built from :func:`_trade_columns`: the same events as
    :func:`_trade` per record, about twice as fast, which is what a stream of tens of thousands
    of ticks a second needs. ``None`` as for :func:`_trade_columns`."""
    columns = _trade_columns(fields, width)
    if columns is None:
        return None
    codes, times, prices, volumes = columns
    count = len(prices)
    views = map(
        RecordFields,
        repeat(names, count),
        repeat(index, count),
        repeat(fields, count),
        range(0, len(fields), width),
    )
    return list(map(Trade, codes, prices, volumes, times, views, repeat(tr_id, count)))


def _trade_batch(
    tr_id: str,
    names: tuple[str, ...],
    index: Mapping[str, int],
    fields: list[str],
    width: int,
) -> TradeBatch | None:
    """The trades of one frame as one :class:`TradeBatch`; ``None`` as for
    :func:`_trade_columns`."""
    columns = _trade_columns(fields, width)
    if columns is None:
        return None
    return TradeBatch(tr_id, *columns, names, index, fields)


_Builder: TypeAlias = Callable[[str, Sequence[str], Mapping[str, str]], Trade | OrderBook | Fill]

#: Per tr_id: the builder and the smallest record width it can read (the last typed field + 1).
_BUILDERS: Final[Mapping[str, tuple[_Builder, int]]] = {
    TR_TRADE: (_trade, 13),
    TR_TRADE_NXT: (_trade, 13),
    TR_TRADE_UNIFIED: (_trade, 13),
    TR_ORDERBOOK: (_orderbook, 43),
    TR_FILL_REAL: (_fill, 17),
    TR_FILL_PAPER: (_fill, 17),
}


#: At most this many distinct (reason, tr_id) problems are logged per decoder.
_MAX_LOGGED: Final = 256


class FrameDecoder:
    """Turns KIS WebSocket text frames into events and control items (see the module doc).

    Stateful only in its AES key table (filled from acks), its width bookkeeping and
    :attr:`stats`. Not thread-safe: one decoder per connection, driven by one task or thread.
    Keep the decoder across reconnects or make a new one; either way new acks bring new keys.
    """

    def __init__(self, *, trade_batches: bool = False) -> None:
        self.stats = DecoderStats()
        self._trade_batches = trade_batches
        self._ciphers: dict[str, CbcCipher] = {}
        self._names: dict[tuple[str, int], tuple[str, ...] | None] = {}
        self._indexes: dict[tuple[str, int], dict[str, int]] = {}
        self._logged: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"FrameDecoder(stats={self.stats!r})"

    def has_key(self, tr_id: str) -> bool:
        """Whether an ack has supplied an AES key/iv pair for *tr_id*."""
        return tr_id in self._ciphers

    def decode_bytes(self, data: bytes) -> list[DecodedItem]:
        """:meth:`decode` of *data* read as UTF-8, invalid bytes replaced by U+FFFD."""
        return self.decode(data.decode("utf-8", errors="replace"))

    def decode(self, text: str) -> list[DecodedItem]:
        """The items of one text frame, in order; ``[]`` when nothing could be read.

        A data frame gives one event per record; a JSON frame one :class:`PingPong` or
        :class:`Ack`. Never raises on frame contents.
        """
        first = text[:1]
        if first in {"0", "1"}:
            return self._decode_data(text)
        if first == "{" or text.lstrip()[:1] == "{":
            return self._decode_control(text)
        self._malformed("unrecognised frame", "")
        return []

    def plain(self, text: str) -> str | None:
        """A data frame as plain text (flag 0), decrypting an encrypted one (flag 1) with the
        key of its tr_id; ``None`` if it cannot be read. For relaying frames to processes that
        never saw the acks' keys."""
        if text[:2] != "1|":
            return text
        parts = text.split("|", 3)
        if len(parts) != 4:
            return None
        plain = self._decrypt(parts[1], parts[3])
        return None if plain is None else f"0|{parts[1]}|{parts[2]}|{plain}"

    # --- data frames --------------------------------------------------------------------------

    def _decode_data(self, text: str) -> list[DecodedItem]:
        stats = self.stats
        stats.frames += 1
        parts = text.split("|", 3)
        if len(parts) != 4:
            self._malformed("data frame without flag|tr_id|count|payload", "")
            return []
        flag, tr_id, count_text, payload = parts
        builder = _BUILDERS.get(tr_id)
        if builder is None:
            stats.unknown_tr_id += 1
            self._log_once(
                "unknown", tr_id, logging.WARNING, "ignoring data frames of unknown tr_id %r", tr_id
            )
            return []
        try:
            count = int(count_text)
        except ValueError:
            count = 0
        if count < 1:
            self._malformed("record count is not a positive number", tr_id)
            return []
        if flag == "1":
            plain = self._decrypt(tr_id, payload)
            if plain is None:
                return []
            payload = plain
        elif flag != "0":
            self._malformed("unknown encryption flag", tr_id)
            return []
        fields = payload.split("^")
        n = len(fields)
        if n % count:
            self._malformed("field count is not a multiple of the record count", tr_id)
            return []
        width = n // count
        key = (tr_id, width)
        if key in self._names:
            names = self._names[key]
        else:
            names = self._new_width(tr_id, width, builder[1])
        if names is None:
            stats.malformed += 1
            return []
        return self._records(tr_id, builder[0], names, self._indexes[key], fields, width)

    def _records(
        self,
        tr_id: str,
        build: _Builder,
        names: tuple[str, ...],
        index: Mapping[str, int],
        fields: list[str],
        width: int,
    ) -> list[DecodedItem]:
        """The events of a frame's *fields*, *width* per record (checked by the caller)."""
        stats = self.stats
        if build is _trade:
            if self._trade_batches:
                batch = _trade_batch(tr_id, names, index, fields, width)
                if batch is not None:
                    stats.records += len(batch)
                    return [batch]
            else:
                trades = _trades_fast(tr_id, names, index, fields, width)
                if trades is not None:
                    stats.records += len(trades)
                    return trades
        batching = self._trade_batches and build is _trade
        out: list[DecodedItem] = []
        kept: list[str] = []  # with batching, the fields of the records read
        for start in range(0, len(fields), width):
            rec = fields[start : start + width]
            try:
                out.append(build(tr_id, rec, RecordFields(names, index, rec)))
            except ValueError:
                self._malformed("a typed field is not a number", tr_id)
                continue
            if batching:
                kept += rec
        stats.records += len(out)
        if batching and out:
            read = cast("list[Trade]", out)
            columns = ([t.code for t in read], [t.time for t in read])
            typed = ([t.price for t in read], [t.volume for t in read])
            return [TradeBatch(tr_id, *columns, *typed, names, index, kept)]
        return out

    def _new_width(self, tr_id: str, width: int, minimum: int) -> tuple[str, ...] | None:
        """Record and log a width not seen before for *tr_id*; its names, or ``None`` if the
        record is too short to read."""
        self.stats.widths_seen.setdefault(tr_id, set()).add(width)
        documented = FIELD_NAMES[tr_id]
        names: tuple[str, ...] | None = documented[:width] + tuple(
            f"field_{i}" for i in range(len(documented) + 1, width + 1)
        )
        if width < minimum:
            _log.warning(
                "%s records have %d fields, fewer than the %d needed; skipping them",
                tr_id,
                width,
                minimum,
            )
            names = None
        elif width > len(documented):
            _log.info(
                "%s records now have %d fields (documented %d); extra fields kept as field_%d..",
                tr_id,
                width,
                len(documented),
                len(documented) + 1,
            )
        elif width < len(documented):
            _log.warning(
                "%s records now have %d fields (documented %d); the last ones are missing",
                tr_id,
                width,
                len(documented),
            )
        self._names[(tr_id, width)] = names
        if names is not None:
            self._indexes[(tr_id, width)] = {name: i for i, name in enumerate(names)}
        return names

    # --- encryption ---------------------------------------------------------------------------

    def _decrypt(self, tr_id: str, payload: str) -> str | None:
        cipher = self._ciphers.get(tr_id)
        if cipher is None:
            self._malformed("encrypted frame before any key for its tr_id", tr_id)
            return None
        try:
            plain = cipher.decrypt(base64.b64decode(payload))
        except (ValueError, binascii.Error):
            self._malformed("encrypted frame failed to decrypt", tr_id)
            return None
        return plain.decode("utf-8", errors="replace")

    def _store_key(self, tr_id: str, key: str, iv: str) -> None:
        try:
            key_bytes, iv_bytes = key.encode("ascii"), iv.encode("ascii")
        except UnicodeEncodeError:
            key_bytes = iv_bytes = b""
        if len(key_bytes) != 32 or len(iv_bytes) != 16:
            self._log_once(
                "bad key", tr_id, logging.WARNING, "ignoring an unusable AES key/iv for %s", tr_id
            )
            return
        self._ciphers[tr_id] = CbcCipher(key_bytes, iv_bytes)

    # --- control frames -----------------------------------------------------------------------

    def _decode_control(self, text: str) -> list[DecodedItem]:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        header = message.get("header") if isinstance(message, dict) else None
        if not isinstance(header, dict):
            self._malformed("control frame is not a JSON object with a header", "")
            return []
        self.stats.controls += 1
        tr_id = _text(header.get("tr_id"))
        if tr_id == TR_PINGPONG:
            return [PingPong(text)]
        body = message.get("body")
        body = body if isinstance(body, dict) else {}
        output = body.get("output")
        output = output if isinstance(output, dict) else {}
        key = _text(output.get("key")) or None
        iv = _text(output.get("iv")) or None
        ack = Ack(
            tr_id=tr_id,
            tr_key=_text(header.get("tr_key")),
            rt_cd=_text(body.get("rt_cd")),
            msg_cd=_text(body.get("msg_cd")),
            msg=_UUID.sub("***", _text(body.get("msg1"))),
            key=key,
            iv=iv,
        )
        if key is not None and iv is not None:
            self._store_key(tr_id, key, iv)
        return [ack]

    # --- problems -----------------------------------------------------------------------------

    def _malformed(self, reason: str, tr_id: str) -> None:
        self.stats.malformed += 1
        self._log_once(
            reason, tr_id, logging.WARNING, "skipping malformed data (%s) %s", reason, tr_id
        )

    def _log_once(self, kind: str, tr_id: str, level: int, message: str, *args: object) -> None:
        """Log *message* the first time (kind, tr_id) happens; never payloads or secrets."""
        if (kind, tr_id) in self._logged or len(self._logged) >= _MAX_LOGGED:
            return
        self._logged.add((kind, tr_id))
        _log.log(level, message, *args)


def _text(value: object) -> str:
    """A JSON value as a string: ``None`` is ``""``, strings stripped."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)
