"""The KIS message-code table: what each code means and what a client should do about it.

Covers every code KIS's public sources document. This module is the only place a KIS message code is
written; the client's classifier and the fake server both read it.
"""

from __future__ import annotations

import enum

import attrs

from ._config import Env

__all__ = [
    "ACCOUNT_INVALID",
    "APPKEY_INVALID",
    "APPKEY_MISSING",
    "APPSECRET_INVALID",
    "APPSECRET_MISSING",
    "BAD_FIELD",
    "BAD_REQUEST",
    "BAD_TICK",
    "CODES",
    "CREDENTIALS_TYPE",
    "DEFAULT_GATEWAY_FAULT",
    "INQUIRY_OK",
    "INSUFFICIENT_CASH",
    "JSON_PARSE",
    "MARKET_CLOSED",
    "NOT_TRADABLE",
    "NO_SERVICE",
    "ORDER_DAY_MISMATCH",
    "ORDER_OK",
    "PAPER_KEY_ON_REAL",
    "PAPER_TR_MISMATCH",
    "PAPER_TR_MISMATCH_MESSAGE",
    "RATE_LIMITED",
    "TOKEN_EXPIRED",
    "TOKEN_INVALID",
    "TOKEN_THROTTLED",
    "TR_ID_MISSING",
    "UNKNOWN_CODE",
    "CodeInfo",
    "Kind",
    "lookup",
]


class Kind(enum.Enum):
    """What a code says happened."""

    #: The request was processed.
    SUCCESS = "success"
    #: Per-second limit exceeded at the gateway; nothing was processed.
    RATE_LIMITED = "rate_limited"
    #: The access token has expired on the server.
    TOKEN_EXPIRED = "token_expired"
    #: The access token is unknown, revoked or missing on the server.
    TOKEN_INVALID = "token_invalid"
    #: Token issuance refused because the last one was too recent.
    TOKEN_THROTTLED = "token_throttled"
    #: Credentials, permissions or the caller's identity were refused.
    AUTH = "auth"
    #: The request was sent to the wrong environment (paper key on real host, real TR on paper).
    WRONG_ENVIRONMENT = "wrong_environment"
    #: A temporary gateway or back-end failure; the same request may succeed later.
    TRANSIENT = "transient"
    #: The request itself is malformed; repeating it cannot help.
    BAD_REQUEST = "bad_request"
    #: A business rule refused the request (market closed, bad account, untradable stock...).
    BUSINESS = "business"


@attrs.frozen
class CodeInfo:
    """One row of the table.

    ``retryable``: repeating the same request may succeed. ``wait_s``: how long to wait before
    doing so (for EGW00201, how long the limiter holds every caller). The client's classifier
    (:func:`kisclient._core.classify`) applies exactly these two fields, so this row is what the
    client does. ``message``: the server's text, as the fake server sends it.
    """

    code: str
    kind: Kind
    message: str
    retryable: bool = False
    wait_s: float = 0.0

    @property
    def token_related(self) -> bool:
        """Whether the fix is a new access token."""
        return self.kind in (Kind.TOKEN_EXPIRED, Kind.TOKEN_INVALID)


def _row(
    code: str, kind: Kind, message: str, retryable: bool = False, wait_s: float = 0.0
) -> CodeInfo:
    return CodeInfo(code, kind, message, retryable, wait_s)


def _span(
    prefix: str,
    first: int,
    last: int,
    width: int,
    kind: Kind,
    message: str,
    retryable: bool = False,
    wait_s: float = 0.0,
) -> list[CodeInfo]:
    return [
        _row(f"{prefix}{n:0{width}d}", kind, message, retryable, wait_s)
        for n in range(first, last + 1)
    ]


#: The text of the paper host's answer to a real-only ``tr_id`` (unohee/kis-agent issue 44).
PAPER_TR_MISMATCH_MESSAGE = "모의투자 TR 이 아닙니다."

