"""Transport-neutral request and response records, routing and answer builders."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from kisclient._codes import CodeInfo
from kisclient._config import Env, env_settings

__all__ = [
    "PAPER_PREFIX",
    "FakeRequest",
    "FakeResponse",
    "envelope",
    "json_response",
    "oauth_error",
    "pad_paper_msg1",
    "route",
    "text_response",
]

#: Loopback/in-process path prefix that selects the paper environment.
PAPER_PREFIX = "/paper"
_JSON = "application/json; charset=utf-8"
_PAPER_HOST = urlsplit(env_settings(Env.PAPER).base_url)


def route(host: str, port: int | None, path: str) -> tuple[Env, str]:
    """The environment a request is for, and its path without the ``/paper`` prefix.

    ``/paper/...`` is paper on any host; otherwise the paper host and port from ``_config`` is
    paper and everything else (the real host, a loopback address) is real.
    """
    if path == PAPER_PREFIX or path.startswith(PAPER_PREFIX + "/"):
        return Env.PAPER, path[len(PAPER_PREFIX) :] or "/"
    if host == _PAPER_HOST.hostname and port in (None, _PAPER_HOST.port):
        return Env.PAPER, path
    return Env.REAL, path


@attrs.frozen
class FakeRequest:
    """One request as the fake sees it: header names lower-cased, query keys upper-cased."""

    method: str
    env: Env
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)

    @property
    def tr_id(self) -> str:
        """The ``tr_id`` header, or ``""``."""
        return self.headers.get("tr_id", "").strip()

    @classmethod
    def build(
        cls,
        method: str,
        env: Env,
        path: str,
        *,
        query: Iterable[tuple[str, str]],
        headers: Iterable[tuple[str, str]],
        body: bytes,
    ) -> FakeRequest:
        """Normalise names: headers lower-case, query keys upper-case (KIS accepts both)."""
        return cls(
            method.upper(),
            env,
            path,
            {k.upper(): v for k, v in query},
            {k.lower(): v for k, v in headers},
            body,
        )


@attrs.define
class FakeResponse:
    """An answer. ``after`` tells the transport to spoil delivery: ``"drop"`` (close without an
    answer) or ``"timeout"`` (stay silent)."""

    status: int
    body: bytes = attrs.field(repr=False)
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    after: Literal["drop", "timeout"] | None = None
    hold_s: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON (for the fake's own tests)."""
        return json.loads(self.body)


def json_response(
    status: int, payload: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> FakeResponse:
    """A JSON answer; standard headers in canonical case, KIS headers as given (lower-case)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return FakeResponse(status, body, [("Content-Type", _JSON), *headers])


def envelope(
    status: int,
    info: CodeInfo,
    rt_cd: str = "1",
    headers: Iterable[tuple[str, str]] = (),
    **data: Any,
) -> FakeResponse:
    """A KIS envelope ``{"rt_cd", "msg_cd", "msg1", ...data}``."""
    payload = {"rt_cd": rt_cd, "msg_cd": info.code, "msg1": info.message, **data}
    return json_response(status, payload, headers)


#: Width the paper host pads ``msg1`` to. KIS: paper messages are right-padded with spaces
#: and ``msg1`` is at most 80 characters; the exact width is not recorded: 80.
PAPER_MSG1_WIDTH = 80


def pad_paper_msg1(response: FakeResponse) -> FakeResponse:
    """*response* with its envelope's ``msg1`` right-padded with spaces, as the paper host
    sends its messages. Other bodies are left alone."""
    try:
        payload = json.loads(response.body)
    except ValueError:
        return response
    if not isinstance(payload, dict) or not isinstance(payload.get("msg1"), str):
        return response
    payload["msg1"] = payload["msg1"].ljust(PAPER_MSG1_WIDTH)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response.body = body
    return response


def oauth_error(info: CodeInfo, status: int = 403) -> FakeResponse:
    """The token endpoints' error shape: ``{"error_code", "error_description"}``."""
    return json_response(status, {"error_code": info.code, "error_description": info.message})


def text_response(status: int, text: str) -> FakeResponse:
    """A plain-text answer (bare 5xx, 404...)."""
    headers = [("Content-Type", "text/html; charset=utf-8")]
    return FakeResponse(status, text.encode("utf-8"), headers)
