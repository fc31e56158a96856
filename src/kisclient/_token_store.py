"""The token store: one file per (environment, app key), the token in it, and how it is read.

``token.json`` in the scope directory (see :mod:`kisclient._statedir`) holds the access token,
its expiry as the server's ``access_token_token_expired`` (KST), the issue time, the time of the
last issuance attempt and a generation number. It is written atomically with mode 0600 and is
never trusted when it is not a regular file, empty, corrupt, written for another scope, readable
by other users, or (read with the current time) stamped later than now.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import attrs

from ._config import KST
from ._errors import TokenError
from ._statedir import ScopedFile, is_json_number, stamps_from_the_future

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
        if not isinstance(expires, str) or not is_json_number(issued):
            raise ValueError("bad expires_at/issued_at")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
            raise ValueError("bad generation")
        expires_at = dt.datetime.fromisoformat(expires)
        if expires_at.tzinfo is None:
            raise ValueError("naive expires_at")
        return cls(access, kind, expires_at, float(issued), gen)


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

    def to_payload(self) -> dict[str, Any]:
        """The stored form (without the schema and scope fields), shared by every backend."""
        generation = max(self.generation, self.token.generation if self.token else 0)
        return {
            "generation": generation,
            "last_issue_attempt": self.last_issue_attempt,
            "token": self.token.to_json() if self.token else None,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> StoreState:
        """Inverse of :meth:`to_payload`; raises :class:`ValueError` on any schema mismatch."""
        raw_token, attempt, gen = (
            data.get("token"),
            data.get("last_issue_attempt"),
            data.get("generation"),
        )
        token = None if raw_token is None else Token.from_json(raw_token)
        if attempt is not None and not is_json_number(attempt):
            raise ValueError("bad last_issue_attempt")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise ValueError("bad generation")
        return cls(token, None if attempt is None else float(attempt), gen)


class TokenStore(ScopedFile):
    """The token file of one (environment, app key) scope under *state_dir*.

    Reads never raise or block for a file that cannot be trusted (see :class:`ScopedFile`): the
    state is then empty. Writes are atomic, mode 0600, in a directory of mode 0700; a write or
    lock that fails raises :class:`ConfigurationError` naming the directory. Writers must hold
    :meth:`lock` (the manager does).
    """

    FILE_NAME = STORE_FILE_NAME
    LOCK_FILE_NAME = LOCK_FILE_NAME
    WHAT = "token store"
    SCHEMA = _SCHEMA

    def read(self, now: float | None = None) -> StoreState:
        """The whole stored state (empty if nothing trustworthy is stored).

        With *now* (Unix seconds), a state whose token was issued, or whose last issuance
        attempt was made, later than *now* is reset (WARNING naming the file): it was written
        before the clock was set back, or is corrupt, and trusting it would forbid issuance for
        longer than the one-minute rule. Only the generation counter survives the reset.
        """
        state = self._read_payload(self._decode)
        if state is None:
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
        return StoreState.from_payload(data)

    def write(self, state: StoreState) -> None:
        """Replace the stored state atomically."""
        self._write_payload(state.to_payload())

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
