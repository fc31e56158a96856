"""Targets for the multi-process tests (importable by ``spawn`` children).

Each worker waits on a shared barrier so the processes really start together, does its work
with the real clock, and puts its result on a queue.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import fasteners

from kisclient._clock import SystemClock
from kisclient._config import KST, Env
from kisclient._ratelimit import SharedFileLimiter, Window
from kisclient._token import TokenManager
from kisclient._token_store import TokenStore

APP_KEY = "PSmp" + "k" * 32
COUNTER_FILE = "issue_counter.json"


class _Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class _Queue(Protocol):
    def put(self, obj: Any) -> None: ...


def token_body(now: dt.datetime, access_token: str | None = None) -> dict[str, Any]:
    """A realistic ``/oauth2/tokenP`` success body issued at *now* (valid one day)."""
    expires = now.astimezone(KST) + dt.timedelta(days=1)
    jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + secrets.token_hex(24)
    return {
        "access_token": access_token or jwt,
        "access_token_token_expired": expires.strftime("%Y-%m-%d %H:%M:%S"),
        "token_type": "Bearer",
        "expires_in": 86400,
    }


def counting_issue(counter_dir: Path) -> Mapping[str, Any]:
    """Issue a token, counting issuances in a file under its own lock (shared by processes)."""
    counter = counter_dir / COUNTER_FILE
    with fasteners.InterProcessLock(str(counter_dir / "counter.lock")):
        count = json.loads(counter.read_text()) if counter.exists() else 0
        counter.write_text(json.dumps(count + 1))
    return token_body(SystemClock().now())


def read_counter(counter_dir: Path) -> int:
    """How many times :func:`counting_issue` ran."""
    counter = counter_dir / COUNTER_FILE
    value = json.loads(counter.read_text()) if counter.exists() else 0
    assert isinstance(value, int)
    return value


def token_worker(barrier: _Barrier, queue: _Queue, state_dir: str, counter_dir: str) -> None:
    """One process: a fresh manager gets a token; reports (token, generation, issuances)."""
    store = TokenStore(Path(state_dir), Env.REAL, APP_KEY)
    manager = TokenManager(
        store, clock=SystemClock(), issue=lambda: counting_issue(Path(counter_dir))
    )
    barrier.wait(timeout=60)
    token = manager.get()
    queue.put((token.access_token, token.generation, manager.issuances))


class RecordingClock(SystemClock):
    """The real clock, remembering the last ``time()`` it returned (the admission time)."""

    last = 0.0

    def time(self) -> float:
        self.last = super().time()
        return self.last


def limiter_worker(
    barrier: _Barrier, queue: _Queue, state_dir: str, limit: int, seconds: float, n: int
) -> None:
    """One process: *n* admissions through a shared limiter; reports their exact times."""
    clock = RecordingClock()
    limiter = SharedFileLimiter([Window(limit, seconds)], clock, Path(state_dir), Env.REAL, APP_KEY)
    barrier.wait(timeout=60)
    admitted: list[float] = []
    while len(admitted) < n:
        wait = limiter.try_acquire()
        if wait > 0:
            clock.sleep(wait)
        else:
            admitted.append(clock.last)
    queue.put(admitted)
