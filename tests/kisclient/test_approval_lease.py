"""The WebSocket approval key store/manager and the one-session-per-app-key stream lease."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kisclient._approval import (
    APPROVAL_FILE_NAME,
    APPROVAL_LOCK_FILE_NAME,
    ApprovalKey,
    ApprovalKeys,
    ApprovalKeyStore,
    ApprovalState,
    IssueApprovalFn,
)
from kisclient._clock import FakeClock
from kisclient._config import Env
from kisclient._errors import RequestNotSent, StreamSlotBusy, TokenError
from kisclient._stream_lease import OWNER_FILE_NAME, StreamLease

APP_KEY = "PSapproval" + "k" * 26
HOUR = 3600.0
SRC = Path(__file__).resolve().parents[2] / "src"


class Issuer:
    """A fake ``/oauth2/Approval``: distinct UUID-like keys, recording the clock at each call."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.keys: list[str] = []
        self._guard = threading.Lock()

    def __call__(self) -> Mapping[str, Any]:
        with self._guard:
            self.times.append(self.clock.time())
            key = f"9a1c0f3e-secret-{len(self.keys):04d}-4b6f-8d2e7a5c1b90"
            self.keys.append(key)
        return {"approval_key": key}

    async def aissue(self) -> Mapping[str, Any]:
        await asyncio.sleep(0)
        return self()


def answering(body: Any) -> IssueApprovalFn:
    """An issue function that answers *body*."""
    return lambda: body


def manager(tmp_path: Path, clock: FakeClock, issuer: Issuer) -> ApprovalKeys:
    """A manager on its own store instance (as another process would have)."""
    return ApprovalKeys(ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY), clock, issuer)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> Issuer:
    return Issuer(clock)


# --- approval key: reuse, expiry, sharing -----------------------------------------------------


