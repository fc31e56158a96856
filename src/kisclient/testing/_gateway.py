"""The gateway: routes a request, applies faults, checks credentials, limits and ``tr_id``.

Order of checks for a data call (each failure is HTTP 500 with a KIS envelope, ``rt_cd "1"``):
app key present and known in this environment (EGW00102/EGW00103; a paper key on the real host
EGW02004) → per-key rate window (EGW00201) → secret (EGW00104/EGW00105) → ``Bearer`` token
(EGW00205 no bearer, EGW00121 unknown/revoked/other app's, EGW00123 expired) → ``tr_id``
(OPSQ9999 missing; wrong for path/env: paper host EGW00213 with the paper-TR message, real host
HTTP 200 ``rt_cd "1"`` OPSQ0002) → the handler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from kisclient._codes import (
    BAD_REQUEST,
    CODES,
    CREDENTIALS_TYPE,
    DEFAULT_GATEWAY_FAULT,
    NO_SERVICE,
    PAPER_TR_MISMATCH,
    RATE_LIMITED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TR_ID_MISSING,
    CodeInfo,
)
from kisclient._config import Env, endpoint_by_path

from ._auth import HANDLERS as AUTH_HANDLERS
from ._auth import identify
from ._core import Core, Ctx
from ._documented import MARKET_DIVISION_CODES, MARKET_DIVISION_ENDPOINTS
from ._faults import AFTER_PROCESSING, Fault
from ._http import FakeRequest, FakeResponse, envelope, pad_paper_msg1, text_response
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
    """Answer *request*, spoiled by *fault* if one was taken. Call with ``core.lock`` held.

    On the paper host every envelope's ``msg1`` is right-padded here, the one place every
    answer passes: the handlers' answers, the gateway's own refusals (EGW…) and injected
    gateway faults alike (KIS: paper messages are right-padded with spaces)."""
    core.stats._note_request(request.path, request.tr_id)
    if fault is not None and fault.kind == "http_5xx_bare":
        return text_response(fault.status, f"<html><body>{fault.status} Error</body></html>")
    response = _answer_or_fault(core, request, fault)
    if request.env is Env.PAPER:
        response = pad_paper_msg1(response)
    if fault is not None and fault.kind in AFTER_PROCESSING:
        _spoil(response, fault)
    return response


def _answer_or_fault(core: Core, request: FakeRequest, fault: Fault | None) -> FakeResponse:
    """The envelope of an injected gateway fault, else the answer to *request*."""
    if fault is not None and fault.kind == "http_5xx_envelope":
        info = CODES[fault.code] if fault.code else DEFAULT_GATEWAY_FAULT
        return envelope(fault.status, info)
    if fault is not None and fault.kind == "rate_burst":
        core.stats._note_rate_limited(request.headers.get("appkey", ""))
        return envelope(500, RATE_LIMITED)
    return _answer(core, request)


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


#: An unknown path or a wrong method. KIS's sources do not record what the gateway answers;
#: the fake answers like its other gateway refusals (gateway errors
#: arrive as HTTP 500 with the JSON envelope, ``rt_cd "1"``) with EGW00101 "invalid request",
#: a shape every KIS client parses, instead of an HTML page.
UNKNOWN_PATH: CodeInfo = BAD_REQUEST
#: A JSON number (or other non-string) in an order body. The official sample says every value is
#: a string (koreainvestment/open-trading-api ``order_cash.py``); the gateway's answer to a number
#: is not recorded: OPSQ0001 (call pre-processing error), HTTP 200, ``rt_cd "1"``.
NOT_A_STRING: CodeInfo = CODES["OPSQ0001"]
#: A ``hashkey`` header that is not the hash of the body: EGW00131 (KIS's kis-ai-extensions); its
#: HTTP status is not recorded, so HTTP 500 like the other EGW refusals.
HASHKEY_INVALID: CodeInfo = CODES["EGW00131"]
#: A market division code other than J/NX/UN, or none: OPSQ2000 (the KAE list's market-code
#: error), HTTP 200, ``rt_cd "1"``. KIS's sources record the gateway's answer to neither a wrong
#: nor a missing ``FID_COND_MRKT_DIV_CODE``: a missing one is refused like a wrong one, as the
#: fake refuses the multi-quote's missing ``FID_COND_MRKT_DIV_CODE_n`` (its other missing
#: required fields are refused the same way: HTTP 200, ``rt_cd "1"``, an OPSQ200x code).
MARKET_DIVISION_INVALID: CodeInfo = CODES["OPSQ2000"]


def body_hash(body: bytes) -> str | None:
    """The hash the fake's hashkey endpoint gives *body*: SHA-256 of its canonical JSON (so key
    order and spacing do not matter, the content does); ``None`` if it is not JSON."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    canonical = json.dumps(parsed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_request(core: Core, request: FakeRequest, name: str) -> FakeResponse | None:
    """Request validation shared by every handler (after credentials and ``tr_id``)."""
    headers = core.kis_headers(request.tr_id)
    if request.method == "POST":
        sent = request.headers.get("hashkey", "").strip()
        if sent and sent.lower() != (body_hash(request.body) or ""):
            return envelope(500, HASHKEY_INVALID)
        try:
            parsed = json.loads(request.body or b"null")
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and any(not isinstance(v, str) for v in parsed.values()):
            return envelope(200, NOT_A_STRING, headers=headers)
    if name in MARKET_DIVISION_ENDPOINTS:
        # A documented request field of these endpoints: missing, blank or not J/NX/UN, it is
        # refused alike (see MARKET_DIVISION_INVALID).
        division = request.query.get("FID_COND_MRKT_DIV_CODE", "").strip().upper()
        if division not in MARKET_DIVISION_CODES:
            return envelope(200, MARKET_DIVISION_INVALID, headers=headers)
    return None


def _answer(core: Core, request: FakeRequest) -> FakeResponse:
    endpoint = endpoint_by_path(request.path)
    if endpoint is None or request.method != endpoint.method:
        return envelope(500, UNKNOWN_PATH)
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
    issuer = core.apps.get(record.app_key) if record is not None else None
    if request.env is Env.PAPER and issuer is not None and issuer.env == Env.REAL.value:
        # A real token on the paper host: EGW00205 (KIS's kis-ai-extensions; third-party reports).
        return envelope(500, CREDENTIALS_TYPE)
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
    answer = _check_request(core, request, endpoint.name)
    if answer is None:
        answer = _DATA_HANDLERS[endpoint.name](Ctx(core, request, app, tr_id, accepted[tr_id]))
    return answer
