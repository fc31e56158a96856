"""The state directory's defences, unit by unit: hostile files, time stamps from the future,
fallback of the shared limiter, directory modes and log redaction."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kisclient import ConfigurationError, FakeClock
from kisclient._clock import SystemClock
from kisclient._config import Env
from kisclient._ratelimit import (
    MAX_PENALTY_S,
    RATE_LOCK_FILE_NAME,
    RATE_STATE_FILE_NAME,
    TIGHTEN_S,
    LimiterState,
    SharedFileLimiter,
    Window,
)
from kisclient._redaction import RedactingFilter, install_log_redaction
from kisclient._statedir import (
    CLOCK_TOLERANCE_S,
    read_private_json,
    scope_dir,
    stamps_from_the_future,
)
from kisclient._token import TokenManager
from kisclient._token_store import STORE_FILE_NAME, StoreState, TokenStore

APP_KEY = "PSrobust" + "k" * 28
ONE_PER_SECOND = (Window(1, 1.0),)


def token_body(clock: FakeClock) -> Mapping[str, Any]:
    expires = clock.time() + 86400
    return {"access_token": "tok-" + str(expires), "token_type": "Bearer", "expires_in": 86400}


# --- time stamps from the future ---------------------------------------------------------------


def test_stamps_from_the_future_allow_the_horizon_plus_tolerance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    edge = 100.0 + 5.0 + CLOCK_TOLERANCE_S
    with caplog.at_level(logging.WARNING, logger="kisclient.state"):
        assert not stamps_from_the_future(path, "x", 100.0, [("a", edge, 5.0), ("b", None, 0.0)])
        assert not caplog.records
        assert stamps_from_the_future(path, "x", 100.0, [("a", 1.0, 0.0), ("b", 102.0, 0.0)])
    assert f"resetting x {path}: b lies 2s in the future" in caplog.text


def test_token_store_resets_future_stamps_only_when_given_the_time(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, Env.REAL, APP_KEY)
    store.write(StoreState(None, 5000.0, 7))
    assert store.read() == StoreState(None, 5000.0, 7)  # peek/status: no clock, no judgement
    assert store.read(now=5000.0 - CLOCK_TOLERANCE_S) == StoreState(None, 5000.0, 7)
    assert store.read(now=1000.0) == StoreState(generation=7)


def test_limiter_state_beyond_its_horizons_is_reset(tmp_path: Path) -> None:
    clock = FakeClock()
    now = clock.time()
    limiter = SharedFileLimiter(ONE_PER_SECOND, clock, tmp_path, Env.REAL, APP_KEY)
    allowed = LimiterState(
        (now,), blocked_until=now + MAX_PENALTY_S, tightened_until=now + MAX_PENALTY_S + TIGHTEN_S
    )
    limiter.path.write_text(json_of(allowed))
    limiter.path.chmod(0o600)
    assert limiter.state() == allowed  # the longest legitimate penalty is still honoured
    for too_far in (
        LimiterState((now + 2 * CLOCK_TOLERANCE_S,)),
        LimiterState(blocked_until=now + MAX_PENALTY_S + 2 * CLOCK_TOLERANCE_S),
        LimiterState(tightened_until=now + MAX_PENALTY_S + TIGHTEN_S + 2 * CLOCK_TOLERANCE_S),
    ):
        limiter.path.write_text(json_of(too_far))
        assert limiter.state() == LimiterState()


def json_of(state: LimiterState) -> str:
    return json.dumps(state.to_json())


def test_penalties_longer_than_the_maximum_are_refused(tmp_path: Path) -> None:
    limiter = SharedFileLimiter(ONE_PER_SECOND, FakeClock(), tmp_path, Env.REAL, APP_KEY)
    limiter.penalize(MAX_PENALTY_S)
    with pytest.raises(ValueError, match="penalty"):
        limiter.penalize(MAX_PENALTY_S + 1)


# --- hostile files -----------------------------------------------------------------------------


def test_read_private_json_never_blocks_on_a_fifo(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = tmp_path / "token.json"
    os.mkfifo(fifo, 0o600)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kisclient.state"):
        assert read_private_json(fifo, "token store") is None
    assert time.monotonic() - started < 5
    assert f"ignoring token store {fifo}: not a regular file" in caplog.text


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "not a regular file"),  # a directory
        (b"[" * 200_000, "nested too deeply"),
        (b'{"a": ' * 200_000, "nested too deeply"),
        (b"", "empty"),
        (b"[1]", "not an object"),
    ],
)
def test_read_private_json_ignores_what_it_cannot_trust(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None, why: str
) -> None:
    path = tmp_path / "state.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
        path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="kisclient.state"):
        assert read_private_json(path, "state") is None
    assert str(path) in caplog.text
    assert why in caplog.text


def test_token_store_that_cannot_be_written_is_a_configuration_error(tmp_path: Path) -> None:
    """A directory at token.json: nothing is issued, the error names the directory."""
    clock = FakeClock()
    store = TokenStore(tmp_path, Env.REAL, APP_KEY)
    (store.directory / STORE_FILE_NAME).mkdir()
    calls: list[int] = []

    def issue() -> Mapping[str, Any]:
        calls.append(1)
        return token_body(clock)

    manager = TokenManager(store, clock=clock, issue=issue)
    with pytest.raises(ConfigurationError, match="not usable"):
        manager.get()
    assert calls == []


def test_unusable_token_lock_is_a_configuration_error(tmp_path: Path) -> None:
    clock = FakeClock()
    store = TokenStore(tmp_path, Env.REAL, APP_KEY)
    store.lock_path.mkdir()
    manager = TokenManager(store, clock=clock, issue=lambda: token_body(clock))
    with pytest.raises(ConfigurationError, match="not usable"):
        manager.get()
    with pytest.raises(ConfigurationError):  # the process lock was released: no deadlock
        manager.get()


# --- the limiter's in-process fallback ---------------------------------------------------------


def test_fallback_is_shared_by_every_limiter_of_the_scope_and_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    a = SharedFileLimiter(ONE_PER_SECOND, clock, tmp_path, Env.REAL, APP_KEY)
    (a.path.parent / RATE_STATE_FILE_NAME).mkdir()
    b = SharedFileLimiter(ONE_PER_SECOND, clock, tmp_path, Env.REAL, APP_KEY)
    with caplog.at_level(logging.WARNING, logger="kisclient"):
        assert a.try_acquire() == 0.0
        assert b.try_acquire() == pytest.approx(1.0)
        clock.advance(1.0)
        assert b.try_acquire() == 0.0
    assert sum("is not usable" in r.message for r in caplog.records) == 1


def test_fallback_starts_from_the_last_readable_state(tmp_path: Path) -> None:
    """The lock file turns unusable after an admission: the admission still counts."""
    clock = FakeClock()
    limiter = SharedFileLimiter(ONE_PER_SECOND, clock, tmp_path, Env.REAL, APP_KEY)
    assert limiter.try_acquire() == 0.0
    lock = limiter.path.parent / RATE_LOCK_FILE_NAME
    lock.unlink()
    lock.mkdir()
    assert limiter.try_acquire() == pytest.approx(1.0)


# --- directories -------------------------------------------------------------------------------


def test_scope_dir_under_a_regular_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigurationError, match="cannot create"):
        scope_dir(tmp_path / "file" / "state", Env.REAL, APP_KEY)
    path = scope_dir(tmp_path / "s", Env.REAL, APP_KEY)
    path.rmdir()
    path.write_text("")
    with pytest.raises(ConfigurationError, match="not a directory"):
        scope_dir(tmp_path / "s", Env.REAL, APP_KEY)


def test_existing_state_dir_keeps_its_mode(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o750)
    path = scope_dir(state, Env.REAL, APP_KEY)
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


# --- log redaction -----------------------------------------------------------------------------


def test_install_log_redaction_is_idempotent() -> None:
    install_log_redaction()
    install_log_redaction()
    filters = [f for f in logging.getLogger("httpx").filters if isinstance(f, RedactingFilter)]
    assert len(filters) == 1


def test_redacting_filter_rewrites_only_records_with_secrets() -> None:
    secret = logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", ("/x?CANO=12345678",), None)
    plain = logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", ("/x?a=1",), None)
    assert RedactingFilter().filter(secret) and RedactingFilter().filter(plain)
    assert (secret.getMessage(), secret.args) == ("GET /x?CANO=***", None)
    assert plain.args == ("/x?a=1",)


# --- another process, another clock ------------------------------------------------------------

_AHEAD_WRITER = """
import sys
from pathlib import Path
from kisclient._clock import SystemClock
from kisclient._config import Env
from kisclient._ratelimit import SharedFileLimiter, Window


class HourAhead(SystemClock):
    def time(self) -> float:
        return super().time() + 3600.0


state_dir, app_key = Path(sys.argv[1]), sys.argv[2]
limiter = SharedFileLimiter((Window(18, 1.0),), HourAhead(), state_dir, Env.REAL, app_key)
for _ in range(18):
    assert limiter.try_acquire() == 0.0
limiter.penalize(60.0)
"""


@pytest.mark.multiprocess
def test_state_written_by_a_process_whose_clock_was_an_hour_ahead(tmp_path: Path) -> None:
    """A process wrote ratelimit.json an hour ahead (its clock was then set back): another
    process on the real clock is admitted at once."""
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run(
        [sys.executable, "-c", _AHEAD_WRITER, str(tmp_path), APP_KEY], check=True, env=env
    )
    limiter = SharedFileLimiter((Window(18, 1.0),), SystemClock(), tmp_path, Env.REAL, APP_KEY)
    assert len(json.loads(limiter.path.read_text())["history"]) == 18
    assert limiter.try_acquire() == 0.0
    assert len(limiter.state().history) == 1