def test_key_is_reused_within_24h_minus_margin_and_reissued_after(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    keys = manager(tmp_path, clock, issuer)
    first = keys.get()
    assert first.value == issuer.keys[0]
    assert first.issued_at == clock.time()
    clock.advance(23 * HOUR + 49 * 60 + 59)  # 1 s short of 24 h - 10 min
    assert keys.get() == first
    assert len(issuer.keys) == 1
    clock.advance(1)  # now exactly 24 h - 10 min old: not reused
    second = keys.get()
    assert second.value == issuer.keys[1] != first.value
    assert keys.issuances == 2
    assert keys.peek() == second


def test_a_restarted_process_reuses_the_stored_key(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    first = manager(tmp_path, clock, issuer).get()
    clock.advance(12 * HOUR)
    again = manager(tmp_path, clock, issuer)
    assert again.get() == first
    assert again.issuances == 0
    assert len(issuer.keys) == 1


def test_two_managers_on_one_directory_issue_once(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    managers = [manager(tmp_path, clock, issuer) for _ in range(8)]
    barrier = threading.Barrier(len(managers))
    results: list[ApprovalKey] = []

    def run(m: ApprovalKeys) -> None:
        barrier.wait(timeout=10)
        results.append(m.get())

    threads = [threading.Thread(target=run, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 8
    assert len(issuer.keys) == 1
    assert {k.value for k in results} == {issuer.keys[0]}
    assert sum(m.issuances for m in managers) == 1


# --- approval key: pacing ---------------------------------------------------------------------


def test_two_issuances_in_a_row_are_one_second_apart(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    a = manager(tmp_path, clock, issuer)
    b = manager(tmp_path, clock, issuer)  # "another process"
    first = a.get()
    b.invalidate(first)  # the server refused it at once
    clock.advance(0.3)
    second = b.get()
    assert second != first
    assert issuer.times[1] - issuer.times[0] >= 1.0
    assert clock.sleeps == [pytest.approx(0.7)]
    a.invalidate(second)
    third = a.get()
    assert issuer.times[2] - issuer.times[1] >= 1.0
    assert third.value == issuer.keys[2]


def test_a_failed_attempt_counts_for_pacing_unless_not_sent(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    calls: list[float] = []

    def failing() -> Mapping[str, Any]:
        calls.append(clock.time())
        raise RuntimeError("HTTP 500")

    def not_sent() -> Mapping[str, Any]:
        calls.append(clock.time())
        raise RequestNotSent("connection refused")

    store = ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY)
    with pytest.raises(RuntimeError):
        ApprovalKeys(store, clock, failing).get()
    assert store.read().last_issue_attempt == calls[0]
    ApprovalKeys(store, clock, issuer).get()
    assert issuer.times[0] - calls[0] >= 1.0  # paced after the failed attempt

    clock.advance(HOUR * 24)
    before = store.read().last_issue_attempt
    with pytest.raises(RequestNotSent):
        ApprovalKeys(store, clock, not_sent).get()
    assert store.read().last_issue_attempt == before  # rolled back
    sleeps = len(clock.sleeps)
    ApprovalKeys(store, clock, issuer).get()
    assert len(clock.sleeps) == sleeps  # no pacing wait after an attempt that never left


# --- approval key: the file --------------------------------------------------------------------


def test_file_is_0600_in_a_0700_directory(tmp_path: Path, clock: FakeClock, issuer: Issuer) -> None:
    keys = manager(tmp_path, clock, issuer)
    keys.get()
    path = keys.store.path
    assert path.name == APPROVAL_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lock = path.with_name(APPROVAL_LOCK_FILE_NAME)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["approval"]["value"] == issuer.keys[0]
    assert data["last_issue_attempt"] == issuer.times[0]
    # the token's scope directory is the approval key's too
    assert path.parent.name.startswith("real-")


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b'{"schema": 1, "env": "real", "key": "x", "approval": null}'],
)
def test_corrupt_file_means_no_key(
    tmp_path: Path, clock: FakeClock, issuer: Issuer, content: bytes
) -> None:
    keys = manager(tmp_path, clock, issuer)
    first = keys.get()
    keys.store.path.write_bytes(content)
    assert keys.store.read() == ApprovalState()
    second = keys.get()
    assert second != first
    assert len(issuer.keys) == 2


def test_key_issued_in_the_future_is_no_key(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    store = ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY)
    future = clock.time() + HOUR
    store.write(ApprovalState(ApprovalKey("from-the-future", future), future))
    key = ApprovalKeys(store, clock, issuer).get()
    assert key.value == issuer.keys[0]
    assert clock.sleeps == []  # the future attempt stamp did not hold issuance back


def test_other_environment_or_key_is_not_shared(
    tmp_path: Path, clock: FakeClock, issuer: Issuer
) -> None:
    manager(tmp_path, clock, issuer).get()
    paper = ApprovalKeys(ApprovalKeyStore(tmp_path, Env.PAPER, APP_KEY), clock, issuer)
    other = ApprovalKeys(ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY + "x"), clock, issuer)
    assert paper.get().value == issuer.keys[1]
    assert other.get().value == issuer.keys[2]


# --- approval key: invalidation ----------------------------------------------------------------


def test_invalidate_is_generation_guarded(tmp_path: Path, clock: FakeClock, issuer: Issuer) -> None:
    a = manager(tmp_path, clock, issuer)
    b = manager(tmp_path, clock, issuer)
    k1 = a.get()
    assert b.get() == k1
    a.invalidate(k1)
    assert a.peek() is None
    clock.advance(5)
    k2 = a.get()
    assert k2 != k1
    b.invalidate(k1)  # b saw the old key refused too, late: k2 must survive
    assert b.peek() == k2
    assert b.get() == k2
    assert len(issuer.keys) == 2
    # an equal value with another issue time is another key
    b.invalidate(ApprovalKey(k2.value, k2.issued_at - 1))
    assert b.peek() == k2


def test_bad_answers_raise_token_error_without_the_body(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY)
    bodies: list[Any] = [{"approval_key": ""}, {"approval_key": 42}, {"other": "leaked-secret"}, []]
    for body in bodies:
        keys = ApprovalKeys(store, clock, answering(body))
        with pytest.raises(TokenError) as info:
            keys.get()
        assert "leaked-secret" not in str(info.value)
        assert "leaked-secret" not in repr(info.value)
        clock.advance(1)
    assert store.load() is None


def test_sync_use_without_issue_fn_is_a_configuration_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    from kisclient._errors import ConfigurationError

    keys = ApprovalKeys(ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY), clock)
    with pytest.raises(ConfigurationError):
        keys.get()


# --- approval key: async -------------------------------------------------------------------------


def test_async_path(tmp_path: Path, clock: FakeClock, issuer: Issuer) -> None:
    async def main() -> None:
        keys = ApprovalKeys(
            ApprovalKeyStore(tmp_path, Env.REAL, APP_KEY), clock, aissue_fn=issuer.aissue
        )
        results = await asyncio.gather(*(keys.aget() for _ in range(5)))
        assert {k.value for k in results} == {issuer.keys[0]}
        assert keys.issuances == 1
        await keys.ainvalidate(results[0])
        assert keys.peek() is None
        second = await keys.aget()  # paced by clock.asleep
        assert second.value == issuer.keys[1]
        assert issuer.times[1] - issuer.times[0] >= 1.0
        assert clock.sleeps == [pytest.approx(1.0)]
        clock.advance(24 * HOUR)
        sync_only = manager(tmp_path, clock, issuer)  # issue_fn run in a worker thread
        third = await sync_only.aget()
        assert third.value == issuer.keys[2]

    asyncio.run(main())
    # sync and async managers share the store
    assert manager(tmp_path, clock, issuer).get().value == issuer.keys[2]


# --- approval key: no secret anywhere -----------------------------------------------------------


def test_key_never_appears_in_repr_str_or_logs(
    tmp_path: Path, clock: FakeClock, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = manager(tmp_path, clock, issuer)
    key = keys.get()
    keys.invalidate(key)
    clock.advance(2)
    key2 = keys.get()
    for secret in (key.value, key2.value, APP_KEY):
        for obj in (key, key2, keys, keys.store):
            assert secret not in repr(obj)
            assert secret not in str(obj)
        assert secret not in caplog.text
    assert ApprovalKey.from_json(key.to_json()) == key


# --- stream lease ------------------------------------------------------------------------------


@pytest.fixture
def lease(tmp_path: Path) -> Iterator[StreamLease]:
    lease = StreamLease(tmp_path, Env.REAL, APP_KEY)
    yield lease
    lease.release()


def test_lease_writes_owner_and_refuses_a_second_stream_in_process(
    tmp_path: Path, lease: StreamLease
) -> None:
    lease.acquire()
    owner = lease.owner()
    assert owner is not None
    assert owner[:2] == (os.getpid(), socket.gethostname())
    owner_file = lease.directory / OWNER_FILE_NAME
    assert stat.S_IMODE(owner_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(lease.directory.stat().st_mode) == 0o700

    other = StreamLease(tmp_path, Env.REAL, APP_KEY)
    with pytest.raises(StreamSlotBusy) as info:
        other.acquire()
    assert info.value.owner_pid == os.getpid()
    assert info.value.owner_host == socket.gethostname()
    assert str(os.getpid()) in str(info.value)
    assert socket.gethostname() in str(info.value)
    assert APP_KEY not in str(info.value)
    assert APP_KEY not in repr(lease)
    with pytest.raises(StreamSlotBusy):
        lease.acquire()  # the same object twice

    lease.release()
    assert not owner_file.exists()
    lease.release()  # idempotent
    with other:
        held_inside = other.held
        assert other.owner() is not None
    assert held_inside
    assert not other.held
    assert other.owner() is None
    # another environment is another slot
    with StreamLease(tmp_path, Env.PAPER, APP_KEY), StreamLease(tmp_path, Env.REAL, APP_KEY):
        pass


def test_release_keeps_an_owner_file_that_is_not_ours(lease: StreamLease) -> None:
    lease.acquire()
    owner_file = lease.directory / OWNER_FILE_NAME
    owner_file.write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": 1.0}))
    lease.release()
    assert owner_file.exists()


ACQUIRE_ONCE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from kisclient._config import Env
    from kisclient._errors import StreamSlotBusy
    from kisclient._stream_lease import StreamLease

    lease = StreamLease(Path(sys.argv[1]), Env.REAL, sys.argv[2])
    try:
        lease.acquire()
    except StreamSlotBusy as exc:
        print(json.dumps({"busy": True, "pid": exc.owner_pid, "host": exc.owner_host,
                          "message": str(exc)}))
    else:
        print(json.dumps({"busy": False, "owner": lease.owner()}))
        lease.release()
    """
)

ACQUIRE_AND_HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from kisclient._config import Env
    from kisclient._stream_lease import StreamLease

    lease = StreamLease(Path(sys.argv[1]), Env.REAL, sys.argv[2])
    lease.acquire()
    print("held", flush=True)
    sys.stdin.read()  # hold until the test kills this process (or closes stdin)
    """
)


def _python(code: str, state_dir: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code, str(state_dir), APP_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def _run(code: str, state_dir: Path) -> dict[str, Any]:
    proc = _python(code, state_dir)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


@pytest.mark.multiprocess
def test_a_second_process_is_refused_until_release(tmp_path: Path, lease: StreamLease) -> None:
    lease.acquire()
    refused = _run(ACQUIRE_ONCE, tmp_path)
    assert refused["busy"] is True
    assert refused["pid"] == os.getpid()
    assert refused["host"] == socket.gethostname()
    assert f"pid {os.getpid()}" in refused["message"]
    lease.release()
    taken = _run(ACQUIRE_ONCE, tmp_path)
    assert taken["busy"] is False
    assert taken["owner"][0] != os.getpid()
    lease.acquire()  # the child released it again


@pytest.mark.multiprocess
def test_a_killed_owner_leaves_the_lease_free(tmp_path: Path, lease: StreamLease) -> None:
    holder = _python(ACQUIRE_AND_HOLD, tmp_path)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StreamSlotBusy) as info:
            lease.acquire()
        assert info.value.owner_pid == holder.pid
        # an unreadable owner file: still busy, owner unknown
        owner_file = lease.directory / OWNER_FILE_NAME
        saved = owner_file.read_bytes()
        owner_file.write_bytes(b"{garbage")
        with pytest.raises(StreamSlotBusy) as info:
            lease.acquire()
        assert info.value.owner_pid is None
        assert info.value.owner_host is None
        assert "unknown" in str(info.value)
        owner_file.write_bytes(saved)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    stale = lease.owner()
    assert stale is not None
    assert stale[0] == holder.pid  # its owner file remains...
    lease.acquire()  # ...but does not block
    owner = lease.owner()
    assert owner is not None
    assert owner[0] == os.getpid()
