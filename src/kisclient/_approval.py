"""The WebSocket approval key (``POST /oauth2/Approval``), shared across processes like the token.

``approval.json`` lives in the same scope directory as ``token.json`` (see
:mod:`kisclient._statedir`): one file per (environment, app key), written atomically with mode
0600, guarded by ``approval.lock`` beside it. It holds the current approval key with its issue
time and the time of the last issuance attempt by any process (for pacing).

Rules (KIS's approval-key and WebSocket limits):

- A key is valid 24 h but only checked when a session *starts*; a key younger than 24 h minus a
  margin (10 minutes by default) is reused, by every process of the scope.
- Issuance is limited to one per second per app key: a new issuance starts at least
  ``min_issue_interval_s`` (1.0 s) after the last attempt recorded by any process.
- After ``OPSP0011 invalid approval`` the caller reports the key it used
  (:meth:`ApprovalKeys.invalidate`); the stored key is dropped only if it is still that key, so
  N callers that saw the same dead key cause one issuance.

The sync and async paths share one generator flow (:meth:`ApprovalKeys._get_flow`,
:meth:`ApprovalKeys._invalidate_flow`); the drivers only perform its lock, I/O, issue and sleep
steps (:class:`kisclient._locked_flow.LockedFlowRunner`, shared with the token manager), the
async driver taking the locks in a worker thread so the event loop is never blocked. The key's
value never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from ._clock import Clock
from ._config import Env
from ._errors import RequestNotSent, TokenError
from ._locked_flow import LockedFlowRunner, Op, Step, Store, Wait, Write
from ._statedir import ScopedFile, is_json_number, stamps_from_the_future

__all__ = [
    "APPROVAL_FILE_NAME",
    "APPROVAL_LIFETIME_S",
    "APPROVAL_LOCK_FILE_NAME",
    "APPROVAL_MIN_ISSUE_INTERVAL_S",
    "APPROVAL_REUSE_MARGIN_S",
    "AIssueApprovalFn",
    "ApprovalKey",
    "ApprovalKeyStore",
    "ApprovalKeys",
    "ApprovalState",
    "ApprovalStateStore",
    "IssueApprovalFn",
    "parse_approval_response",
]

log = logging.getLogger("kisclient.approval")

#: File name of the approval-key store inside the scope directory.
APPROVAL_FILE_NAME = "approval.json"
#: File name of its lock, beside it.
APPROVAL_LOCK_FILE_NAME = "approval.lock"
#: How long KIS accepts an approval key for starting a session.
APPROVAL_LIFETIME_S = 24 * 3600.0
#: A stored key is reused only while younger than the lifetime minus this margin.
APPROVAL_REUSE_MARGIN_S = 600.0
#: KIS issues at most one approval key per second per app key.
APPROVAL_MIN_ISSUE_INTERVAL_S = 1.0
_SCHEMA = 1

IssueApprovalFn = Callable[[], Mapping[str, Any]]
"""Sync issuance: POSTs ``/oauth2/Approval`` and returns the JSON body
(``{"approval_key": "..."}``). It runs while the approval lock is held: it must not sleep or call
back into :class:`ApprovalKeys`. Raising :class:`RequestNotSent` means the server never saw it."""
AIssueApprovalFn = Callable[[], Awaitable[Mapping[str, Any]]]
"""The async twin of :data:`IssueApprovalFn`."""

_T = TypeVar("_T")


# --- the key --------------------------------------------------------------------------------


@attrs.frozen
class ApprovalKey:
    """A WebSocket approval key. ``value`` never appears in ``repr``/``str`` or logs.

    ``issued_at`` is Unix seconds (``clock.time()``) when the issuance request was sent: a
    conservative start of the key's 24 h validity.
    """

    value: str = attrs.field(repr=False)
    issued_at: float

    def age(self, now: float) -> float:
        """Seconds since issuance at Unix time *now*."""
        return now - self.issued_at

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in ``approval.json``."""
        return {"value": self.value, "issued_at": self.issued_at}

    @classmethod
    def from_json(cls, data: Any) -> ApprovalKey:
        """Inverse of :meth:`to_json`; raises :class:`ValueError` (without the value) on any
        schema mismatch."""
        if not isinstance(data, dict):
            raise ValueError("approval key must be an object")
        value, issued = data.get("value"), data.get("issued_at")
        if not isinstance(value, str) or not value:
            raise ValueError("bad approval key value")
        if not is_json_number(issued):
            raise ValueError("bad approval key issued_at")
        return cls(value, float(issued))


