"""Shared state: where the state every process on one app key shares lives.

KIS's limits are per app key (one token issuance a minute, the request windows, one WebSocket
session), so every process using a key must share: the access token and the approval key (with
single-flight issuance), the rate windows (with the penalty after EGW00201) and the stream lease.
A :class:`SharedState` hands out the four stores of one (environment, app key) scope:

- :class:`FileSharedState` (the default): the files of :mod:`kisclient._statedir` in
  ``state_dir``, shared by the processes of one host (:class:`~kisclient._token_store.TokenStore`,
  :class:`~kisclient._approval.ApprovalKeyStore`, :func:`~kisclient._ratelimit.make_limiter`,
  :class:`~kisclient._stream_lease.StreamLease`).
- ``RedisSharedState`` (:mod:`kisclient._redis_state`, needs ``kisclient[redis]``): the same
  contracts across hosts through one Redis server, degrading to a conservative local mode while
  Redis is unreachable.

:func:`make_shared_state` picks one from the ``shared_state`` setting (``KIS_SHARED_STATE``):
``None``/``""``/``"file"`` → files; ``redis://``, ``rediss://`` (TLS) or ``unix://`` → Redis.
One Redis backend is shared by every client of the process with the same URL and state
directory, so its health (and its one log line per outage) is per process, not per client.
Every store keeps the contracts of the file store; the contract suite
(``tests/kisclient/test_shared_state.py``) runs over both.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import attrs

from ._approval import ApprovalKeyStore, ApprovalStateStore
from ._clock import Clock
from ._config import Env
from ._errors import ConfigurationError
from ._ratelimit import RateLimiter, Window, make_limiter
from ._relay_channels import RelayChannel, UnixChannel
from ._statedir import scope_dir
from ._stream_lease import StreamLease
from ._token import TokenStateStore
from ._token_store import TokenStore

__all__ = [
    "REDIS_SCHEMES",
    "FileSharedState",
    "SharedState",
    "SharedStateStatus",
    "make_shared_state",
    "redact_url",
]

#: URL schemes that select the Redis backend.
REDIS_SCHEMES = ("redis", "rediss", "unix")


@attrs.frozen
class SharedStateStatus:
    """Where a client's shared state lives and whether it is shared right now.

    ``backend`` is ``"file"`` or ``"redis"``; ``mode`` is ``"shared"`` (every process and host
    on the backend counts together) or ``"local"`` (Redis is unreachable: this process uses its
    own token file and a reduced local budget, see docs/shared-state.md). ``where`` is the state
    directory or the Redis URL without its password. ``local_since`` is the Unix time the
    current local period began (``None`` when shared); ``outages`` counts local periods so far,
    and ``local_admissions`` the requests admitted by the local budget.
    """

    backend: Literal["file", "redis"]
    mode: Literal["shared", "local"]
    where: str
    local_since: float | None = None
    outages: int = 0
    local_admissions: int = 0


class SharedState(Protocol):
    """The stores of every (environment, app key) scope on one backend."""

    def token_store(self, env: Env, app_key: str) -> TokenStateStore:
        """The access-token store of the scope (for :class:`~kisclient._token.TokenManager`)."""
        ...

    def approval_store(self, env: Env, app_key: str) -> ApprovalStateStore:
        """The approval-key store of the scope (for :class:`~kisclient._approval.ApprovalKeys`)."""
        ...

    def limiter(
        self, windows: Sequence[Window], env: Env, app_key: str, clock: Clock
    ) -> RateLimiter:
        """The scope's rate windows (``windows`` empty: no limit)."""
        ...

    def stream_lease(self, env: Env, app_key: str) -> StreamLease:
        """The right to open the scope's one WebSocket session."""
        ...

    def relay_channel(self, env: Env, app_key: str) -> RelayChannel:
        """Where the session's owner relays it to the scope's other participants."""
        ...

    @property
    def status(self) -> SharedStateStatus:
        """Where the state lives and whether it is shared right now."""
        ...


class FileSharedState:
    """The files in *state_dir*: shared by the processes of one host (the default)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    def __repr__(self) -> str:
        return f"FileSharedState({self.state_dir})"

    def token_store(self, env: Env, app_key: str) -> TokenStore:
        return TokenStore(self.state_dir, env, app_key)

    def approval_store(self, env: Env, app_key: str) -> ApprovalKeyStore:
        return ApprovalKeyStore(self.state_dir, env, app_key)

    def limiter(
        self, windows: Sequence[Window], env: Env, app_key: str, clock: Clock
    ) -> RateLimiter:
        return make_limiter(
            windows, env=env, app_key=app_key, state_dir=self.state_dir, clock=clock
        )

    def stream_lease(self, env: Env, app_key: str) -> StreamLease:
        return StreamLease(self.state_dir, env, app_key)

    def relay_channel(self, env: Env, app_key: str) -> UnixChannel:
        return UnixChannel(scope_dir(self.state_dir, env, app_key))

    @property
    def status(self) -> SharedStateStatus:
        return SharedStateStatus("file", "shared", str(self.state_dir))


def redact_url(url: str) -> str:
    """*url* without its password (``redis://user:secret@host`` → ``redis://user:***@host``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


_BACKENDS: dict[tuple[str, str], SharedState] = {}
_BACKENDS_GUARD = threading.Lock()


def make_shared_state(spec: str | None, state_dir: Path) -> SharedState:
    """The backend named by *spec* (see the module docstring); *state_dir* holds the files of
    the file backend, and the local-mode files of the Redis one.

    Raises :class:`ConfigurationError` for an unknown scheme, or a Redis URL without the
    ``redis`` package installed (``pip install 'kisclient[redis]'``).
    """
    if spec is None or spec.strip() in ("", "file"):
        return FileSharedState(state_dir)
    scheme = urllib.parse.urlsplit(spec).scheme
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"shared_state must be 'file' or a redis://, rediss:// or unix:// URL, "
            f"not {redact_url(spec)!r}"
        )
    try:
        from ._redis_state import RedisSharedState  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ConfigurationError(
            "shared_state on Redis needs the redis package: pip install 'kisclient[redis]'"
        ) from None
    key = (spec, str(Path(state_dir).resolve()))
    with _BACKENDS_GUARD:
        backend = _BACKENDS.get(key)
        if backend is None:
            backend = _BACKENDS[key] = RedisSharedState(spec, state_dir)
        return backend
