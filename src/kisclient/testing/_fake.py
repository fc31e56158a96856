"""FakeKIS: the public face of the fake server's state (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import email.utils
import heapq
import itertools
from collections.abc import Callable, Mapping

import attrs

from kisclient._clock import Clock
from kisclient._config import TOKEN_MIN_ISSUE_INTERVAL_S, EnvName, parse_env

from ._core import Core
from ._faults import Fault, FaultList
from ._gateway import is_data_call, process
from ._http import FakeRequest, FakeResponse
from ._resting import fill_resting
from ._state import ApprovalKeyRecord, FakeApp, FakeStats, Holding, Order, OrderEvent
from ._trading import fill_crossing
from ._transport import AsyncFakeTransport, FakeTransport
from ._universe import Listing, MinuteBar, session_day_at

__all__ = ["FakeKIS", "http_date"]


class FakeKIS:
    """A deterministic, thread-safe fake of the KIS REST API.

    *clock* drives token expiry, rate windows and market hours (``None``: the system clock).
    *seed* fixes credentials, the universe and prices. *token_interval_s* is the minimum gap
    between token issuance calls per app key. *rate_limits* maps ``"real"``/``"paper"`` to
    requests per second per app key (missing: the documented default; ``None`` or ``0``:
    unlimited). *universe_size* is the number of listed codes. *cash* is each new account's cash.

    *moving_prices*: prices follow a deterministic intraday path per code during the regular
    session (a pure function of the seed, the code and the clock's whole second, the same over
    loopback and in-process), volume accumulates through the day and the day's bar ends at the
    current second (running high and low); minute bars (:meth:`minute_bars`) agree. Off (the
    default, for tests that compare quotes taken at different moments): each day's close is
    the price all day. ``python -m kisclient.testing serve`` turns it on. :meth:`set_price`
    overrides either. With moving prices a resting limit order fills at its limit at the first
    second the path reaches it, evaluated whenever the fake is asked (a request, an inquiry such
    as :meth:`orders`), never by a thread: see :mod:`._resting`.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        seed: int = 0,
        token_interval_s: float = TOKEN_MIN_ISSUE_INTERVAL_S,
        rate_limits: Mapping[str, int | None] | None = None,
        universe_size: int = 300,
        *,
        cash: int = 100_000_000,
        moving_prices: bool = False,
    ) -> None:
        self._core = Core(
            clock,
            seed,
            token_interval_s=token_interval_s,
            rate_limits=rate_limits,
            universe_size=universe_size,
            cash=cash,
            moving_prices=moving_prices,
        )
        #: Pending faults: ``fake.faults.add(Fault(...))``, ``fake.faults.clear()``.
        self.faults = FaultList()
        #: Requests still on their way (a ``latency`` fault longer than the client's timeout):
        #: (due time on the fake's clock, sequence, request), a heap.
        self._deferred: list[tuple[float, int, FakeRequest]] = []
        self._sequence = itertools.count()

    def __repr__(self) -> str:
        return f"FakeKIS(seed={self._core.seed}, apps={len(self._core.apps)})"

    # --- setup ---
    @property
    def clock(self) -> Clock:
        """The clock everything runs on."""
        return self._core.clock

    @property
    def stats(self) -> FakeStats:
        """Request, token and rate-limit statistics (requests due by now counted)."""
        with self._core.lock:
            self._deliver_due()
        return self._core.stats

    def in_flight(self) -> int:
        """Requests on their way that the fake has not processed yet: each was sent with a
        ``latency`` fault longer than the client's read timeout and is processed once the
        fake's clock reaches its arrival plus the delay (see :class:`Fault`)."""
        with self._core.lock:
            self._deliver_due()
            return len(self._deferred)

    @property
    def apps(self) -> list[FakeApp]:
        """Registered apps, in registration order."""
        with self._core.lock:
            return list(self._core.apps.values())

    @property
    def universe(self) -> list[str]:
        """Every listed code (6 characters; ETNs without their ``Q`` prefix)."""
        return list(self._core.universe.codes)

    def add_app(
        self, env: EnvName | str = "real", *, cash: int | None = None, hts_id: str | None = None
    ) -> FakeApp:
        """Register an app in *env* with deterministic credentials and a fresh account.

        *hts_id* is the HTS user ID (the execution notices' ``tr_key`` on the WebSocket);
        default ``"hts"`` + the account's 8 digits."""
        with self._core.lock:
            return self._core.add_app(parse_env(env), cash, hts_id)

    def approval_keys(self, app_key: str | None = None) -> list[ApprovalKeyRecord]:
        """WebSocket approval keys issued so far (for *app_key*, or all), oldest first."""
        with self._core.lock:
            return [
                record
                for record in self._core.approval_keys.values()
                if app_key is None or record.app_key == app_key
            ]

    def on_order_event(self, listener: Callable[[OrderEvent], None]) -> Callable[[], None]:
        """Call *listener* for every :class:`OrderEvent` (acceptance, fill, revision,
        cancellation, late refusal); returns a function that removes it.

        The listener runs on the thread that changed the order while the fake's lock is held:
        it must return quickly and must not wait for another thread that takes the lock."""
        with self._core.lock:
            self._core.order_events.append(listener)

        def remove() -> None:
            with self._core.lock:
                if listener in self._core.order_events:
                    self._core.order_events.remove(listener)

        return remove

    def transport(self) -> FakeTransport:
        """A sync in-process :class:`httpx.BaseTransport`."""
        return FakeTransport(self)

    def async_transport(self) -> AsyncFakeTransport:
        """An async in-process :class:`httpx.AsyncBaseTransport`."""
        return AsyncFakeTransport(self)

    # --- market ---
    def listing(self, code: str) -> Listing:
        """Static facts about *code* (name, kind, halted, warning...); :class:`KeyError` if
        unknown."""
        found = self._core.universe.get(code)
        if found is None:
            raise KeyError(code)
        return found

    def price_of(self, code: str) -> int:
        """The price inquire-price and the multi-symbol quote return for *code* now."""
        with self._core.lock:
            return self._core.price_of(code)

    def price_at(self, code: str, when: dt.datetime) -> int:
        """The price of *code* at *when* on the fake's path (prices set by hand aside): the
        intraday path with ``moving_prices``, else the day's close. :class:`KeyError` if
        unknown."""
        listing = self.listing(code)
        universe = self._core.universe
        if self._core.moving_prices:
            return universe.price_at(listing.code, when)
        return universe.close(listing.code, session_day_at(when))

    def minute_bars(self, code: str, day: dt.date | None = None) -> list[MinuteBar]:
        """*day*'s (default: the session day's) minute bars of *code*, oldest first, as the fake
        sees them now (the day in progress up to the current second); consistent with
        :meth:`price_of` and the daily bars."""
        with self._core.lock:
            listing = self.listing(code)
            return self._core.minute_bars(listing.code, day or self._core.session_day())

    def set_price(self, code: str, price: int) -> None:
        """Override *code*'s price for the current trading day; resting orders that now cross
        execute."""
        with self._core.lock:
            listing = self.listing(code)
            self._deliver_due()  # what the moving price did before the override
            self._core.price_overrides[(listing.code, self._core.session_day())] = price
            fill_crossing(self._core, listing.code)

    def market_open(self) -> bool:
        """Whether orders are accepted now."""
        with self._core.lock:
            return self._core.market_open()

    def set_market_open(self, value: bool | None) -> None:
        """Force the market open (``True``) or closed (``False``); ``None`` follows the clock
        (weekdays 09:00–15:30 KST)."""
        with self._core.lock:
            self._core.market_override = value

    # --- accounts and tokens ---
    def revoke_all_tokens(self) -> None:
        """Maintenance: every token issued so far becomes invalid (EGW00121)."""
        with self._core.lock:
            self._core.revoke_all()

    def orders(self, app_key: str) -> list[Order]:
        """Orders (order-cash and revisions, not cancellations) the engine accepted for
        *app_key*, oldest first; snapshots."""
        with self._core.lock:
            self._deliver_due()
            account = self._core.accounts[app_key]
            return [attrs.evolve(o) for o in account.orders if o.kind == "order"]

    def cash(self, app_key: str) -> int:
        """The account's cash (KRW)."""
        with self._core.lock:
            self._deliver_due()
            return self._core.accounts[app_key].cash

    def holdings(self, app_key: str) -> dict[str, int]:
        """Quantity held per code."""
        with self._core.lock:
            self._deliver_due()
            return {c: h.qty for c, h in self._core.accounts[app_key].holdings.items()}

    def seed_holdings(self, app_key: str, holdings: Mapping[str, int]) -> None:
        """Add positions (bought at the current price, cash untouched). Codes must be listed."""
        with self._core.lock:
            account = self._core.accounts[app_key]
            for code, qty in holdings.items():
                listing = self.listing(code)
                held = account.holdings.setdefault(listing.code, Holding(0, 0))
                held.qty += qty
                held.cost += qty * self._core.price_of(listing.code)

    # --- used by the transports and the loopback server ---
    def _take_fault(self, request: FakeRequest) -> Fault | None:
        return self.faults.take(request.path, request.tr_id, data_call=is_data_call(request.path))

    def _note_arrival(self, request: FakeRequest) -> None:
        with self._core.lock:
            self._core.stats._note_request(request.path, request.tr_id)

    def _process(self, request: FakeRequest, fault: Fault | None) -> FakeResponse:
        """Answer *request* (after every earlier request now due), with a ``Date`` header."""
        with self._core.lock:
            self._deliver_due()
            answer = process(self._core, request, fault)
            answer.headers.append(("Date", http_date(self._core.clock.time())))
            return answer

    def _defer(self, request: FakeRequest, delay_s: float) -> None:
        """Process *request* only when the fake's clock reaches now + *delay_s*.

        The rate window counts it now, at arrival, as the gateway does; refused there, it is
        never processed (the client, timed out, cannot tell)."""
        with self._core.lock:
            self._deliver_due()
            core = self._core
            key = request.headers.get("appkey", "").strip()
            app = core.apps.get(key)
            known = app is not None and app.env == request.env.value
            if known and is_data_call(request.path) and not core.admit(key, request.env):
                core.stats._note_request(request.path, request.tr_id)
                return
            due = core.clock.time() + delay_s
            heapq.heappush(self._deferred, (due, next(self._sequence), request))

    def _deliver_due(self) -> None:
        """Process every deferred request whose time has come, in order, each at its due time
        (its order, if any, is stamped then), and fill the resting orders the moving price has
        reached by now (:func:`~._resting.fill_resting`). Call with the lock held."""
        core = self._core
        while self._deferred and self._deferred[0][0] <= core.clock.time():
            due, _, request = heapq.heappop(self._deferred)
            with core.clock_stopped_at(due):
                fill_resting(core)  # what the moving price did before it arrived
                core.admitted_on_arrival = True
                try:
                    process(core, request, None)  # the answer goes nowhere: the client gave up
                finally:
                    core.admitted_on_arrival = False
        fill_resting(core)


def http_date(seconds: float) -> str:
    """An RFC 7231 ``Date`` value (``Thu, 26 Nov 2026 00:00:00 GMT``) for Unix *seconds*."""
    return email.utils.formatdate(seconds, usegmt=True)
