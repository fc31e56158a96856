"""Every message code the fake server answers with, looked up in :mod:`kisclient._codes`.

This is the only module of the fake that names a code; each lookup fails at import time if the
code is missing from the table, so the fake can never send a code the client does not know.
"""

from __future__ import annotations

from kisclient._codes import CODES, CodeInfo
from kisclient._config import Env

__all__ = [
    "ACCOUNT_INVALID",
    "APPKEY_INVALID",
    "APPKEY_MISSING",
    "APPSECRET_INVALID",
    "APPSECRET_MISSING",
    "BAD_FIELD",
    "BAD_REQUEST",
    "BAD_TICK",
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
    "RATE_LIMITED",
    "TOKEN_EXPIRED",
    "TOKEN_INVALID",
    "TOKEN_THROTTLED",
    "TR_ID_MISSING",
    "UNKNOWN_CODE",
    "code",
]


def code(value: str) -> CodeInfo:
    """The table row for *value*; :class:`KeyError` if the table lacks it."""
    return CODES[value]


INQUIRY_OK = {Env.REAL: code("MCA00000"), Env.PAPER: code("20310000")}
#: Success rows of order calls per environment and action (``buy``/``sell``/``cancel``).
ORDER_OK = {
    (Env.REAL, "buy"): code("APBK0013"),
    (Env.REAL, "sell"): code("APBK0013"),
    (Env.REAL, "cancel"): code("APBK0013"),
    (Env.PAPER, "buy"): code("40600000"),
    (Env.PAPER, "sell"): code("40610000"),
    (Env.PAPER, "cancel"): code("40630000"),
}
INSUFFICIENT_CASH = {Env.REAL: code("APBK0952"), Env.PAPER: code("40250000")}

BAD_REQUEST = code("EGW00101")
APPKEY_MISSING = code("EGW00102")
APPKEY_INVALID = code("EGW00103")
APPSECRET_MISSING = code("EGW00104")
APPSECRET_INVALID = code("EGW00105")
TOKEN_INVALID = code("EGW00121")
TOKEN_EXPIRED = code("EGW00123")
TOKEN_THROTTLED = code("EGW00133")
RATE_LIMITED = code("EGW00201")
DEFAULT_GATEWAY_FAULT = code("EGW00202")
CREDENTIALS_TYPE = code("EGW00205")
PAPER_TR_MISMATCH = code("EGW00213")
PAPER_KEY_ON_REAL = code("EGW02004")
NO_SERVICE = code("OPSQ0002")
BAD_FIELD = code("OPSQ2001")
UNKNOWN_CODE = code("OPSQ2002")
JSON_PARSE = code("OPSQ9997")
TR_ID_MISSING = code("OPSQ9999")
MARKET_CLOSED = code("40580000")
ORDER_DAY_MISMATCH = code("APBK0919")
ACCOUNT_INVALID = code("APAC0081")
NOT_TRADABLE = code("40070000")
BAD_TICK = code("40030000")
