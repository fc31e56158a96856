"""The shared-state contract, run over both backends (files, and a real redis-server), plus what
only the Redis backend has: fenced locks, key hygiene, local mode and the Lua limiter."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pathlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from kisclient import (
    ConfigurationError,
    FakeClock,
    KISClient,
    Stream,
    StreamSlotBusy,
    SystemClock,
)
from kisclient._approval import ApprovalKeys
from kisclient._config import Env
from kisclient._errors import RequestNotSent
from kisclient._ratelimit import Window
from kisclient._redis_state import (
    LOCAL_FRACTION,
    LOCK_TTL_S,
    MAX_HANDOVER_S,
    RedisLimiter,
    RedisSharedState,
    RedisStreamLease,
    local_windows,
)
from kisclient._settings import ClientOptions, ClientSettings
from kisclient._shared_state import FileSharedState, SharedState, make_shared_state, redact_url
from kisclient._stream_events import StreamConnected
from kisclient._stream_lease import StreamLease
from kisclient._token import TokenManager
from kisclient.testing import FakeKIS, FakeKISServer, FakeWSServer
from redis_support import RedisServer

APP_KEY = "PSshared" + "k" * 28
APP_SECRET = "s" * 180


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    """A server of this test alone (it may be stopped and restarted)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture(params=["file", "redis"])
def backend(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, redis_server: RedisServer
) -> Iterator[SharedState]:
    if request.param == "file":
        yield FileSharedState(tmp_path / "state")
        return
    redis_server.client().flushall()
    state = RedisSharedState(redis_server.url, tmp_path / "state")
    yield state
    state.close()


def token_body(now: dt.datetime, serial: int) -> dict[str, Any]:
    expires = now + dt.timedelta(days=1)
    return {
        "access_token": f"tok-{serial}-{now.timestamp()}",
        "access_token_token_expired": expires.astimezone(
            dt.timezone(dt.timedelta(hours=9))
        ).strftime("%Y-%m-%d %H:%M:%S"),
        "token_type": "Bearer",
        "expires_in": 86400,
    }


class Issuer:
    """Counts issuances (thread-safe); answers like tokenP / Approval."""

    def __init__(self, clock: FakeClock | SystemClock) -> None:
        self.clock = clock
        self.count = 0
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def token(self) -> Mapping[str, Any]:
        self.gate.wait(10)
        with self._lock:
            self.count += 1
            serial = self.count
        return token_body(self.clock.now(), serial)

    def approval(self) -> Mapping[str, Any]:
        with self._lock:
            self.count += 1
            return {"approval_key": f"approval-{self.count}"}


def run_together(n: int, target: Any) -> list[Any]:
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait(10)
        try:
            results[i] = target()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


# --- the contract, over both backends -------------------------------------------------------


def test_concurrent_managers_on_separate_stores_issue_one_token(backend: SharedState) -> None:
    clock = SystemClock()
    issuer = Issuer(clock)
    managers = [
        TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
        for _ in range(6)
    ]
    it = iter(managers)
    lock = threading.Lock()

    def get() -> str:
        with lock:
            manager = next(it)
        return manager.get().access_token

    tokens = run_together(6, get)
    assert issuer.count == 1
    assert len(set(tokens)) == 1
    # a new store object (a restarted process) adopts it
    fresh = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    assert fresh.get().access_token == tokens[0]
    assert issuer.count == 1


def test_the_one_minute_rule_and_the_generation_guard(backend: SharedState) -> None:
    clock = FakeClock()
    issuer = Issuer(clock)
    a = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    b = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    first = a.get()
    assert first.generation == 1
    started = clock.time()
    second = a.invalidate(first)  # refused by the server: re-issue, but not within a minute
    assert issuer.count == 2
    assert second.generation == 2
    assert clock.time() - started >= 60.0
    # b saw the same dead token: it adopts the newer one instead of issuing again
    assert b.invalidate(first).access_token == second.access_token
    assert issuer.count == 2


