"""The single source of truth for KIS environments, hosts and endpoints.

Every URL, path and ``tr_id`` the library (and its fake server) uses is written here and nowhere
else. Sources: KIS's official samples (koreainvestment/open-trading-api) and portal documentation.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Literal

import attrs

__all__ = [
    "DAILY_CHART_MAX_ROWS",
    "ENDPOINTS",
    "KST",
    "MULTIPRICE_MAX_CODES",
    "TOKEN_LIFETIME_S",
    "TOKEN_MIN_ISSUE_INTERVAL_S",
    "TOKEN_REUSE_WINDOW_S",
    "Endpoint",
    "Env",
    "EnvName",
    "EnvSettings",
    "Limits",
    "Side",
    "endpoint_by_path",
    "env_settings",
    "parse_env",
]

#: Korea Standard Time. Korea has no daylight saving time, so a fixed offset is exact and needs no
#: tz database (which a minimal Windows or container Python may lack).
KST = _dt.timezone(_dt.timedelta(hours=9), "KST")

EnvName = Literal["real", "paper"]
Side = Literal["buy", "sell"]


class Env(enum.Enum):
    """A KIS environment: ``real`` (실전, "prod") or ``paper`` (모의투자, "vps")."""

    REAL = "real"
    PAPER = "paper"


def parse_env(value: str | Env) -> Env:
    """Return the :class:`Env` named by *value* (``"real"``/``"paper"``, also ``"prod"``/``"vps"``).

    Raises :class:`ValueError` naming the accepted spellings for anything else.
    """
    if isinstance(value, Env):
        return value
    aliases = {"real": Env.REAL, "prod": Env.REAL, "paper": Env.PAPER, "vps": Env.PAPER}
    try:
        return aliases[value.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"env must be 'real' or 'paper', not {value!r}") from None


@attrs.frozen
class Limits:
    """Documented per-environment limits (KIS portal notice of 2026-04-20)."""

    requests_per_second: int
    #: Rows per page of the balance inquiry.
    balance_page_rows: int
    #: Rows per page of the daily order/fill inquiry.
    daily_ccld_page_rows: int


@attrs.frozen
class EnvSettings:
    """Everything that differs between the two environments."""

    env: Env
    base_url: str
    websocket_url: str
    limits: Limits


_ENV_SETTINGS = {
    Env.REAL: EnvSettings(
        env=Env.REAL,
        base_url="https://openapi.koreainvestment.com:9443",
        websocket_url="ws://ops.koreainvestment.com:21000",
        limits=Limits(requests_per_second=18, balance_page_rows=50, daily_ccld_page_rows=100),
    ),
    Env.PAPER: EnvSettings(
        env=Env.PAPER,
        base_url="https://openapivts.koreainvestment.com:29443",
        websocket_url="ws://ops.koreainvestment.com:31000",
        limits=Limits(requests_per_second=1, balance_page_rows=20, daily_ccld_page_rows=15),
    ),
}


def env_settings(env: Env | str) -> EnvSettings:
    """Return the settings of *env*."""
    return _ENV_SETTINGS[parse_env(env)]


#: Token issuance rules (KIS portal FAQ and notices): at most one issuance per minute per app key; a
#: re-issue within six hours returns the same token; an individual's token lives one day.
TOKEN_MIN_ISSUE_INTERVAL_S = 60.0
TOKEN_REUSE_WINDOW_S = 6 * 3600.0
TOKEN_LIFETIME_S = 86400


_RANKING = "/uapi/domestic-stock/v1/ranking/"


@attrs.frozen
class Endpoint:
    """One REST operation.

    ``tr_ids`` maps ``(env, side)`` to the transaction id; ``side`` is ``None`` for everything
    but orders. An endpoint with no entry for an environment does not exist there (for example
    the multi-symbol quote on ``paper``). ``legacy_tr_ids`` are older ids the server still
    accepts. ``idempotent`` is ``False`` for calls with market side effects: those are never
    retried once they may have reached the order engine.
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    tr_ids: dict[tuple[Env, Side | None], str] = attrs.field(factory=dict)
    legacy_tr_ids: dict[tuple[Env, Side | None], str] = attrs.field(factory=dict)
    idempotent: bool = True
    #: Token endpoints need no bearer token; everything else does.
    authenticated: bool = True
    #: Whether ``appkey``/``appsecret`` go in the headers (OAuth endpoints take them in the body).
    key_headers: bool = True
    #: Ids for records older than the current ids cover (the daily orders before 3 months).
    archive_tr_ids: dict[tuple[Env, Side | None], str] = attrs.field(factory=dict)

    def tr_id(
        self, env: Env, side: Side | None = None, *, legacy: bool = False, archive: bool = False
    ) -> str:
        """Return the ``tr_id`` for *env* (and *side* for orders): the current one, the legacy
        one, or the archive one.

        Raises :class:`KeyError` when the endpoint has no such ``tr_id`` in *env*; callers turn
        that into a typed error (see :func:`kisclient._errors.EndpointUnavailable`).
        """
        table = self.archive_tr_ids if archive else self.legacy_tr_ids if legacy else self.tr_ids
        return table[(env, side)]

    @property
    def is_market_data(self) -> bool:
        """A quotation or ranking: what a paper client with a real *data key* sends to the real
        host with that key (orders, the account and the OAuth endpoints stay with the account's
        key)."""
        return self.path.startswith(("/uapi/domestic-stock/v1/quotations/", _RANKING))

    def available_in(self, env: Env) -> bool:
        """Whether this endpoint exists in *env* (token endpoints exist everywhere)."""
        if not self.tr_ids:
            return True
        return any(key_env is env for key_env, _ in self.tr_ids)

    def all_tr_ids(self, env: Env) -> dict[str, Side | None]:
        """Every ``tr_id`` (current, legacy, archive) accepted in *env*, mapped to its side."""
        found: dict[str, Side | None] = {}
        for table in (self.tr_ids, self.legacy_tr_ids, self.archive_tr_ids):
            for (key_env, side), tr in table.items():
                if key_env is env:
                    found[tr] = side
        return found


