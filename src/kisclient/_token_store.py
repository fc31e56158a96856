"""The token store: one file per (environment, app key), the token in it, and how it is read.

``token.json`` in the scope directory (see :mod:`kisclient._statedir`) holds the access token,
its expiry as the server's ``access_token_token_expired`` (KST), the issue time, the time of the
last issuance attempt and a generation number. It is written atomically with mode 0600 and is
never trusted when it is not a regular file, empty, corrupt, written for another scope, readable
by other users, or (read with the current time) stamped later than now.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import attrs

from ._config import KST, Env
from ._errors import ConfigurationError, TokenError
from ._statedir import (
    FileLock,
    atomic_write_text,
    key_fingerprint,
    make_file_lock,
    process_lock,
    read_private_json,
    scope_dir,
    stamps_from_the_future,
)

__all__ = [
    "LOCK_FILE_NAME",
    "STORE_FILE_NAME",
    "StoreState",
    "Token",
    "TokenStore",
    "parse_expiry",
    "parse_token_response",
]

log = logging.getLogger("kisclient.token")

#: File name of the token store inside the scope directory.
STORE_FILE_NAME = "token.json"
#: File name of the refresh lock inside the scope directory (fixed by the issue's contract).
LOCK_FILE_NAME = "hantu_token_refresh.lock"
_SCHEMA = 1


# --- the token ------------------------------------------------------------------------------


def _require_aware(value: dt.datetime) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError("Token.expires_at must be a timezone-aware datetime")


@attrs.frozen
class Token:
    """An access token. ``access_token`` never appears in ``repr`` or logs.

    ``expires_at`` is aware (parsed from the server's ``access_token_token_expired`` in KST);
    ``issued_at`` is Unix seconds when the token was received; ``generation`` grows by one with
    every new token stored for the scope.
    """

    access_token: str = attrs.field(repr=False)
    token_type: str
    expires_at: dt.datetime = attrs.field(validator=lambda _i, _a, v: _require_aware(v))
    issued_at: float
    generation: int

    @property
    def authorization(self) -> str:
        """The ``authorization`` header value: ``"Bearer <token>"``."""
        return f"Bearer {self.access_token}"

    def remaining(self, now: float) -> float:
        """Seconds of validity left at Unix time *now* (negative once expired)."""
        return self.expires_at.timestamp() - now

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in ``token.json``."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at.isoformat(),
            "issued_at": self.issued_at,
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, data: Any) -> Token:
        """Inverse of :meth:`to_json`; raises :class:`ValueError` on any schema mismatch."""
        if not isinstance(data, dict):
            raise ValueError("token must be an object")
        access, kind = data.get("access_token"), data.get("token_type")
        expires, issued, gen = data.get("expires_at"), data.get("issued_at"), data.get("generation")
        if not (isinstance(access, str) and access and isinstance(kind, str)):
            raise ValueError("bad access_token/token_type")
        if not isinstance(expires, str) or not _is_number(issued):
            raise ValueError("bad expires_at/issued_at")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
            raise ValueError("bad generation")
        expires_at = dt.datetime.fromisoformat(expires)
        if expires_at.tzinfo is None:
            raise ValueError("naive expires_at")
        return cls(access, kind, expires_at, float(issued), gen)


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_expiry(value: str) -> dt.datetime:
    """Parse ``access_token_token_expired`` (``"YYYY-MM-DD HH:MM:SS"``, Korea time) to aware UTC+9.

    A value that already carries an offset keeps it. Raises :class:`ValueError` if malformed.
    """
    parsed = dt.datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=KST)


def parse_token_response(body: Mapping[str, Any], *, issued_at: float, generation: int) -> Token:
    """Build a :class:`Token` from a tokenP response body.

    Expiry comes from ``access_token_token_expired`` (KST); only if that is absent, from
    ``issued_at + expires_in``. Raises :class:`TokenError` for a body without a usable token.
    """
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenError("token response has no access_token")
    token_type = body.get("token_type") or "Bearer"
    expired = body.get("access_token_token_expired")
    try:
        if isinstance(expired, str) and expired.strip():
            expires_at = parse_expiry(expired)
        else:
            seconds = float(body["expires_in"])
            expires_at = dt.datetime.fromtimestamp(issued_at + seconds, KST)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise TokenError("token response has no usable expiry") from None
    return Token(access, str(token_type), expires_at, issued_at, generation)


# --- the store ------------------------------------------------------------------------------


@attrs.frozen
class StoreState:
    """Everything ``token.json`` holds.

    ``generation`` is the highest generation ever stored in this scope (it survives
    :meth:`TokenStore.clear`); ``last_issue_attempt`` is the Unix time of the last issuance
    attempt by any process, successful or not.
    """

    token: Token | None = None
    last_issue_attempt: float | None = None
    generation: int = 0

    @property
    def next_generation(self) -> int:
        """The generation a newly issued token gets."""
        stored = self.token.generation if self.token else 0
        return max(self.generation, stored) + 1


class TokenStore:
    """The token file of one (environment, app key) scope under *state_dir*.

    Reads never raise or block for a missing, non-regular (FIFO, directory), empty, corrupt,
    wrong-schema, foreign-scope or non-private (group/other-accessible) file: such a file is
    ignored (logged at WARNING) and the state is treated as empty. Writes are atomic (see
    :func:`atomic_write_text`), mode 0600, in a directory of mode 0700; a write or lock that
    fails raises :class:`ConfigurationError` naming the file. Writers must hold :meth:`lock`
    (the manager does).
    """

    def __init__(self, state_dir: Path, env: Env, app_key: str) -> None:
        self.env = env
        self.directory = scope_dir(state_dir, env, app_key)
        self.path = self.directory / STORE_FILE_NAME
        self.lock_path = self.directory / LOCK_FILE_NAME
        self._key_hash = key_fingerprint(app_key)
        self.key_label = key_fingerprint(app_key, 8)

    def __repr__(self) -> str:
        return f"TokenStore(env={self.env.value}, key={self.key_label}, dir={self.directory})"

    def read(self, now: float | None = None) -> StoreState:
        """The whole stored state (empty if nothing trustworthy is stored).

        With *now* (Unix seconds), a state whose token was issued, or whose last issuance
        attempt was made, later than *now* is reset (WARNING naming the file): it was written
        before the clock was set back, or is corrupt, and trusting it would forbid issuance for
        longer than the one-minute rule. Only the generation counter survives the reset.
        """
        data = read_private_json(self.path, "token store")
        if data is None:
            return StoreState()
        try:
            state = self._decode(data)
        except (ValueError, TypeError, OverflowError) as exc:
            log.warning("ignoring token store %s with a wrong schema: %s", self.path, exc)
            return StoreState()
        if now is not None and self._from_the_future(state, now):
            return StoreState(generation=state.next_generation - 1)
        return state

    def _from_the_future(self, state: StoreState, now: float) -> bool:
        stamps = (
            ("the token's issue time", state.token.issued_at if state.token else None, 0.0),
            ("the last issuance attempt", state.last_issue_attempt, 0.0),
        )
        return stamps_from_the_future(self.path, "token store", now, stamps)

    def _decode(self, data: dict[str, Any]) -> StoreState:
        if data.get("schema") != _SCHEMA:
            raise ValueError(f"unknown schema {data.get('schema')!r}")
        if data.get("env") != self.env.value or data.get("key") != self._key_hash:
            raise ValueError("file belongs to another environment or app key")
        raw_token, attempt, gen = (
            data.get("token"),
            data.get("last_issue_attempt"),
            data.get("generation"),
        )
        token = None if raw_token is None else Token.from_json(raw_token)
        if attempt is not None and not _is_number(attempt):
            raise ValueError("bad last_issue_attempt")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise ValueError("bad generation")
        return StoreState(token, None if attempt is None else float(attempt), gen)

    def write(self, state: StoreState) -> None:
        """Replace the stored state atomically."""
        generation = max(state.generation, state.token.generation if state.token else 0)
        payload = {
            "schema": _SCHEMA,
            "env": self.env.value,
            "key": self._key_hash,
            "generation": generation,
            "last_issue_attempt": state.last_issue_attempt,
            "token": state.token.to_json() if state.token else None,
        }
        try:
            atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=True))
        except OSError as exc:
            raise self.unusable(exc) from None

    def load(self) -> Token | None:
        """The stored token, or ``None`` (missing or untrusted file; never raises for those)."""
        return self.read().token

    def save(self, token: Token) -> None:
        """Store *token* atomically, keeping the last attempt time (at least ``issued_at``)."""
        old = self.read()
        attempt = max(old.last_issue_attempt or token.issued_at, token.issued_at)
        self.write(StoreState(token, attempt, max(old.generation, token.generation)))

    def clear(self) -> None:
        """Forget the token, keeping the generation counter and the last attempt time."""
        old = self.read()
        self.write(StoreState(None, old.last_issue_attempt, old.next_generation - 1))

    def lock(self) -> FileLock:
        """A new ``fasteners.InterProcessLock`` on ``hantu_token_refresh.lock``.

        It excludes other processes only: take :meth:`thread_lock` first. Raises
        :class:`ConfigurationError` if the lock file cannot be created.
        """
        try:
            return make_file_lock(self.lock_path)
        except OSError as exc:
            raise self.unusable(exc) from None

    def unusable(self, exc: OSError) -> ConfigurationError:
        """The error for a token store (or its lock) that the file system refuses."""
        return ConfigurationError(
            f"kisclient token store in {self.directory} is not usable "
            f"({exc.strerror or exc}): make that directory writable by this user, mode 0700"
        )

    def thread_lock(self) -> threading.Lock:
        """The process-global lock of this scope, shared by every manager in the process."""
        return process_lock(self.lock_path)