def parse_approval_response(body: object, *, issued_at: float) -> ApprovalKey:
    """Build an :class:`ApprovalKey` from a ``/oauth2/Approval`` body.

    Raises :class:`TokenError` (whose message holds no part of the body) unless *body* is a
    mapping whose ``approval_key`` is a non-empty string.
    """
    value = body.get("approval_key") if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise TokenError("approval response has no usable approval_key")
    return ApprovalKey(value.strip(), issued_at)


# --- the store ------------------------------------------------------------------------------


@attrs.frozen
class ApprovalState:
    """Everything ``approval.json`` holds: the key (if any) and the Unix time of the last
    issuance attempt by any process (successful or not)."""

    key: ApprovalKey | None = None
    last_issue_attempt: float | None = None

    def to_payload(self) -> dict[str, Any]:
        """The stored form (without the schema and scope fields), shared by every backend."""
        return {
            "last_issue_attempt": self.last_issue_attempt,
            "approval": self.key.to_json() if self.key else None,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> ApprovalState:
        """Inverse of :meth:`to_payload`; raises :class:`ValueError` on any schema mismatch."""
        raw, attempt = data.get("approval"), data.get("last_issue_attempt")
        key = None if raw is None else ApprovalKey.from_json(raw)
        if attempt is not None and not is_json_number(attempt):
            raise ValueError("bad last_issue_attempt")
        return cls(key, None if attempt is None else float(attempt))


class ApprovalKeyStore(ScopedFile):
    """The approval-key file of one (environment, app key) scope under *state_dir*.

    Reads never raise or block for a file that cannot be trusted (see :class:`ScopedFile`): the
    state is then empty ("no key"). Writes are atomic, mode 0600, in the 0700 scope directory.
    Writers must hold :meth:`thread_lock` then :meth:`lock` (:class:`ApprovalKeys` does).
    """

    FILE_NAME = APPROVAL_FILE_NAME
    LOCK_FILE_NAME = APPROVAL_LOCK_FILE_NAME
    WHAT = "approval key store"
    SCHEMA = _SCHEMA

    def read(self, now: float | None = None) -> ApprovalState:
        """The stored state (empty if nothing trustworthy is stored).

        With *now* (Unix seconds), a state whose key was issued, or whose last attempt was made,
        later than *now* (beyond the clock tolerance) is treated as empty (WARNING naming the
        file): it was written before the clock was set back, or is corrupt.
        """
        state = self._read_payload(self._decode)
        if state is None:
            return ApprovalState()
        if now is not None:
            stamps = (
                ("the key's issue time", state.key.issued_at if state.key else None, 0.0),
                ("the last issuance attempt", state.last_issue_attempt, 0.0),
            )
            if stamps_from_the_future(self.path, "approval key store", now, stamps):
                return ApprovalState()
        return state

    def _decode(self, data: dict[str, Any]) -> ApprovalState:
        return ApprovalState.from_payload(data)

    def write(self, state: ApprovalState) -> None:
        """Replace the stored state atomically (mode 0600)."""
        self._write_payload(state.to_payload())

    def load(self) -> ApprovalKey | None:
        """The stored key, or ``None``, without locking or judging its age."""
        return self.read().key


# --- the manager ----------------------------------------------------------------------------


class ApprovalStateStore(Store[ApprovalState], Protocol):
    """What :class:`ApprovalKeys` needs of its store: the file store
    (:class:`ApprovalKeyStore`) or a shared one (:mod:`kisclient._shared_state`)."""

    @property
    def env(self) -> Env: ...

    @property
    def key_label(self) -> str: ...

    @property
    def path(self) -> Path:
        """The file this host keeps the state in (with a shared backend: in local mode)."""
        ...

    def load(self) -> ApprovalKey | None: ...


class ApprovalKeys(LockedFlowRunner[ApprovalState]):
    """Hands out approval keys for one scope, issuing at most once per need across processes.

    ``issue_fn`` / ``aissue_fn`` POST ``/oauth2/Approval`` (see :data:`IssueApprovalFn`). The
    sync methods need ``issue_fn``; the async ones use ``aissue_fn``, or ``issue_fn`` in a
    worker thread if only that is given (else :class:`ConfigurationError` when an issuance is
    needed).

    :meth:`get` returns the stored key while it is younger than ``lifetime_s - reuse_margin_s``
    (checked without a lock: writes are atomic). Otherwise, under the scope's process and file
    locks, it re-reads the store (another process may have issued) and, if still needed, issues:
    the attempt time is persisted first, so the ``min_issue_interval_s`` pacing holds across
    processes even after a failed attempt (an attempt that raised :class:`RequestNotSent` is
    rolled back). When the last attempt is too recent, the locks are released, the clock sleeps
    the remaining time, and the check starts over. Nothing sleeps while a lock is held.
    """

    def __init__(
        self,
        store: ApprovalStateStore,
        clock: Clock,
        issue_fn: IssueApprovalFn | None = None,
        *,
        aissue_fn: AIssueApprovalFn | None = None,
        lifetime_s: float = APPROVAL_LIFETIME_S,
        reuse_margin_s: float = APPROVAL_REUSE_MARGIN_S,
        min_issue_interval_s: float = APPROVAL_MIN_ISSUE_INTERVAL_S,
    ) -> None:
        if not 0 <= reuse_margin_s < lifetime_s or min_issue_interval_s < 0:
            raise ValueError("need 0 <= reuse_margin_s < lifetime_s and min_issue_interval_s >= 0")
        super().__init__(store, clock, issue_fn, aissue_fn, "ApprovalKeys")
        self.store = store
        self.lifetime_s = lifetime_s
        self.reuse_margin_s = reuse_margin_s
        self.min_issue_interval_s = min_issue_interval_s
        #: How many keys this manager has issued.
        self.issuances = 0

    def __repr__(self) -> str:
        return f"ApprovalKeys({self.store!r}, issuances={self.issuances})"

    # -- public API --

    def get(self) -> ApprovalKey:
        """A key fit to start a session: stored (maybe by another process) or newly issued.

        Raises :class:`TokenError` for an unusable answer, and whatever ``issue_fn`` raises.
        """
        return self._run_sync(self._get_flow())

    async def aget(self) -> ApprovalKey:
        """Async :meth:`get`; never blocks the event loop on a lock or file."""
        return await self._run_async(self._get_flow())

    def invalidate(self, seen: ApprovalKey) -> None:
        """KIS refused *seen* (``OPSP0011``): the next :meth:`get` issues a new key.

        The stored key is dropped only if it is still *seen* (same value and issue time); if
        another process already replaced it, nothing changes and the newer key is reused.
        """
        self._run_sync(self._invalidate_flow(seen))

    async def ainvalidate(self, seen: ApprovalKey) -> None:
        """Async :meth:`invalidate`; never blocks the event loop."""
        await self._run_async(self._invalidate_flow(seen))

    def peek(self) -> ApprovalKey | None:
        """The stored key, if any, without locking, issuing or judging its age."""
        return self.store.load()

    # -- the shared core --

    def _reusable(self, state: ApprovalState, now: float) -> ApprovalKey | None:
        key = state.key
        if key is not None and key.age(now) < self.lifetime_s - self.reuse_margin_s:
            return key
        return None

    def _get_flow(self) -> Generator[Step, object, ApprovalKey]:
        """The get algorithm as steps for a driver; no ``Wait`` under the locks."""
        state = yield Op.READ  # unlocked fast path: writes are atomic
        assert isinstance(state, ApprovalState)
        key = self._reusable(state, self._clock.time())
        if key is not None:
            return key
        while True:
            yield Op.ACQUIRE
            state = yield Op.READ
            assert isinstance(state, ApprovalState)
            now = self._clock.time()
            key = self._reusable(state, now)
            if key is not None:
                yield Op.RELEASE
                return key
            last = state.last_issue_attempt
            wait = 0.0 if last is None else last + self.min_issue_interval_s - now
            if wait <= 0:
                key = yield from self._issue_once(state, now)
                yield Op.RELEASE
                return key
            yield Op.RELEASE
            yield Wait(wait)

    def _issue_once(self, state: ApprovalState, now: float) -> Generator[Step, object, ApprovalKey]:
        """Record the attempt, issue, validate, store (the locks are held)."""
        yield Write(attrs.evolve(state, last_issue_attempt=now))
        try:
            body = yield Op.ISSUE
        except RequestNotSent:
            yield Write(state)  # the server never saw it: do not count it for pacing
            raise
        key = parse_approval_response(body, issued_at=now)
        yield Write(ApprovalState(key, now))
        self.issuances += 1
        log.info(
            "issued a new KIS WebSocket approval key (env=%s, key=%s)",
            self.store.env.value,
            self.store.key_label,
        )
        return key

    def _invalidate_flow(self, seen: ApprovalKey) -> Generator[Step, object, None]:
        """Drop the stored key if it is still *seen*; keep the pacing stamp."""
        yield Op.ACQUIRE
        state = yield Op.READ
        assert isinstance(state, ApprovalState)
        if state.key == seen:
            yield Write(attrs.evolve(state, key=None))
            log.info(
                "approval key refused by KIS; the next session issues a new one (env=%s, key=%s)",
                self.store.env.value,
                self.store.key_label,
            )
        yield Op.RELEASE
