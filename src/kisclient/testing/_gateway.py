"""The gateway: routes a request, applies faults, checks credentials, limits and ``tr_id``.

Order of checks for a data call (each failure is HTTP 500 with a KIS envelope, ``rt_cd "1"``):
app key present and known in this environment (EGW00102/EGW00103; a paper key on the real host
EGW02004) → per-key rate window (EGW00201) → secret (EGW00104/EGW00105) → ``Bearer`` token
(EGW00205 no bearer, EGW00121 unknown/revoked/other app's, EGW00123 expired) → ``tr_id``
(OPSQ9999 missing; wrong for path/env: paper host EGW00213 with the paper-TR message, real host
HTTP 200 ``rt_cd "1"`` OPSQ0002) → the handler.
"""

from __future__ import annotations

from collections.abc import Callable

from kisclient._codes import (
    CODES,
    CREDENTIALS_TYPE,
    DEFAULT_GATEWAY_FAULT,
    NO_SERVICE,
    PAPER_TR_MISMATCH,
    RATE_LIMITED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TR_ID_MISSING,
)
from kisclient._config import Env, endpoint_by_path

from ._auth import HANDLERS as AUTH_HANDLERS
from ._auth import identify
from ._core import Core, Ctx
from ._faults import AFTER_PROCESSING, Fault
from ._http import FakeRequest, FakeResponse, envelope, text_response
from ._market import (
    chk_holiday,
    fluctuation_rank,
    market_cap_rank,
    orderbook,
    period_chart,
    period_profit,
    search_info,
    search_stock_info,
    time_dailychart,
    time_itemchart,
    volume_rank,
)
from ._quotes import daily_price, inquire_price, multprice
from ._state import FakeApp
from ._trading import (
    balance,
    daily_ccld,
    order_cash,
    order_rvsecncl,
    psbl_order,
    psbl_rvsecncl,
    psbl_sell,
)

__all__ = ["is_data_call", "process"]

_DATA_HANDLERS: dict[str, Callable[[Ctx], FakeResponse]] = {
    "inquire_price": inquire_price,
    "inquire_daily_price": daily_price,
    # D/W/M/Y and FID_INPUT_DATE_1=00000101 (issue 12; replaces the daily-only daily_chart).
    "inquire_daily_itemchartprice": period_chart,
    "inquire_asking_price_exp_ccn": orderbook,
    "inquire_time_itemchartprice": time_itemchart,
    "inquire_time_dailychartprice": time_dailychart,
    "search_stock_info": search_stock_info,
    "search_info": search_info,
    "volume_rank": volume_rank,
    "ranking_fluctuation": fluctuation_rank,
    "ranking_market_cap": market_cap_rank,
    "chk_holiday": chk_holiday,
    "inquire_period_profit": period_profit,
    "intstock_multprice": multprice,
    "inquire_balance": balance,
    "order_cash": order_cash,
    "order_rvsecncl": order_rvsecncl,
    "inquire_daily_ccld": daily_ccld,
    "inquire_psbl_rvsecncl": psbl_rvsecncl,
    "inquire_psbl_order": psbl_order,
    "inquire_psbl_sell": psbl_sell,
}


def is_data_call(path: str) -> bool:
    """Whether *path* is a token-authenticated endpoint (what rate limits and faults target)."""
    endpoint = endpoint_by_path(path)
    return endpoint is not None and endpoint.authenticated


def process(core: Core, request: FakeRequest, fault: Fault | None) -> FakeResponse:
    """Answer *request*, spoiled by *fault* if one was taken. Call with ``core.lock`` held."""
    core.stats._note_request(request.path, request.tr_id)
    if fault is not None and fault.kind == "http_5xx_bare":
        return text_response(fault.status, f"<html><body>{fault.status} Error</body></html>")
    if fault is not None and fault.kind == "http_5xx_envelope":
        info = CODES[fault.code] if fault.code else DEFAULT_GATEWAY_FAULT
        return envelope(fault.status, info)
    if fault is not None and fault.kind == "rate_burst":
        core.stats._note_rate_limited(request.headers.get("appkey", ""))
        return envelope(500, RATE_LIMITED)
    response = _answer(core, request)
    if fault is not None and fault.kind in AFTER_PROCESSING:
        _spoil(response, fault)
    return response


def _spoil(response: FakeResponse, fault: Fault) -> None:
    if fault.kind == "drop_after":
        response.after = "drop"
    elif fault.kind == "read_timeout":
        response.after = "timeout"
        response.hold_s = fault.delay_s or 10.0
    elif fault.kind == "malformed_json":
        response.body = b"{" + response.body.replace(b'"', b"'")
    elif fault.kind == "truncated_json":
        response.body = response.body[: len(response.body) // 2]


def _answer(core: Core, request: FakeRequest) -> FakeResponse:
    endpoint = endpoint_by_path(request.path)
    if endpoint is None:
        return text_response(404, "<html><body>404 Not Found</body></html>")
    if request.method != endpoint.method:
        return text_response(405, "<html><body>405 Method Not Allowed</body></html>")
    if not endpoint.authenticated:
        return AUTH_HANDLERS[endpoint.name](core, request)
    headers = request.headers
    key = headers.get("appkey", "").strip()
    app = identify(core, request.env, key, None)
    if not isinstance(app, FakeApp):
        return envelope(500, app)
    if not core.admit(key, request.env):
        return envelope(500, RATE_LIMITED)
    refused = identify(core, request.env, key, headers.get("appsecret", "").strip())
    if not isinstance(refused, FakeApp):
        return envelope(500, refused)
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return envelope(500, CREDENTIALS_TYPE)
    record = core.tokens.get(token.strip())
    if record is None or record.revoked or record.app_key != key:
        return envelope(500, TOKEN_INVALID)
    if core.clock.time() >= record.expires_at:
        return envelope(500, TOKEN_EXPIRED)
    tr_id = request.tr_id
    if not tr_id:
        return envelope(500, TR_ID_MISSING)
    accepted = endpoint.all_tr_ids(request.env)
    if tr_id not in accepted:
        if request.env is Env.PAPER:
            return envelope(500, PAPER_TR_MISMATCH)
        return envelope(200, NO_SERVICE, headers=core.kis_headers(tr_id))
    return _DATA_HANDLERS[endpoint.name](Ctx(core, request, app, tr_id, accepted[tr_id]))