_K = Kind
_ROWS: list[CodeInfo] = [
    # --- success codes ---
    _row("MCA00000", _K.SUCCESS, "정상처리 되었습니다."),
    _row("20310000", _K.SUCCESS, "모의투자 조회가 완료되었습니다."),
    _row("APBK0013", _K.SUCCESS, "주문 전송 완료 되었습니다."),
    _row("40600000", _K.SUCCESS, "모의투자 매수주문이 완료 되었습니다."),
    _row("40610000", _K.SUCCESS, "모의투자 매도주문이 완료 되었습니다."),
    # Paper cancel accepted (observed in a third-party KIS log, msg_cd 40630000).
    _row("40630000", _K.SUCCESS, "모의투자 취소주문이 완료 되었습니다."),
    # --- gateway (EGW) codes ---
    _row("EGW00001", _K.TRANSIENT, "일시적인 오류가 발생했습니다.", True, 1.0),
    _row("EGW00002", _K.TRANSIENT, "서버 에러가 발생했습니다.", True, 1.0),
    _row("EGW00003", _K.AUTH, "접근이 거부되었습니다."),
    _row("EGW00004", _K.AUTH, "권한을 부여받지 않은 고객입니다."),
    _row("EGW00101", _K.BAD_REQUEST, "유효하지 않은 요청입니다."),
    _row("EGW00102", _K.AUTH, "AppKey는 필수입니다."),
    _row("EGW00103", _K.AUTH, "유효하지 않은 AppKey입니다."),
    _row("EGW00104", _K.AUTH, "AppSecret은 필수입니다."),
    _row("EGW00105", _K.AUTH, "유효하지 않은 AppSecret입니다."),
    *_span("EGW00", 106, 115, 3, _K.BAD_REQUEST, "OAuth 요청 파라미터 오류입니다."),
    _row("EGW00121", _K.TOKEN_INVALID, "유효하지 않은 token 입니다.", True),
    _row("EGW00122", _K.TOKEN_INVALID, "token을 찾을 수 없습니다.", True),
    _row("EGW00123", _K.TOKEN_EXPIRED, "기간이 만료된 token 입니다.", True),
    _row("EGW00130", _K.AUTH, "유효하지 않은 사용자입니다."),
    _row("EGW00131", _K.BAD_REQUEST, "유효하지 않은 hashkey 입니다."),
    _row("EGW00132", _K.BAD_REQUEST, "Content-Type이 유효하지 않습니다."),
    _row(
        "EGW00133",
        _K.TOKEN_THROTTLED,
        "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        True,
        60.0,
    ),
    _row("EGW00201", _K.RATE_LIMITED, "초당 거래건수를 초과하였습니다.", True, 1.0),
    _row("EGW00202", _K.TRANSIENT, "GW라우팅 중 오류가 발생했습니다.", True, 0.5),
    _row("EGW00203", _K.TRANSIENT, "OPS라우팅 중 오류가 발생했습니다.", True, 0.5),
    _row("EGW00204", _K.TRANSIENT, "Internal Gateway 인스턴스를 잘못 입력했습니다.", True, 0.5),
    _row("EGW00205", _K.WRONG_ENVIRONMENT, "credentials_type이 유효하지 않습니다.(Bearer)"),
    _row("EGW00206", _K.AUTH, "API 사용 권한이 없습니다."),
    _row("EGW00207", _K.AUTH, "IP 주소가 없거나 유효하지 않습니다."),
    _row("EGW00208", _K.BAD_REQUEST, "고객유형(custtype)이 유효하지 않습니다."),
    _row("EGW00209", _K.BAD_REQUEST, "일련번호(seq_no)가 유효하지 않습니다."),
    _row("EGW00210", _K.WRONG_ENVIRONMENT, "법인고객의 경우 모의투자를 이용할 수 없습니다."),
    _row("EGW00211", _K.BAD_REQUEST, "고객명(personalname)은 필수 입니다."),
    _row("EGW00212", _K.BAD_REQUEST, "휴대전화번호(personalphone)는 필수 입니다."),
    # KAE maps 00213 both to "corpname missing" and to a paper/real TR mismatch; the fake server
    # sends it with PAPER_TR_MISMATCH_MESSAGE for a real-only tr_id on the paper host.
    _row("EGW00213", _K.WRONG_ENVIRONMENT, PAPER_TR_MISMATCH_MESSAGE),
    _row("EGW00300", _K.TRANSIENT, "OPS라우팅 중 오류가 발생했습니다.", True, 0.5),
    _row(
        "EGW02004", _K.WRONG_ENVIRONMENT, "실전투자 도메인은 모의투자 앱키로 호출하실 수 없습니다."
    ),
    # --- OPS (back-end) codes ---
    _row("OPSQ0001", _K.BAD_REQUEST, "호출 전처리 오류입니다."),
    _row("OPSQ0002", _K.WRONG_ENVIRONMENT, "없는 서비스 코드 입니다"),
    _row("OPSQ0010", _K.TRANSIENT, "자원이 부족합니다.", True, 1.0),
    _row("OPSQ0011", _K.TRANSIENT, "세션 오류입니다.", True, 1.0),
    _row("OPSQ1002", _K.BAD_REQUEST, "계좌번호 오류입니다."),
    _row("OPSQ2000", _K.BAD_REQUEST, "시장구분코드 오류입니다."),
    _row("OPSQ2001", _K.BAD_REQUEST, "필드 길이 오류입니다."),
    _row("OPSQ2002", _K.BAD_REQUEST, "MCI 데이터 오류입니다."),
    _row("OPSQ2003", _K.BAD_REQUEST, "MCI 데이터 오류입니다."),
    *_span("OPSQ", 3001, 3004, 4, _K.TRANSIENT, "응답 데이터 파싱 오류입니다.", True, 0.5),
    _row("OPSQ9995", _K.BAD_REQUEST, "JSON body가 없습니다."),
    _row("OPSQ9996", _K.BAD_REQUEST, "JSON header가 없습니다."),
    _row("OPSQ9997", _K.BAD_REQUEST, "JSON 파싱 오류입니다."),
    _row("OPSQ9998", _K.BAD_REQUEST, "seq_no가 없습니다."),
    _row("OPSQ9999", _K.BAD_REQUEST, "tr_id가 없습니다."),
    # --- WebSocket control codes (listed for completeness; the REST client never sees them) ---
    _row("OPSP0000", _K.SUCCESS, "SUBSCRIBE SUCCESS"),
    _row("OPSP0001", _K.SUCCESS, "UNSUBSCRIBE SUCCESS"),
    _row("OPSP0002", _K.BAD_REQUEST, "ALREADY IN SUBSCRIBE"),
    _row("OPSP0003", _K.BAD_REQUEST, "UNSUBSCRIBE ERROR(not found!)"),
    _row("OPSP0007", _K.TRANSIENT, "SUBSCRIBE INTERNAL ERROR", True, 1.0),
    _row("OPSP0008", _K.BAD_REQUEST, "MAX SUBSCRIBE OVER"),
    _row("OPSP8996", _K.AUTH, "ALREADY IN USE appkey"),
    # --- business codes (HTTP 200, rt_cd != "0") ---
    _row("40580000", _K.BUSINESS, "모의투자 장종료 입니다."),
    _row(
        "90020000",
        _K.TRANSIENT,
        "모의투자 서비스가 지연되고 있습니다. 잠시후 재시도 바랍니다.",
        True,
        1.0,
    ),
    _row("APBK0919", _K.BUSINESS, "장운영일자가 주문일과 상이합니다"),
    _row("APAC0081", _K.BUSINESS, "계좌번호 입력 오류입니다"),
    _row("40070000", _K.BUSINESS, "매매불가 종목입니다."),
    _row("40030000", _K.BUSINESS, "호가단위 오류입니다."),
    # Insufficient buying power: real APBK0952, paper 40250000 (third-party fixtures and logs).
    _row("APBK0952", _K.BUSINESS, "주문가능금액을 초과 했습니다"),
    _row("40250000", _K.BUSINESS, "모의투자 주문가능금액이 부족합니다."),
]

