"""The token store and manager: the pure decision, single flight across threads, tasks and
processes, invalidation by generation, the issuance interval, atomic private files, and
secrets kept out of reprs and logs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import multiprocessing
import os
import stat
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from kisclient._clock import FakeClock
from kisclient._config import KST, Env
from kisclient._errors import (
    AuthError,
    ConfigurationError,
    KISConnectionError,
    TokenError,
    TokenIssueThrottled,
)
from kisclient._statedir import FileLock, key_fingerprint, scope_dir
from kisclient._token import TokenDecision, TokenManager, decide
from kisclient._token_store import (
    LOCK_FILE_NAME,
    STORE_FILE_NAME,
    StoreState,
    Token,
    TokenStore,
    parse_token_response,
)

# The spawn-process targets live next to this file; --import-mode=importlib does not put this
# directory on sys.path, and spawned children import their target by module name (they inherit
# the parent's sys.path), so it is added here.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))

from _mp_helpers import APP_KEY, read_counter, token_body, token_worker

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=KST)
NOW = T0.timestamp()
MARGIN = 300.0
INTERVAL = 60.0


def tok(expires_in_s: float, *, issued_ago_s: float = 3600.0, generation: int = 1) -> Token:
    """A token relative to NOW."""
    return Token(
        access_token=f"secret-token-{generation}",
        token_type="Bearer",
        expires_at=dt.datetime.fromtimestamp(NOW + expires_in_s, KST),
        issued_at=NOW - issued_ago_s,
        generation=generation,
    )


class Issuer:
    """A sync/async tokenP stand-in: counts calls, can fail on chosen calls."""

    def __init__(self, clock: FakeClock, failures: Mapping[int, BaseException] | None = None):
        self.clock = clock
        self.calls = 0
        self.call_times: list[float] = []
        self.failures = dict(failures or {})
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, Any]:
        with self._lock:
            self.calls += 1
            self.call_times.append(self.clock.time())
            failure = self.failures.get(self.calls)
        if failure is not None:
            raise failure
        return token_body(self.clock.now())

    async def issue_async(self) -> Mapping[str, Any]:
        await asyncio.sleep(0)  # let every other task pile up behind the locks
        return self()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path, Env.REAL, APP_KEY)


def manager(store: TokenStore, clock: FakeClock, issuer: Issuer, **kw: Any) -> TokenManager:
    return TokenManager(store, clock=clock, issue=issuer, aissue=issuer.issue_async, **kw)


# --- the pure decision -----------------------------------------------------------------------

DECISIONS = [
    # (name, stored, invalid_generation, last_attempt, action, wait_s)
    ("fresh", tok(7200), None, None, "use", 0.0),
    ("fresh just above margin", tok(MARGIN + 1), None, None, "use", 0.0),
    ("missing, never issued", None, None, None, "issue", 0.0),
    ("missing, attempt 10 s ago", None, None, NOW - 10, "wait", 50.0),
    ("missing, attempt 60 s ago", None, None, NOW - 60, "issue", 0.0),
    ("stale (within margin)", tok(MARGIN - 1), None, None, "issue", 0.0),
    ("stale exactly at margin", tok(MARGIN), None, None, "issue", 0.0),
    ("stale but issued 20 s ago: use it", tok(100, issued_ago_s=20), None, None, "use", 0.0),
    ("stale, attempt 5 s ago: use it", tok(100), None, NOW - 5, "use", 0.0),
    ("expired", tok(-1), None, None, "issue", 0.0),
    ("expired now exactly", tok(0), None, None, "issue", 0.0),
    ("expired, issued 30 s ago", tok(-1, issued_ago_s=30), None, None, "wait", 30.0),
    ("invalidated", tok(7200, generation=3), 3, None, "issue", 0.0),
    ("invalidated, older than seen", tok(7200, generation=2), 3, None, "issue", 0.0),
    (
        "invalidated, issued 45 s ago",
        tok(7200, issued_ago_s=45, generation=3),
        3,
        None,
        "wait",
        15.0,
    ),
    ("invalidated, attempt 1 s ago", tok(7200, generation=3), 3, NOW - 1, "wait", 59.0),
    ("newer generation adopted", tok(7200, generation=4), 3, NOW - 1, "use", 0.0),
    (
        "newer but stale, throttled: use",
        tok(100, issued_ago_s=5, generation=4),
        3,
        None,
        "use",
        0.0,
    ),
    ("newer but expired: issue", tok(-5, generation=4), 3, None, "issue", 0.0),
    ("future attempt (clock skew) waits", None, None, NOW + 5, "wait", 65.0),
]


@pytest.mark.parametrize(
    ("stored", "invalid", "attempt", "action", "wait"),
    [pytest.param(*row[1:], id=row[0]) for row in DECISIONS],
)
def test_decide_table(
    stored: Token | None, invalid: int | None, attempt: float | None, action: str, wait: float
) -> None:
    decision = decide(
        stored,
        NOW,
        refresh_margin_s=MARGIN,
        min_issue_interval_s=INTERVAL,
        invalid_generation=invalid,
        last_issue_attempt=attempt,
    )
    assert decision.action == action
    assert decision.wait_s == pytest.approx(wait)
    assert (decision.token is stored) if action == "use" else decision.token is None
    assert decision.reason


def test_decision_repr_hides_the_token() -> None:
    decision = TokenDecision("use", tok(7200), 0.0, "fresh")
    assert "secret-token" not in repr(decision)


# --- parsing and the token object ------------------------------------------------------------


def test_expiry_is_korea_time_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {
        "access_token": "a",
        "token_type": "Bearer",
        "access_token_token_expired": "2023-12-22 08:16:59",
    }
    expected = dt.datetime(2023, 12, 21, 23, 16, 59, tzinfo=dt.UTC)
    for zone in ("UTC", "America/New_York", "Asia/Seoul", "Pacific/Kiritimati"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        token = parse_token_response(body, issued_at=0.0, generation=1)
        assert token.expires_at == expected
        assert token.expires_at.utcoffset() == dt.timedelta(hours=9)
    monkeypatch.undo()
    time.tzset()


def test_expiry_falls_back_to_expires_in_only_without_the_field() -> None:
    token = parse_token_response(
        {"access_token": "a", "expires_in": 86400}, issued_at=NOW, generation=2
    )
    assert token.expires_at.timestamp() == NOW + 86400
    assert token.token_type == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": ""},
        {"access_token": "a"},
        {"access_token": "a", "access_token_token_expired": "tomorrow"},
        {"access_token": "a", "expires_in": "soon"},
    ],
)
def test_unusable_token_response(body: Mapping[str, Any]) -> None:
    with pytest.raises(TokenError):
        parse_token_response(body, issued_at=NOW, generation=1)


def test_token_repr_and_authorization() -> None:
    token = tok(7200)
    assert token.authorization == "Bearer secret-token-1"
    assert "secret-token" not in repr(token)
    assert "secret-token" not in str(token)
    with pytest.raises(ValueError, match="aware"):
        Token("a", "Bearer", dt.datetime(2026, 1, 1), NOW, 1)


def test_scope_dir_layout(tmp_path: Path) -> None:
    path = scope_dir(tmp_path / "state", Env.PAPER, APP_KEY)
    assert path == tmp_path / "state" / f"paper-{key_fingerprint(APP_KEY)}"
    assert len(key_fingerprint(APP_KEY)) == 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert APP_KEY not in str(path)
    with pytest.raises(ConfigurationError):
        scope_dir(tmp_path, Env.REAL, "")


def test_scopes_are_separate(tmp_path: Path) -> None:
    dirs = {
        TokenStore(tmp_path, env, key).directory
        for env in (Env.REAL, Env.PAPER)
        for key in (APP_KEY, APP_KEY + "2")
    }
    assert len(dirs) == 4


def test_wide_scope_dir_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / f"real-{key_fingerprint(APP_KEY)}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    TokenStore(tmp_path, Env.REAL, APP_KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


# --- the store -------------------------------------------------------------------------------


def test_store_round_trip_and_private_modes(store: TokenStore) -> None:
    assert store.load() is None
    token = tok(7200, generation=5)
    store.save(token)
    assert store.load() == token
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert store.path.name == STORE_FILE_NAME
    with store.lock():
        assert store.lock_path.name == LOCK_FILE_NAME
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in store.directory.iterdir()) == [LOCK_FILE_NAME, STORE_FILE_NAME]


def test_save_writes_a_temp_file_then_renames(
    store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Path, Path, str, int]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        src_path = Path(src)
        seen.append((src_path, Path(dst), src_path.read_text(), src_path.stat().st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.save(tok(7200))
    (src, dst, content, mode) = seen[-1]
    assert dst == store.path
    assert src.parent == store.path.parent
    assert src != dst
    assert (
        json.loads(content)["token"]["access_token"] == "secret-token-1"
    )  # complete before rename
    assert stat.S_IMODE(mode) == 0o600
    assert not src.exists()


def test_concurrent_readers_never_see_a_partial_file(store: TokenStore) -> None:
    store.save(tok(7200))
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            raw = store.path.read_text()
            try:
                json.loads(raw)
            except ValueError:
                bad.append(raw)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for r in readers:
        r.start()
    for generation in range(1, 100):
        store.save(tok(7200, generation=generation))
    stop.set()
    for r in readers:
        r.join()
    assert bad == []
    loaded = store.load()
    assert loaded is not None
    assert loaded.generation == 99


@pytest.mark.parametrize(
    ("content", "mode"),
    [
        (b"", 0o600),
        (b"   \n", 0o600),
        (b"{not json", 0o600),
        (b"[1, 2]", 0o600),
        (b'{"schema": 2}', 0o600),
        (b'{"schema": 1, "env": "real", "key": "x", "generation": 1, "token": null}', 0o600),
        (None, 0o644),  # a good file that others can read is not trusted
        (None, 0o660),
        (None, 0o602),
    ],
)
def test_untrusted_files_are_ignored(
    store: TokenStore,
    clock: FakeClock,
    content: bytes | None,
    mode: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if content is None:
        store.save(tok(7200))
        assert store.load() is not None
    else:
        store.path.write_bytes(content)
    store.path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="kisclient.token"):
        assert store.load() is None
        assert store.read() == StoreState()
    assert "ignoring" in caplog.text
    # the manager recovers by issuing and writing a proper private file
    issuer = Issuer(clock)
    assert manager(store, clock, issuer).get().generation == 1
    assert issuer.calls == 1
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "token",
    [
        {
            "access_token": "a",
            "token_type": "Bearer",
            "expires_at": "2026-11-27T09:00:00",
            "issued_at": 1.0,
            "generation": 1,
        },
        {
            "access_token": "a",
            "token_type": "Bearer",
            "expires_at": "2026-11-27T09:00:00+09:00",
            "issued_at": "x",
            "generation": 1,
        },
        {
            "access_token": "a",
            "token_type": "Bearer",
            "expires_at": "2026-11-27T09:00:00+09:00",
            "issued_at": 1.0,
            "generation": 0,
        },
        {
            "access_token": "a",
            "token_type": "Bearer",
            "expires_at": "2026-11-27T09:00:00+09:00",
            "issued_at": 1.0,
            "generation": True,
        },
        {
            "access_token": "",
            "token_type": "Bearer",
            "expires_at": "2026-11-27T09:00:00+09:00",
            "issued_at": 1.0,
            "generation": 1,
        },
        "a string",
    ],
)
def test_wrong_schema_token_is_ignored(store: TokenStore, token: object) -> None:
    store.save(tok(7200))
    data = json.loads(store.path.read_text())
    data["token"] = token
    store.path.write_text(json.dumps(data))
    store.path.chmod(0o600)
    assert store.load() is None


def test_other_scope_file_is_ignored(tmp_path: Path) -> None:
    real = TokenStore(tmp_path, Env.REAL, APP_KEY)
    paper = TokenStore(tmp_path, Env.PAPER, APP_KEY)
    real.save(tok(7200))
    paper.path.write_bytes(real.path.read_bytes())
    paper.path.chmod(0o600)
    assert paper.load() is None


def test_clear_keeps_generation_and_attempt(store: TokenStore) -> None:
    store.save(tok(7200, generation=4))
    store.clear()
    state = store.read()
    assert state.token is None
    assert state.generation == 4
    assert state.next_generation == 5
    assert state.last_issue_attempt == tok(7200).issued_at


# --- the manager: basics ---------------------------------------------------------------------


def test_get_issues_once_then_reuses(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    first = mgr.get()
    assert first.generation == 1
    assert first.issued_at == NOW
    assert first.expires_at == T0 + dt.timedelta(days=1)
    clock.advance(3600)
    assert mgr.get() is first
    assert (issuer.calls, mgr.issuances) == (1, 1)
    assert store.read().last_issue_attempt == NOW


def test_restart_reuses_the_stored_token(store: TokenStore, clock: FakeClock) -> None:
    first = manager(store, clock, Issuer(clock)).get()
    issuer = Issuer(clock)
    again = manager(TokenStore(store.directory.parent, Env.REAL, APP_KEY), clock, issuer)
    assert again.get() == first
    assert (issuer.calls, again.issuances) == (0, 0)
    assert again.peek() == first


def test_proactive_refresh_within_the_margin(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer, refresh_margin_s=600)
    first = mgr.get()
    clock.advance(86400 - 601)
    assert mgr.get() is first
    clock.advance(2)
    second = mgr.get()
    assert second.generation == 2
    assert second.access_token != first.access_token
    assert issuer.calls == 2


def test_threads_get_single_flight(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    managers = [manager(store, clock, issuer) for _ in range(4)]  # several clients, one scope
    barrier = threading.Barrier(16)
    results: list[Token] = []

    def worker(i: int) -> None:
        barrier.wait()
        results.append(managers[i % 4].get())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert issuer.calls == 1
    assert sum(m.issuances for m in managers) == 1
    assert len({r.access_token for r in results}) == 1
    assert len(results) == 16


def test_threads_invalidate_the_same_token_once(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    dead = mgr.get()
    clock.advance(120)
    barrier = threading.Barrier(12)
    results: list[Token] = []

    def worker() -> None:
        barrier.wait()
        results.append(mgr.invalidate(dead))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert issuer.calls == 2  # the first get, then exactly one re-issue
    assert {r.generation for r in results} == {2}
    assert mgr.get().generation == 2


def test_invalidate_forces_a_reissue_although_expiry_looks_valid(
    store: TokenStore, clock: FakeClock
) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    dead = mgr.get()
    clock.advance(90)
    fresh = mgr.invalidate(dead)
    assert fresh.generation == dead.generation + 1
    assert issuer.calls == 2
    assert mgr.get() is fresh  # the in-memory copy was replaced too


def test_newer_stored_generation_is_adopted(store: TokenStore, clock: FakeClock) -> None:
    issuer_a, issuer_b = Issuer(clock), Issuer(clock)
    a = manager(store, clock, issuer_a)
    b = manager(TokenStore(store.directory.parent, Env.REAL, APP_KEY), clock, issuer_b)
    seen = a.get()
    assert b.get() == seen
    clock.advance(61)
    renewed = b.invalidate(seen)  # process B hit EGW00121 first
    assert a.invalidate(seen) == renewed  # A saw the same dead token: adopts, no issuance
    older = tok(7200, generation=0 + 1)
    assert a.invalidate(older) == renewed
    assert (issuer_a.calls, issuer_b.calls) == (1, 1)


def test_reissue_after_a_lost_store_outranks_the_dead_token(
    store: TokenStore, clock: FakeClock
) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    dead = attrs.evolve(mgr.get(), generation=7)  # seen by a client before the store was lost
    store.path.write_text("")  # corrupted: generation history gone
    clock.advance(61)
    fresh = mgr.invalidate(dead)
    assert fresh.generation == 8
    assert mgr.invalidate(dead) == fresh  # a second caller with the same dead token adopts it
    assert issuer.calls == 2


def test_min_interval_holds_across_managers(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    a = manager(store, clock, issuer)
    b = manager(TokenStore(store.directory.parent, Env.REAL, APP_KEY), clock, issuer)
    seen = a.get()
    clock.advance(10)
    renewed = b.invalidate(seen)  # must wait for the 60 s rule, sleeping without the lock
    assert issuer.call_times == [NOW, NOW + 60]
    assert renewed.generation == 2
    assert sum(clock.sleeps) == pytest.approx(50)
    assert max(clock.sleeps) <= b.throttle_backoff_s


def test_failed_attempt_counts_for_the_interval(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock, failures={1: AuthError("bad secret", msg_cd="EGW00105")})
    mgr = manager(store, clock, issuer)
    with pytest.raises(AuthError):
        mgr.get()
    assert store.read().last_issue_attempt == NOW
    clock.advance(20)
    other = manager(TokenStore(store.directory.parent, Env.REAL, APP_KEY), clock, issuer)
    other.get()
    assert issuer.call_times == [NOW, NOW + 60]


def test_attempt_that_was_never_sent_does_not_count(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock, failures={1: KISConnectionError("refused")})
    mgr = manager(store, clock, issuer)
    with pytest.raises(KISConnectionError):
        mgr.get()
    assert store.read().last_issue_attempt is None
    assert mgr.get().generation == 1
    assert issuer.call_times == [NOW, NOW]


def test_throttled_issue_waits_and_retries(store: TokenStore, clock: FakeClock) -> None:
    throttled = TokenIssueThrottled("once a minute", msg_cd="EGW00133", http_status=403)
    issuer = Issuer(clock, failures={1: throttled})
    mgr = manager(store, clock, issuer)
    token = mgr.get()
    assert token.generation == 1
    assert issuer.calls == 2
    assert issuer.call_times == [NOW, NOW + 60]  # the throttled attempt restarted the interval
    assert mgr.issuances == 1
    assert max(clock.sleeps) <= mgr.throttle_backoff_s


def test_throttled_invalidate_adopts_what_another_process_issued(
    store: TokenStore, clock: FakeClock
) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    dead = mgr.get()
    clock.advance(61)

    other = manager(TokenStore(store.directory.parent, Env.REAL, APP_KEY), clock, Issuer(clock))

    def throttled_then_other_wins() -> Mapping[str, Any]:
        issuer.calls += 1
        raise TokenIssueThrottled("once a minute", msg_cd="EGW00133")

    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        """On the first back-off sleep, 'another process' re-issues successfully."""
        real_sleep(seconds)
        if not other.issuances:
            clock.advance(60)
            other.invalidate(dead)

    mgr._issue = throttled_then_other_wins
    clock.sleep = sleep  # type: ignore[method-assign]
    renewed = mgr.invalidate(dead)
    assert renewed.generation == 2
    assert other.issuances == 1
    assert mgr.issuances == 1  # only its first token
    assert issuer.calls == 2


def test_wait_is_bounded_by_max_wait(store: TokenStore, clock: FakeClock) -> None:
    throttled = TokenIssueThrottled("once a minute", msg_cd="EGW00133")
    issuer = Issuer(clock, failures=dict.fromkeys(range(1, 10), throttled))
    mgr = manager(store, clock, issuer, max_wait_s=90)
    with pytest.raises(TokenIssueThrottled, match="90s"):
        mgr.get()
    assert sum(clock.sleeps) == pytest.approx(90)
    assert issuer.calls == 2  # at 0 s and 60 s
    assert store.thread_lock().acquire(blocking=False)


def test_stale_token_is_used_while_issuance_must_wait(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    first = mgr.get()
    # somebody else attempted (and failed) a moment ago, while our token is stale-but-valid
    clock.advance(86400 - 100)
    state = store.read()
    store.write(StoreState(state.token, clock.time() - 1, state.generation))
    assert mgr.get() == first
    assert clock.sleeps == []
    clock.advance(59)
    assert mgr.get().generation == 2


def test_no_sleep_while_holding_either_lock(tmp_path: Path) -> None:
    held = {"file": False}

    class TrackedLock:
        def __init__(self, inner: FileLock) -> None:
            self.inner = inner

        def acquire(self) -> bool:
            got = self.inner.acquire()
            held["file"] = True
            return got

        def release(self) -> None:
            held["file"] = False
            self.inner.release()

        def __enter__(self) -> TrackedLock:
            self.acquire()
            return self

        def __exit__(self, *exc: object) -> None:
            self.release()

    class TrackedStore(TokenStore):
        def lock(self) -> FileLock:
            return TrackedLock(super().lock())

    store = TrackedStore(tmp_path, Env.REAL, APP_KEY)
    checks: list[bool] = []

    class CheckingClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            free = store.thread_lock().acquire(blocking=False)
            if free:
                store.thread_lock().release()
            checks.append(free and not held["file"])
            super().sleep(seconds)

    clock = CheckingClock(T0)
    throttled = TokenIssueThrottled("once a minute", msg_cd="EGW00133")
    issuer = Issuer(clock, failures={1: throttled})
    mgr = manager(store, clock, issuer)
    mgr.get()
    assert len(checks) >= 10
    assert all(checks)


def test_lock_is_released_after_errors(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock, failures={1: AuthError("bad key", msg_cd="EGW00103")})
    with pytest.raises(AuthError):
        manager(store, clock, issuer).get()
    lock = store.thread_lock()
    assert lock.acquire(blocking=False)
    lock.release()


def test_sync_use_needs_an_issue_function(store: TokenStore, clock: FakeClock) -> None:
    mgr = TokenManager(store, clock=clock)
    with pytest.raises(ConfigurationError):
        mgr.get()


def test_an_already_expired_answer_is_an_error(store: TokenStore, clock: FakeClock) -> None:
    def stale_issue() -> Mapping[str, Any]:
        return token_body(clock.now() - dt.timedelta(days=2))

    with pytest.raises(TokenError, match="already expired"):
        TokenManager(store, clock=clock, issue=stale_issue).get()


def test_revoke_calls_and_clears(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    token = mgr.get()
    revoked: list[Token] = []
    mgr.revoke(revoked.append)
    assert revoked == [token]
    assert store.load() is None
    mgr.revoke(revoked.append)  # nothing stored: nothing to revoke
    assert revoked == [token]
    clock.advance(61)
    assert mgr.get().generation == 2  # generations keep growing after a revoke


# --- secrets ---------------------------------------------------------------------------------


def test_no_secret_in_logs_or_reprs(
    store: TokenStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    throttled = TokenIssueThrottled("once a minute", msg_cd="EGW00133")
    issuer = Issuer(clock, failures={1: throttled})
    mgr = manager(store, clock, issuer)
    with caplog.at_level(logging.DEBUG):
        token = mgr.get()
        clock.advance(61)
        mgr.invalidate(token)
        store.path.chmod(0o644)
        store.load()
    issued = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage().startswith("issued a new KIS access token") for r in issued] == [
        True,
        True,
    ]
    assert "env=real" in issued[0].getMessage()
    assert f"key={key_fingerprint(APP_KEY, 8)}" in issued[0].getMessage()
    text = caplog.text + repr(mgr) + repr(store) + repr(token)
    assert token.access_token not in text
    assert APP_KEY not in text
    assert APP_KEY not in str(store.directory)


# --- async -----------------------------------------------------------------------------------


def test_async_gather_single_flight(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    managers = [manager(store, clock, issuer) for _ in range(3)]

    async def main() -> list[Token]:
        return await asyncio.gather(*(managers[i % 3].aget() for i in range(60)))

    results = asyncio.run(main())
    assert issuer.calls == 1
    assert len({r.access_token for r in results}) == 1


def test_async_invalidate_single_flight(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)

    async def main() -> list[Token]:
        dead = await mgr.aget()
        clock.advance(61)
        return await asyncio.gather(*(mgr.ainvalidate(dead) for _ in range(20)))

    results = asyncio.run(main())
    assert issuer.calls == 2
    assert {r.generation for r in results} == {2}


def test_async_and_sync_share_one_flight(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = manager(store, clock, issuer)
    barrier = threading.Barrier(5)
    sync_results: list[Token] = []

    def sync_worker() -> None:
        barrier.wait()
        sync_results.append(mgr.get())

    threads = [threading.Thread(target=sync_worker) for _ in range(4)]
    for t in threads:
        t.start()

    async def main() -> list[Token]:
        await asyncio.to_thread(barrier.wait)
        return await asyncio.gather(*(mgr.aget() for _ in range(10)))

    async_results = asyncio.run(main())
    for t in threads:
        t.join()
    assert issuer.calls == 1
    assert len({r.access_token for r in [*sync_results, *async_results]}) == 1


def test_async_waits_with_asleep_and_throttle_path(store: TokenStore, clock: FakeClock) -> None:
    throttled = TokenIssueThrottled("once a minute", msg_cd="EGW00133")
    issuer = Issuer(clock, failures={1: throttled})

    class AsyncOnlyClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise AssertionError("the async path must not block")

        async def asleep(self, seconds: float) -> None:
            self.advance(seconds)
            await asyncio.sleep(0)

    aclock = AsyncOnlyClock(T0)
    issuer.clock = aclock
    mgr = TokenManager(store, clock=aclock, aissue=issuer.issue_async)
    token = asyncio.run(mgr.aget())
    assert token.generation == 1
    assert issuer.call_times == [NOW, NOW + 60]


def test_async_falls_back_to_sync_issue_in_a_thread(store: TokenStore, clock: FakeClock) -> None:
    issuer = Issuer(clock)
    mgr = TokenManager(store, clock=clock, issue=issuer)
    assert asyncio.run(mgr.aget()).generation == 1
    with pytest.raises(ConfigurationError):
        asyncio.run(TokenManager(store, clock=clock).ainvalidate(mgr.get()))


def test_async_cancellation_releases_the_locks(store: TokenStore, clock: FakeClock) -> None:
    started = asyncio.Event

    async def main() -> None:
        entered = started()

        async def hanging_issue() -> Mapping[str, Any]:
            entered.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        mgr = TokenManager(store, clock=clock, aissue=hanging_issue)
        task = asyncio.create_task(mgr.aget())
        await entered.wait()
        assert store.thread_lock().locked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not store.thread_lock().locked()
        # a second manager in the same loop can proceed
        issuer = Issuer(clock)
        clock.advance(60)
        token = await manager(store, clock, issuer).aget()
        assert token.generation == 1

    asyncio.run(main())


def test_async_cancellation_while_waiting_for_the_lock(store: TokenStore, clock: FakeClock) -> None:
    lock = store.thread_lock()

    async def main() -> None:
        lock.acquire()  # "another thread" holds the scope
        mgr = manager(store, clock, Issuer(clock))
        task = asyncio.create_task(mgr.aget())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        lock.release()  # the abandoned worker thread now gets the locks...

    asyncio.run(main())  # ...and asyncio.run waits for it and runs its undo callback
    assert not lock.locked()
    assert store.read() == StoreState()  # nothing was issued


def test_async_revoke(store: TokenStore, clock: FakeClock) -> None:
    mgr = manager(store, clock, Issuer(clock))
    revoked: list[Token] = []

    async def revoke_fn(token: Token) -> None:
        revoked.append(token)

    async def main() -> Token:
        token = await mgr.aget()
        await mgr.arevoke(revoke_fn)
        return token

    token = asyncio.run(main())
    assert revoked == [token]
    assert store.load() is None


# --- real processes --------------------------------------------------------------------------


@pytest.fixture
def spawn() -> multiprocessing.context.SpawnContext:
    return multiprocessing.get_context("spawn")


@pytest.mark.multiprocess
def test_eight_processes_issue_exactly_once(
    tmp_path: Path, spawn: multiprocessing.context.SpawnContext
) -> None:
    state_dir, counter_dir = tmp_path / "state", tmp_path / "counter"
    counter_dir.mkdir()
    procs = 8
    barrier = spawn.Barrier(procs)
    queue = spawn.Queue()
    workers = [
        spawn.Process(target=token_worker, args=(barrier, queue, str(state_dir), str(counter_dir)))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    assert read_counter(counter_dir) == 1
    assert len({access for access, _, _ in results}) == 1
    assert {generation for _, generation, _ in results} == {1}
    assert sum(issued for _, _, issued in results) == 1

    # a restart reuses the cached token: zero issuances
    restart_barrier = spawn.Barrier(1)
    again = spawn.Process(
        target=token_worker, args=(restart_barrier, queue, str(state_dir), str(counter_dir))
    )
    again.start()
    access, generation, issued = queue.get(timeout=60)
    again.join(timeout=30)
    assert again.exitcode == 0
    assert (issued, generation, read_counter(counter_dir)) == (0, 1, 1)
    assert access == results[0][0]
