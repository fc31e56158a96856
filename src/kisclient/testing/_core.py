"""The fake's mutable state and the rules every handler shares (time, prices, tokens, limits).

One re-entrant lock (:attr:`Core.lock`) guards everything; handlers run while holding it.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import json
import random
import string
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kisclient._clock import Clock, SystemClock
from kisclient._codes import INQUIRY_OK, CodeInfo
from kisclient._config import KST, TOKEN_LIFETIME_S, Env, Side, env_settings, parse_env

from ._http import FakeRequest, FakeResponse, envelope
from ._state import Account, ApprovalKeyRecord, FakeApp, FakeStats, Order, OrderEvent, TokenRecord
from ._universe import (
    SESSION_CLOSE,
    SESSION_OPEN,
    MinuteBar,
    Universe,
    session_day_at,
    session_second,
)

__all__ = ["BRANCH", "MARKET_CLOSE", "MARKET_OPEN", "Core", "Ctx", "uuid_like"]

MARKET_OPEN = SESSION_OPEN
MARKET_CLOSE = SESSION_CLOSE
_ALNUM = string.ascii_letters + string.digits
#: Branch number (KRX_FWDG_ORD_ORGNO / ord_gno_brno) the fake puts on every order.
BRANCH = "91252"


def uuid_like(rng: random.Random) -> str:
    """A UUID-shaped random string (deterministic from *rng*)."""
    return "-".join("".join(rng.choices("0123456789abcdef", k=n)) for n in (8, 4, 4, 4, 12))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Core:
    """Everything the fake knows. Not thread-safe by itself: take :attr:`lock`."""

    def __init__(
        self,
        clock: Clock | None,
        seed: int,
        *,
        token_interval_s: float,
        rate_limits: Mapping[str, int | None] | None,
        universe_size: int,
        cash: int,
        moving_prices: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.seed = seed
        self.token_interval_s = token_interval_s
        self.default_cash = cash
        #: The listings and their prices; bars of the day in progress end at :meth:`now`.
        self.universe = Universe(seed, universe_size, now=self.now if moving_prices else None)
        #: Whether prices follow the intraday path (else each day's close all day).
        self.moving_prices = moving_prices
        self.limits: dict[Env, int | None] = {
            env: env_settings(env).limits.requests_per_second for env in Env
        }
        for name, limit in (rate_limits or {}).items():
            self.limits[parse_env(name)] = limit or None
        self.stats = FakeStats(self.lock)
        self.apps: dict[str, FakeApp] = {}
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.current_token: dict[str, TokenRecord] = {}
        self.last_token_call: dict[str, float] = {}
        self.windows: dict[str, collections.deque[float]] = {}
        self.price_overrides: dict[tuple[str, dt.date], int] = {}
        self.market_override: bool | None = None
        #: Set while a late request (admitted when it arrived) is processed: no second count.
        self.admitted_on_arrival = False
        self.rng = random.Random(f"fake:{seed}")
        self.order_seq = 0
        self.gt_seq = 0
        #: Memo for derived figures keyed by (code, day, ...) (close ranges);
        #: cleared never (small).
        self.cache: dict[tuple[object, ...], tuple[int, int]] = {}
        #: (PER, PBR) per code, ``None`` for ETF/ETN.
        self.ratios: dict[str, tuple[float, float] | None] = {}
        #: WebSocket approval keys issued, by key value.
        self.approval_keys: dict[str, ApprovalKeyRecord] = {}
        #: Observers of the order engine (:meth:`emit_order_event`), called under :attr:`lock`.
        self.order_events: list[Callable[[OrderEvent], None]] = []
        #: How far resting orders have been held against the moving path (``_resting``).
        self.resting_checked_until: dt.datetime | None = None

    # --- apps ---
    def add_app(self, env: Env, cash: int | None, hts_id: str | None = None) -> FakeApp:
        """Register a new app with deterministic credentials and an empty account; *hts_id*
        defaults to ``"hts"`` + the account's 8 digits."""
        index = sum(1 for app in self.apps.values() if app.env == env.value)
        rng = random.Random(f"app:{self.seed}:{env.value}:{index}")
        key = "PS" + "".join(rng.choices(_ALNUM, k=34))
        secret = "".join(rng.choices(_ALNUM + "+/", k=179)) + "="
        lead = "6" if env is Env.REAL else "5"
        cano = lead + "".join(rng.choices(string.digits, k=7))
        app = FakeApp(env.value, key, secret, f"{cano}-01", hts_id or f"hts{cano}")
        self.apps[key] = app
        self.accounts[key] = Account(cano, "01", self.default_cash if cash is None else cash)
        return app

    # --- time and market ---
    def now(self) -> dt.datetime:
        """The clock's wall time in KST."""
        return self.clock.now().astimezone(KST)

    @contextlib.contextmanager
    def clock_stopped_at(self, at: float) -> Iterator[None]:
        """Run the body with the clock stopped at *at* (Unix seconds): what happens in it is
        stamped then (a late request processed at its due time, a fill at its moment)."""
        real = self.clock
        self.clock = _StoppedClock(real, at)
        try:
            yield
        finally:
            self.clock = real

    def session_day(self) -> dt.date:
        """The trading day whose prices are "current": today from 09:00 on a weekday,
        otherwise the previous weekday."""
        return session_day_at(self.now())

    def market_open(self) -> bool:
        """Regular session: weekdays 09:00 (inclusive) to 15:30 (exclusive), unless overridden."""
        if self.market_override is not None:
            return self.market_override
        now = self.now()
        return now.weekday() < 5 and MARKET_OPEN <= now.time() < MARKET_CLOSE

    def price_of(self, code: str) -> int:
        """The current price of *code* (:class:`KeyError` if unknown): a price set by hand for
        the current trading day, else, with :attr:`moving_prices`, the universe's path at the
        clock's whole second (it moves during the session; outside it, the session day's
        close), else the session day's close all day."""
        listing = self.universe.get(code)
        if listing is None:
            raise KeyError(code)
        now = self.now()
        day = session_day_at(now)
        override = self.price_overrides.get((listing.code, day))
        if override is not None:
            return override
        if not self.moving_prices:
            return self.universe.close(listing.code, day)
        return self.universe.price_at(listing.code, now)

    def minute_bars(self, code: str, day: dt.date) -> list[MinuteBar]:
        """*day*'s minute bars of *code* (a listed code), oldest first, consistent with
        :meth:`price_of` and the daily bars: the whole session for a finished day; for the day in
        session only up to the current second, the last bar closing at the current price (a
        price set by hand included). Empty for a weekend or a day after the session day."""
        now = self.now()
        session = session_day_at(now)
        if day.weekday() >= 5 or day > session:
            return []
        last = self.price_overrides.get((code, day))
        second = session_second(now, day)
        if not self.moving_prices and second is not None and last is None:
            last = self.universe.close(code, day)
        return self.universe.minute_bars(code, day, second, last)

    # --- tokens ---
    def new_token(self, app_key: str) -> TokenRecord:
        """Mint a JWT-looking token for *app_key*. Its ``jti`` claim is the issuing app key, as
        KIS's are (KIS's official sample code reads it to tell real from paper tokens)."""
        now = self.clock.time()
        rng = self.rng
        claims = {
            "sub": "token",
            "aud": uuid_like(rng),
            "prdt_cd": "",
            "iss": "unogw",
            "exp": int(now + TOKEN_LIFETIME_S),
            "iat": int(now),
            "jti": app_key,
        }
        header = _b64(b'{"typ":"JWT","alg":"HS256"}')
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(rng.randbytes(32))
        value = f"{header}.{payload}.{signature}"
        record = TokenRecord(value, app_key, now, now + TOKEN_LIFETIME_S)
        self.tokens[record.value] = record
        self.current_token[app_key] = record
        return record

    def revoke_all(self) -> None:
        """Invalidate every token (maintenance)."""
        for record in self.tokens.values():
            record.revoked = True

    # --- gateway ---
    def admit(self, app_key: str, env: Env) -> bool:
        """Sliding 1-second window per app key, counted at arrival.

        Admit when fewer than the limit were admitted in ``(now - 1.0, now]``. Refused arrivals
        are *not* counted, so a client that backs off recovers after one second.
        """
        if self.admitted_on_arrival:
            return True
        now = self.clock.time()
        window = self.windows.setdefault(app_key, collections.deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        limit = self.limits[env]
        if limit is not None and len(window) >= limit:
            self.stats._note_rate_limited(app_key)
            return False
        window.append(now)
        self.stats._note_window(app_key, len(window))
        return True

    def kis_headers(self, tr_id: str, tr_cont: str | None = None) -> list[tuple[str, str]]:
        """The lower-case KIS response headers: ``tr_id`` echo, ``tr_cont`` (if paginated) and a
        32-character ``gt_uid``."""
        self.gt_seq += 1
        headers = [("tr_id", tr_id)]
        if tr_cont is not None:
            headers.append(("tr_cont", tr_cont))
        headers.append(("gt_uid", f"{self.seed % 0xFFFF:04x}{self.gt_seq:028x}"))
        return headers

    # --- orders ---
    def next_order_no(self) -> str:
        """A fresh 10-digit, zero-padded order number."""
        self.order_seq += 1
        return f"{self.order_seq:010d}"

    def emit_order_event(self, event: OrderEvent) -> None:
        """Tell every :attr:`order_events` observer, in order (call with the lock held).

        Observers run on the thread that changed the order, under the lock: they must be quick,
        must not block on another thread that needs the lock, and should not raise (an
        exception reaches the REST handler)."""
        for listener in list(self.order_events):
            listener(event)

    def all_orders(self) -> list[Order]:
        return [order for account in self.accounts.values() for order in account.orders]


class Ctx:
    """One authenticated data call on its way to a handler."""

    def __init__(
        self, core: Core, request: FakeRequest, app: FakeApp, tr_id: str, side: Side | None
    ) -> None:
        self.core = core
        self.request = request
        self.app = app
        self.env = request.env
        self.tr_id = tr_id
        self.side = side
        self.query = request.query

    @property
    def account(self) -> Account:
        return self.core.accounts[self.app.app_key]

    def ok(
        self, info: CodeInfo | None = None, /, *, tr_cont: str | None = None, **data: Any
    ) -> FakeResponse:
        """HTTP 200, ``rt_cd "0"``; *info* defaults to the environment's inquiry success row."""
        info = info or INQUIRY_OK[self.env]
        return envelope(200, info, "0", self.core.kis_headers(self.tr_id, tr_cont), **data)

    def reject(self, info: CodeInfo, rt_cd: str = "7", **data: Any) -> FakeResponse:
        """A business rejection: HTTP 200 with ``rt_cd`` other than ``"0"``."""
        return envelope(200, info, rt_cd, self.core.kis_headers(self.tr_id), **data)

    def body(self) -> dict[str, Any] | None:
        """The JSON object body of a POST (keys as sent), or ``None`` if it is not one."""
        try:
            parsed = json.loads(self.request.body or b"null")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class _StoppedClock:
    """*base* stopped at *at* (Unix seconds); sleeping and monotonic time are still *base*'s."""

    def __init__(self, base: Clock, at: float) -> None:
        self._base = base
        self._at = at

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._at, KST)

    def time(self) -> float:
        return self._at

    def monotonic(self) -> float:
        return self._base.monotonic()

    def sleep(self, seconds: float) -> None:
        self._base.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await self._base.asleep(seconds)
