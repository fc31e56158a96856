"""Configuration: precedence, environment conversion, job replacement, and the reference page
documenting every setting the code has."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from collections.abc import Callable

import attrs
import pytest

from hantu_sched import At, IncompleteSelection
from hantu_sched._settings import (
    CREDENTIAL_VARS,
    CREDENTIALS_FILE_VARS,
    SETTINGS,
    Settings,
    SettingsError,
    load_credentials,
    load_settings,
    parse_at,
    pipeline_env_var,
    reference_table,
)
from hantu_sched.pipeline import PipelineConfig, ScreeningJob
from kisclient import Env

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_need_no_file() -> None:
    settings = load_settings(environ={})
    assert settings.data_dir == pathlib.Path("data")
    assert settings.scheduler.batch_ids == ("1", "2", "3", "4")
    assert settings.kis_env.value == "real"
    assert settings.config_path is None
    assert settings.pipeline_config() == PipelineConfig()
    assert isinstance(
        settings.job_registry(settings.pipeline_config())["screening"].run, ScreeningJob
    )


def test_precedence_file_then_environment_then_flag(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'data_dir = "/from/file"\nlog_level = "debug"\n'
        "[scheduler]\nbatch_count = 2\nbatch_interval_minutes = 5\n"
        "[scheduler.times]\nscreening = '05:45'\nmarket_close = 'close+45'\ntrading = 'open+5'\n"
        "[calendar]\nextra_closures = [2026-07-17, '2026-07-20']\n"
        "[kis]\nenv = 'paper'\nstate_dir = '/from/file/state'\n"
        "[pipeline]\ntop_n = 3\ntrading_mode = 'paper'\n"
    )
    env = {
        "HANTU_CONFIG": str(config),
        "HANTU_PIPELINE_TOP_N": "5",
        "HANTU_PIPELINE_EXCLUDE_HALTED": "false",
        "HANTU_PIPELINE_MAX_PRICE": "none",
        "HANTU_DATA_DIR": "/from/env",
        "HANTU_INCOMPLETE_SELECTION": "skip-trading",
    }
    settings = load_settings(environ=env)
    assert settings.data_dir == pathlib.Path("/from/env")
    assert settings.log_level == "DEBUG"
    assert settings.scheduler.batch_ids == ("1", "2")
    assert settings.scheduler.batch_interval == dt.timedelta(minutes=5)
    assert settings.scheduler.incomplete_selection is IncompleteSelection.SKIP_TRADING
    assert settings.scheduler.policy("screening").start == At.local(5, 45)
    assert settings.scheduler.policy("market_close").start == At.close(45)
    assert settings.scheduler.policy("trading").start == At.open(5)
    assert settings.scheduler.policy("trading").side_effects  # only the start changes
    assert not settings.calendar().is_trading_day(dt.date(2026, 7, 17))
    assert not settings.calendar().is_trading_day(dt.date(2026, 7, 20))
    assert settings.state_dir == pathlib.Path("/from/file/state")
    pipeline = settings.pipeline_config()
    assert (pipeline.top_n, pipeline.exclude_halted, pipeline.max_price) == (5, False, None)
    assert pipeline.trading_mode == "paper"
    flagged = load_settings(environ=env, data_dir=tmp_path / "flag")
    assert flagged.data_dir == tmp_path / "flag"


def test_job_replacement_by_import_path(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "[jobs]\nperformance = 'json:dumps'\n"
        "trading = { run = 'json:loads', reconcile = 'json:dumps' }\n"
    )
    settings = load_settings(config, {})
    registry = settings.job_registry(settings.pipeline_config())
    import json

    found: dict[str, object] = {
        "performance": registry["performance"].run,
        "trading": registry["trading"].run,
        "reconcile": registry["trading"].reconcile,
    }
    assert found == {"performance": json.dumps, "trading": json.loads, "reconcile": json.dumps}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("06:00", At.local(6)),
        ("23:59", At.local(23, 59)),
        ("open", At.open()),
        ("open-30", At.open(-30)),
        ("close + 90", At.close(90)),
    ],
)
def test_parse_at(text: str, expected: At) -> None:
    assert parse_at("x", text) == expected


@pytest.mark.parametrize("text", ["24:00", "6", "noon", "close*2", "07:60"])
def test_parse_at_rejects(text: str) -> None:
    with pytest.raises(SettingsError, match=r"scheduler\.times\.x"):
        parse_at("x", text)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HANTU_PIPELINE_TOP_N": "many"}, "HANTU_PIPELINE_TOP_N must be a number"),
        ({"HANTU_PIPELINE_ALLOW_LIVE": "perhaps"}, "must be true or false"),
        ({"HANTU_PIPELINE_TOPN": "3"}, "unknown pipeline environment variable HANTU_PIPELINE_TOPN"),
        ({"HANTU_BATCH_COUNT": "0"}, "batch_count must be an integer >= 1"),
        ({"HANTU_BATCH_COUNT": "2", "HANTU_BATCH_IDS": "a,b"}, "either scheduler.batch_ids"),
        ({"HANTU_BATCH_INTERVAL_MINUTES": "-1"}, "must be a positive number"),
        ({"KIS_ENV": "sandbox"}, "env must be 'real' or 'paper'"),
    ],
)
def test_environment_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=None) as info:
        load_settings(environ=env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_the_reference_page_holds_the_table_rendered_from_settings() -> None:
    """docs/configuration.md's runner table is exactly SETTINGS rendered (keys, variables,
    defaults and text), in order, and no other runner key is documented there."""
    doc = DOC.read_text(encoding="utf-8")
    assert reference_table() in doc, "regenerate the table: see docs/configuration.md"
    section = doc.split("## Runner settings", 1)[1].split("### Credentials", 1)[0]
    keys = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
    assert keys == [spec.key for spec in SETTINGS]
    for field in attrs.fields(PipelineConfig):
        assert f"`pipeline.{field.name}`" in doc, field.name
        assert f"`{pipeline_env_var(field.name)}`" in doc, field.name
    for name in (*CREDENTIAL_VARS, "HANTU_CONFIG"):
        assert f"`{name}`" in doc, name
    for command in ("run", "status", "recover", "simulate", "doctor"):
        assert f"| `{command}` |" in doc, command


def _private_file(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _samples(tmp_path: pathlib.Path) -> dict[str, tuple[str, Callable[[Settings], object], object]]:
    """For every setting with an environment variable: a value, where it lands, what it is."""
    creds = _private_file(tmp_path / "creds.env", "KIS_APP_KEY=k\n")
    return {
        "data_dir": ("/x/data", lambda s: s.data_dir, pathlib.Path("/x/data")),
        "log_level": ("debug", lambda s: s.log_level, "DEBUG"),
        "scheduler.batch_ids": ("a, b", lambda s: s.scheduler.batch_ids, ("a", "b")),
        "scheduler.batch_count": ("3", lambda s: s.scheduler.batch_ids, ("1", "2", "3")),
        "scheduler.batch_interval_minutes": (
            "7.5",
            lambda s: s.scheduler.batch_interval,
            dt.timedelta(minutes=7.5),
        ),
        "scheduler.incomplete_selection": (
            "skip-trading",
            lambda s: s.scheduler.incomplete_selection,
            IncompleteSelection.SKIP_TRADING,
        ),
        "kis.env": ("vps", lambda s: s.kis_env, Env.PAPER),
        "kis.base_url": ("http://127.0.0.1:1", lambda s: s.base_url, "http://127.0.0.1:1"),
        "kis.state_dir": (str(tmp_path / "st"), lambda s: s.state_dir, tmp_path / "st"),
        "kis.ws_url": ("ws://127.0.0.1:2", lambda s: s.kis_target.ws_url, "ws://127.0.0.1:2"),
        "kis.hts_id": ("trader1", lambda s: s.kis_target.hts_id, "trader1"),
        "kis.shared_state": (
            "redis://:pw@127.0.0.1:6379/0",
            lambda s: s.kis_target.shared_state,
            "redis://:pw@127.0.0.1:6379/0",
        ),
        "kis.data_base_url": (
            "http://127.0.0.1:3",
            lambda s: s.kis_target.data_base_url,
            "http://127.0.0.1:3",
        ),
        "kis.credentials_file": (str(creds), lambda s: s.credentials_file, creds),
        "doctor.clock_warn_seconds": ("2.5", lambda s: s.clock_warn_seconds, 2.5),
        "doctor.clock_fail_seconds": ("90", lambda s: s.clock_fail_seconds, 90.0),
        "storage": (
            "postgresql://h17@127.0.0.1:5/db",
            lambda s: s.storage,
            "postgresql://h17@127.0.0.1:5/db",
        ),
        "leadership.deployment": ("desk-b", lambda s: s.deployment, "desk-b"),
        "leadership.lease_seconds": ("12", lambda s: s.lease_seconds, 12.0),
        **_telemetry_samples(tmp_path),
    }


def _telemetry_samples(
    tmp_path: pathlib.Path,
) -> dict[str, tuple[str, Callable[[Settings], object], object]]:
    """The ``[alerts]`` / ``[metrics]`` rows (issue 15): text, field of ``TelemetryConfig``,
    value."""
    rows: dict[str, tuple[str, str, object]] = {
        "alerts.events": ("job_failed, performance", "alert_events", ("job_failed", "performance")),
        "alerts.min_severity": ("Critical", "alert_min_severity", "critical"),
        "alerts.rate_per_minute": ("6", "alert_rate_per_minute", 6.0),
        "alerts.queue_size": ("7", "alert_queue_size", 7),
        "alerts.max_attempts": ("2", "alert_max_attempts", 2),
        "alerts.backoff_seconds": ("0.5", "alert_backoff_seconds", 0.5),
        "alerts.timeout_seconds": ("3", "alert_timeout_seconds", 3.0),
        "alerts.telegram_chat_id": ("-100", "telegram_chat_id", "-100"),
        "alerts.telegram_base_url": (
            "http://127.0.0.1:4",
            "telegram_base_url",
            "http://127.0.0.1:4",
        ),
        "alerts.smtp_host": ("mail.local", "smtp_host", "mail.local"),
        "alerts.smtp_port": ("2525", "smtp_port", 2525),
        "alerts.smtp_security": ("SSL", "smtp_security", "ssl"),
        "alerts.smtp_user": ("ops", "smtp_user", "ops"),
        "alerts.email_from": ("bot@x.y", "email_from", "bot@x.y"),
        "alerts.email_to": ("a@x.y, b@x.y", "email_to", ("a@x.y", "b@x.y")),
        "metrics.enabled": ("off", "metrics_enabled", False),
        "metrics.textfile": (str(tmp_path / "m.prom"), "metrics_textfile", tmp_path / "m.prom"),
        "metrics.http_port": ("9108", "metrics_http_port", 9108),
        "metrics.interval_seconds": ("60", "metrics_interval_seconds", 60.0),
    }

    def field(name: str) -> Callable[[Settings], object]:
        return lambda s: getattr(s.telemetry, name)

    return {key: (text, field(name), value) for key, (text, name, value) in rows.items()}


def test_every_environment_variable_of_the_table_is_read(tmp_path: pathlib.Path) -> None:
    samples = _samples(tmp_path)
    assert set(samples) == {spec.key for spec in SETTINGS if spec.env}  # a new row needs one
    for spec in SETTINGS:
        if spec.env is None:
            continue
        text, where, expected = samples[spec.key]
        default = where(load_settings(environ={}))
        assert default != expected, spec.key  # the sample really changes something
        assert where(load_settings(environ={spec.env: text})) == expected, spec.key


BAD_VALUES = {
    "log_level": "LOUD",
    "scheduler.batch_ids": "a b",
    "scheduler.batch_count": "1.5",
    "scheduler.batch_interval_minutes": "nan",
    "scheduler.incomplete_selection": "maybe",
    "kis.env": "sandbox",
    "kis.base_url": "ftp://x",
    "kis.ws_url": "http://x",
    "kis.hts_id": "two words",
    "kis.shared_state": "http://127.0.0.1:6379",
    "doctor.clock_warn_seconds": "true",
    "doctor.clock_fail_seconds": "-3",
    "storage": "mysql://x",
    "leadership.lease_seconds": "1",
}


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_a_bad_environment_value_is_one_line_naming_key_and_variable(key: str) -> None:
    spec = next(s for s in SETTINGS if s.key == key)
    assert spec.env is not None
    with pytest.raises(SettingsError) as info:
        load_settings(environ={spec.env: BAD_VALUES[key]})
    message = str(info.value)
    assert "\n" not in message
    assert key in message or key.rpartition(".")[0] in message, message
    if "invalid batch id" not in message:  # the batch id check names the id, not the variable
        assert f"(from {spec.env})" in message and repr(BAD_VALUES[key]) in message, message


def test_unknown_keys_come_from_the_table(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    for text, fragment in [
        ("[doctor]\nclock_warn = 1\n", "unknown setting(s) clock_warn in [doctor]"),
        ("[kis]\nenvironment = 'paper'\n", "unknown setting(s) environment in [kis]"),
        ("[calendar]\nclosures = []\n", "unknown setting(s) closures in [calendar]"),
        ("scheduler = 3\n", "[scheduler] must be a table"),
    ]:
        config.write_text(text)
        with pytest.raises(SettingsError, match=re.escape(fragment)):
            load_settings(config, {})


def test_credentials_file_kis_variables_rank_between_toml_and_environment(
    tmp_path: pathlib.Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[kis]\nenv = 'real'\nbase_url = 'http://toml:1'\n")
    creds = _private_file(
        tmp_path / "creds.env",
        "KIS_APP_KEY=k\nKIS_APP_SECRET=s\nKIS_ENV=paper\nKIS_BASE_URL=http://file:2\n"
        f"KIS_STATE_DIR={tmp_path / 'file-state'}\n",
    )
    env = {"HANTU_CREDENTIALS_FILE": str(creds)}
    from_file = load_settings(config, env)
    assert (from_file.kis_env, from_file.base_url) == (Env.PAPER, "http://file:2")
    assert from_file.state_dir == tmp_path / "file-state"
    both = load_settings(config, {**env, "KIS_ENV": "real", "KIS_BASE_URL": "http://env:3"})
    assert (both.kis_env, both.base_url) == (Env.REAL, "http://env:3")
    credentials = load_credentials(from_file, env)
    assert credentials is not None and (credentials.app_key, credentials.app_secret) == ("k", "s")
    assert set(CREDENTIALS_FILE_VARS) == {
        "KIS_APP_KEY",
        "KIS_APP_SECRET",
        "KIS_ACCOUNT",
        "KIS_ENV",
        "KIS_BASE_URL",
        "KIS_STATE_DIR",
        "KIS_WS_URL",
        "KIS_HTS_ID",
        "KIS_SHARED_STATE",
        "KIS_DATA_BASE_URL",
        "KIS_DATA_APP_KEY",
        "KIS_DATA_APP_SECRET",
        "HANTU_ALERT_WEBHOOK_URL",
        "HANTU_ALERT_SLACK_WEBHOOK_URL",
        "HANTU_ALERT_TELEGRAM_BOT_TOKEN",
        "HANTU_ALERT_SMTP_PASSWORD",
    }
    _private_file(creds, "KIS_APP_KEY=k\nKIS_TIMEOUT=3\n")
    with pytest.raises(SettingsError, match="line 2: expected one of KIS_APP_KEY"):
        load_settings(config, env)
