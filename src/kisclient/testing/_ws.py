"""FakeWSServer: the KIS real-time WebSocket, faithful to its public sources, on a loopback port.

One server is one environment's host (``env="real"``: port 21000's behaviour, ``"paper"``:
31000's). It runs a ``websockets`` asyncio server on its own event loop in a daemon thread, so
sync and asyncio tests both use it. Socket timers (PINGPONG, slot hold, stalls) run on real
time; dates, times and approval-key age come from the fake's clock.

Protocol (KIS's messages and limits)
------------------------------------
- Requests are text frames ``{"header": {"approval_key", "custtype", "tr_type",
  "content-type"}, "body": {"input": {"tr_id", "tr_key"}}}``; ``tr_type`` ``"1"`` registers,
  ``"2"`` unregisters. Answers are JSON ``{"header": {"tr_id", "tr_key", "encrypt"},
  "body": {"rt_cd", "msg_cd", "msg1"[, "output": {"iv", "key"}]}}``.
- The approval key is checked on the session's first valid request: unknown, issued for the
  other environment, or 24 h old or older on the fake's clock → ``OPSP0011 invalid approval :
  <key>`` (rt_cd ``"1"``) and the server closes the connection. A live session is never
  re-checked for age (a key that ages past 24 h keeps working on it).
- One session per app key: the first valid request of a second connection on a busy app key,
  or on a key whose slot is held after an abnormal disconnect, gets ``OPSP8996 ALREADY IN USE
  appkey`` (rt_cd ``"9"``, header tr_id ``"(null)"``) and is closed by the server; the first
  session keeps working.
- Registrations: ``(tr_id, tr_key)`` pairs, ``max_registrations`` (41) per session across all
  TRs. Success ``OPSP0000`` with a fresh ``output.key`` (32 ASCII letters/digits) and
  ``output.iv`` (16); a duplicate ``OPSP0002`` (also with a fresh pair: every registering ack
  carries one, and the session encrypts a tr_id's notices with the pair of its *latest*
  registering ack for that tr_id); one too many ``OPSP0008`` (that item stays silent).
  Unregister ``OPSP0001`` (frees the place at once: KIS's sources leave it unknown) or ``OPSP0003``.
- Format errors, rt_cd ``"9"``, the session stays open (codes chosen inside the documented
  OPSP8992–9999 range; the real texts are unknown):

  ========  ===================================================================
  OPSP9999  JSON PARSING ERROR : invalid json format (not a JSON object)
  OPSP9998  JSON PARSING ERROR : header not found
  OPSP9997  JSON PARSING ERROR : body not found
  OPSP9996  JSON PARSING ERROR : input not found
  OPSP8999  JSON PARSING ERROR : approval_key not found
  OPSP8998  JSON PARSING ERROR : invalid tr_type (not "1" or "2")
  OPSP8997  JSON PARSING ERROR : invalid custtype (not "P" or "B")
  OPSP8995  JSON PARSING ERROR : invalid appkey (a later request's approval key belongs to
            another app key than the session's)
  OPSP8994  JSON PARSING ERROR : invalid tr_id (missing, or not served in this environment)
  OPSP8993  JSON PARSING ERROR : invalid tr_key (an unlisted code; for the execution notice,
            anything but the HTS ID of the session's app)
  ========  ===================================================================

- TRs: ``H0STCNT0`` trades and ``H0STASP0`` order books in both environments, ``H0NXCNT0`` and
  ``H0UNCNT0`` (trade layout) on real only; the execution notice ``H0STCNI0`` on real,
  ``H0STCNI9`` on paper, whose ``tr_key`` is the app's :attr:`FakeApp.hts_id`.
- Heartbeat: every ``pingpong_interval_s`` the server sends ``{"header": {"tr_id": "PINGPONG",
  "datetime": "YYYYMMDDHHMMSS"}}`` (KST, fake clock). Any text frame whose JSON header's tr_id
  is ``PINGPONG`` counts as the echo; protocol-level pongs do not. When the oldest unanswered
  PINGPONG is ``pingpong_timeout_s`` old the server closes the connection with a close frame
  (code 1000): a server-initiated close is a clean end, the slot is free at once.
- Session ends: a client close frame with code 1000, 1001 or 1005 (none given), or any close
  the server started, frees the app key's slot at once. Anything else is *abnormal* and holds
  the slot busy for ``slot_hold_s``: a TCP drop with no close frame (:meth:`drop_all`, a killed
  client) and a close frame with another code (reports tell of a client's 1007 close on an
  invalid UTF-8 byte preceding an hours-long lock).
- Data frames: ``0|tr_id|NNN|records`` (plain), execution notices ``1|tr_id|001|<base64>``
  (AES-256-CBC, PKCS#7). See :mod:`._ws_records` for the field values.

Nothing here logs; app keys, approval keys, HTS IDs and accounts never appear in a ``repr``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import json
import random
import string
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kisclient._config import EnvName, parse_env
from kisclient._redaction import without_frame_traces

from ._server import is_loopback
from ._state import OrderEvent
from ._ws_records import (
    PROBE,
    Tape,
    encrypt_notice,
    notice_plaintext,
    orderbook_record,
    trade_records,
)

if TYPE_CHECKING:
    from ._core import Core
    from ._fake import FakeKIS

__all__ = ["APPROVAL_KEY_LIFETIME_S", "FakeWSServer", "WSStats"]

T = TypeVar("T")

#: An approval key opens sessions for this long after its issue (fake clock).
APPROVAL_KEY_LIFETIME_S = 24 * 3600.0
_TRADE_TRS = {"real": ("H0STCNT0", "H0NXCNT0", "H0UNCNT0"), "paper": ("H0STCNT0",)}
_BOOK_TRS = ("H0STASP0",)
_NOTICE_TR = {"real": "H0STCNI0", "paper": "H0STCNI9"}
_CLEAN_CLOSE_CODES = frozenset({1000, 1001, 1005})
_ALNUM = string.ascii_letters + string.digits
_UNKNOWN_TR_ID = "H0ZZZZZ0"

_FORMAT_ERRORS: dict[str, tuple[str, str]] = {
    "json": ("OPSP9999", "JSON PARSING ERROR : invalid json format"),
    "header": ("OPSP9998", "JSON PARSING ERROR : header not found"),
    "body": ("OPSP9997", "JSON PARSING ERROR : body not found"),
    "input": ("OPSP9996", "JSON PARSING ERROR : input not found"),
    "approval_key": ("OPSP8999", "JSON PARSING ERROR : approval_key not found"),
    "tr_type": ("OPSP8998", "JSON PARSING ERROR : invalid tr_type"),
    "custtype": ("OPSP8997", "JSON PARSING ERROR : invalid custtype"),
    "appkey": ("OPSP8995", "JSON PARSING ERROR : invalid appkey"),
    "tr_id": ("OPSP8994", "JSON PARSING ERROR : invalid tr_id"),
    "tr_key": ("OPSP8993", "JSON PARSING ERROR : invalid tr_key"),
}


@attrs.frozen
class WSStats:
    """A snapshot of what one :class:`FakeWSServer` did since it started.

    ``registrations`` OPSP0000 answers; ``duplicates`` OPSP0002; ``refused`` OPSP0008;
    ``unsubscribes`` OPSP0001; ``unsubscribe_errors`` OPSP0003; ``invalid_approvals`` OPSP0011;
    ``format_errors`` OPSP8992–9999; ``slot_busy`` OPSP8996 (per app key:
    :meth:`slot_busy_for`); ``acks`` every control answer sent. ``data_frames`` /
    ``data_records`` plain market-data frames and the records in them (faults from
    :meth:`FakeWSServer.send_raw` and friends excluded); ``notices`` encrypted notice frames;
    ``pingpongs_sent`` / ``echoes_received`` the heartbeat; ``pingpong_timeouts`` sessions
    closed for want of an echo; ``connections`` WebSocket handshakes completed;
    ``clean_disconnects`` / ``abnormal_disconnects`` how sessions ended (see the module doc).
    """

    connections: int = 0
    registrations: int = 0
    duplicates: int = 0
    refused: int = 0
    unsubscribes: int = 0
    unsubscribe_errors: int = 0
    invalid_approvals: int = 0
    format_errors: int = 0
    slot_busy: int = 0
    acks: int = 0
    data_frames: int = 0
    data_records: int = 0
    notices: int = 0
    pingpongs_sent: int = 0
    echoes_received: int = 0
    pingpong_timeouts: int = 0
    clean_disconnects: int = 0
    abnormal_disconnects: int = 0
    slot_busy_by_app_key: Mapping[str, int] = attrs.field(factory=dict, repr=False)

    def slot_busy_for(self, app_key: str) -> int:
        """OPSP8996 answers sent to sessions of *app_key*."""
        return self.slot_busy_by_app_key.get(app_key, 0)


@attrs.frozen
class _Raw:
    """Bytes to send as a text (or binary) frame, unchecked."""

    data: bytes
    text: bool = True


@attrs.frozen
class _Close:
    code: int
    reason: str


@attrs.frozen
class _Flush:
    """Resolved when the writer reaches it: everything queued before it was sent (or the
    connection is gone)."""

    future: asyncio.Future[None]


_Item = str | _Raw | _Close | _Flush


class _Session:
    """One WebSocket connection. Mutated on the server's loop, read under the server's lock."""

    def __init__(self, sid: int, conn: ServerConnection) -> None:
        self.sid = sid
        self.conn = conn
        self.app_key: str | None = None
        self.approval_key: str | None = None
        #: (tr_id, canonical tr_key) in registration order.
        self.registrations: dict[tuple[str, str], None] = {}
        #: tr_id -> (key, iv) of the latest registering ack.
        self.keys: dict[str, tuple[str, str]] = {}
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.owns_slot = False
        self.server_closed = False
        self.dropped = False
        self.alive = True
        self.unechoed_since: float | None = None
        self.ended = asyncio.Event()

    def __repr__(self) -> str:
        return f"_Session({self.sid}, registrations={len(self.registrations)})"


class FakeWSServer:
    """The KIS WebSocket for *fake*'s apps in *env*, on ``ws://host:port`` (loopback only; port 0
    picks a free one). Use as a context manager, or :meth:`start` / :meth:`close`.

    Options: ``pingpong_interval_s`` between heartbeats; ``pingpong_timeout_s`` before a
    session whose oldest PINGPONG has no echo is closed; ``slot_hold_s`` the app key's slot stays
    busy after an abnormal disconnect; ``max_registrations`` per session; ``max_frame_bytes``
    the largest message accepted *from* a client (bigger: close 1009; ``None``: websockets'
    1 MiB default). Record widths: ``trade_fields`` (46; 47 adds a 47th field ``"0"``),
    ``orderbook_fields`` (59), ``notice_fields`` (26; 23 or 29 simulate layout changes: fewer cut
    the tail, more append ``"0"`` fields). ``latency_probe=True`` makes every trade record at
    least 47 fields wide, the 47th being ``time.perf_counter_ns()`` taken just before the frame
    is handed to the socket (one value per frame; comparable with ``perf_counter_ns`` of any
    thread of this process, and of other processes on Linux). These widths and the probe are
    plain attributes a test may change between publishes.

    Every public method is thread-safe; none may be called from the server's own loop thread.
    """

    def __init__(
        self,
        fake: FakeKIS,
        *,
        env: EnvName | str = "real",
        host: str = "127.0.0.1",
        port: int = 0,
        pingpong_interval_s: float = 10.0,
        pingpong_timeout_s: float = 30.0,
        slot_hold_s: float = 30.0,
        max_registrations: int = 41,
        max_frame_bytes: int | None = None,
        trade_fields: int = 46,
        orderbook_fields: int = 59,
        notice_fields: int = 26,
        latency_probe: bool = False,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the fake KIS WebSocket only binds loopback addresses, not {host!r}")
        self._fake = fake
        self._core: Core = fake._core
        self.env: EnvName = parse_env(env).value
        self._host = host
        self._port = port
        self.pingpong_interval_s = pingpong_interval_s
        self.pingpong_timeout_s = pingpong_timeout_s
        self._slot_hold_s = slot_hold_s
        self.max_registrations = max_registrations
        self._max_frame_bytes = max_frame_bytes
        self.trade_fields = trade_fields
        self.orderbook_fields = orderbook_fields
        self.notice_fields = notice_fields
        self.latency_probe = latency_probe
        seed = self._core.seed
        #: Ack key/iv pairs (loop thread only).
        self._key_rng = random.Random(f"ws-keys:{seed}:{self.env}")
        #: Market data (under ``core.lock``), apart from the REST fake's rng.
        self._data_rng = random.Random(f"ws-data:{seed}:{self.env}")
        self._tapes: dict[str, Tape] = {}
        self._lock = threading.Lock()
        self._sessions: dict[int, _Session] = {}
        self._slot_owner: dict[str, int] = {}
        self._hold_until: dict[str, float] = {}
        self._counts: collections.Counter[str] = collections.Counter()
        self._slot_busy: collections.Counter[str] = collections.Counter()
        self._echoes: collections.Counter[str] = collections.Counter()
        self._stall_until = 0.0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._bound_port = 0
        self._closing = False
        self._feed: asyncio.Task[None] | None = None
        self._remove_listener: Callable[[], None] | None = None

    # --- lifecycle ---
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._bound_port

    @property
    def url(self) -> str:
        """``ws://host:port`` (after :meth:`start`)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self._bound_port}"

    def start(self) -> FakeWSServer:
        """Bind and serve in a daemon thread (idempotent); fill notices start flowing."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run, args=(loop, ready), name=f"fake-kis-ws:{self.env}", daemon=True
        )
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            ready.result(timeout=10)
        except BaseException:
            thread.join(5)
            self._loop = self._thread = None
            raise
        self._remove_listener = self._fake.on_order_event(self._on_order_event)
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(self._serve())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> Server:
        server = await serve(
            self._handler,
            self._host,
            self._port,
            ping_interval=None,
            compression=None,
            close_timeout=5,
            max_size=self._max_frame_bytes if self._max_frame_bytes is not None else 2**20,
            logger=without_frame_traces("websockets.server"),  # frames carry approval keys
        )
        self._bound_port = int(next(iter(server.sockets)).getsockname()[1])
        return server

    def close(self) -> None:
        """Stop the feed, close every session with a close frame (1001: a clean end), release
        the port and stop the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._loop = self._thread = None

    async def _shutdown(self) -> None:
        self._closing = True
        if self._feed is not None:
            self._feed.cancel()
            self._feed = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def __enter__(self) -> FakeWSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeWSServer({self.env!r}, {self.url!r})"

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run *coro* on the server's loop and wait for its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the FakeWSServer is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FakeWSServer methods cannot be called from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # --- observability ---
    @property
    def stats(self) -> WSStats:
        """A snapshot of the counters (see :class:`WSStats`)."""
        with self._lock:
            return WSStats(
                **{f.name: self._counts[f.name] for f in attrs.fields(WSStats)[:-1]},
                slot_busy_by_app_key=dict(self._slot_busy),
            )

    def sessions(self, app_key: str | None = None) -> int:
        """Open connections: all of them, or those bound to *app_key* (its first valid request
        was accepted)."""
        with self._lock:
            return sum(
                1
                for s in self._sessions.values()
                if s.alive and (app_key is None or s.app_key == app_key)
            )

    def registrations(self, app_key: str) -> frozenset[tuple[str, str]]:
        """The ``(tr_id, tr_key)`` pairs of *app_key*'s live session (empty if none). ETN codes
        are given without their ``Q``; notices by HTS ID."""
        with self._lock:
            sid = self._slot_owner.get(app_key)
            session = self._sessions.get(sid) if sid is not None else None
            return frozenset(session.registrations) if session is not None else frozenset()

    def echoes(self, app_key: str | None = None) -> int:
        """PINGPONG echoes received so far (from sessions of *app_key*, or from anybody)."""
        with self._lock:
            if app_key is None:
                return self._counts["echoes_received"]
            return self._echoes[app_key]

    def was_echoed(self, app_key: str | None = None) -> bool:
        """Whether at least one PINGPONG echo arrived (from *app_key*, or from anybody)."""
        return self.echoes(app_key) > 0

    def slot_held(self, app_key: str) -> bool:
        """Whether a new session of *app_key* would get OPSP8996 now (a live session, or the
        hold after an abnormal disconnect)."""
        with self._lock:
            return app_key in self._slot_owner or self._hold_until.get(app_key, 0.0) > (
                time.monotonic()
            )

    # --- knobs ---
    def set_slot_hold(self, seconds: float) -> None:
        """Hold slots *seconds* after future abnormal disconnects; holds already running end no
        later than *seconds* from now (``set_slot_hold(0)`` frees them)."""
        with self._lock:
            self._slot_hold_s = seconds
            limit = time.monotonic() + seconds
            for key, until in self._hold_until.items():
                self._hold_until[key] = min(until, limit)

    def stall(self, seconds: float) -> None:
        """For *seconds* send nothing at all (data, answers, PINGPONG) and enforce no PINGPONG
        timeout; connections stay open and reading. Frames published meanwhile are queued and
        go out, in order, when the stall ends. Returns at once."""
        with self._lock:
            self._stall_until = max(self._stall_until, time.monotonic() + seconds)

    # --- publishing ---
    def publish_trades(
        self, code: str, n: int = 1, bundle: int = 1, *, tr_id: str = "H0STCNT0"
    ) -> int:
        """Queue *n* trade records for *code* at the fake's current price, *bundle* per frame
        (``0|tr_id|NNN|...``; the last frame may be smaller), to every session registered for
        ``(tr_id, code)``; returns the number of such sessions. The frames are queued when this
        returns and each session's writer sends them in order (at once unless stalled).
        :class:`KeyError` for an unlisted code."""
        if not 1 <= bundle <= 999:
            raise ValueError("bundle must be within 1..999")
        code, frames = self._trade_frames(code, n, bundle, tr_id)
        return self._call(self._route(tr_id, code, frames, wait=False))

    def publish_orderbook(self, code: str, *, tr_id: str = "H0STASP0") -> int:
        """Queue one order-book frame (``0|H0STASP0|001|...``, :attr:`orderbook_fields` wide)
        for *code* to every session registered for it; returns the number of sessions."""
        with self._core.lock:
            listing = self._fake.listing(code)
            tape = self._tapes.setdefault(listing.code, Tape())
            record = orderbook_record(
                self._core, listing.code, tape, self._data_rng, width=self.orderbook_fields
            )
        frame = (f"0|{tr_id}|001|{record}", 1)
        return self._call(self._route(tr_id, listing.code, [frame], wait=False))

    def blast(self, code: str, records: int, bundle: int = 1, *, tr_id: str = "H0STCNT0") -> int:
        """Pre-build *records* trade records for *code*, then send them *bundle* per frame to
        every session registered for it as fast as the sockets take them; returns once all were
        handed to the sockets, with the number of records sent (summed over sessions)."""
        if not 1 <= bundle <= 999:
            raise ValueError("bundle must be within 1..999")
        code, frames = self._trade_frames(code, records, bundle, tr_id)
        sessions = self._call(self._route(tr_id, code, frames, wait=True), timeout=None)
        return sessions * records

    def start_feed(self, rate_per_s: float, bundle: int = 1) -> None:
        """Emit trades in the background at about *rate_per_s* records per second in total,
        *bundle* per frame, cycling over every registered trade ``(tr_id, code)``; replaces a
        running feed. Nothing is sent while nobody is registered."""
        if rate_per_s <= 0 or not 1 <= bundle <= 999:
            raise ValueError("rate_per_s must be positive and bundle within 1..999")
        self._call(self._start_feed(rate_per_s, bundle))

    def stop_feed(self) -> None:
        """Stop the background feed (no-op if none runs)."""
        self._call(self._stop_feed())

    # --- faults ---
    def send_raw(self, data: str | bytes, *, text: bool = True) -> int:
        """Send *data* unchanged to every open session: a str as a text frame, bytes as a text
        frame (unchecked: invalid UTF-8 goes through) unless ``text=False``. Returns the number
        of sessions."""
        item: _Item = data if isinstance(data, str) else _Raw(bytes(data), text)
        return self._call(self._to_all(lambda _s: item))

    def send_invalid_utf8(self, code: str | None = None) -> int:
        """Send every open session a one-record H0STCNT0 text frame whose
        ``MRKT_TRTM_CLS_CODE`` field is the invalid UTF-8 byte ``0xFF``. The code is *code*,
        else the session's first registered trade code, else the first listed code."""
        return self._send_per_session(code, self._invalid_utf8_frame)

    def send_unknown_tr_id(self) -> int:
        """Send every open session a plain frame for an unknown TR (``0|H0ZZZZZ0|001|...``)."""
        return self.send_raw(f"0|{_UNKNOWN_TR_ID}|001|005930^090000^0")

    def send_oversized(self, size_bytes: int = 16_384, code: str | None = None) -> int:
        """Send every open session one H0STCNT0 frame of at least *size_bytes* (records of its
        code as in :meth:`send_invalid_utf8`, up to 999); returns the frame's size in bytes."""
        sizes: list[int] = []

        def build(c: str) -> _Item:
            with self._core.lock:
                tape = self._tapes.setdefault(c, Tape())
                one = trade_records(self._core, c, 1, tape, self._data_rng, width=46)[0]
                count = min(999, max(1, -(-size_bytes // (len(one) + 1))))
                rest = trade_records(self._core, c, count - 1, tape, self._data_rng, width=46)
            frame = f"0|H0STCNT0|{count:03d}|" + "^".join([one, *rest])
            sizes.append(len(frame.encode()))
            return frame

        self._send_per_session(code, build)
        return max(sizes, default=0)

    def drop_all(self) -> int:
        """Abort every connection's TCP stream with no close frame (an abnormal end: each bound
        app key's slot is held ``slot_hold_s``); returns once the sessions are gone, with how
        many there were."""
        return self._call(self._drop_all())

    # --- internals: building frames (caller thread) ---
    def _trade_frames(
        self, code: str, n: int, bundle: int, tr_id: str
    ) -> tuple[str, list[tuple[str, int]]]:
        width = max(self.trade_fields, 47) if self.latency_probe else self.trade_fields
        extra = PROBE if self.latency_probe else "0"
        with self._core.lock:
            listing = self._fake.listing(code)
            tape = self._tapes.setdefault(listing.code, Tape())
            records = trade_records(
                self._core, listing.code, n, tape, self._data_rng, width=width, extra=extra
            )
        frames = [
            (f"0|{tr_id}|{len(chunk):03d}|" + "^".join(chunk), len(chunk))
            for chunk in (records[i : i + bundle] for i in range(0, len(records), bundle))
        ]
        return listing.code, frames

    def _default_code(self, session: _Session, code: str | None) -> str:
        if code is not None:
            return self._fake.listing(code).code
        for tr_id, key in session.registrations:
            if tr_id in _TRADE_TRS["real"]:
                return key
        universe = self._core.universe
        return "005930" if universe.get("005930") is not None else universe.codes[0]

    def _invalid_utf8_frame(self, code: str) -> _Item:
        with self._core.lock:
            tape = self._tapes.setdefault(code, Tape())
            [record] = trade_records(self._core, code, 1, tape, self._data_rng, width=46)
        fields = record.split("^")
        head, tail = "^".join(fields[:44]), "^".join(fields[45:])
        data = f"0|H0STCNT0|001|{head}^".encode() + b"\xff" + f"^{tail}".encode()
        return _Raw(data, True)

    def _send_per_session(self, code: str | None, build: Callable[[str], _Item]) -> int:
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.alive]
        items = {s.sid: build(self._default_code(s, code)) for s in sessions}
        return self._call(self._to_all(lambda s: items.get(s.sid)))

    # --- internals: the loop ---
    async def _to_all(self, make: Callable[[_Session], _Item | None]) -> int:
        count = 0
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.alive]
        for s in sessions:
            item = make(s)
            if item is not None:
                s.queue.put_nowait(item)
                count += 1
        return count

    async def _route(
        self, tr_id: str, code: str, frames: list[tuple[str, int]], *, wait: bool
    ) -> int:
        """Queue *frames* ((text, records) pairs) to every session registered for
        ``(tr_id, code)``; with *wait*, return once they were handed to the sockets."""
        with self._lock:
            targets = [
                s for s in self._sessions.values() if s.alive and (tr_id, code) in s.registrations
            ]
            self._counts["data_frames"] += len(frames) * len(targets)
            self._counts["data_records"] += sum(n for _, n in frames) * len(targets)
        flushes = []
        for s in targets:
            for text, _ in frames:
                s.queue.put_nowait(text)
            if wait:
                flush = _Flush(asyncio.get_running_loop().create_future())
                s.queue.put_nowait(flush)
                flushes.append(flush.future)
        if flushes:
            await asyncio.gather(*flushes)
        return len(targets)

    async def _start_feed(self, rate_per_s: float, bundle: int) -> None:
        await self._stop_feed()
        self._feed = asyncio.create_task(self._run_feed(rate_per_s, bundle))

    async def _stop_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed

    async def _run_feed(self, rate_per_s: float, bundle: int) -> None:
        interval = bundle / rate_per_s
        due = time.monotonic()
        turn = 0
        while True:
            await self._wait_stall()
            with self._lock:
                pairs = sorted(
                    {
                        pair
                        for s in self._sessions.values()
                        if s.alive
                        for pair in s.registrations
                        if pair[0] in _TRADE_TRS[self.env]
                    }
                )
            if pairs:
                tr_id, code = pairs[turn % len(pairs)]
                turn += 1
                width = max(self.trade_fields, 47) if self.latency_probe else self.trade_fields
                extra = PROBE if self.latency_probe else "0"
                with self._core.lock:
                    tape = self._tapes.setdefault(code, Tape())
                    records = trade_records(
                        self._core, code, bundle, tape, self._data_rng, width=width, extra=extra
                    )
                frame = f"0|{tr_id}|{bundle:03d}|" + "^".join(records)
                await self._route(tr_id, code, [(frame, bundle)], wait=False)
            due += interval
            delay = due - time.monotonic()
            if delay < -1.0:
                due = time.monotonic()  # far behind: do not burst to catch up
            await asyncio.sleep(max(delay, 0.0))

    async def _wait_stall(self) -> None:
        while (left := self._stall_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    async def _drop_all(self) -> int:
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.dropped = True
            s.conn.transport.abort()
        if sessions:
            await asyncio.wait_for(asyncio.gather(*(s.ended.wait() for s in sessions)), 10)
        return len(sessions)

    def _on_order_event(self, event: OrderEvent) -> None:
        """Order-engine observer: runs on the REST thread with ``core.lock`` held; builds the
        plaintext there and hands it to the loop."""
        loop = self._loop
        if event.env != self.env or loop is None:
            return
        app = self._core.apps.get(event.app_key)
        if app is None:
            return
        plaintext = notice_plaintext(self._core, app, event, width=self.notice_fields)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody left to notify
            loop.call_soon_threadsafe(self._deliver_notice, app.hts_id, plaintext)

    def _deliver_notice(self, hts_id: str, plaintext: str) -> None:
        tr_id = _NOTICE_TR[self.env]
        with self._lock:
            targets = [
                s
                for s in self._sessions.values()
                if s.alive and (tr_id, hts_id) in s.registrations and tr_id in s.keys
            ]
            self._counts["notices"] += len(targets)
        for s in targets:
            key, iv = s.keys[tr_id]
            s.queue.put_nowait(f"1|{tr_id}|001|{encrypt_notice(plaintext, key, iv)}")

    # --- internals: one connection ---
    async def _handler(self, conn: ServerConnection) -> None:
        s = _Session(next(self._ids), conn)
        with self._lock:
            self._sessions[s.sid] = s
            self._counts["connections"] += 1
        writer = asyncio.create_task(self._writer(s))
        heartbeat = asyncio.create_task(self._heartbeat(s))
        try:
            async for message in conn:
                if not s.server_closed:
                    self._on_message(s, message)
        except ConnectionClosed:
            pass
        finally:
            s.alive = False
            heartbeat.cancel()
            s.queue.put_nowait(_Flush(asyncio.get_running_loop().create_future()))
            try:
                await asyncio.wait_for(writer, 5)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
            self._end(s)

    def _end(self, s: _Session) -> None:
        close_rcvd = s.conn.protocol.close_rcvd
        clean = (
            s.server_closed
            or (self._closing and not s.dropped)
            or (not s.dropped and close_rcvd is not None and close_rcvd.code in _CLEAN_CLOSE_CODES)
        )
        with self._lock:
            self._sessions.pop(s.sid, None)
            self._counts["clean_disconnects" if clean else "abnormal_disconnects"] += 1
            if s.owns_slot and s.app_key is not None:
                self._slot_owner.pop(s.app_key, None)
                if not clean:
                    self._hold_until[s.app_key] = time.monotonic() + self._slot_hold_s
        s.ended.set()

    async def _writer(self, s: _Session) -> None:
        """Send *s*'s queue in order; after the connection is gone, only resolve flushes."""
        while True:
            item = await s.queue.get()
            if isinstance(item, _Flush):
                if not item.future.done():
                    item.future.set_result(None)
                if not s.alive and s.queue.empty():
                    return
                continue
            await self._wait_stall()
            if s.conn.protocol.close_sent is not None and not isinstance(item, _Close):
                continue
            try:
                if isinstance(item, str):
                    if PROBE in item:
                        item = item.replace(PROBE, str(time.perf_counter_ns()))
                    await s.conn.send(item)
                elif isinstance(item, _Raw):
                    await s.conn.send(item.data, text=item.text)
                else:
                    await s.conn.close(item.code, item.reason)
            except ConnectionClosed:
                pass

    async def _heartbeat(self, s: _Session) -> None:
        next_ping = time.monotonic() + self.pingpong_interval_s
        while s.alive and not s.server_closed:
            now = time.monotonic()
            if now < self._stall_until:
                await self._wait_stall()
                now = time.monotonic()
                if s.unechoed_since is not None:
                    s.unechoed_since = now  # the stall does not count against the client
                next_ping = max(next_ping, now)
                continue
            if s.unechoed_since is not None and now - s.unechoed_since >= self.pingpong_timeout_s:
                with self._lock:
                    self._counts["pingpong_timeouts"] += 1
                self._close_session(s, 1000, "PINGPONG timeout")
                return
            if now >= next_ping:
                stamp = self._core.now().strftime("%Y%m%d%H%M%S")
                text = json.dumps(
                    {"header": {"tr_id": "PINGPONG", "datetime": stamp}}, separators=(",", ":")
                )
                if s.unechoed_since is None:
                    s.unechoed_since = now
                s.queue.put_nowait(text)
                with self._lock:
                    self._counts["pingpongs_sent"] += 1
                next_ping = now + self.pingpong_interval_s
                continue
            wake = next_ping
            if s.unechoed_since is not None:
                wake = min(wake, s.unechoed_since + self.pingpong_timeout_s)
            await asyncio.sleep(max(wake - now, 0.001))

    def _close_session(self, s: _Session, code: int, reason: str) -> None:
        """Server-initiated close (a clean end): after what is queued, a close frame."""
        s.server_closed = True
        s.queue.put_nowait(_Close(code, reason))

    # --- internals: requests ---
    def _answer(
        self,
        s: _Session,
        tr_id: str,
        tr_key: str,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        *,
        output: dict[str, str] | None = None,
        encrypt: str = "N",
        count: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
        if output is not None:
            body["output"] = output
        message = {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body}
        with self._lock:
            self._counts["acks"] += 1
            if count is not None:
                self._counts[count] += 1
        s.queue.put_nowait(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def _format_error(self, s: _Session, what: str, tr_id: str = "", tr_key: str = "") -> None:
        msg_cd, msg1 = _FORMAT_ERRORS[what]
        self._answer(s, tr_id or "(null)", tr_key, "9", msg_cd, msg1, count="format_errors")

    def _on_message(self, s: _Session, message: str | bytes) -> None:
        if isinstance(message, bytes):
            message = message.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            self._format_error(s, "json")
            return
        header = parsed.get("header")
        if isinstance(header, dict) and header.get("tr_id") == "PINGPONG":
            s.unechoed_since = None
            with self._lock:
                self._counts["echoes_received"] += 1
                if s.app_key is not None:
                    self._echoes[s.app_key] += 1
            return
        body = parsed.get("body")
        inputs = body.get("input") if isinstance(body, dict) else None
        tr_id = str(inputs.get("tr_id", "")) if isinstance(inputs, dict) else ""
        tr_key = str(inputs.get("tr_key", "")) if isinstance(inputs, dict) else ""
        if not isinstance(header, dict):
            self._format_error(s, "header", tr_id, tr_key)
            return
        approval_key = str(header.get("approval_key", "") or "")
        tr_type = str(header.get("tr_type", ""))
        if not approval_key:
            self._format_error(s, "approval_key", tr_id, tr_key)
        elif str(header.get("custtype", "")) not in ("P", "B"):
            self._format_error(s, "custtype", tr_id, tr_key)
        elif tr_type not in ("1", "2"):
            self._format_error(s, "tr_type", tr_id, tr_key)
        elif not isinstance(body, dict):
            self._format_error(s, "body", tr_id, tr_key)
        elif not isinstance(inputs, dict):
            self._format_error(s, "input", tr_id, tr_key)
        elif self._admit(s, approval_key, tr_id, tr_key):
            self._subscription(s, tr_type, tr_id, tr_key)

    def _admit(self, s: _Session, approval_key: str, tr_id: str, tr_key: str) -> bool:
        """Check the approval key (session start: validity and the app key's slot; later: that
        it is the session's key or a valid one of the same app key)."""
        if s.app_key is not None and approval_key == s.approval_key:
            return True
        with self._core.lock:
            record = self._core.approval_keys.get(approval_key)
            now = self._core.clock.time()
        if (
            record is None
            or record.env != self.env
            or now - record.issued_at >= APPROVAL_KEY_LIFETIME_S
        ):
            self._answer(
                s,
                tr_id or "(null)",
                tr_key,
                "1",
                "OPSP0011",
                f"invalid approval : {approval_key}",
                count="invalid_approvals",
            )
            self._close_session(s, 1000, "invalid approval")
            return False
        if s.app_key is not None:
            if record.app_key != s.app_key:
                self._format_error(s, "appkey", tr_id, tr_key)
                return False
            s.approval_key = approval_key
            return True
        key = record.app_key
        with self._lock:
            busy = key in self._slot_owner or self._hold_until.get(key, 0.0) > time.monotonic()
            if busy:
                self._slot_busy[key] += 1
            else:
                self._slot_owner[key] = s.sid
                s.app_key, s.approval_key, s.owns_slot = key, approval_key, True
        if busy:
            self._answer(
                s, "(null)", tr_key, "9", "OPSP8996", "ALREADY IN USE appkey", count="slot_busy"
            )
            self._close_session(s, 1000, "ALREADY IN USE appkey")
            return False
        return True

    def _canonical_key(self, s: _Session, tr_id: str, tr_key: str) -> str | None:
        """The registration's key (listed code without ``Q``, or the HTS ID), or ``None`` if
        *tr_key* is not valid for *tr_id*."""
        if tr_id == _NOTICE_TR[self.env]:
            with self._core.lock:
                app = self._core.apps.get(s.app_key or "")
            return tr_key if app is not None and tr_key == app.hts_id else None
        if tr_key != tr_key.strip():
            return None
        listing = self._core.universe.get(tr_key)
        return listing.code if listing is not None else None

    def _subscription(self, s: _Session, tr_type: str, tr_id: str, tr_key: str) -> None:
        served = (*_TRADE_TRS[self.env], *_BOOK_TRS, _NOTICE_TR[self.env])
        if tr_id not in served:
            self._format_error(s, "tr_id", tr_id, tr_key)
            return
        canonical = self._canonical_key(s, tr_id, tr_key)
        if canonical is None:
            self._format_error(s, "tr_key", tr_id, tr_key)
            return
        pair = (tr_id, canonical)
        encrypt = "Y" if tr_id == _NOTICE_TR[self.env] else "N"
        if tr_type == "2":
            with self._lock:
                found = s.registrations.pop(pair, "absent") is None
            if found:
                self._answer(
                    s, tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS", count="unsubscribes"
                )
            else:
                self._answer(
                    s,
                    tr_id,
                    tr_key,
                    "1",
                    "OPSP0003",
                    "UNSUBSCRIBE ERROR(not found!)",
                    count="unsubscribe_errors",
                )
            return
        with self._lock:
            duplicate = pair in s.registrations
            full = not duplicate and len(s.registrations) >= self.max_registrations
            if not duplicate and not full:
                s.registrations[pair] = None
        if full:
            self._answer(s, tr_id, tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER", count="refused")
            return
        key = "".join(self._key_rng.choices(_ALNUM, k=32))
        iv = "".join(self._key_rng.choices(_ALNUM, k=16))
        s.keys[tr_id] = (key, iv)
        rt_cd, msg_cd, msg, counter = (
            ("1", "OPSP0002", "ALREADY IN SUBSCRIBE", "duplicates")
            if duplicate
            else ("0", "OPSP0000", "SUBSCRIBE SUCCESS", "registrations")
        )
        self._answer(
            s, tr_id, tr_key, rt_cd, msg_cd, msg,
            output={"iv": iv, "key": key}, encrypt=encrypt, count=counter,
        )  # fmt: skip
