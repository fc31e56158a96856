"""Configuration: precedence, environment conversion, job replacement, and the reference page
documenting every setting the code has."""

from __future__ import annotations

import datetime as dt
import pathlib

import attrs
import pytest

from hantu_sched import At, IncompleteSelection
from hantu_sched._settings import (
    SETTINGS,
    SettingsError,
    load_settings,
    parse_at,
    pipeline_env_var,
)
from hantu_sched.pipeline import PipelineConfig, ScreeningJob

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


def test_reference_documents_every_setting() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for spec in SETTINGS:
        assert f"`{spec.key}`" in doc, spec.key
        if spec.env:
            assert f"`{spec.env}`" in doc, spec.env
    for field in attrs.fields(PipelineConfig):
        assert f"`pipeline.{field.name}`" in doc, field.name
        assert f"`{pipeline_env_var(field.name)}`" in doc, field.name
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT", "HANTU_CONFIG"):
        assert f"`{name}`" in doc, name
    for command in ("run", "status", "recover", "simulate", "doctor"):
        assert f"| `{command}` |" in doc, command
