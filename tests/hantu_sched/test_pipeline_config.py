"""PipelineConfig validation, default_jobs and the pipeline's pinned public API."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

import hantu_sched.pipeline as pipeline
from hantu_sched import JOB_ORDER, JobRegistry
from hantu_sched.pipeline import (
    KIS_ASYNC_SERVICE,
    KIS_SERVICE,
    PipelineConfig,
    TradingJob,
    TradingReconcileJob,
    default_jobs,
)

EXPECTED_ALL = {
    "KIS_ASYNC_SERVICE", "KIS_SERVICE", "RECORD_BALANCE_SNAPSHOT", "RECORD_FINAL_SELECTION",
    "RECORD_MARKET_CLOSE", "RECORD_ORDER", "RECORD_PERFORMANCE", "RECORD_SCREENING",
    "RECORD_TRADING", "RECORD_TRADING_RECONCILE", "TRADING_MODES", "UNIVERSE_SERVICE",
    "MarketCloseJob", "PerformanceJob", "PerformanceMetrics", "PipelineConfig", "ScreeningJob",
    "SelectionJob", "TradingJob", "TradingMode", "TradingReconcileJob", "compute_metrics",
    "default_jobs", "rank_selection", "report_path", "split_batch",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert set(pipeline.__all__) == EXPECTED_ALL
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
    assert KIS_SERVICE == "kis"
    assert KIS_ASYNC_SERVICE == "kis_async"


def test_defaults_are_safe() -> None:
    config = PipelineConfig()
    assert config.trading_mode == "dry-run"
    assert not config.allow_live
    assert config.universe is None
    assert config.top_n == 10
    assert config.max_position_fraction == 0.1
    # 21 bars of 20-day momentum need about 30 calendar days; the window leaves room for holidays.
    assert config.bars_window_days >= 40


def test_default_jobs_registers_the_five_jobs_and_the_trading_reconciler() -> None:
    config = PipelineConfig(top_n=3)
    registry = default_jobs(config)
    assert isinstance(registry, JobRegistry)
    assert set(registry) == set(JOB_ORDER)
    trading = registry["trading"]
    assert isinstance(trading.run, TradingJob)
    assert isinstance(trading.reconcile, TradingReconcileJob)
    assert trading.run.config is config
    assert all(registry[name].reconcile is None for name in JOB_ORDER if name != "trading")
    assert isinstance(default_jobs()["trading"].run, TradingJob)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_price": 0}, "min_price must be an integer >= 1"),
        ({"min_price": 1.5}, "min_price must be an integer"),
        ({"min_price": True}, "min_price must be an integer"),
        ({"max_price": 500, "min_price": 1000}, "max_price (500) is below min_price (1000)"),
        ({"min_traded_value": -1}, "min_traded_value"),
        ({"exclude_warnings": "yes"}, "exclude_warnings must be true or false"),
        ({"momentum_days": 0}, "momentum_days"),
        ({"lookback_days": 10}, "lookback_days (10) must exceed momentum_days (20)"),
        ({"top_n": 0}, "top_n"),
        ({"trading_mode": "real"}, "trading_mode must be one of dry-run, paper, live"),
        ({"trading_mode": "live"}, "set allow_live=True"),
        ({"max_position_fraction": 0}, "max_position_fraction must be in (0, 1]"),
        ({"max_position_fraction": 1.5}, "max_position_fraction must be in (0, 1]"),
        ({"max_position_fraction": float("nan")}, "max_position_fraction"),
        ({"min_score": float("inf")}, "min_score must be a finite number"),
        ({"order_type": "stop"}, "order_type must be one of limit, market"),
        ({"monitor_interval_minutes": 0}, "monitor_interval_minutes"),
        ({"universe": ["005930", ""]}, "every code must be a non-empty string"),
        ({"universe": 5930}, "universe must be None, a list of codes or a path"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PipelineConfig(**kwargs)


def test_live_needs_the_explicit_opt_in() -> None:
    config = PipelineConfig(trading_mode="live", allow_live=True)
    assert config.trading_mode == "live"


def test_config_is_frozen() -> None:
    config = PipelineConfig()
    with pytest.raises(AttributeError):
        config.top_n = 3  # type: ignore[misc]


def test_universe_list_and_file(tmp_path: pathlib.Path) -> None:
    assert PipelineConfig(universe=[" 005930", "000660"]).universe_codes() == ("005930", "000660")
    listing = tmp_path / "codes.txt"
    listing.write_text("# my universe\n005930, 000660\n\n069500  # an ETF\n005930\n", "utf-8")
    from_str = PipelineConfig(universe=str(listing))
    assert from_str.universe == listing
    assert from_str.universe_codes() == ("005930", "000660", "069500")
    assert PipelineConfig(universe=listing).universe_codes() == ("005930", "000660", "069500")
    assert PipelineConfig().universe_codes() is None


def test_universe_file_problems_are_clear(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="cannot read the universe file"):
        PipelineConfig(universe=tmp_path / "missing.txt").universe_codes()
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", "utf-8")
    with pytest.raises(ValueError, match="lists no codes"):
        PipelineConfig(universe=empty).universe_codes()


def test_from_mapping_rejects_unknown_keys() -> None:
    config = PipelineConfig.from_mapping({"top_n": 5, "trading_mode": "paper"})
    assert (config.top_n, config.trading_mode) == (5, "paper")
    with pytest.raises(ValueError, match="unknown pipeline setting\\(s\\): topn"):
        PipelineConfig.from_mapping({"topn": 5})


def test_describe_is_json_friendly() -> None:
    import json

    described = PipelineConfig(universe=["005930"]).describe()
    assert described["universe"] == "1 codes"
    json.dumps(described)
