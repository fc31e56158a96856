"""The stream relay (``kis.stream(relay=True)``): one WebSocket session per app key, shared.

The hub's bookkeeping is tested without I/O; the relay itself with real clients, the real fake
WebSocket server, a real ``redis-server`` (across "hosts": different state directories) and the
local channel (one state directory, a Unix socket), and real processes for an owner that dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import pytest

from kis_support import async_client, sync_client
from kisclient import (
    AsyncKISClient,
    KISConnectionError,
    StreamConnected,
    SubscriptionLimitExceeded,
    Trade,
    TradeBatch,
)
from kisclient._clock import FakeClock
from kisclient._relay_hub import RelayHub, decode_message, encode_message, frame_route
from kisclient._stream_protocol import FrameDecoder
from kisclient._stream_relay import RelayStream
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer, FakeWSServer
from redis_support import RedisServer

TRADE = "H0STCNT0"
BOOK = "H0STASP0"
FILL = "H0STCNI0"
SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
WORKER = pathlib.Path(__file__).with_name("stream_relay_worker.py")
FAST: dict[str, Any] = {"reconnect_initial": 0.05, "reconnect_max": 0.2, "subscribe_rate": 1000.0}
#: Short lease timings on Redis for the tests: renew, lease, slot hold, relay heartbeat.
TIMINGS = {"renew_s": 0.1, "ttl_s": 0.4, "slot_hold_s": 0.4, "heartbeat_s": 0.1}


# --- the hub, without I/O ---------------------------------------------------------------------


def test_the_hub_registers_the_union_once_and_routes_frames_to_who_wants_them() -> None:
    hub = RelayHub()
    assert hub.add("a", [(TRADE, "005930"), (TRADE, "000660")]) == [
        (TRADE, "005930"),
        (TRADE, "000660"),
    ]
    assert hub.add("b", [(TRADE, "005930"), (BOOK, "005930")]) == [(BOOK, "005930")]
    assert hub.union == [(TRADE, "005930"), (TRADE, "000660"), (BOOK, "005930")]
    assert hub.targets((TRADE, "005930")) == ["a", "b"]
    assert hub.targets((TRADE, "000660")) == ["a"]
    assert hub.targets((TRADE, "035420")) == []
    assert hub.remove("a", [(TRADE, "005930")]) == []  # b still wants it
    assert hub.drop("b") == [(TRADE, "005930"), (BOOK, "005930")]
    assert hub.union == [(TRADE, "000660")]


def test_the_hub_refuses_what_would_exceed_41_in_total_and_changes_nothing() -> None:
    hub = RelayHub()
    hub.add("a", [(TRADE, f"{i:06d}") for i in range(30)])
    hub.add("b", [(TRADE, f"{i:06d}") for i in range(20, 40)])  # 10 new: 40 in all
    with pytest.raises(SubscriptionLimitExceeded, match="42 registrations"):
        hub.add("b", [(BOOK, "000001"), (BOOK, "000002")])
    assert len(hub.union) == 40
    assert hub.add("b", [(BOOK, "000001")]) == [(BOOK, "000001")]
    fresh, gone = hub.replace("c", [(BOOK, "000002"), (TRADE, "000001")])
    assert (fresh, gone) == ([], [])  # (BOOK, 000002) is beyond the limit: left out
    assert hub.wants("c") == [(TRADE, "000001")]


def test_fill_frames_go_to_every_participant_with_the_fill_tr() -> None:
    hub = RelayHub()
    hub.add("a", [(FILL, "hts-one")])
    hub.add("b", [(TRADE, "005930")])
    assert hub.targets((FILL, "anything")) == ["a"]


def test_messages_and_frame_routes() -> None:
    message = {"op": "frame", "text": "0|H0STCNT0|001|005930^1^2"}
    assert decode_message(encode_message(message)) == message
    assert decode_message("not json") is None
    assert decode_message("[1]") is None
    assert frame_route("0|H0STCNT0|002|005930^a^b^005930^c^d") == (TRADE, "005930")
    assert frame_route("1|H0STCNI0|001|c2VjcmV0") is None  # never relayed encrypted
    assert frame_route('{"header":{}}') is None


def test_plain_frames_of_encrypted_ones_decode_anywhere() -> None:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, iv = "k" * 32, "i" * 16
    owner = FrameDecoder()
    owner._store_key(FILL, key, iv)
    fields = ["x"] * 30
    padder = padding.PKCS7(128).padder()
    data = padder.update("^".join(fields).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    import base64

    secret = base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()
    plain = owner.plain(f"1|{FILL}|001|{secret}")
    assert plain == f"0|{FILL}|001|{'^'.join(fields)}"
    assert owner.plain("0|H0STCNT0|001|a") == "0|H0STCNT0|001|a"
    assert FrameDecoder().plain(f"1|{FILL}|001|{secret}") is None  # no key: not readable


# --- the relay, in one process ------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[FakeKIS, FakeApp, FakeWSServer, str]]:
    fake = FakeKIS(seed=16)  # the system clock: worker processes share it
    fake.set_market_open(True)
    app = fake.add_app("real")
    with (
        FakeKISServer(fake) as rest,
        FakeWSServer(fake, env="real", pingpong_interval_s=0.2, slot_hold_s=0.3) as ws,
    ):
        yield fake, app, ws, rest.base_url("real")


@pytest.fixture
def short_dir() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="kr") as name:
        yield pathlib.Path(name)


def _shorten(kis: AsyncKISClient) -> None:
    """Short lease timings for a client on Redis (see TIMINGS)."""
    shared: Any = kis._shared
    if hasattr(shared, "_lease_timing"):
        shared._lease_timing.update(renew_s=TIMINGS["renew_s"], ttl_s=TIMINGS["ttl_s"])
        shared._slot_hold_s = TIMINGS["slot_hold_s"]
        shared.relay_heartbeat_s = TIMINGS["heartbeat_s"]


@asynccontextmanager
async def participant(
    fake: FakeKIS,
    app: FakeApp,
    ws: FakeWSServer,
    state_dir: pathlib.Path,
    *,
    trade_batches: bool = False,
    **kwargs: Any,
) -> AsyncIterator[RelayStream]:
    kis = async_client(fake, app, cast("FakeClock", None), state_dir, ws_url=ws.url, **kwargs)
    _shorten(kis)
    try:
        stream = kis.stream(relay=True, trade_batches=trade_batches, **FAST)
        assert isinstance(stream, RelayStream)
        async with stream:
            yield stream
    finally:
        await kis.close()


async def next_trade(stream: RelayStream, ws: FakeWSServer, code: str) -> Trade:
    """Publish trades of *code* until *stream* receives one (its registration may still be on
    its way to the session); a trade of a code it did not subscribe fails the test."""
    for _ in range(100):
        ws.publish_trades(code)
        try:
            while True:
                event = await stream.recv(timeout=0.1)
                if isinstance(event, Trade):
                    wanted = {key for tr_id, key in stream.registrations if tr_id == TRADE}
                    assert event.code in wanted, f"got a trade of {event.code}: not wanted"
                    if event.code == code:
                        return event
        except TimeoutError:
            continue
    raise AssertionError(f"no trade of {code} arrived")


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


Backend = Callable[[pathlib.Path], dict[str, Any]]


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest, short_dir: pathlib.Path) -> Iterator[Backend]:
    """Where participants live: one state directory (the local channel), or a directory each
    and one Redis (hosts)."""
    if request.param == "local":
        yield lambda _d: {"state_dir": short_dir / "shared"}
        return
    with RedisServer(short_dir / "redis") as server:
        yield lambda d: {"state_dir": d, "shared_state": server.url}


def test_two_participants_share_one_session_and_each_gets_its_own_trades(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], backend: Backend, short_dir: pathlib.Path
) -> None:
    fake, app, ws, _rest = served
    a_code, b_code = fake.universe[0], fake.universe[1]

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "a"))
            )
            b = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "b"))
            )
            assert a.is_owner and not b.is_owner
            assert await b.recv(timeout=5) == StreamConnected(attempt=1)
            await a.subscribe_trades([a_code])
            await b.subscribe_trades([b_code, a_code])
            assert (await next_trade(b, ws, b_code)).code == b_code
            assert (await next_trade(a, ws, a_code)).code == a_code
            assert ws.stats.connections == 1
            assert ws.registrations(app.app_key) == {(TRADE, a_code), (TRADE, b_code)}
            await b.unsubscribe_trades([a_code])  # a still wants it: it stays
            await b.unsubscribe_trades([b_code])
            await until(lambda: ws.registrations(app.app_key) == {(TRADE, a_code)})
            assert ws.stats.registrations == 2

    asyncio.run(scenario())


def test_each_participant_reads_the_relayed_frames_with_its_own_options(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], short_dir: pathlib.Path
) -> None:
    fake, app, ws, _rest = served
    code = fake.universe[0]

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            shared = short_dir / "shared"
            owner = await stack.enter_async_context(participant(fake, app, ws, shared))
            batched = await stack.enter_async_context(
                participant(fake, app, ws, shared, trade_batches=True)
            )
            assert owner.is_owner and not batched.is_owner
            await owner.subscribe_trades([code])
            await batched.subscribe_trades([code])
            await next_trade(owner, ws, code)  # the session is flowing
            for _ in range(100):  # the client's registration may still be on its way
                ws.publish_trades(code, n=3, bundle=3)
                with contextlib.suppress(TimeoutError):
                    event = await batched.recv(timeout=0.1)
                    # before this one: StreamConnected, and the owner's first trades (1 a frame)
                    while not (isinstance(event, TradeBatch) and len(event) == 3):
                        event = await batched.recv(timeout=0.1)
                    break
            else:
                raise AssertionError("no batch of 3 reached the batched participant")
            assert list(event.codes) == [code] * 3
            assert all(isinstance(t, Trade) for t in event)
            assert isinstance(await owner.recv(timeout=5), Trade)  # the owner reads events

    asyncio.run(scenario())


def test_a_subscription_beyond_41_in_total_is_refused_for_the_client(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], backend: Backend, short_dir: pathlib.Path
) -> None:
    fake, app, ws, _rest = served
    codes = fake.universe[:42]

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "a"))
            )
            b = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "b"))
            )
            await a.subscribe_trades(codes[:40])
            with pytest.raises(SubscriptionLimitExceeded, match="42 registrations"):
                await b.subscribe_trades(codes[40:42])
            assert b.registrations == []
            await b.subscribe_trades([codes[40]])
            assert (await next_trade(b, ws, codes[40])).code == codes[40]
            assert len(ws.registrations(app.app_key)) == 41
            assert ws.stats.refused == 0

    asyncio.run(scenario())


def test_a_closed_owner_hands_the_session_over_and_the_union_is_replayed_once(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], backend: Backend, short_dir: pathlib.Path
) -> None:
    fake, app, ws, _rest = served
    a_code, b_code, c_code = fake.universe[:3]

    async def handover() -> None:
        async with AsyncExitStack() as stack:
            owner_exit = AsyncExitStack()
            owner = await owner_exit.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "o"))
            )
            b = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "b"))
            )
            c = await stack.enter_async_context(
                participant(fake, app, ws, **backend(short_dir / "c"))
            )
            assert owner.is_owner and not b.is_owner and not c.is_owner
            await owner.subscribe_trades([a_code])
            await b.subscribe_trades([b_code, c_code])
            await c.subscribe_trades([c_code])
            assert (await next_trade(c, ws, c_code)).code == c_code
            assert (await next_trade(b, ws, b_code)).code == b_code
            registered = ws.stats.registrations
            await owner_exit.aclose()  # a clean close: the lease is free at once
            await until(lambda: b.is_owner or c.is_owner)
            assert (await next_trade(c, ws, c_code)).code == c_code
            assert (await next_trade(b, ws, b_code)).code == b_code
            assert ws.registrations(app.app_key) == {(TRADE, b_code), (TRADE, c_code)}
            # the new session registered the union once: no duplicate, nothing refused
            assert ws.stats.registrations == registered + 2
            assert ws.stats.duplicates == 0
            assert ws.stats.connections == 2
            assert ws.sessions(app.app_key) == 1

    asyncio.run(handover())


# --- an owner process that dies ------------------------------------------------------------------


def _spawn_owner(
    app: FakeApp, ws: FakeWSServer, rest_url: str, base: dict[str, Any], code: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KIS_APP_KEY": app.app_key,
        "KIS_APP_SECRET": app.app_secret,
        "KIS_ENV": "real",
        "KIS_WS_URL": ws.url,
        "KIS_BASE_URL": rest_url,
        "KIS_ACCOUNT": app.account,
        "KIS_STATE_DIR": str(base["state_dir"]),
        "RELAY_TIMINGS": json.dumps(TIMINGS),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    if "shared_state" in base:
        env["KIS_SHARED_STATE"] = base["shared_state"]
    return subprocess.Popen(
        [sys.executable, str(WORKER), code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


@pytest.mark.multiprocess
def test_when_the_owner_process_dies_another_takes_over_and_replays_every_registration(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], backend: Backend, short_dir: pathlib.Path
) -> None:
    fake, app, ws, rest_url = served
    o_code, b_code, c_code = fake.universe[:3]
    owner = _spawn_owner(app, ws, rest_url, backend(short_dir / "o"), o_code)
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert json.loads(line or "{}").get("owner") is True, owner.stderr.read()  # type: ignore[union-attr]

        async def scenario() -> None:
            async with AsyncExitStack() as stack:
                b = await stack.enter_async_context(
                    participant(fake, app, ws, **backend(short_dir / "b"))
                )
                c = await stack.enter_async_context(
                    participant(fake, app, ws, **backend(short_dir / "c"))
                )
                assert not b.is_owner and not c.is_owner
                await b.subscribe_trades([b_code])
                await c.subscribe_trades([c_code, b_code])
                assert (await next_trade(b, ws, b_code)).code == b_code
                assert (await next_trade(c, ws, c_code)).code == c_code
                assert ws.stats.connections == 1
                assert ws.registrations(app.app_key) == {
                    (TRADE, o_code),
                    (TRADE, b_code),
                    (TRADE, c_code),
                }
                registered = ws.stats.registrations
                os.kill(owner.pid, signal.SIGKILL)
                owner.wait()
                await until(lambda: b.is_owner or c.is_owner)
                assert (await next_trade(c, ws, c_code)).code == c_code
                assert (await next_trade(b, ws, b_code)).code == b_code
                assert ws.registrations(app.app_key) == {(TRADE, b_code), (TRADE, c_code)}
                assert ws.stats.registrations == registered + 2  # the union, once
                assert ws.stats.duplicates == 0
                assert ws.sessions(app.app_key) == 1

        asyncio.run(scenario())
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=30)


def test_the_blocking_shell_runs_over_the_relay(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], short_dir: pathlib.Path
) -> None:
    fake, app, ws, _rest = served
    a_code, b_code = fake.universe[:2]
    clients = [
        sync_client(fake, app, cast("FakeClock", None), short_dir / "one", ws_url=ws.url)
        for _ in range(2)
    ]
    try:
        with clients[0].stream(relay=True, **FAST) as a, clients[1].stream(relay=True, **FAST) as b:
            a.subscribe_trades([a_code])
            b.subscribe_trades([b_code])
            assert b.registrations == [(TRADE, b_code)]
            assert ws.stats.connections == 1
            assert ws.registrations(app.app_key) == {(TRADE, a_code), (TRADE, b_code)}
            ws.publish_trades(b_code)
            ws.publish_trades(a_code)
            got = [e for e in (b.recv(timeout=5), b.recv(timeout=5)) if isinstance(e, Trade)]
            assert [t.code for t in got] == [b_code]  # StreamConnected, then its own trade only
            got = [e for e in (a.recv(timeout=5), a.recv(timeout=5)) if isinstance(e, Trade)]
            assert [t.code for t in got] == [a_code]
    finally:
        for kis in clients:
            kis.close()


def test_a_participant_that_wins_the_lease_and_cannot_connect_raises_at_once(
    served: tuple[FakeKIS, FakeApp, FakeWSServer, str], short_dir: pathlib.Path
) -> None:
    fake, app, _ws, _rest = served
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{sock.getsockname()[1]}"

    async def scenario() -> None:
        kis = async_client(fake, app, cast("FakeClock", None), short_dir / "d", ws_url=dead)
        try:
            with pytest.raises(KISConnectionError, match="cannot open the stream"):
                async with kis.stream(relay=True, **FAST):
                    pass
        finally:
            await kis.close()

    asyncio.run(scenario())