def test_tokens_are_per_environment_and_key(backend: SharedState) -> None:
    clock = FakeClock()
    issuer = Issuer(clock)
    real = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    paper = TokenManager(backend.token_store(Env.PAPER, APP_KEY), clock=clock, issue=issuer.token)
    other = TokenManager(
        backend.token_store(Env.REAL, APP_KEY + "x"), clock=clock, issue=issuer.token
    )
    assert len({real.get().access_token, paper.get().access_token, other.get().access_token}) == 3
    assert issuer.count == 3


def test_revoke_clears_the_shared_token_and_keeps_the_generation(backend: SharedState) -> None:
    clock = FakeClock()
    issuer = Issuer(clock)
    a = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    first = a.get()
    revoked: list[str] = []
    a.revoke(lambda token: revoked.append(token.access_token))
    assert revoked == [first.access_token]
    assert backend.token_store(Env.REAL, APP_KEY).load() is None
    clock.advance(61)
    b = TokenManager(backend.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    assert b.get().generation == 2


def test_approval_keys_are_issued_once_and_invalidated_once(backend: SharedState) -> None:
    clock = FakeClock()
    issuer = Issuer(clock)
    a = ApprovalKeys(backend.approval_store(Env.REAL, APP_KEY), clock, issuer.approval)
    b = ApprovalKeys(backend.approval_store(Env.REAL, APP_KEY), clock, issuer.approval)
    key = a.get()
    assert b.get() == key
    assert issuer.count == 1
    a.invalidate(key)
    b.invalidate(key)  # the same dead key: nothing more to drop
    clock.advance(1)
    fresh = b.get()
    assert fresh != key
    assert a.get() == fresh
    assert issuer.count == 2


def test_rate_windows_are_shared_and_so_is_the_penalty(backend: SharedState) -> None:
    clock = SystemClock()
    windows = (Window(3, 60.0),)
    one = backend.limiter(windows, Env.REAL, APP_KEY, clock)
    two = backend.limiter(windows, Env.REAL, APP_KEY, clock)
    stamps = [one.acquire(), two.acquire(), one.acquire()]
    wait = two.try_acquire()
    assert 50.0 < wait <= 60.0  # the fourth waits for the first to leave the minute
    for stamp in stamps:
        one.settle(stamp)  # settling never frees a slot early
    assert one.try_acquire() > 50.0
    # another scope is not affected; a penalty on it is seen by every limiter of that scope
    other_a = backend.limiter(windows, Env.PAPER, APP_KEY, clock)
    other_b = backend.limiter(windows, Env.PAPER, APP_KEY, clock)
    assert other_a.try_acquire() == 0.0
    other_a.penalize(30.0)
    assert 25.0 < other_b.try_acquire() <= 30.0


def test_no_windows_means_no_limit(backend: SharedState) -> None:
    limiter = backend.limiter((), Env.REAL, APP_KEY, SystemClock())
    assert all(limiter.try_acquire() == 0.0 for _ in range(100))


def test_one_stream_lease_per_key(backend: SharedState) -> None:
    first = backend.stream_lease(Env.REAL, APP_KEY)
    second = backend.stream_lease(Env.REAL, APP_KEY)
    first.acquire()
    try:
        with pytest.raises(StreamSlotBusy):
            second.acquire()
        assert not holds(second)
        other_scope = backend.stream_lease(Env.PAPER, APP_KEY)
        with other_scope:
            assert other_scope.held
    finally:
        first.release()
    with second:
        assert holds(second)
    first.release()  # idempotent


def holds(lease: StreamLease) -> bool:
    return lease.held


def test_status_names_the_backend(backend: SharedState, tmp_path: pathlib.Path) -> None:
    status = backend.status
    assert status.mode == "shared"
    assert status.backend in ("file", "redis")
    assert status.local_since is None


# --- selection ------------------------------------------------------------------------------


def test_clients_select_the_backend_by_argument_and_environment(
    tmp_path: pathlib.Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeKIS(seed=3, clock=SystemClock())
    app = fake.add_app(env="real")
    plain = KISClient(app.app_key, app.app_secret, state_dir=tmp_path, transport=fake.transport())
    assert plain.shared_state_status.backend == "file"
    monkeypatch.setenv("KIS_APP_KEY", app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", app.app_secret)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KIS_SHARED_STATE", redis_server.url)
    with KISClient.from_env(transport=fake.transport()) as kis:
        assert kis.shared_state_status.backend == "redis"
        assert kis.get_price("005930").price == fake.price_of("005930")
    keys = redis_server.client().keys("kisclient:v1:{real-*}:token")
    assert len(keys) >= 1
    with pytest.raises(ConfigurationError, match="shared_state"):
        KISClient(app.app_key, app.app_secret, state_dir=tmp_path, shared_state="memcache://x")


def test_a_password_in_the_url_never_shows() -> None:
    url = "rediss://kis:hunter2@redis.example:6380/1"
    assert redact_url(url) == "rediss://kis:***@redis.example:6380/1"
    settings = ClientSettings.build(APP_KEY, APP_SECRET, ClientOptions(shared_state=url))
    assert "hunter2" not in repr(settings)
    state = make_shared_state(url, pathlib.Path("/nonexistent-kisclient-test"))
    assert "hunter2" not in repr(state)
    assert "hunter2" not in repr(state.status)


# --- Redis only -----------------------------------------------------------------------------


@pytest.fixture
def redis_state(tmp_path: pathlib.Path, redis_server: RedisServer) -> Iterator[RedisSharedState]:
    redis_server.client().flushall()
    state = RedisSharedState(redis_server.url, tmp_path / "state")
    yield state
    state.close()


def test_keys_hold_neither_the_app_key_nor_the_secret(
    redis_state: RedisSharedState, redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    fake = FakeKIS(seed=5, clock=SystemClock())
    app = fake.add_app(env="real")
    with KISClient(
        app.app_key,
        app.app_secret,
        state_dir=tmp_path / "c",
        transport=fake.transport(),
        shared_state=redis_server.url,
    ) as kis:
        kis.get_price("005930")
        token = kis._tokens.peek()
    assert token is not None
    raw = redis_server.client()
    keys = [str(k) for k in raw.keys("*")]
    assert keys
    dump = " ".join(keys + [str(raw.dump(k)) for k in keys])
    assert app.app_key not in dump
    assert app.app_secret not in dump
    assert all(k.startswith("kisclient:v1:{real-") for k in keys)
    token_key = next(k for k in keys if k.endswith(":token"))
    # the token is the only secret there, and it expires: after the token, plus a day
    ttl = raw.pttl(token_key) / 1000
    remaining = token.remaining(SystemClock().time())
    assert remaining < ttl <= remaining + 86400 + 5


def test_the_issuance_lock_expires_and_its_writes_are_fenced(
    redis_state: RedisSharedState, redis_server: RedisServer
) -> None:
    store = redis_state.token_store(Env.REAL, APP_KEY)
    raw = redis_server.client()
    lock = store.lock()
    with store.thread_lock():
        lock.acquire()
        assert 0 < raw.pttl(store.lock_key) <= LOCK_TTL_S * 1000
        # the lock expired and another host took it: this holder's write must not land ...
        raw.set(store.lock_key, "another-holders-fence", px=30_000)
        with pytest.raises(RequestNotSent, match="expired"):
            store.write(store.read())
        assert raw.get(store.key) is None
        # ... and its release must not free the other holder's lock
        lock.release()
    assert raw.get(store.lock_key) == "another-holders-fence"


def test_a_second_holder_waits_for_the_lock(
    redis_state: RedisSharedState, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    first = redis_state.token_store(Env.REAL, APP_KEY)
    # a store of another "host": its own backend (own connection), same server
    other = RedisSharedState(redis_server.url, first.local.directory.parent.parent / "other")
    request.addfinalizer(other.close)
    second = other.token_store(Env.REAL, APP_KEY)
    lock_a = first.lock()
    lock_a.acquire()
    got = threading.Event()

    def take() -> None:
        lock_b = second.lock()
        lock_b.acquire()
        got.set()
        lock_b.release()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not got.wait(0.3)  # behaviour: blocked while the lock is held
    lock_a.release()
    waiter.join(10)
    assert got.is_set()


def test_corrupt_or_foreign_values_are_ignored(
    redis_state: RedisSharedState, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = redis_state.token_store(Env.REAL, APP_KEY)
    raw = redis_server.client()
    raw.set(store.key, "{not json")
    assert store.read().token is None
    raw.set(store.key, '{"schema": 1, "env": "paper", "key": "x", "generation": 0}')
    assert store.read().token is None
    assert "ignoring token store" in caplog.text
    assert APP_KEY not in caplog.text


def test_redis_down_degrades_to_local_mode_once_and_recovers(
    own_redis: RedisServer,
    tmp_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    state = RedisSharedState(own_redis.url, tmp_path / "state", retry_after_s=0.0)
    request.addfinalizer(state.close)
    clock = FakeClock()
    issuer = Issuer(clock)
    windows = (Window(8, 60.0),)
    limiter = state.limiter(windows, Env.REAL, APP_KEY, clock)
    manager = TokenManager(state.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    shared_token = manager.get()
    stamp = limiter.acquire()
    assert stamp > 1e9  # a Redis time stamp
    own_redis.stop()
    limiter.settle(stamp)  # its answer arrives after Redis went away: dropped, not mixed in
    caplog.set_level(logging.INFO, logger="kisclient.shared")
    # the token: the cached one keeps working; a fresh manager uses this host's own file
    assert manager.get() == shared_token
    fresh = TokenManager(state.token_store(Env.REAL, APP_KEY), clock=clock, issue=issuer.token)
    clock.advance(61)
    local_token = fresh.get()
    assert local_token.access_token != shared_token.access_token
    assert issuer.count == 2
    # local mode: first a pause of one window (at most MAX_HANDOVER_S), so what every host
    # admitted in shared mode has left the server's window; then a fraction of the limit
    pause = limiter.try_acquire()
    assert pause == MAX_HANDOVER_S
    clock.advance(pause)
    allowed = local_windows(windows)[0].limit
    assert allowed == int(8 * LOCAL_FRACTION)
    admitted = [limiter.try_acquire() for _ in range(allowed + 3)]
    assert admitted[:allowed] == [0.0] * allowed
    assert all(w > 0 for w in admitted[allowed:])
    status = state.status
    assert status.mode == "local"
    assert status.outages == 1
    assert status.local_admissions == allowed
    assert caplog.text.count("LOCAL MODE") == 1  # logged once, not per call
    # a stream session is refused: another host may hold it
    with pytest.raises(StreamSlotBusy, match="unreachable"):
        state.stream_lease(Env.REAL, APP_KEY).acquire()
    # Redis returns (empty): shared mode again on the next call, logged once; the local
    # admissions of the last window are carried over into Redis's history first
    own_redis.start()
    assert limiter.try_acquire() == 0.0
    assert state.status.mode == "shared"
    assert isinstance(limiter, RedisLimiter)
    history = str(own_redis.client().get(limiter.key)).split(",")[2:]
    assert len(history) == allowed + 1
    assert caplog.text.count("reachable again") == 1
    assert state.status.outages == 1


def test_a_refusing_server_also_means_local_mode(
    redis_server: RedisServer,
    tmp_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    raw = redis_server.client()
    # an ACL user without the script commands: every admission is refused (NOPERM)
    raw.acl_setuser(
        "noscripts", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    request.addfinalizer(lambda: raw.acl_deluser("noscripts"))
    url = f"redis://noscripts:pw@127.0.0.1:{redis_server.port}/0"
    state = RedisSharedState(url, tmp_path / "state")
    request.addfinalizer(state.close)
    limiter = state.limiter((Window(8, 60.0),), Env.REAL, APP_KEY, FakeClock())
    assert limiter.try_acquire() > 0  # the hand-over pause of local mode, not an exception
    assert state.status.mode == "local"
    assert "NoPermissionError" in caplog.text
    assert "pw@" not in caplog.text


def test_redis_failing_while_its_lock_is_held_sends_nothing(
    own_redis: RedisServer, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    state = RedisSharedState(own_redis.url, tmp_path / "state", retry_after_s=0.0)
    request.addfinalizer(state.close)
    store = state.token_store(Env.REAL, APP_KEY)
    with store.thread_lock():
        lock = store.lock()
        lock.acquire()
        own_redis.stop()
        with pytest.raises(RequestNotSent, match="unreachable"):
            store.read()
        lock.release()


def test_a_client_with_the_redis_backend_keeps_quoting_when_redis_stops(
    own_redis: RedisServer, tmp_path: pathlib.Path
) -> None:
    fake = FakeKIS(seed=7, clock=SystemClock())
    app = fake.add_app(env="real")
    with KISClient(
        app.app_key,
        app.app_secret,
        state_dir=tmp_path / "c",
        transport=fake.transport(),
        shared_state=own_redis.url,
    ) as kis:
        codes = fake.universe[:6]
        assert kis.get_price(codes[0]).price == fake.price_of(codes[0])
        own_redis.stop()
        prices = [kis.get_price(code).price for code in codes[1:]]
        assert prices == [fake.price_of(code) for code in codes[1:]]
        assert kis.shared_state_status.mode == "local"
        assert kis.shared_state_status.local_admissions == 5
    assert fake.stats.token_issuances(app.app_key) == 1


async def test_the_async_client_shares_the_same_state(
    tmp_path: pathlib.Path, redis_server: RedisServer
) -> None:
    from kisclient import AsyncKISClient

    fake = FakeKIS(seed=9, clock=SystemClock())
    app = fake.add_app(env="real")
    sync = KISClient(
        app.app_key,
        app.app_secret,
        state_dir=tmp_path / "a",
        transport=fake.transport(),
        shared_state=redis_server.url,
    )
    with sync:
        sync.get_price("005930")
    async with AsyncKISClient(
        app.app_key,
        app.app_secret,
        state_dir=tmp_path / "b",
        transport=fake.async_transport(),
        shared_state=redis_server.url,
    ) as kis:
        quote = await kis.get_price("000660")
        assert quote.price == fake.price_of("000660")
        assert kis.token_issuances == 0  # the sync client's token, through Redis
    assert fake.stats.token_issuances(app.app_key) == 1


# --- the stream lease across hosts ----------------------------------------------------------


def test_the_lease_outlives_a_silent_owner_by_the_slot_hold_margin(
    redis_state: RedisSharedState,
    redis_server: RedisServer,
    tmp_path: pathlib.Path,
    request: pytest.FixtureRequest,
) -> None:
    owner = redis_state.stream_lease(Env.REAL, APP_KEY)
    owner.acquire()
    raw = redis_server.client()
    deadline = int(raw.hget(owner.key, "deadline") or 0)
    seconds, micros = raw.time()
    now = seconds * 1_000_000 + micros
    assert deadline - now >= (owner.ttl_s + owner.slot_hold_s - 1) * 1_000_000
    # another host (own state dir, own connection): refused until the deadline
    other = RedisSharedState(redis_server.url, tmp_path / "other-host")
    request.addfinalizer(other.close)
    rival = other.stream_lease(Env.REAL, APP_KEY)
    other.backend.clock_arg = f"={deadline - 1}"
    with pytest.raises(StreamSlotBusy) as busy:
        rival.acquire()
    assert busy.value.owner_pid == owner.owner()[0]  # type: ignore[index]
    # the owner goes silent (its renewals stop without a release): the rival takes over then
    owner._stop.set()
    other.backend.clock_arg = f"={deadline}"
    rival.acquire()
    try:
        assert rival.held
        assert owner.renew() is False  # the old owner learns it lost the lease
        assert owner.lost
    finally:
        rival.release()
        owner.release()


def test_a_renewed_lease_is_kept(redis_state: RedisSharedState, redis_server: RedisServer) -> None:
    lease = redis_state.stream_lease(Env.REAL, APP_KEY)
    with lease:
        raw = redis_server.client()
        before = int(raw.hget(lease.key, "deadline") or 0)
        redis_state.backend.clock_arg = "+10000000"  # 10 s later on Redis's clock
        assert lease.renew() is True
        after = int(raw.hget(lease.key, "deadline") or 0)
        assert after - before >= 10_000_000
        redis_state.backend.clock_arg = ""
    assert raw.exists(lease.key) == 0  # released: gone at once


def test_a_client_on_another_host_cannot_open_a_second_session(
    tmp_path: pathlib.Path, redis_server: RedisServer
) -> None:
    fake = FakeKIS(seed=11, clock=SystemClock())
    fake.set_market_open(True)
    app = fake.add_app(env="real")
    with FakeKISServer(fake) as rest, FakeWSServer(fake, slot_hold_s=0.0) as ws:

        def client(host: str) -> KISClient:
            # different state dirs: only Redis connects them, as on two machines
            return KISClient(
                app.app_key,
                app.app_secret,
                state_dir=tmp_path / host,
                base_url=rest.base_url("real"),
                ws_url=ws.url,
                shared_state=redis_server.url,
            )

        with client("a") as a, client("b") as b:
            with a.stream() as s:
                assert s.recv(10) == StreamConnected(attempt=1)
                with pytest.raises(StreamSlotBusy) as info, b.stream():
                    pass
                assert info.value.owner_pid == os.getpid()
                assert "stream(relay=True)" in str(info.value)  # how to share it instead
                assert ws.stats.connections == 1  # the refused stream never connected
            with b.stream() as s2:  # released at close: the other host takes it at once
                assert s2.recv(10) == StreamConnected(attempt=1)
            assert ws.stats.connections == 2
            assert len(fake.approval_keys(app.app_key)) == 1  # b reused a's, through Redis


def test_a_stream_whose_lease_was_taken_over_stops_and_says_why(
    tmp_path: pathlib.Path, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    """The owner was silent past its lease; another host took the slot: the old session must
    close at once and never reconnect (two sockets on one key lock the slot)."""
    fake = FakeKIS(seed=12, clock=SystemClock())
    app = fake.add_app(env="real")
    with (
        FakeKISServer(fake) as rest,
        FakeWSServer(fake, slot_hold_s=0.0) as ws,
        KISClient(
            app.app_key,
            app.app_secret,
            state_dir=tmp_path / "a",
            base_url=rest.base_url("real"),
            ws_url=ws.url,
            shared_state=redis_server.url,
        ) as kis,
        kis.stream() as s,
    ):
        assert s.recv(10) == StreamConnected(attempt=1)
        lease = s._session._lease  # type: ignore[union-attr]
        assert isinstance(lease, RedisStreamLease)
        lease._stop.set()  # the owner goes silent: no more renewals
        deadline = int(redis_server.client().hget(lease.key, "deadline") or 0)
        other = RedisSharedState(redis_server.url, tmp_path / "b")
        request.addfinalizer(other.close)
        other.backend.clock_arg = f"={deadline}"
        rival = other.stream_lease(Env.REAL, app.app_key)
        rival.acquire()
        request.addfinalizer(rival.release)
        assert lease.renew() is False  # the owner's next renewal finds the rival
        with pytest.raises(StreamSlotBusy, match="taken over by another host"):
            _drain(s)
        assert ws.stats.connections == 1  # closed, and no reconnect was tried


def _drain(stream: Stream) -> None:
    """Receive until the stream raises (what it raises is the test's business)."""
    while True:
        stream.recv(10)