def _both(tr: str) -> dict[tuple[Env, Side | None], str]:
    """A quotation ``tr_id`` that is the same in both environments (``F``/``H`` ids)."""
    return {(Env.REAL, None): tr, (Env.PAPER, None): tr}


def _paper_twin(tr: str) -> str:
    """The paper id of a real ``T``/``J``/``C`` id: its first letter replaced by ``V``."""
    if tr[0] not in "TJC":
        raise ValueError(f"{tr} has no V-prefixed paper twin")
    return "V" + tr[1:]


def _with_paper_twin(real: dict[Side | None, str]) -> dict[tuple[Env, Side | None], str]:
    table: dict[tuple[Env, Side | None], str] = {}
    for side, tr in real.items():
        table[(Env.REAL, side)] = tr
        table[(Env.PAPER, side)] = _paper_twin(tr)
    return table


_QUOTATIONS = "/uapi/domestic-stock/v1/quotations"
_TRADING = "/uapi/domestic-stock/v1/trading"

#: Every endpoint the library knows, by name.
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("token", "POST", "/oauth2/tokenP", authenticated=False, key_headers=False),
        Endpoint("revoke", "POST", "/oauth2/revokeP", authenticated=False, key_headers=False),
        Endpoint("approval", "POST", "/oauth2/Approval", authenticated=False, key_headers=False),
        Endpoint("hashkey", "POST", "/uapi/hashkey", authenticated=False),
        Endpoint("inquire_price", "GET", f"{_QUOTATIONS}/inquire-price", _both("FHKST01010100")),
        Endpoint(
            "inquire_daily_price",
            "GET",
            f"{_QUOTATIONS}/inquire-daily-price",
            _both("FHKST01010400"),
        ),
        Endpoint(
            "inquire_daily_itemchartprice",
            "GET",
            f"{_QUOTATIONS}/inquire-daily-itemchartprice",
            _both("FHKST03010100"),
        ),
        # Real only: the postman table leaves the paper column empty.
        Endpoint(
            "intstock_multprice",
            "GET",
            f"{_QUOTATIONS}/intstock-multprice",
            {(Env.REAL, None): "FHKST11300006"},
        ),
        Endpoint(
            "inquire_balance",
            "GET",
            f"{_TRADING}/inquire-balance",
            _with_paper_twin({None: "TTTC8434R"}),
        ),
        Endpoint(
            "order_cash",
            "POST",
            f"{_TRADING}/order-cash",
            _with_paper_twin({"buy": "TTTC0012U", "sell": "TTTC0011U"}),
            legacy_tr_ids=_with_paper_twin({"buy": "TTTC0802U", "sell": "TTTC0801U"}),
            idempotent=False,
        ),
        Endpoint(
            "order_rvsecncl",
            "POST",
            f"{_TRADING}/order-rvsecncl",
            _with_paper_twin({None: "TTTC0013U"}),
            legacy_tr_ids=_with_paper_twin({None: "TTTC0803U"}),
            idempotent=False,
        ),
        # Current ids within 3 months (TTTC0081R / VTTC0081R), archive ids for older orders
        # (CTSC9215R / VTSC9215R), the pre-2025 id behind legacy_order_tr_ids (TTTC8001R).
        Endpoint(
            "inquire_daily_ccld",
            "GET",
            f"{_TRADING}/inquire-daily-ccld",
            _with_paper_twin({None: "TTTC0081R"}),
            legacy_tr_ids=_with_paper_twin({None: "TTTC8001R"}),
            archive_tr_ids=_with_paper_twin({None: "CTSC9215R"}),
        ),
        # --- issue 12: market data. Ids KIS marks "other" (no environment
        # switch in the official sample, paper support not stated) are registered for both
        # environments; a paper client with a data key sends them to the real host anyway.
        Endpoint(
            "inquire_asking_price_exp_ccn",
            "GET",
            f"{_QUOTATIONS}/inquire-asking-price-exp-ccn",
            _both("FHKST01010200"),
        ),
        Endpoint(
            "inquire_time_itemchartprice",
            "GET",
            f"{_QUOTATIONS}/inquire-time-itemchartprice",
            _both("FHKST03010200"),
        ),
        Endpoint(
            "inquire_time_dailychartprice",
            "GET",
            f"{_QUOTATIONS}/inquire-time-dailychartprice",
            _both("FHKST03010230"),
        ),
        Endpoint(
            "search_stock_info", "GET", f"{_QUOTATIONS}/search-stock-info", _both("CTPF1002R")
        ),
        Endpoint("search_info", "GET", f"{_QUOTATIONS}/search-info", _both("CTPF1604R")),
        Endpoint("volume_rank", "GET", f"{_QUOTATIONS}/volume-rank", _both("FHPST01710000")),
        Endpoint(
            "ranking_fluctuation",
            "GET",
            "/uapi/domestic-stock/v1/ranking/fluctuation",
            _both("FHPST01700000"),
        ),
        Endpoint(
            "ranking_market_cap",
            "GET",
            "/uapi/domestic-stock/v1/ranking/market-cap",
            _both("FHPST01740000"),
        ),
        # Real only: the sample has one id and no paper twin.
        Endpoint(
            "chk_holiday", "GET", f"{_QUOTATIONS}/chk-holiday", {(Env.REAL, None): "CTCA0903R"}
        ),
        # --- issue 12: the order lifecycle and the account ---
        Endpoint(
            "inquire_psbl_order",
            "GET",
            f"{_TRADING}/inquire-psbl-order",
            _with_paper_twin({None: "TTTC8908R"}),
        ),
        # Real only (KIS does not offer them on paper): the client derives the paper answer.
        # TTTC8036R is the id before TTTC0084R; python-kis 2.1.6 still sends it (nox -s peers).
        Endpoint(
            "inquire_psbl_rvsecncl",
            "GET",
            f"{_TRADING}/inquire-psbl-rvsecncl",
            {(Env.REAL, None): "TTTC0084R"},
            legacy_tr_ids={(Env.REAL, None): "TTTC8036R"},
        ),
        Endpoint(
            "inquire_psbl_sell",
            "GET",
            f"{_TRADING}/inquire-psbl-sell",
            {(Env.REAL, None): "TTTC8408R"},
        ),
        Endpoint(
            "inquire_period_profit",
            "GET",
            f"{_TRADING}/inquire-period-profit",
            {(Env.REAL, None): "TTTC8708R"},
        ),
    )
}

#: Rows per call of the daily chart.
DAILY_CHART_MAX_ROWS = 100
#: Codes per call of the multi-symbol quote.
MULTIPRICE_MAX_CODES = 30


def endpoint_by_path(path: str) -> Endpoint | None:
    """Return the endpoint served at *path*, or ``None`` for an unknown path."""
    for endpoint in ENDPOINTS.values():
        if endpoint.path == path:
            return endpoint
    return None
