"""The access token's lifecycle: the pure decision and the single-flight, cross-process manager.

The file itself lives in :mod:`kisclient._token_store`; the scope directory and its locks in
:mod:`kisclient._statedir`.

Contracts (see ``docs/kisclient-guide.md``, tokens):

- :func:`decide` is the pure token-state decision (fresh / stale / invalid / missing).
- :class:`TokenManager` is single-flight within the process (a process-global lock per scope,
  shared by every manager of that scope, sync or async) and across processes (the file lock).
  After taking both locks it re-reads the store, so a token another process just issued is
  adopted. It never sleeps while holding either lock. The minimum issuance interval holds across
  processes through the persisted issue time and the persisted time of the last issuance
  *attempt*.
- Server-side invalidation is guarded by a generation number: N callers that saw the same dead
  token cause one issuance.
- The sync and async paths share one generator-based core (:meth:`TokenManager._flow`); only the
  lock, I/O, issue and sleep operations are performed differently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Literal, Protocol

import attrs

from ._clock import Clock
from ._config import TOKEN_MIN_ISSUE_INTERVAL_S, Env
from ._errors import RequestNotSent, TokenError, TokenIssueThrottled
from ._locked_flow import LockedFlowRunner, Op, Step, Store, Wait, Write
from ._token_store import StoreState, Token, parse_token_response

__all__ = [
    "AIssueFn",
    "IssueFn",
    "TokenDecision",
    "TokenManager",
    "TokenStateStore",
    "decide",
]

log = logging.getLogger("kisclient.token")

IssueFn = Callable[[], Mapping[str, Any]]
"""Sync token issuance: POSTs ``/oauth2/tokenP`` and returns the JSON body.