#: Every known code.
CODES: dict[str, CodeInfo] = {row.code: row for row in _ROWS}

_WS_FORMAT_ERROR = CodeInfo("OPSP8992", Kind.BAD_REQUEST, "웹소켓 요청 형식 오류입니다.")


def lookup(code: str | None) -> CodeInfo | None:
    """Return the row for *code*, or ``None`` when the code is unknown (or missing).

    The WebSocket format errors ``OPSP8992``–``OPSP9999`` are a range and answer with one row.
    """
    if not code:
        return None
    code = code.strip()
    found = CODES.get(code)
    if found is not None:
        return found
    number = code[4:]
    if (
        code.startswith("OPSP")
        and number.isascii()
        and number.isdigit()
        and 8992 <= int(number) <= 9999
    ):
        return attrs.evolve(_WS_FORMAT_ERROR, code=code)
    return None


# --- named rows -------------------------------------------------------------------------------
# The codes the client and the fake server refer to by meaning. Each lookup fails at import time
# if the table lacks the code, so nobody can send or expect a code the table does not know.


def _named(code: str) -> CodeInfo:
    return CODES[code]


INQUIRY_OK = {Env.REAL: _named("MCA00000"), Env.PAPER: _named("20310000")}
#: Success rows of order calls per environment and action (``buy``/``sell``/``cancel``).
ORDER_OK = {
    (Env.REAL, "buy"): _named("APBK0013"),
    (Env.REAL, "sell"): _named("APBK0013"),
    (Env.REAL, "cancel"): _named("APBK0013"),
    (Env.PAPER, "buy"): _named("40600000"),
    (Env.PAPER, "sell"): _named("40610000"),
    (Env.PAPER, "cancel"): _named("40630000"),
}
INSUFFICIENT_CASH = {Env.REAL: _named("APBK0952"), Env.PAPER: _named("40250000")}

BAD_REQUEST = _named("EGW00101")
APPKEY_MISSING = _named("EGW00102")
APPKEY_INVALID = _named("EGW00103")
APPSECRET_MISSING = _named("EGW00104")
APPSECRET_INVALID = _named("EGW00105")
TOKEN_INVALID = _named("EGW00121")
TOKEN_EXPIRED = _named("EGW00123")
TOKEN_THROTTLED = _named("EGW00133")
RATE_LIMITED = _named("EGW00201")
DEFAULT_GATEWAY_FAULT = _named("EGW00202")
CREDENTIALS_TYPE = _named("EGW00205")
PAPER_TR_MISMATCH = _named("EGW00213")
PAPER_KEY_ON_REAL = _named("EGW02004")
NO_SERVICE = _named("OPSQ0002")
BAD_FIELD = _named("OPSQ2001")
UNKNOWN_CODE = _named("OPSQ2002")
JSON_PARSE = _named("OPSQ9997")
TR_ID_MISSING = _named("OPSQ9999")
MARKET_CLOSED = _named("40580000")
ORDER_DAY_MISMATCH = _named("APBK0919")
ACCOUNT_INVALID = _named("APAC0081")
NOT_TRADABLE = _named("40070000")
BAD_TICK = _named("40030000")
