"""Shared state on Redis: the file store's contracts across hosts (needs ``kisclient[redis]``).

Keys (``<prefix>`` is ``kisclient:v1``; ``<scope>`` is ``<env>-<sha256(app key)[:16]>``, the name
of the scope directory; neither the app key nor the secret appears in a key or a value)::

    <prefix>:{<scope>}:token            the token store's JSON (as token.json), TTL: the token's
                                        remaining life + 1 day
    <prefix>:{<scope>}:token:lock       the issuance lock: a random fence, SET NX PX (30 s)
    <prefix>:{<scope>}:approval         the approval key's JSON (as approval.json), TTL 2 days
    <prefix>:{<scope>}:approval:lock    its lock
    <prefix>:{<scope>}:rate             the rate windows: "blocked,tightened,h1,h2,..." in
                                        integer microseconds of Redis's clock
    <prefix>:{<scope>}:stream-lease     the stream lease: a hash (fence, deadline, pid, host, since)

Contracts:

- **Token and approval key** (:class:`RedisTokenStore`, :class:`RedisApprovalStore`): the
  managers of :mod:`kisclient._token` and :mod:`kisclient._approval` run unchanged over them:
  their lock is a Redis lock with an expiry (``SET NX PX``) taken after the process lock, every
  write is fenced (a Lua script writes only while the lock still holds this holder's fence) and
  the release is a compare-and-delete Lua script. The one-minute rule and the generation-guarded
  re-issue therefore hold across hosts as they hold across processes. Time stamps are the
  hosts' clocks (keep them in NTP): a stamp more than :data:`MAX_HOST_SKEW_S` ahead is treated
  as corrupt.
- **Rate windows** (:class:`RedisLimiter`): admission, settling and the penalty are each one Lua
  script, atomic, on Redis's own clock (``TIME``), with the semantics of
  :mod:`kisclient._ratelimit` (sliding multi-window admission, settle-at-answer, the EGW00201
  penalty shared by every host), in integer microseconds.
- **Stream lease** (:class:`RedisStreamLease`): this host's file lease first, then a lease in
  Redis with a fence and a deadline on Redis's clock, renewed every ``renew_s`` by a daemon
  thread. A silent owner's lease runs ``ttl_s`` past its last renewal plus ``slot_hold_s`` (the
  time KIS may keep a dead socket's slot), so no second socket opens while the first
  may be alive; then any process may take it over.
- **Redis unreachable or refusing** (:class:`RedisBackend`): every store degrades to local mode
  at once (one WARNING per outage, ``status.mode == "local"``): the token and approval key come from
  this host's files in ``state_dir`` (single-flight among this host's processes only), each
  process admits at most :data:`LOCAL_FRACTION` of each window's limit on its own (after a pause
  of one short window, see :class:`RedisLimiter`), and no stream
  session is started (whether another host holds it cannot be known). Redis is tried again
  every ``retry_after_s`` (real time), and shared mode resumes with the first success (one INFO).
  A token issued in local mode is not copied to Redis.

The async client drives these stores in worker threads, like the file store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._approval import ApprovalKey, ApprovalKeyStore, ApprovalState
from ._clock import Clock
from ._config import Env
from ._errors import ConfigurationError, RequestNotSent, StreamSlotBusy
from ._ratelimit import (
    MAX_PENALTY_S,
    TIGHTEN_FACTOR,
    TIGHTEN_S,
    InProcessLimiter,
    NullLimiter,
    RateLimiter,
    Window,
)
from ._relay_channels import RedisChannel
from ._shared_state import SharedStateStatus, redact_url
from ._statedir import CLOCK_TOLERANCE_S, FileLock, stamps_from_the_future
from ._stream_lease import _SHARE_HINT, StreamLease
from ._token_store import StoreState, Token, TokenStore

__all__ = [
    "LEASE_RENEW_S",
    "LEASE_TTL_S",
    "LOCAL_FRACTION",
    "LOCK_TTL_S",
    "MAX_HANDOVER_S",
    "MAX_HOST_SKEW_S",
    "PREFIX",
    "SLOT_HOLD_S",
    "RedisApprovalStore",
    "RedisBackend",
    "RedisLimiter",
    "RedisSharedState",
    "RedisStreamLease",
    "RedisTokenStore",
    "local_windows",
]

log = logging.getLogger("kisclient.shared")

#: Namespace of every key.
PREFIX = "kisclient:v1"
#: How long an issuance lock lives if its holder never releases it (it is held for one call).
LOCK_TTL_S = 30.0
#: How far a time stamp written by another host may lie ahead of this host's clock.
MAX_HOST_SKEW_S = 30.0
#: In local mode each process admits this fraction of each window's limit (at least 1).
LOCAL_FRACTION = 0.25
#: The stream lease is renewed this often ...
LEASE_RENEW_S = 5.0
#: ... and lapses this long after the last renewal ...
LEASE_TTL_S = 15.0
#: ... plus this margin: how long KIS may keep a silent owner's slot (reports: back off 15-30 s).
SLOT_HOLD_S = 30.0
#: Switching between shared and local mode, a process pauses (or carries its admissions over)
#: for the longest window, at most this long (see :class:`RedisLimiter`).
MAX_HANDOVER_S = 5.0
#: Seconds between attempts to reach Redis again in local mode.
RETRY_AFTER_S = 1.0
#: The stream relay's heartbeat on Redis: silence for three of them means the other side is gone.
RELAY_HEARTBEAT_S = 1.0
_SCHEMA = 1
_US = 1_000_000

S = TypeVar("S")
T = TypeVar("T")


class _Unavailable(Exception):
    """Redis cannot be reached now (the caller uses local mode)."""


# --- Lua ------------------------------------------------------------------------------------

#: The clock of every script: ARGV[1] "" → Redis TIME; "+N" → TIME + N µs; "=N" → N µs.
_CLOCK = """
local function clock(arg)
  if string.sub(arg, 1, 1) == '=' then return tonumber(string.sub(arg, 2)) end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if arg ~= '' then now = now + tonumber(string.sub(arg, 2)) end
  return now
