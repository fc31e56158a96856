"""Every message code the fake server answers with, by meaning.

The rows themselves are named in :mod:`kisclient._codes` (the only place a code is written); this
module gathers the ones the fake uses, so its handlers never spell a code.
"""

from __future__ import annotations

from kisclient._codes import (
    ACCOUNT_INVALID,
    APPKEY_INVALID,
    APPKEY_MISSING,
    APPSECRET_INVALID,
    APPSECRET_MISSING,
    BAD_FIELD,
    BAD_REQUEST,
    BAD_TICK,
    CREDENTIALS_TYPE,
    DEFAULT_GATEWAY_FAULT,
    INQUIRY_OK,
    INSUFFICIENT_CASH,
    JSON_PARSE,
    MARKET_CLOSED,
    NO_SERVICE,
    NOT_TRADABLE,
    ORDER_DAY_MISMATCH,
    ORDER_OK,
    PAPER_KEY_ON_REAL,
    PAPER_TR_MISMATCH,
    RATE_LIMITED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_THROTTLED,
    TR_ID_MISSING,
    UNKNOWN_CODE,
)

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
]
