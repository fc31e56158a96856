"""Issue 9, items 9, 11 and 12: kisclient's state directory under a stepped clock, hostile files
and fresh creation. Every test drives the real client against the fake KIS."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pathlib
import re
import stat
import threading

import pytest

from fs_support import read_only
from kis_support import make_fake, sync_client
from kisclient import KST, ConfigurationError, FakeClock, KISClient
from kisclient._config import Env
from kisclient._ratelimit import RATE_STATE_FILE_NAME, LimiterState
from kisclient._statedir import scope_dir
from kisclient._token_store import STORE_FILE_NAME, StoreState, TokenStore
from kisclient.testing import FakeApp, FakeKIS

CODE = "005930"


class SteppedWallClock:
    """The client host's clock: KIS's time (a :class:`FakeClock`) plus a wall-clock step an
    operator or NTP made. Intervals and sleeps are the fake clock's, untouched by the step."""

    def __init__(self, kis: FakeClock) -> None:
        self.kis = kis
        self.offset = 0.0

    def step(self, seconds: float) -> None:
        """Set the wall clock forward (positive) or back (negative) by *seconds*."""
        self.offset += seconds

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), KST)

    def time(self) -> float:
        return self.kis.time() + self.offset

    def monotonic(self) -> float:
        return self.kis.monotonic()

    def sleep(self, seconds: float) -> None:
        self.kis.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await self.kis.asleep(seconds)


def stepped_client(tmp_path: pathlib.Path) -> tuple[FakeKIS, FakeApp, SteppedWallClock, KISClient]:
    """A real-environment client whose wall clock can step, on a fake KIS that keeps true time."""
    fake, kis_clock = make_fake()
    app = fake.add_app("real")
    wall = SteppedWallClock(kis_clock)
    return fake, app, wall, sync_client(fake, app, wall, tmp_path)  # type: ignore[arg-type]


def scope(tmp_path: pathlib.Path, app: FakeApp) -> pathlib.Path:
    return scope_dir(tmp_path, Env(app.env), app.app_key)


def sleeps_after(clock: FakeClock, start: int) -> list[float]:
    return [s for s in clock.sleeps[start:] if s > 0]


# --- item 9: a backward wall-clock step --------------------------------------------------------