end
"""

#: Rate state: load (resetting stamps no rule could have written), windows, prune, store.
#: ARGV: clock, ttl_ms, factor, tolerance_us, max_penalty_us, tighten_us, n, (limit, us) * n, ...
_RATE_COMMON = (
    _CLOCK
    + """
local now = clock(ARGV[1])
local ttl, factor = tonumber(ARGV[2]), tonumber(ARGV[3])
local tol, maxpen, tighten = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local n = tonumber(ARGV[7])
local windows = {}
for i = 1, n do windows[i] = {tonumber(ARGV[6 + 2 * i]), tonumber(ARGV[7 + 2 * i])} end
local extra = 8 + 2 * n
local blocked, tightened, hist, reset = 0, 0, {}, 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local i = 0
  for field in string.gmatch(raw, '[^,]+') do
    i = i + 1
    local v = tonumber(field)
    if i == 1 then blocked = v elseif i == 2 then tightened = v else hist[#hist + 1] = v end
  end
  table.sort(hist)
  if (#hist > 0 and hist[#hist] > now + tol) or blocked > now + maxpen + tol
      or tightened > now + maxpen + tighten + tol then
    blocked, tightened, hist, reset = 0, 0, {}, 1
  end
end
local function prune(h)
  local keep = 0
  for _, w in ipairs(windows) do
    local live = 0
    for _, s in ipairs(h) do if s + w[2] > now then live = live + 1 end end
    if math.min(live, w[1]) > keep then keep = math.min(live, w[1]) end
  end
  local out = {}
  for j = #h - keep + 1, #h do out[#out + 1] = h[j] end
  return out
end
local function store(h)
  local parts = {string.format('%d', blocked), string.format('%d', tightened)}
  for _, s in ipairs(h) do parts[#parts + 1] = string.format('%d', s) end
  redis.call('SET', KEYS[1], table.concat(parts, ','), 'PX', ttl)
end
"""
)

#: Admit one request now, or say how long to wait: returns {wait_us, now_us, reset}.
_ADMIT = (
    _RATE_COMMON
    + """
local target = math.max(now, blocked)
for _, w in ipairs(windows) do
  local limit = w[1]
  if now < tightened then limit = math.max(1, math.floor(limit * factor)) end
  if #hist >= limit then
    local edge = hist[#hist - limit + 1] + w[2]
    if edge > target then target = edge end
  end
end
if target > now then return {target - now, now, reset} end
hist[#hist + 1] = now
table.sort(hist)
store(prune(hist))
return {0, now, reset}
"""
)

#: Re-stamp the admission made at ARGV[extra] (µs) with now: returns {now_us, reset}.
_SETTLE = (
    _RATE_COMMON
    + """
local admitted = tonumber(ARGV[extra])
for j, s in ipairs(hist) do
  if s == admitted then table.remove(hist, j) break end
end
hist[#hist + 1] = math.max(admitted, now)
table.sort(hist)
store(prune(hist))
return {now, reset}
"""
)

#: The server answered EGW00201: block for ARGV[extra] µs, then tighten: returns {now_us, reset}.
_PENALIZE = (
    _RATE_COMMON
    + """
blocked = math.max(blocked, now + tonumber(ARGV[extra]))
tightened = math.max(tightened, blocked + tighten)
store(hist)
return {now, reset}
"""
)

#: KEYS: lock, data; ARGV: fence, value, ttl_ms. Writes only while the lock holds the fence.
_FENCED_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

#: KEYS: lock; ARGV: fence. Deletes the lock only if it still holds the fence.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: KEYS: lease; ARGV: clock, fence, hold_us, gc_ms, pid, host, since.
#: Returns {1} when taken, else {0, pid, host, microseconds left}.
_LEASE_ACQUIRE = (
    _CLOCK
    + """
local now = clock(ARGV[1])
local owner = redis.call('HGET', KEYS[1], 'fence')
if owner and owner ~= ARGV[2] then
  local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0')
  if deadline > now then
    return {0, redis.call('HGET', KEYS[1], 'pid') or '', redis.call('HGET', KEYS[1], 'host') or '',
            deadline - now}
  end
end
redis.call('DEL', KEYS[1])
local deadline = string.format('%d', now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'deadline', deadline,
           'pid', ARGV[5], 'host', ARGV[6], 'since', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1}
"""
)

#: KEYS: lease; ARGV: clock, fence, hold_us, gc_ms, pid, host, since.
#: 1 renewed; 2 re-taken (the key was gone: Redis lost it); 0 another holder has it (lost).
_LEASE_RENEW = (
    _CLOCK
    + """
local now = clock(ARGV[1])
local owner = redis.call('HGET', KEYS[1], 'fence')
if owner and owner ~= ARGV[2] then return 0 end
local deadline = string.format('%d', now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'fence', ARGV[2], 'deadline', deadline,
           'pid', ARGV[5], 'host', ARGV[6], 'since', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if owner then return 1 end
return 2
"""
)

#: KEYS: lease; ARGV: fence. Deletes the lease only if it is still this holder's.
_LEASE_RELEASE = """
if redis.call('HGET', KEYS[1], 'fence') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# --- the connection and its health ----------------------------------------------------------


class RedisBackend:
    """One Redis server, its scripts, and whether it is reachable (shared mode) or not (local).

    :meth:`run` performs one operation; any Redis error (unreachable, a timeout, or a server
    refusing: out of memory, a read-only replica, a missing ACL permission) switches to local
    mode (one WARNING naming the error) and raises :class:`_Unavailable`, as does any call made
    in local mode before ``retry_after_s`` (real time) has passed since the last failure. The
    first success after that switches back (one INFO). ``clock_arg`` shifts Redis's clock as
    this process's scripts see it (tests only; see :data:`_CLOCK`).
    """

    def __init__(
        self,
        url: str,
        *,
        retry_after_s: float = RETRY_AFTER_S,
        socket_timeout_s: float = 1.0,
    ) -> None:
        self.where = redact_url(url)
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 1),  # one immediate retry: a pooled connection may be stale
            decode_responses=True,
        )
        self.retry_after_s = retry_after_s
        self.clock_arg = ""
        self.admit = self.client.register_script(_ADMIT)
        self.settle = self.client.register_script(_SETTLE)
        self.penalize = self.client.register_script(_PENALIZE)
        self.fenced_set = self.client.register_script(_FENCED_SET)
        self.compare_and_delete = self.client.register_script(_COMPARE_AND_DELETE)
        self.lease_acquire = self.client.register_script(_LEASE_ACQUIRE)
        self.lease_renew = self.client.register_script(_LEASE_RENEW)
        self.lease_release = self.client.register_script(_LEASE_RELEASE)
        self._guard = threading.Lock()
        self._local_since: float | None = None
        self._retry_at = 0.0
        self.outages = 0
        self.local_admissions = 0
        self.local_note = ""

    def __repr__(self) -> str:
        return f"RedisBackend({self.where}, {'local' if self.local else 'shared'})"

    @property
    def local(self) -> bool:
        """Whether the last attempt to reach Redis failed (local mode)."""
        return self._local_since is not None

    def status(self) -> SharedStateStatus:
        return SharedStateStatus(
            "redis",
            "local" if self.local else "shared",
            self.where,
            self._local_since,
            self.outages,
            self.local_admissions,
        )

    def run(self, operation: Callable[[redis.Redis], T]) -> T:
        """*operation* on the client, or :class:`_Unavailable` (see the class docstring)."""
        with self._guard:
            if self._local_since is not None and time.monotonic() < self._retry_at:
                raise _Unavailable
        try:
            result = operation(self.client)
        except redis.RedisError as exc:  # unreachable, or refusing (OOM, READONLY, NOPERM...)
            self._failed(exc)
            raise _Unavailable from None
        if self._local_since is not None:
            self._recovered()
        return result

    def count_local_admission(self) -> None:
        with self._guard:
            self.local_admissions += 1

    def _failed(self, exc: Exception) -> None:
        with self._guard:
            self._retry_at = time.monotonic() + self.retry_after_s
            if self._local_since is not None:
                return
            self._local_since = time.time()
            self.outages += 1
        log.warning(
            "shared state %s is unreachable (%s: %.200s): LOCAL MODE: tokens and approval keys "
            "from this host's files, %d%% of each rate limit per process, no new stream session; "
            "retrying every %gs",
            self.where,
            type(exc).__name__,
            exc,
            round(LOCAL_FRACTION * 100),
            self.retry_after_s,
        )

    def _recovered(self) -> None:
        with self._guard:
            since, self._local_since = self._local_since, None
        if since is not None:
            log.info(
                "shared state %s is reachable again: shared mode (after %.1fs in local mode)",
                self.where,
                time.time() - since,
            )


def _scope_key(store_dir: Path, name: str) -> str:
    """The key of *name* in the scope whose directory is *store_dir* (``<env>-<hash>``)."""
    return f"{PREFIX}:{{{store_dir.name}}}:{name}"


# --- token and approval key -----------------------------------------------------------------


@attrs.frozen
class _Held:
    """How a store's lock is held: in Redis with *fence*, or the local file lock."""

    mode: Literal["redis", "local"]
    fence: str = ""
    file_lock: FileLock | None = None


class _SharedLock:
    """The lock :meth:`_RedisStore.lock` returns (the runner takes the process lock first)."""

    def __init__(self, store: _RedisStore[Any]) -> None:
        self._store = store

    def acquire(self) -> bool:
        """Take the Redis lock (waiting while another holder has it, at most its expiry), or, in
        local mode, this host's file lock."""
        store = self._store
        fence = secrets.token_hex(16)
        pause = 0.002
        while True:
            try:
                taken = store.backend.run(
                    lambda r: r.set(store.lock_key, fence, nx=True, px=int(LOCK_TTL_S * 1000))
                )
            except _Unavailable:
                file_lock = store.local.lock()
                file_lock.acquire()
                store.held = _Held("local", file_lock=file_lock)
                return True
            if taken:
                store.held = _Held("redis", fence=fence)
                return True
            time.sleep(pause)  # another host or process issues: poll until it releases
            pause = min(pause * 2, 0.05)

    def release(self) -> None:
        store = self._store
        held, store.held = store.held, None
        if held is None:
            return
        if held.file_lock is not None:
            held.file_lock.release()
            return
        with contextlib.suppress(_Unavailable):  # else it expires on its own
            store.backend.run(
                lambda r: store.backend.compare_and_delete(keys=[store.lock_key], args=[held.fence])
            )

    def __enter__(self) -> _SharedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _RedisStore(Generic[S]):
    """A state of one scope in one Redis key, with this host's file store for local mode.

    Implements :class:`kisclient._locked_flow.Store`: its process lock and lock path are the
    file store's, so local mode and shared mode exclude each other within a process.
    """

    NAME: ClassVar[str]
    WHAT: ClassVar[str]

    def __init__(self, backend: RedisBackend, local: TokenStore | ApprovalKeyStore) -> None:
        self.backend = backend
        self.local = local
        self.env: Env = local.env
        self.key_label = local.key_label
        self.lock_path = local.lock_path
        #: This host's file, used in local mode.
        self.path = local.path
        self.key = _scope_key(local.directory, self.NAME)
        self.lock_key = f"{self.key}:lock"
        self._key_hash = local.directory.name.rsplit("-", 1)[-1]
        self.held: _Held | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={self.env.value}, key={self.key_label}, "
            f"redis={self.backend.where})"
        )

    # -- the Store protocol --

    def lock(self) -> _SharedLock:
        return _SharedLock(self)

    def thread_lock(self) -> threading.Lock:
        return self.local.thread_lock()

    def unusable(self, exc: OSError) -> ConfigurationError:
        return self.local.unusable(exc)

    def read(self, now: float | None = None) -> S:
        """The stored state: from Redis, or (local mode) this host's file.

        Raises :class:`RequestNotSent` if Redis fails while its lock is held (nothing was sent
        to KIS; the call may be repeated, and then runs in local mode).
        """
        held = self.held
        if held is not None and held.mode == "local":
            return self._local_read(now)
        try:
            raw = self.backend.run(lambda r: cast("str | None", r.get(self.key)))
        except _Unavailable:
            if held is not None:
                raise self._lost() from None
            return self._local_read(now)
        return self._decode(raw, now)

    def write(self, state: S) -> None:
        """Store *state* (the lock is held): in Redis only while the lock is still this
        holder's (fenced), else :class:`RequestNotSent`; in local mode, the file."""
        held = self.held
        assert held is not None, f"{self.WHAT}: write without the lock"
        if held.mode == "local":
            self.local.write(state)  # type: ignore[arg-type]
            return
        payload = {"schema": _SCHEMA, "env": self.env.value, "key": self._key_hash}
        value = json.dumps({**payload, **self._payload(state)}, sort_keys=True)
        ttl_ms = max(1, int(self._ttl_s(state) * 1000))
        try:
            written = self.backend.run(
                lambda r: self.backend.fenced_set(
                    keys=[self.lock_key, self.key], args=[held.fence, value, ttl_ms]
                )
            )
        except _Unavailable:
            raise self._lost() from None
        if not written:
            raise RequestNotSent(
                f"the {self.WHAT} lock in {self.backend.where} expired before the write "
                f"(held more than {LOCK_TTL_S:g}s); nothing was stored"
            )

    # -- per kind --

    def _local_read(self, now: float | None) -> S:
        raise NotImplementedError

    def _payload(self, state: S) -> dict[str, Any]:
        raise NotImplementedError

    def _from_payload(self, data: dict[str, Any]) -> S:
        raise NotImplementedError

    def _empty(self) -> S:
        raise NotImplementedError

    def _future(self, state: S, now: float) -> S | None:
        """The reset state if *state* carries stamps from the future, else ``None``."""
        raise NotImplementedError

    def _ttl_s(self, state: S) -> float:
        raise NotImplementedError

    # -- helpers --

    def _decode(self, raw: str | None, now: float | None) -> S:
        if raw is None:
            return self._empty()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
                raise ValueError("unknown schema")
            if data.get("env") != self.env.value or data.get("key") != self._key_hash:
                raise ValueError("value belongs to another environment or app key")
            state = self._from_payload(data)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            log.warning(
                "ignoring %s in %s key %s: %s", self.WHAT, self.backend.where, self.key, exc
            )
            return self._empty()
        if now is not None:
            reset = self._future(state, now)
            if reset is not None:
                return reset
        return state

    def _stamps_ahead(
        self, now: float, stamps: tuple[tuple[str, float | None, float], ...]
    ) -> bool:
        """Stamps later than another host's clock could have written (skew allowed)."""
        where = Path(f"{self.backend.where}/{self.key}")
        return stamps_from_the_future(where, self.WHAT, now + MAX_HOST_SKEW_S, stamps)

    def _lost(self) -> RequestNotSent:
        return RequestNotSent(
            f"shared state {self.backend.where} became unreachable while the {self.WHAT} lock "
            "was held; nothing was sent (the next call runs in local mode)"
        )


class RedisTokenStore(_RedisStore[StoreState]):
    """The token store of one scope in Redis (see the module docstring)."""

    NAME = "token"
    WHAT = "token store"
    local: TokenStore

    def __init__(self, backend: RedisBackend, local: TokenStore) -> None:
        super().__init__(backend, local)

    def load(self) -> Token | None:
        return self.read().token

    def clear(self) -> None:
        """Forget the token, keeping the generation and the last attempt (lock held)."""
        old = self.read()
        self.write(StoreState(None, old.last_issue_attempt, old.next_generation - 1))

    def _local_read(self, now: float | None) -> StoreState:
        return self.local.read(now)

    def _payload(self, state: StoreState) -> dict[str, Any]:
        return state.to_payload()

    def _from_payload(self, data: dict[str, Any]) -> StoreState:
        return StoreState.from_payload(data)

    def _empty(self) -> StoreState:
        return StoreState()

    def _future(self, state: StoreState, now: float) -> StoreState | None:
        stamps = (
            ("the token's issue time", state.token.issued_at if state.token else None, 0.0),
            ("the last issuance attempt", state.last_issue_attempt, 0.0),
        )
        if self._stamps_ahead(now, stamps):
            return StoreState(generation=state.next_generation - 1)
        return None

    def _ttl_s(self, state: StoreState) -> float:
        day = 86400.0
        if state.token is None:
            return day
        return max(0.0, state.token.remaining(time.time())) + day


class RedisApprovalStore(_RedisStore[ApprovalState]):
    """The approval-key store of one scope in Redis (see the module docstring)."""

    NAME = "approval"
    WHAT = "approval key store"
    local: ApprovalKeyStore

    def __init__(self, backend: RedisBackend, local: ApprovalKeyStore) -> None:
        super().__init__(backend, local)

    def load(self) -> ApprovalKey | None:
        return self.read().key

    def _local_read(self, now: float | None) -> ApprovalState:
        return self.local.read(now)

    def _payload(self, state: ApprovalState) -> dict[str, Any]:
        return state.to_payload()

    def _from_payload(self, data: dict[str, Any]) -> ApprovalState:
        return ApprovalState.from_payload(data)

    def _empty(self) -> ApprovalState:
        return ApprovalState()

    def _future(self, state: ApprovalState, now: float) -> ApprovalState | None:
        stamps = (
            ("the key's issue time", state.key.issued_at if state.key else None, 0.0),
            ("the last issuance attempt", state.last_issue_attempt, 0.0),
        )
        return ApprovalState() if self._stamps_ahead(now, stamps) else None

    def _ttl_s(self, state: ApprovalState) -> float:
        return 2 * 86400.0


# --- rate windows ---------------------------------------------------------------------------


def local_windows(windows: Sequence[Window]) -> tuple[Window, ...]:
    """The windows one process keeps in local mode: :data:`LOCAL_FRACTION` of each limit,
    rounded down, at least 1."""
    return tuple(Window(max(1, math.floor(w.limit * LOCAL_FRACTION)), w.seconds) for w in windows)


def _us(seconds: float) -> int:
    """Seconds as whole microseconds, rounded up (a window never shrinks)."""
    return math.ceil(round(seconds * _US, 3))


class RedisLimiter:
    """The rate windows of one scope in Redis, on Redis's clock (see the module docstring).

    Implements :class:`kisclient._ratelimit.RateLimiter`. Stamps handed out by :meth:`acquire`
    are Redis times in seconds; :meth:`settle` re-stamps in Redis what Redis admitted, and in
    the local limiter what local mode admitted (a stamp it does not know is ignored).

    Mode changes keep the server's windows: entering local mode, the local budget opens only
    after the longest window (at most :data:`MAX_HANDOVER_S`), when what all hosts sent in
    shared mode has left it; returning to shared mode, the local admissions of that last
    stretch are first added to Redis's history, stamped with Redis's "now". Windows longer than
    :data:`MAX_HANDOVER_S` are kept across a mode change only approximately (local mode admits
    a fraction of them per process).
    """

    _MAX_OPEN = 4096

    def __init__(
        self, backend: RedisBackend, key: str, windows: Sequence[Window], clock: Clock
    ) -> None:
        self.windows = tuple(windows)
        if not self.windows:
            raise ValueError("a limiter needs at least one window (use NullLimiter for none)")
        self.backend = backend
        self.key = key
        self._clock = clock
        self._local = InProcessLimiter(local_windows(self.windows), clock)
        longest = max(w.seconds for w in self.windows)
        self._ttl_ms = math.ceil((longest + MAX_PENALTY_S + TIGHTEN_S + 1) * 1000)
        self._window_args: list[int | float | str] = [len(self.windows)]
        for w in self.windows:
            self._window_args += [w.limit, _us(w.seconds)]
        self._open: dict[float, list[bool]] = {}  # stamp → [from Redis?] of unsettled admissions
        self._open_guard = threading.Lock()
        self._handover_s = min(longest, MAX_HANDOVER_S)
        self._was_local = False

    def __repr__(self) -> str:
        return f"RedisLimiter({list(self.windows)}, {self.backend.where})"

    def _args(self, clock_arg: str, *extra: int) -> list[int | float | str]:
        return [
            clock_arg,
            self._ttl_ms,
            TIGHTEN_FACTOR,
            _us(CLOCK_TOLERANCE_S),
            _us(MAX_PENALTY_S),
            _us(TIGHTEN_S),
            *self._window_args,
            *extra,
        ]

    # -- the scripts, with the clock as an argument (the property tests pass their own) --

    def admit_at(self, clock_arg: str) -> tuple[int, int]:
        """One admission attempt: (wait µs, Redis time µs); raises :class:`_Unavailable`."""
        wait, now, reset = self.backend.run(
            lambda r: self.backend.admit(keys=[self.key], args=self._args(clock_arg))
        )
        self._note_reset(reset)
        return int(wait), int(now)

    def settle_at(self, clock_arg: str, admitted_us: int) -> None:
        _now, reset = self.backend.run(
            lambda r: self.backend.settle(keys=[self.key], args=self._args(clock_arg, admitted_us))
        )
        self._note_reset(reset)

    def penalize_at(self, clock_arg: str, seconds_us: int) -> None:
        _now, reset = self.backend.run(
            lambda r: self.backend.penalize(keys=[self.key], args=self._args(clock_arg, seconds_us))
        )
        self._note_reset(reset)

    def _note_reset(self, reset: object) -> None:
        if reset:
            log.warning(
                "reset rate-limit state %s in %s: it held stamps from the future (Redis's clock "
                "was set back, or the state is corrupt)",
                self.key,
                self.backend.where,
            )

    # -- RateLimiter --

    def _try_admit(self) -> tuple[float, float]:
        """(wait, stamp): admitted (in Redis or, in local mode, locally) when wait is 0."""
        try:
            if self._was_local:
                self._hand_back()
            wait_us, now_us = self.admit_at(self.backend.clock_arg)
        except _Unavailable:
            self._enter_local()
            wait, stamp = self._local._try_admit()
            if wait <= 0:
                self.backend.count_local_admission()
                self._remember(stamp, remote=False)
            return wait, stamp
        self._was_local = False
        if wait_us > 0:
            return wait_us / _US, now_us / _US
        stamp = now_us / _US
        self._remember(stamp, remote=True)
        return 0.0, stamp

    def _enter_local(self) -> None:
        """Shared → local: admit nothing locally for the first ``_handover_s``, so what every
        host sent in the last (short) window has aged out before this budget starts."""
        with self._open_guard:
            if self._was_local:
                return
            self._was_local = True
        until = self._clock.monotonic() + self._handover_s
        self._local._transact(
            lambda s: (attrs.evolve(s, blocked_until=max(s.blocked_until, until)), None)
        )

    def _hand_back(self) -> None:
        """Local → shared: count this process's local admissions of the last ``_handover_s``
        in Redis, stamped now (never less conservative); raises :class:`_Unavailable`."""
        now = self._clock.monotonic()
        recent = sum(1 for h in self._local.state().history if h + self._handover_s > now)
        for _ in range(recent):
            self.settle_at(self.backend.clock_arg, 0)  # settling an unknown stamp adds "now"

    def _remember(self, stamp: float, *, remote: bool) -> None:
        with self._open_guard:
            self._open.setdefault(stamp, []).append(remote)
            while len(self._open) > self._MAX_OPEN:  # admissions never settled (errors)
                del self._open[next(iter(self._open))]

    def try_acquire(self) -> float:
        return self._try_admit()[0]

    def acquire(self) -> float:
        while True:
            wait, stamp = self._try_admit()
            if wait <= 0:
                return stamp
            self._clock.sleep(wait)

    async def aacquire(self) -> float:
        while True:
            wait, stamp = await asyncio.to_thread(self._try_admit)
            if wait <= 0:
                return stamp
            await self._clock.asleep(wait)

    def settle(self, admitted_at: float) -> None:
        with self._open_guard:
            origins = self._open.get(admitted_at)
            if not origins:
                return
            remote = origins.pop()
            if not origins:
                del self._open[admitted_at]
        if not remote:
            self._local.settle(admitted_at)
            return
        with contextlib.suppress(_Unavailable):  # else it ages out of Redis's windows
            self.settle_at(self.backend.clock_arg, round(admitted_at * _US))

    async def asettle(self, admitted_at: float) -> None:
        await asyncio.to_thread(self.settle, admitted_at)

    def penalize(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_PENALTY_S):
            raise ValueError(f"penalty must be between 0 and {MAX_PENALTY_S:g}s, not {seconds!r}")
        try:
            self.penalize_at(self.backend.clock_arg, _us(seconds))
        except _Unavailable:
            self._local.penalize(seconds)
            return
        log.warning(
            "rate limit hit (EGW00201): admissions blocked for %.2fs on every host", seconds
        )

    async def apenalize(self, seconds: float) -> None:
        await asyncio.to_thread(self.penalize, seconds)


# --- the stream lease -----------------------------------------------------------------------


class RedisStreamLease(StreamLease):
    """One WebSocket session per app key across hosts (see the module docstring).

    :meth:`acquire` takes this host's file lease (:class:`StreamLease`), then the Redis lease;
    it raises :class:`StreamSlotBusy` naming the owner when another process holds either, and
    also when Redis is unreachable (no socket is opened while another host may own one).
    ``lost`` turns true if a renewal finds another holder (this lease had lapsed: the owner
    was silent longer than ``ttl_s + slot_hold_s``); it is logged at ERROR.
    """

    def __init__(
        self,
        backend: RedisBackend,
        state_dir: Path,
        env: Env,
        app_key: str,
        *,
        renew_s: float = LEASE_RENEW_S,
        ttl_s: float = LEASE_TTL_S,
        slot_hold_s: float = SLOT_HOLD_S,
    ) -> None:
        super().__init__(state_dir, env, app_key)
        self.backend = backend
        self.key = _scope_key(self.directory, "stream-lease")
        self.renew_s, self.ttl_s, self.slot_hold_s = renew_s, ttl_s, slot_hold_s
        self.lost = False
        self._fence = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._identity = (str(os.getpid()), socket.gethostname(), repr(time.time()))

    def _lease_args(self) -> list[str | int]:
        hold_us = _us(self.ttl_s + self.slot_hold_s)
        gc_ms = math.ceil((self.ttl_s + self.slot_hold_s) * 1000) + 3_600_000
        return [self.backend.clock_arg, self._fence, hold_us, gc_ms, *self._identity]

    def acquire(self) -> None:
        super().acquire()
        try:
            self._acquire_shared()
        except BaseException:
            super().release()
            raise

    def _acquire_shared(self) -> None:
        self._fence = secrets.token_hex(16)
        self._identity = (str(os.getpid()), socket.gethostname(), repr(time.time()))
        try:
            answer = self.backend.run(
                lambda r: self.backend.lease_acquire(keys=[self.key], args=self._lease_args())
            )
        except _Unavailable:
            raise StreamSlotBusy(
                f"the KIS WebSocket slot (env={self.env.value}, key={self.key_label}) cannot be "
                f"checked: shared state {self.backend.where} is unreachable, and another host "
                "may hold the session; not connecting"
            ) from None
        if int(answer[0]) != 1:
            pid, host, left_us = answer[1], answer[2], int(answer[3])
            raise StreamSlotBusy(
                f"the KIS WebSocket slot (env={self.env.value}, key={self.key_label}) is held by "
                f"pid {pid} on host {host} (its lease runs {left_us / _US:.0f}s more unless "
                f"renewed); KIS allows one session per app key{_SHARE_HINT}",
                owner_pid=int(pid) if pid.isdigit() else None,
                owner_host=host or None,
            )
        self.lost = False
        self._stop = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew_loop, args=(self._stop,), name="kisclient-stream-lease", daemon=True
        )
        self._renewer.start()

    def renew(self) -> bool:
        """Renew the lease once now; ``False`` if it was lost to another holder (or Redis is
        unreachable: then the lease simply runs on until Redis answers again)."""
        try:
            answer = self.backend.run(
                lambda r: self.backend.lease_renew(keys=[self.key], args=self._lease_args())
            )
        except _Unavailable:
            return False
        if int(answer) == 0:
            if not self.lost:
                log.error(
                    "the KIS WebSocket lease (env=%s, key=%s) was taken over by another process: "
                    "this session was silent longer than %gs; closing it",
                    self.env.value,
                    self.key_label,
                    self.ttl_s + self.slot_hold_s,
                )
                self.lost = True
                if self.on_lost is not None:
                    self.on_lost()
            return False
        return True

    def _renew_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_s):
            if not self.renew() and self.lost:
                return

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join(timeout=5.0)
        fence = self._fence
        try:
            self.backend.run(lambda r: self.backend.lease_release(keys=[self.key], args=[fence]))
        except _Unavailable:
            log.warning(
                "could not release the KIS WebSocket lease in %s (unreachable): it lapses in %gs",
                self.backend.where,
                self.ttl_s + self.slot_hold_s,
            )
        finally:
            super().release()

    def owner(self) -> tuple[int, str, float] | None:
        """``(pid, host, since)`` of the Redis lease's holder; this host's owner file if Redis
        is unreachable."""
        try:
            record = self.backend.run(lambda r: r.hgetall(self.key))
        except _Unavailable:
            return super().owner()
        try:
            return int(record["pid"]), str(record["host"]), float(record["since"])
        except (KeyError, ValueError, TypeError):
            return None


# --- the backend ----------------------------------------------------------------------------


class RedisSharedState:
    """The stores of every scope on one Redis server (see :mod:`kisclient._shared_state`).

    *state_dir* holds this host's files: the file leases and the local-mode token and approval
    files. Lease timings are arguments for tests and special deployments.
    """

    def __init__(
        self,
        url: str,
        state_dir: Path,
        *,
        retry_after_s: float = RETRY_AFTER_S,
        lease_renew_s: float = LEASE_RENEW_S,
        lease_ttl_s: float = LEASE_TTL_S,
        slot_hold_s: float = SLOT_HOLD_S,
    ) -> None:
        self.backend = RedisBackend(url, retry_after_s=retry_after_s)
        self._url = url  # may hold a password: for the relay's own connections only
        self.relay_heartbeat_s = RELAY_HEARTBEAT_S
        self.state_dir = Path(state_dir)
        self._lease_timing = {"renew_s": lease_renew_s, "ttl_s": lease_ttl_s}
        self._slot_hold_s = slot_hold_s

    def __repr__(self) -> str:
        return f"RedisSharedState({self.backend.where}, local files in {self.state_dir})"

    def close(self) -> None:
        """Close the connections (a client of :func:`make_shared_state` never needs to: one
        backend serves the process for its lifetime)."""
        self.backend.client.close()

    def token_store(self, env: Env, app_key: str) -> RedisTokenStore:
        return RedisTokenStore(self.backend, TokenStore(self.state_dir, env, app_key))

    def approval_store(self, env: Env, app_key: str) -> RedisApprovalStore:
        return RedisApprovalStore(self.backend, ApprovalKeyStore(self.state_dir, env, app_key))

    def limiter(
        self, windows: Sequence[Window], env: Env, app_key: str, clock: Clock
    ) -> RateLimiter:
        if not windows:
            return NullLimiter()
        directory = TokenStore(self.state_dir, env, app_key).directory
        return RedisLimiter(self.backend, _scope_key(directory, "rate"), windows, clock)

    def stream_lease(self, env: Env, app_key: str) -> RedisStreamLease:
        return RedisStreamLease(
            self.backend,
            self.state_dir,
            env,
            app_key,
            renew_s=self._lease_timing["renew_s"],
            ttl_s=self._lease_timing["ttl_s"],
            slot_hold_s=self._slot_hold_s,
        )

    def relay_channel(self, env: Env, app_key: str) -> RedisChannel:
        directory = TokenStore(self.state_dir, env, app_key).directory
        return RedisChannel(
            self._url, _scope_key(directory, "relay:"), heartbeat_s=self.relay_heartbeat_s
        )

    @property
    def status(self) -> SharedStateStatus:
        return self.backend.status()
