"""kisclient's public seams for tools: token_status, parse_env, default_base_url,
default_state_dir; the token store is written by a real client through the fake KIS."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest

import kisclient
from kis_support import SESSION_TIME, make_fake, sync_client
from kisclient import KST, ConfigurationError, Env, TokenStatus, token_status


def _issue_token(state_dir: pathlib.Path, env: str = "real") -> tuple[str, dt.datetime]:
    fake, clock = make_fake()
    app = fake.add_app(env=env)
    with sync_client(fake, app, clock, state_dir) as kis:
        kis.get_balance()
        expires = kis.token_expires_at()
    assert expires is not None
    return app.app_key, expires


def test_no_state_dir_is_none_and_nothing_is_created(tmp_path: pathlib.Path) -> None:
    state_dir = tmp_path / "absent"
    status = token_status(state_dir, "paper")
    assert status == TokenStatus("none", detail=f"no token stored for paper under {state_dir}")
    assert not state_dir.exists()
    assert token_status(state_dir, Env.REAL, "some-key").state == "none"
    assert not state_dir.exists()


def test_a_stored_token_is_valid_then_expired(tmp_path: pathlib.Path) -> None:
    app_key, expires = _issue_token(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    status = token_status(tmp_path, "real", now=expires - dt.timedelta(hours=1))
    assert status.state == "valid" and status.expires_at == expires
    assert status.expires_at is not None and status.expires_at.utcoffset() == dt.timedelta(hours=9)
    assert status.path is not None and status.path.name == "token.json"
    assert token_status(tmp_path, "real", app_key, now=expires + dt.timedelta(seconds=1)).state == (
        "expired"
    )
    assert token_status(tmp_path, "paper").state == "none"  # another environment
    assert sorted(tmp_path.rglob("*")) == before  # nothing created or changed
    document = status.to_dict()
    assert document == {
        "state": "valid",
        "expires_at": expires.astimezone(KST).isoformat(),
        "path": str(status.path),
        "detail": "",
    }


def test_several_stores_need_the_app_key(tmp_path: pathlib.Path) -> None:
    first, _ = _issue_token(tmp_path)
    fake, clock = make_fake()
    fake.add_app(env="real")
    other = fake.add_app(env="real")  # a second key (the fake is deterministic): its own store
    with sync_client(fake, other, clock, tmp_path) as kis:
        kis.get_balance()
    status = token_status(tmp_path, "real")
    assert status.state == "unknown" and "2 token stores" in status.detail
    assert token_status(tmp_path, "real", other.app_key, now=SESSION_TIME).state == "valid"
    assert token_status(tmp_path, "real", first, now=SESSION_TIME).state == "valid"
    assert token_status(tmp_path, "real", "never-used").state == "none"


def test_an_untrusted_store_is_unknown(tmp_path: pathlib.Path) -> None:
    app_key, _ = _issue_token(tmp_path)
    status = token_status(tmp_path, "real", app_key)
    assert status.path is not None
    if os.name == "posix":
        status.path.chmod(0o644)  # readable by others: never trusted
        assert token_status(tmp_path, "real", app_key).state == "unknown"


def test_parse_env_and_default_base_url() -> None:
    assert kisclient.parse_env("paper") is Env.PAPER
    assert kisclient.parse_env(" VPS ") is Env.PAPER
    assert kisclient.parse_env(Env.REAL) is Env.REAL
    with pytest.raises(ConfigurationError, match="'real' or 'paper'"):
        kisclient.parse_env("papre")
    assert kisclient.default_base_url("real") == "https://openapi.koreainvestment.com:9443"
    assert kisclient.default_base_url(Env.PAPER).endswith(":29443")
    with pytest.raises(ConfigurationError):
        token_status("/nonexistent", "papre")


def test_default_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    if os.name == "posix" and not str(kisclient.default_state_dir()).startswith(
        str(pathlib.Path.home() / "Library")
    ):
        assert kisclient.default_state_dir() == pathlib.Path("/somewhere/cache/kisclient")


def test_system_clock_is_public() -> None:
    now = kisclient.SystemClock().now()
    assert now.tzinfo is not None