Raises :class:`TokenIssueThrottled` on EGW00133 and :class:`AuthError` on a bad key or secret.
It must not call back into the :class:`TokenManager` (it runs while the refresh lock is held).
"""
AIssueFn = Callable[[], Awaitable[Mapping[str, Any]]]
"""The async twin of :data:`IssueFn`."""


# --- the pure decision ----------------------------------------------------------------------


@attrs.frozen
class TokenDecision:
    """What to do: ``use`` *token*, ``issue`` a new one, or ``wait`` *wait_s* seconds and retry."""

    action: Literal["use", "issue", "wait"]
    token: Token | None
    wait_s: float
    reason: str


def decide(
    stored: Token | None,
    now: float,
    *,
    refresh_margin_s: float,
    min_issue_interval_s: float,
    invalid_generation: int | None = None,
    last_issue_attempt: float | None = None,
) -> TokenDecision:
    """The pure token-state decision at Unix time *now*.

    - *fresh* (more than *refresh_margin_s* of validity left, and not invalidated) → ``use``.
      A stored token whose generation is greater than *invalid_generation* is fresh in this
      sense: somebody already re-issued, so it is adopted.
    - *missing*, *stale* (valid but within the margin) or *invalidated* (generation at or below
      *invalid_generation*) → ``issue`` if *min_issue_interval_s* has passed since the stored
      token's ``issued_at`` and since *last_issue_attempt*; otherwise a stale-but-valid token is
      used (``use``), and anything else means ``wait`` the seconds until issuance is allowed.
    """
    invalidated = (
        stored is not None
        and invalid_generation is not None
        and stored.generation <= invalid_generation
    )
    usable = stored is not None and not invalidated and stored.remaining(now) > 0
    if stored is not None and usable and stored.remaining(now) > refresh_margin_s:
        adopted = invalid_generation is not None
        return TokenDecision("use", stored, 0.0, "adopted newer" if adopted else "fresh")
    if stored is None:
        state = "missing"
    elif invalidated:
        state = "invalidated"
    else:
        state = "stale" if usable else "expired"
    known = [t for t in (stored.issued_at if stored else None, last_issue_attempt) if t is not None]
    earliest = max(known) + min_issue_interval_s if known else now
    if now >= earliest:
        return TokenDecision("issue", None, 0.0, state)
    if usable:
        return TokenDecision(
            "use", stored, 0.0, f"{state}; issuance allowed in {earliest - now:.1f}s"
        )
    return TokenDecision("wait", None, earliest - now, f"{state}; issuance throttled")


# --- the manager ----------------------------------------------------------------------------


class TokenStateStore(Store[StoreState], Protocol):
    """What :class:`TokenManager` needs of its store: the file store
    (:class:`~kisclient._token_store.TokenStore`) or a shared one
    (:mod:`kisclient._shared_state`)."""

    @property
    def env(self) -> Env: ...

    @property
    def key_label(self) -> str: ...

    def load(self) -> Token | None: ...

    def clear(self) -> None: ...


_Flow = Generator[Step, object, Token]


class TokenManager(LockedFlowRunner[StoreState]):
    """Hands out valid tokens for one scope, issuing at most once per need across processes.

    ``issue`` / ``aissue`` POST tokenP (see :data:`IssueFn`). The sync methods need ``issue``;
    the async ones use ``aissue``, or ``issue`` in a worker thread if only that is given.
    ``max_wait_s`` bounds how long one call waits for issuance to become allowed (then
    :class:`TokenIssueThrottled`); ``throttle_backoff_s`` is the pause after an EGW00133 and
    the longest single sleep while waiting (the store is re-read after each, so a token another
    process issued in the meantime is adopted).

    Every issuance attempt is persisted before the call, so the minimum interval also runs from
    a failed or throttled attempt (an attempt that raised :class:`RequestNotSent` is rolled
    back). After EGW00133 the next attempt therefore comes ``min_issue_interval_s`` later, with
    store re-reads every ``throttle_backoff_s`` in between. A stale but still valid token is
    handed out while issuance has to wait. ``issue`` runs while the locks are held: it must not
    sleep or call back into this manager.
    """

    def __init__(
        self,
        store: TokenStateStore,
        *,
        clock: Clock,
        issue: IssueFn | None = None,
        aissue: AIssueFn | None = None,
        refresh_margin_s: float = 300.0,
        min_issue_interval_s: float = TOKEN_MIN_ISSUE_INTERVAL_S,
        max_wait_s: float = 90.0,
        throttle_backoff_s: float = 5.0,
    ) -> None:
        if throttle_backoff_s <= 0 or max_wait_s < 0:
            raise ValueError("throttle_backoff_s must be > 0 and max_wait_s >= 0")
        super().__init__(store, clock, issue, aissue, "TokenManager")
        self.store = store
        self.refresh_margin_s = refresh_margin_s
        self.min_issue_interval_s = min_issue_interval_s
        self.max_wait_s = max_wait_s
        self.throttle_backoff_s = throttle_backoff_s
        #: How many tokens this manager has issued.
        self.issuances = 0
        self._cached: Token | None = None

    def __repr__(self) -> str:
        return f"TokenManager({self.store!r}, issuances={self.issuances})"

    # -- public API --

    def get(self) -> Token:
        """A valid token: cached, stored (maybe by another process), or newly issued."""
        return self._fast() or self._run_sync(self._flow(None))

    def invalidate(self, seen: Token) -> Token:
        """The server refused *seen* (EGW00121/EGW00123): return a replacement.

        Re-issues only if the store still holds *seen*'s generation (or older); otherwise the
        newer stored token is adopted.
        """
        return self._run_sync(self._flow(seen.generation))

    async def aget(self) -> Token:
        """Async :meth:`get`; never blocks the event loop."""
        token = self._fast()
        return token if token is not None else await self._run_async(self._flow(None))

    async def ainvalidate(self, seen: Token) -> Token:
        """Async :meth:`invalidate`; never blocks the event loop."""
        return await self._run_async(self._flow(seen.generation))

    def revoke(self, revoke_fn: Callable[[Token], None]) -> None:
        """Call *revoke_fn* with the current token (if any), then clear the store."""
        self._acquire_blocking()
        try:
            token = self.store.load()
            if token is not None:
                revoke_fn(token)
            self.store.clear()
            self._cached = None
        finally:
            self._release()

    async def arevoke(self, revoke_fn: Callable[[Token], Awaitable[None]]) -> None:
        """Async :meth:`revoke`."""
        loop_lock = await self._acquire_async()
        try:
            token = await asyncio.to_thread(self.store.load)
            if token is not None:
                await revoke_fn(token)
            await asyncio.to_thread(self.store.clear)
            self._cached = None
        finally:
            self._release_async(loop_lock)

    def peek(self) -> Token | None:
        """The stored token, if any, without locking, issuing or judging its freshness."""
        return self.store.load()

    # -- the shared core --

    def _fast(self) -> Token | None:
        """The in-memory token if it is fresh (no lock, no I/O), else ``None``."""
        token = self._cached
        if token is not None and token.remaining(self._clock.time()) > self.refresh_margin_s:
            return token
        return None

    def _decide(self, state: StoreState, now: float, invalid: int | None) -> TokenDecision:
        return decide(
            state.token,
            now,
            refresh_margin_s=self.refresh_margin_s,
            min_issue_interval_s=self.min_issue_interval_s,
            invalid_generation=invalid,
            last_issue_attempt=state.last_issue_attempt,
        )

    def _flow(self, invalid: int | None) -> _Flow:
        """The whole get/invalidate algorithm as a sequence of operations for a driver.

        Invariant (checked by the drivers): no ``Wait`` is yielded while the locks are held.
        """
        deadline = self._clock.monotonic() + self.max_wait_s
        while True:
            yield Op.ACQUIRE
            state = yield Op.READ
            assert isinstance(state, StoreState)
            now = self._clock.time()
            decision = self._decide(state, now, invalid)
            if decision.action == "use":
                yield Op.RELEASE
                assert decision.token is not None
                return self._remember(decision.token)
            wait = decision.wait_s
            if decision.action == "issue":
                token = yield from self._issue_once(state, now, invalid, decision.reason)
                if token is not None:
                    yield Op.RELEASE
                    return self._remember(token)
                wait = self.throttle_backoff_s
            yield Op.RELEASE
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise TokenIssueThrottled(
                    f"no access token within {self.max_wait_s:g}s: issuance is throttled "
                    "(at most one per minute per app key)"
                )
            yield Wait(min(wait, self.throttle_backoff_s, remaining))

    def _issue_once(
        self, state: StoreState, now: float, invalid: int | None, reason: str
    ) -> Generator[Step, object, Token | None]:
        """Record the attempt, issue, store. ``None`` if the server said EGW00133.

        The new generation exceeds both the store's and the invalidated one, so a store that
        was lost or reset cannot make a fresh token look like the dead one.
        """
        attempted = attrs.evolve(state, last_issue_attempt=now)
        yield Write(attempted)
        try:
            body = yield Op.ISSUE
        except TokenIssueThrottled:
            log.warning(
                "token issuance throttled by KIS (EGW00133) (env=%s, key=%s); retrying",
                self.store.env.value,
                self.store.key_label,
            )
            return None
        except RequestNotSent:
            yield Write(state)  # the server never saw it: do not hold the interval against us
            raise
        assert isinstance(body, Mapping)
        received = self._clock.time()
        generation = max(state.next_generation, (invalid or 0) + 1)
        token = parse_token_response(body, issued_at=received, generation=generation)
        if token.remaining(received) <= 0:
            raise TokenError("KIS issued a token that is already expired (check the clock)")
        yield Write(StoreState(token, now, token.generation))
        self.issuances += 1
        log.info(
            "issued a new KIS access token (env=%s, key=%s, generation %d, expires %s; %s)",
            self.store.env.value,
            self.store.key_label,
            token.generation,
            token.expires_at.isoformat(),
            reason,
        )
        return token

    def _remember(self, token: Token) -> Token:
        self._cached = token
        return token