def test_item_9_backward_clock_step_does_not_freeze_the_shared_limiter(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The wall clock is set back one hour mid-run: requests go on at once, nothing waits 1 h."""
    fake, app, wall, client = stepped_client(tmp_path)
    with client:
        for _ in range(18):
            client.get_price(CODE)
        wall.step(-3600.0)
        wall.kis.advance(1.0)
        start = len(wall.kis.sleeps)
        with caplog.at_level(logging.WARNING, logger="kisclient"):
            for _ in range(36):
                client.get_price(CODE)
    assert max(sleeps_after(wall.kis, start), default=0.0) <= 1.0
    assert sum(sleeps_after(wall.kis, start)) <= 2.0
    assert str(scope(tmp_path, app) / RATE_STATE_FILE_NAME) in caplog.text
    assert fake.stats.rate_limited(app.app_key) == 0


def test_item_9_future_dated_token_after_clock_step_and_revocation_is_replaced(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Clock set back 1 h, then KIS revokes the token: a new one is issued, no 90 s throttle."""
    fake, app, wall, client = stepped_client(tmp_path)
    with client:
        client.get_price(CODE)
        wall.kis.advance(120.0)
        wall.step(-3600.0)
        fake.revoke_all_tokens()
        start = len(wall.kis.sleeps)
        with caplog.at_level(logging.WARNING, logger="kisclient"):
            assert client.get_price(CODE).code == CODE
    assert fake.stats.token_issuances(app.app_key) == 2
    assert sum(sleeps_after(wall.kis, start)) <= 60.0
    assert str(scope(tmp_path, app) / STORE_FILE_NAME) in caplog.text


def test_item_9_token_store_with_a_future_issue_attempt_does_not_block_issuance(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """token.json says the last issuance attempt is ten days ahead: a token is issued at once."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    store = TokenStore(tmp_path, Env.REAL, app.app_key)
    store.write(StoreState(None, clock.time() + 10 * 86400, 3))
    with (
        caplog.at_level(logging.WARNING, logger="kisclient"),
        sync_client(fake, app, clock, tmp_path) as client,
    ):
        assert client.get_price(CODE).code == CODE
    assert clock.sleeps == []
    assert fake.stats.token_issuances(app.app_key) == 1
    assert str(store.path) in caplog.text
    assert store.read().generation == 4  # the generation counter survives the reset


def test_item_9_rate_state_with_a_far_future_penalty_is_reset(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ratelimit.json holds a penalty ending in a day and an admission an hour ahead: reset."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    path = scope(tmp_path, app) / RATE_STATE_FILE_NAME
    now = clock.time()
    state = LimiterState((now + 3600.0,), blocked_until=now + 86400.0, tightened_until=now + 86460)
    path.write_text(json.dumps(state.to_json()))
    path.chmod(0o600)
    with (
        caplog.at_level(logging.WARNING, logger="kisclient"),
        sync_client(fake, app, clock, tmp_path) as client,
    ):
        client.get_price(CODE)
    assert max(clock.sleeps, default=0.0) <= 1.0
    assert str(path) in caplog.text


# --- item 11: hostile state directories --------------------------------------------------------


def test_item_11_read_only_state_dir_keeps_working_with_a_valid_token(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scope directory turns read-only: calls go on (token in memory and on disk, limiter in
    process, warned once), and a token that must be renewed is a ConfigurationError."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    with sync_client(fake, app, clock, tmp_path) as client:
        client.get_price(CODE)
        directory = scope(tmp_path, app)
        with read_only(directory), caplog.at_level(logging.WARNING, logger="kisclient"):
            for _ in range(40):
                client.get_price(CODE)
            with sync_client(fake, app, clock, tmp_path) as restarted:
                assert restarted.get_price(CODE).code == CODE  # the stored token is adopted
                clock.advance(86400.0)
                with pytest.raises(ConfigurationError, match=re.escape(str(directory))):
                    restarted.get_price(CODE)
    warnings = [r for r in caplog.records if str(directory / RATE_STATE_FILE_NAME) in r.message]
    assert len(warnings) == 1, caplog.text
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18
    assert fake.stats.token_issuances(app.app_key) == 1


@pytest.mark.parametrize("via", ["argument", "KIS_STATE_DIR"])
def test_item_11_state_dir_that_is_a_regular_file_is_a_configuration_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """state_dir / KIS_STATE_DIR names a regular file: ConfigurationError at construction."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("")
    monkeypatch.setenv("KIS_APP_KEY", app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", app.app_secret)
    monkeypatch.setenv("KIS_STATE_DIR", str(not_a_dir))

    def build() -> KISClient:
        if via == "argument":
            return sync_client(fake, app, clock, not_a_dir)
        return KISClient.from_env(transport=fake.transport(), clock=clock)

    with pytest.raises(ConfigurationError, match="not a directory"):
        build()


def test_item_11_fifo_at_token_json_is_ignored_without_blocking(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A FIFO sits at token.json: skipped with a warning (never waited on), then replaced."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    fifo = scope(tmp_path, app) / STORE_FILE_NAME
    os.mkfifo(fifo, 0o600)
    outcome: list[object] = []

    def call() -> None:
        with sync_client(fake, app, clock, tmp_path) as client:
            outcome.append(client.get_price(CODE).code)

    with caplog.at_level(logging.WARNING, logger="kisclient"):
        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(timeout=20)
        if worker.is_alive():  # today's code waits for a writer: give it one, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(timeout=5)
            pytest.fail("opening token.json blocked on a FIFO")
    assert outcome == [CODE]
    assert f"{fifo}: not a regular file" in caplog.text
    assert stat.S_ISREG(fifo.stat().st_mode)


def test_item_11_directory_at_ratelimit_json_falls_back_to_an_in_process_limiter(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory sits at ratelimit.json: calls work, limited in process, with a warning."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    path = scope(tmp_path, app) / RATE_STATE_FILE_NAME
    path.mkdir()
    with (
        caplog.at_level(logging.WARNING, logger="kisclient"),
        sync_client(fake, app, clock, tmp_path) as client,
    ):
        for _ in range(40):
            client.get_price(CODE)
    assert f"rate-limit state {path} is not usable" in caplog.text
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18


def test_item_11_deeply_nested_token_json_is_ignored(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """token.json is 200,000 nested arrays: ignored with a warning (no RecursionError)."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    path = scope(tmp_path, app) / STORE_FILE_NAME
    path.write_text("[" * 200_000 + "]" * 200_000)
    path.chmod(0o600)
    with (
        caplog.at_level(logging.WARNING, logger="kisclient"),
        sync_client(fake, app, clock, tmp_path) as client,
    ):
        assert client.get_price(CODE).code == CODE
    assert f"ignoring corrupt token store {path}" in caplog.text


# --- item 12: modes of created directories -----------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o277])
def test_item_12_every_state_directory_level_created_is_0700(
    tmp_path: pathlib.Path, umask: int
) -> None:
    """A missing nested state_dir is created 0700 at every level, whatever the umask."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    tmp_path.chmod(0o755)
    state_dir = tmp_path / "cache" / "kisclient" / "state"
    old = os.umask(umask)
    try:
        sync_client(fake, app, clock, state_dir).close()
    finally:
        os.umask(old)
    created = [
        tmp_path / "cache",
        tmp_path / "cache" / "kisclient",
        state_dir,
        scope(state_dir, app),
    ]
    assert [stat.S_IMODE(p.stat().st_mode) for p in created] == [0o700] * 4
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # not ours: left alone
