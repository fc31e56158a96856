"""What the token store says, read without credentials and without creating anything.

:func:`token_status` is the read-only view a status page or health check needs: whether a token
is stored for an environment (and app key), and until when it is valid. It never creates a file
or directory, never takes a lock and never talks to KIS; a store that must not be trusted (see
:func:`kisclient._statedir.read_private_json`) reads as ``"unknown"``.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from typing import Any, Literal

import attrs

from ._config import KST, Env, EnvName
from ._defaults import parse_env
from ._statedir import key_fingerprint, read_private_json
from ._token_store import STORE_FILE_NAME

__all__ = ["TokenState", "TokenStatus", "token_status"]

TokenState = Literal["valid", "expired", "none", "unknown"]


@attrs.frozen
class TokenStatus:
    """The stored token's state: ``state`` is ``"valid"``, ``"expired"``, ``"none"`` (no token
    stored) or ``"unknown"`` (several stores and no app key to choose, or a store that is
    unreadable, not private or corrupt). ``expires_at`` is an aware KST datetime when a token's
    expiry was read, ``path`` the store file looked at (``None`` when none was chosen), and
    ``detail`` a one-line explanation (empty when the state says it all). Holds no secret."""

    state: TokenState
    expires_at: dt.datetime | None = None
    path: pathlib.Path | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``expires_at`` as ISO 8601, ``path`` as a string (``None`` kept)."""
        return {
            "state": self.state,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "path": None if self.path is None else str(self.path),
            "detail": self.detail,
        }


def token_status(
    state_dir: str | os.PathLike[str],
    env: EnvName | Env | str,
    app_key: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> TokenStatus:
    """The state of the token stored under *state_dir* for *env*.

    With *app_key* the store of exactly that key is read; without, the single store of *env*
    (``"unknown"`` when there are several, ``"none"`` when there is none). A token is
    ``"valid"`` when it expires after *now* (an aware datetime; the system time by default),
    else ``"expired"``. Never creates, changes or locks anything. Raises
    :class:`~kisclient.ConfigurationError` for an unknown *env*.
    """
    root = pathlib.Path(state_dir)
    name = parse_env(env).value
    moment = dt.datetime.now(KST) if now is None else now
    if app_key:
        candidates = [root / f"{name}-{key_fingerprint(app_key)}" / STORE_FILE_NAME]
    else:
        candidates = sorted(root.glob(f"{name}-*/{STORE_FILE_NAME}"))
        if len(candidates) > 1:
            return TokenStatus(
                "unknown",
                detail=f"{len(candidates)} token stores for {name} under {root}; set "
                "KIS_APP_KEY to choose",
            )
    if not candidates or not candidates[0].exists():
        return TokenStatus("none", detail=f"no token stored for {name} under {root}")
    path = candidates[0]
    data = read_private_json(path, "token store")
    token = data.get("token") if data else None
    try:
        expires = dt.datetime.fromisoformat(str(token["expires_at"])) if token else None
    except (KeyError, TypeError, ValueError):
        expires = None
    if expires is None or expires.tzinfo is None:
        why = "unreadable, not private, or holds no token" if data is None or token else "no token"
        return TokenStatus("unknown" if data is None else "none", path=path, detail=why)
    state: TokenState = "valid" if expires > moment else "expired"
    return TokenStatus(state, expires.astimezone(KST), path)
