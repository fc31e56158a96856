"""The unauthenticated endpoints: tokenP, revokeP, Approval and hashkey.

Errors use the OAuth shape ``{"error_code", "error_description"}`` with HTTP 403, except a paper
app key on the real host, which gets the gateway's HTTP 500 envelope with EGW02004.
A real app key on the paper host is unknown there: EGW00103.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from kisclient._codes import (
    APPKEY_INVALID,
    APPKEY_MISSING,
    APPSECRET_INVALID,
    APPSECRET_MISSING,
    BAD_REQUEST,
    JSON_PARSE,
    PAPER_KEY_ON_REAL,
    TOKEN_INVALID,
    TOKEN_THROTTLED,
    CodeInfo,
)
from kisclient._config import KST, TOKEN_REUSE_WINDOW_S, Env

from ._core import Core, uuid_like
from ._http import FakeRequest, FakeResponse, envelope, json_response, oauth_error
from ._state import ApprovalKeyRecord, FakeApp

__all__ = ["HANDLERS", "REVOKE_OK_MESSAGE", "check_app", "identify"]

#: revokeP's success text. Not a message code, so it is not in ``_codes``.
REVOKE_OK_MESSAGE = "접근토큰 폐기에 성공하였습니다"


def _json(request: FakeRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def identify(core: Core, env: Env, key: str, secret: str | None) -> FakeApp | CodeInfo:
    """The app behind *key* in *env*, or the code refusing it.

    *secret* ``None`` skips the secret check (the caller checks it later).
    """
    if not key:
        return APPKEY_MISSING
    app = core.apps.get(key)
    if app is None or (app.env == Env.REAL.value and env is Env.PAPER):
        return APPKEY_INVALID
    if app.env == Env.PAPER.value and env is Env.REAL:
        return PAPER_KEY_ON_REAL
    if secret is not None and not secret:
        return APPSECRET_MISSING
    if secret is not None and secret != app.app_secret:
        return APPSECRET_INVALID
    return app


def _refuse(info: CodeInfo) -> FakeResponse:
    """OAuth-shaped 403, except the real domain's answer to a paper key (HTTP 500 envelope)."""
    return envelope(500, info) if info is PAPER_KEY_ON_REAL else oauth_error(info)


def check_app(core: Core, env: Env, key: str, secret: str) -> FakeApp | FakeResponse:
    """:func:`identify`, with a refusal turned into the token endpoints' answer."""
    found = identify(core, env, key, secret)
    return found if isinstance(found, FakeApp) else _refuse(found)


def token(core: Core, request: FakeRequest) -> FakeResponse:
    """tokenP. Throttle: a successful call within ``token_interval_s`` of the previous
    *successful* call for the key → EGW00133 (refused calls do not restart the interval).
    Reuse: a still-valid token issued less than six hours ago is handed back (not a new issuance);
    ``expires_in`` is then its remaining lifetime."""
    body = _json(request)
    if body is None:
        return oauth_error(BAD_REQUEST)
    key = str(body.get("appkey", ""))
    if key:
        core.stats._note_token_call(key)
    app = check_app(core, request.env, key, str(body.get("appsecret", "")))
    if not isinstance(app, FakeApp):
        return app
    if body.get("grant_type") != "client_credentials":
        return oauth_error(BAD_REQUEST)
    now = core.clock.time()
    last = core.last_token_call.get(key)
    if last is not None and now - last < core.token_interval_s:
        return oauth_error(TOKEN_THROTTLED)
    core.last_token_call[key] = now
    record = core.current_token.get(key)
    if (
        record is None
        or record.revoked
        or now >= record.expires_at
        or now - record.issued_at >= TOKEN_REUSE_WINDOW_S
    ):
        record = core.new_token(key)
        core.stats._note_issuance(key)
    expiry = dt.datetime.fromtimestamp(record.expires_at, KST).strftime("%Y-%m-%d %H:%M:%S")
    return json_response(
        200,
        {
            "access_token": record.value,
            "access_token_token_expired": expiry,
            "token_type": "Bearer",
            "expires_in": int(record.expires_at - now),
        },
    )


def revoke(core: Core, request: FakeRequest) -> FakeResponse:
    """revokeP: the token must be live and belong to the app; otherwise EGW00121 (403 shape)."""
    body = _json(request)
    if body is None:
        return oauth_error(BAD_REQUEST)
    key = str(body.get("appkey", ""))
    app = check_app(core, request.env, key, str(body.get("appsecret", "")))
    if not isinstance(app, FakeApp):
        return app
    record = core.tokens.get(str(body.get("token", "")))
    if (
        record is None
        or record.revoked
        or record.app_key != key
        or core.clock.time() >= record.expires_at
    ):
        return oauth_error(TOKEN_INVALID)
    record.revoked = True
    return json_response(200, {"code": 200, "message": REVOKE_OK_MESSAGE})


def approval(core: Core, request: FakeRequest) -> FakeResponse:
    """Approval: WebSocket approval key for ``appkey`` + ``secretkey`` (not ``appsecret``).

    Every key issued is recorded in ``core.approval_keys`` (app key, environment, issue time on
    the fake's clock): the WebSocket fake accepts it for 24 hours, in that environment only."""
    body = _json(request)
    if body is None or body.get("grant_type") != "client_credentials":
        return oauth_error(BAD_REQUEST)
    app = check_app(core, request.env, str(body.get("appkey", "")), str(body.get("secretkey", "")))
    if not isinstance(app, FakeApp):
        return app
    value = uuid_like(core.rng)
    core.approval_keys[value] = ApprovalKeyRecord(value, app.app_key, app.env, core.clock.time())
    return json_response(200, {"approval_key": value})


def hashkey(core: Core, request: FakeRequest) -> FakeResponse:
    """hashkey: headers appkey/appsecret; echoes the JSON body with its SHA-256 (hex)."""
    app = check_app(
        core, request.env, request.headers.get("appkey", ""), request.headers.get("appsecret", "")
    )
    if not isinstance(app, FakeApp):
        return app
    try:
        parsed = json.loads(request.body or b"{}")
    except ValueError:
        return envelope(500, JSON_PARSE)
    # The same canonical hash the gateway checks a POST's ``hashkey`` header against.
    canonical = json.dumps(parsed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return json_response(200, {"BODY": parsed, "HASH": digest})


#: Handlers by endpoint name (see ``kisclient._config.ENDPOINTS``).
HANDLERS = {"token": token, "revoke": revoke, "approval": approval, "hashkey": hashkey}
