"""The fake server's records: apps, tokens, accounts, orders and statistics.

Plain data. All mutation happens under :class:`~kisclient.testing.FakeKIS`'s lock.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from typing import Literal

import attrs

from kisclient._config import EnvName

__all__ = [
    "Account",
    "ApprovalKeyRecord",
    "FakeApp",
    "FakeStats",
    "Holding",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "TokenRecord",
]


@attrs.frozen
class FakeApp:
    """Credentials of one app registered with the fake.

    ``account`` is ``"NNNNNNNN-01"``. ``hts_id`` is the HTS user ID, the ``tr_key`` of the
    WebSocket execution notices (H0STCNI0/H0STCNI9); it defaults to ``"hts"`` + the account's
    8 digits. The key, secret and HTS ID never appear in ``repr()``.
    """

    env: EnvName
    app_key: str = attrs.field(repr=False)
    app_secret: str = attrs.field(repr=False)
    account: str
    hts_id: str = attrs.field(
        default=attrs.Factory(lambda self: "hts" + self.account.split("-")[0], takes_self=True),
        repr=False,
    )

    @property
    def cano(self) -> str:
        """The 8-digit account number (``CANO``)."""
        return self.account.split("-")[0]

    @property
    def acnt_prdt_cd(self) -> str:
        """The 2-digit product code (``ACNT_PRDT_CD``)."""
        return self.account.split("-")[1]


@attrs.define
class TokenRecord:
    """One issued access token. Times are ``clock.time()`` seconds."""

    value: str = attrs.field(repr=False)
    app_key: str = attrs.field(repr=False)
    issued_at: float
    expires_at: float
    revoked: bool = False


@attrs.frozen
class ApprovalKeyRecord:
    """One WebSocket approval key issued by ``/oauth2/Approval``: for *app_key* in *env*,
    issued at *issued_at* (``clock.time()`` seconds on the fake's clock). The key itself and the
    app key never appear in ``repr()``."""

    value: str = attrs.field(repr=False)
    app_key: str = attrs.field(repr=False)
    env: EnvName
    issued_at: float


@attrs.define
class Holding:
    """A position: quantity and total purchase cost (KRW)."""

    qty: int
    cost: int
    today_buy: int = 0
    today_sell: int = 0


@attrs.define
class Order:
    """One order accepted by the fake's order engine.

    ``price`` is the fill price once filled, otherwise the limit price (0 for an unfilled market
    order). ``kind`` is ``"order"`` for order-cash and ``"cancel"`` for a cancellation, whose
    ``orgn_odno`` names the cancelled order.
    """

    order_no: str
    side: Literal["buy", "sell"]
    code: str
    qty: int
    price: int
    tr_id: str
    time: dt.datetime
    ord_dvsn: str = "00"
    order_price: int = 0
    filled_qty: int = 0
    cancelled_qty: int = 0
    kind: Literal["order", "cancel"] = "order"
    orgn_odno: str = ""
    branch: str = ""

    @property
    def open_qty(self) -> int:
        """Quantity neither filled nor cancelled."""
        return self.qty - self.filled_qty - self.cancelled_qty if self.kind == "order" else 0


OrderEventKind = Literal["accepted", "filled", "revised", "cancelled", "refused"]


@attrs.frozen
class OrderEvent:
    """Something the order engine did to an app's order, for observers (the WebSocket fake's
    execution notices).

    - ``accepted``: a new order-cash order (``order_qty`` / ``order_price``: its quantity and
      limit price, 0 for a market order).
    - ``filled``: one execution of ``fill_qty`` at ``fill_price`` (the engine fills an order's
      whole open quantity at once; each execution is one event).
    - ``revised``: a re-price; ``order_no`` is the new order, ``orig_order_no`` the revised one.
    - ``cancelled``: ``order_no`` is the cancellation, ``orig_order_no`` the cancelled order,
      ``order_qty`` the cancelled quantity.
    - ``refused``: an order-cash request refused after its fields were read (cash, holdings,
      tick); it never got an order number, so ``order_no`` is ``""``.

    ``time`` is the fake's clock (KST). The app key never appears in ``repr()``.
    """

    kind: OrderEventKind
    app_key: str = attrs.field(repr=False)
    env: EnvName
    order_no: str
    side: Literal["buy", "sell"]
    code: str
    order_qty: int
    order_price: int
    ord_dvsn: str
    time: dt.datetime
    orig_order_no: str = ""
    fill_qty: int = 0
    fill_price: int = 0


@attrs.define
class Account:
    """An app's account: cash (KRW), holdings by code and its orders, oldest first."""

    cano: str
    acnt_prdt_cd: str
    cash: int
    holdings: dict[str, Holding] = attrs.field(factory=dict)
    orders: list[Order] = attrs.field(factory=list)


class FakeStats:
    """What the fake has seen. Every method is thread-safe and returns a snapshot."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self._issuances: collections.Counter[str] = collections.Counter()
        self._token_calls: collections.Counter[str] = collections.Counter()
        self._rate_limited: collections.Counter[str] = collections.Counter()
        self._max_window: dict[str, int] = {}

    # --- recording (called by the fake under its lock) ---
    def _note_request(self, path: str, tr_id: str) -> None:
        self._requests[(path, tr_id)] += 1

    def _note_token_call(self, app_key: str) -> None:
        self._token_calls[app_key] += 1

    def _note_issuance(self, app_key: str) -> None:
        self._issuances[app_key] += 1

    def _note_rate_limited(self, app_key: str) -> None:
        self._rate_limited[app_key] += 1

    def _note_window(self, app_key: str, size: int) -> None:
        self._max_window[app_key] = max(self._max_window.get(app_key, 0), size)

    # --- queries ---
    def requests(self, path: str | None = None, tr_id: str | None = None) -> int:
        """Requests that reached the fake (every path, token endpoints included), filtered by
        *path* (without the ``/paper`` prefix) and/or *tr_id* header. Requests refused by a
        ``connect_error`` fault never arrive and are not counted."""
        with self._lock:
            return sum(
                n
                for (p, t), n in self._requests.items()
                if (path is None or p == path) and (tr_id is None or t == tr_id)
            )

    def token_issuances(self, app_key: str) -> int:
        """tokenP answers that produced a *new* token for *app_key* (reuse is not counted)."""
        with self._lock:
            return self._issuances[app_key]

    def token_calls(self, app_key: str) -> int:
        """Every tokenP request naming *app_key*, whatever the answer."""
        with self._lock:
            return self._token_calls[app_key]

    def max_in_any_second(self, app_key: str) -> int:
        """The largest number of admitted data requests of *app_key* in any 1-second window."""
        with self._lock:
            return self._max_window.get(app_key, 0)

    def rate_limited(self, app_key: str | None = None) -> int:
        """EGW00201 answers sent (to *app_key*, or to anybody), ``rate_burst`` faults included."""
        with self._lock:
            if app_key is None:
                return sum(self._rate_limited.values())
            return self._rate_limited[app_key]
