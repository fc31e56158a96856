""" "Two hosts": real processes with *different* state directories sharing one real redis-server
and one loopback fake KIS. Nothing but Redis connects them, as on separate machines."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kisclient import StreamSlotBusy, SystemClock
from kisclient._config import ENDPOINTS, Env
from kisclient._redis_state import RedisSharedState
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer
from redis_support import RedisServer

pytestmark = [pytest.mark.multiprocess, pytest.mark.loopback]

WORKER = pathlib.Path(__file__).with_name("shared_state_worker.py")
SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
QUOTE_PATH = ENDPOINTS["inquire_price"].path


@pytest.fixture
def served() -> Iterator[tuple[FakeKIS, FakeApp, str]]:
    fake = FakeKIS(seed=16, clock=SystemClock())
    app = fake.add_app(env="real")
    with FakeKISServer(fake) as server:
        yield fake, app, server.base_url("real")


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def spawn(
    app: FakeApp, base_url: str, state_dir: pathlib.Path, redis_url: str, *args: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KIS_APP_KEY": app.app_key,
        "KIS_APP_SECRET": app.app_secret,
        "KIS_BASE_URL": base_url,
        "KIS_STATE_DIR": str(state_dir),
        "KIS_SHARED_STATE": redis_url,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def release(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def read_json(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    value = json.loads(line)
    assert isinstance(value, dict)
    return value


def finish(proc: subprocess.Popen[str]) -> tuple[dict[str, object], str]:
    result = read_json(proc)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return result, err


def test_eight_cold_hosts_issue_one_token(
    served: tuple[FakeKIS, FakeApp, str], redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    fake, app, base_url = served
    code = fake.universe[0]
    procs = [
        spawn(app, base_url, tmp_path / f"host{i}", redis_server.url, "quotes", "1", "0", code)
        for i in range(8)
    ]
    release(procs)
    results = [finish(proc)[0] for proc in procs]
    assert sum(int(r["issuances"]) for r in results) == 1  # type: ignore[call-overload]
    assert [r["failed"] for r in results] == [0] * 8
    assert [r["ok"] for r in results] == [1] * 8
    assert fake.stats.token_calls(app.app_key) == 1
    assert fake.stats.token_issuances(app.app_key) == 1
    # no host wrote a token file: the token lives in Redis only
    assert not list(tmp_path.glob("host*/*/token.json"))


def test_three_hosts_quoting_at_full_speed_stay_inside_the_window(
    served: tuple[FakeKIS, FakeApp, str], redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    fake, app, base_url = served
    codes = fake.universe[:40]
    procs = [
        spawn(app, base_url, tmp_path / f"host{i}", redis_server.url, "quotes", "120", "0", *codes)
        for i in range(3)
    ]
    release(procs)
    results = [finish(proc)[0] for proc in procs]
    assert [r["ok"] for r in results] == [120] * 3
    assert fake.stats.requests(path=QUOTE_PATH) == 360
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18
    assert all(r["mode"] == "shared" for r in results)


def test_redis_stopping_mid_run_degrades_without_a_flood(
    served: tuple[FakeKIS, FakeApp, str], redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    fake, app, base_url = served
    codes = fake.universe[:20]
    procs = [
        spawn(app, base_url, tmp_path / f"host{i}", redis_server.url, "quotes", "30", "12", *codes)
        for i in range(3)
    ]
    release(procs)
    for proc in procs:  # every host is through its first phase, in shared mode
        assert read_json(proc) == {"phase": 1}
    redis_server.stop()
    release(procs)
    finished = [finish(proc) for proc in procs]
    for result, err in finished:
        assert result["ok"] == 42
        assert result["failed"] == 0
        assert result["mode"] == "local"
        assert result["outages"] == 1
        assert result["local_admissions"] == 12
        assert err.count("LOCAL MODE") == 1  # said once per process, not per call
    assert fake.stats.requests(path=QUOTE_PATH) == 126
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18
    assert fake.stats.token_calls(app.app_key) == 1  # the cached token carried on


def test_the_stream_lease_passes_to_another_host_when_its_owner_dies(
    served: tuple[FakeKIS, FakeApp, str],
    redis_server: RedisServer,
    tmp_path: pathlib.Path,
    request: pytest.FixtureRequest,
) -> None:
    _fake, app, base_url = served
    owner = spawn(app, base_url, tmp_path / "owner", redis_server.url, "lease")
    try:
        owner_pid = read_json(owner)["pid"]
        other = RedisSharedState(redis_server.url, tmp_path / "other")
        request.addfinalizer(other.close)
        rival = other.stream_lease(Env.REAL, app.app_key)
        with pytest.raises(StreamSlotBusy) as busy:
            rival.acquire()
        assert busy.value.owner_pid == owner_pid
        owner.send_signal(signal.SIGKILL)  # dies without releasing anything
        owner.wait(timeout=30)
        raw = redis_server.client()
        deadline = int(raw.hget(rival.key, "deadline") or 0)
        seconds, micros = raw.time()
        died = seconds * 1_000_000 + micros
        # the dead owner's lease runs on for at least the slot-hold margin
        assert deadline - died >= (rival.slot_hold_s + rival.ttl_s - rival.renew_s) * 1_000_000
        other.backend.clock_arg = f"={deadline - 1}"
        with pytest.raises(StreamSlotBusy):
            rival.acquire()
        other.backend.clock_arg = f"={deadline}"
        rival.acquire()
        assert rival.held
        assert rival.owner() is not None
        assert rival.owner()[0] == os.getpid()  # type: ignore[index]
        rival.release()
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=30)
