"""Performance metrics (hand-computed and property-based) and the performance job's report."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import pathlib
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hantu_sched import (
    KST,
    RISK_FREE_RATE,
    BatchStore,
    FakeClock,
    JobContext,
    JobKey,
    KRXCalendar,
    MemoryStorage,
)
from hantu_sched.pipeline import (
    RECORD_BALANCE_SNAPSHOT,
    RECORD_PERFORMANCE,
    PerformanceJob,
    compute_metrics,
    report_path,
)
from hantu_sched.pipeline._metrics import (
    TRADING_DAYS_PER_YEAR,
    annualised_volatility,
    cumulative_return,
    daily_returns,
    max_drawdown,
    sharpe_ratio,
)
from hantu_sched.pipeline._performance import account_series

DAY = dt.date(2026, 11, 26)
values_st = st.lists(st.floats(min_value=1.0, max_value=1e9), max_size=40)


# --- the math on known series -------------------------------------------------------------


def test_known_series() -> None:
    # 100 -> 110 -> 99: returns +10 %, -10 %; stdev = 0.1 * sqrt(2).
    metrics = compute_metrics([100.0, 110.0, 99.0])
    assert metrics.observations == 3
    assert metrics.daily_returns == pytest.approx((0.1, -0.1))
    assert metrics.daily_return == pytest.approx(-0.1)
    assert metrics.cumulative_return == pytest.approx(-0.01)
    assert metrics.volatility == pytest.approx(0.1 * math.sqrt(2) * math.sqrt(252))  # 2.2449944
    # (mean 0 - 0.02 / 252) / (0.1 * sqrt 2) * sqrt 252 = -0.02 / (0.1 * sqrt 504) = -0.0089087
    assert metrics.sharpe_ratio == pytest.approx(-0.02 / (0.1 * math.sqrt(504)))
    assert metrics.sharpe_ratio == pytest.approx(-0.0089087, abs=1e-7)
    assert metrics.max_drawdown == pytest.approx(0.1)
    assert metrics.risk_free_rate == RISK_FREE_RATE == 0.02


def test_known_drawdown_and_growth() -> None:
    values = [100.0, 120.0, 90.0, 130.0, 65.0, 70.0]
    assert max_drawdown(values) == pytest.approx(0.5)  # 130 -> 65
    assert cumulative_return(values) == pytest.approx(-0.3)
    returns = daily_returns([100.0, 101.0, 102.01])
    assert returns == pytest.approx([0.01, 0.01])
    assert sharpe_ratio(returns) is None  # no dispersion, no Sharpe
    assert annualised_volatility(returns) == 0.0
    assert sharpe_ratio([0.01, 0.03], risk_free_rate=0.0) == pytest.approx(
        0.02 / (0.01 * math.sqrt(2)) * math.sqrt(TRADING_DAYS_PER_YEAR)
    )


def test_short_series() -> None:
    empty = compute_metrics([])
    assert (empty.cumulative_return, empty.max_drawdown, empty.daily_return) == (None, None, None)
    one = compute_metrics([5.0])
    assert (one.cumulative_return, one.max_drawdown) == (0.0, 0.0)
    assert (one.daily_return, one.volatility, one.sharpe_ratio) == (None, None, None)
    two = compute_metrics([100.0, 105.0])
    assert two.daily_return == pytest.approx(0.05)
    assert (two.volatility, two.sharpe_ratio) == (None, None)  # one return: no dispersion yet


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_values_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="positive and finite"):
        compute_metrics([100.0, bad])


# --- properties -----------------------------------------------------------------------------


@given(values_st)
def test_max_drawdown_is_a_fraction(values: list[float]) -> None:
    drawdown = max_drawdown(values)
    if not values:
        assert drawdown is None
    else:
        assert drawdown is not None
        assert 0.0 <= drawdown <= 1.0
        assert drawdown == 0.0 or min(values) < max(values)


# Account values within three orders of magnitude of each other, so that 1 + r keeps its
# precision (a 1e-8 ratio would lose half the digits to the subtraction in r = b / a - 1).
@given(st.lists(st.floats(min_value=1e6, max_value=1e9), min_size=1, max_size=40))
def test_cumulative_return_compounds_the_daily_returns(values: list[float]) -> None:
    compounded = math.prod(1 + r for r in daily_returns(values)) - 1
    total = cumulative_return(values)
    assert total is not None
    assert compounded + 1 == pytest.approx(total + 1, rel=1e-9)


@given(st.floats(min_value=1.0, max_value=1e9), st.integers(min_value=0, max_value=30))
def test_constant_series_has_no_sharpe_and_no_risk(value: float, length: int) -> None:
    metrics = compute_metrics([value] * length)
    assert metrics.sharpe_ratio is None
    assert metrics.max_drawdown in (None, 0.0)
    assert metrics.volatility in (None, 0.0)
    if length:
        assert metrics.cumulative_return == 0.0


@given(st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=1, max_size=30))
def test_a_rising_series_never_draws_down(values: list[float]) -> None:
    assert max_drawdown(sorted(values)) == 0.0


@given(values_st, st.floats(min_value=0.01, max_value=100.0))
def test_metrics_do_not_depend_on_the_account_size(values: list[float], scale: float) -> None:
    base, scaled = compute_metrics(values), compute_metrics([v * scale for v in values])
    for name in ("cumulative_return", "max_drawdown", "volatility", "sharpe_ratio"):
        a, b = getattr(base, name), getattr(scaled, name)
        if a is None or b is None:
            # Sharpe may become undefined when rounding makes a tiny dispersion vanish.
            assert name == "sharpe_ratio" or a is b is None
        else:
            assert b == pytest.approx(a, rel=1e-6, abs=1e-6)


# --- the job -------------------------------------------------------------------------------


def context(tmp_path: pathlib.Path, storage: MemoryStorage, day: dt.date = DAY) -> JobContext:
    session = KRXCalendar().session(day)
    assert session is not None
    return JobContext(
        key=JobKey("performance", day),
        session=session,
        storage=storage,
        clock=FakeClock(dt.datetime.combine(day, dt.time(17), KST)),
        data_dir=tmp_path,
        batches=BatchStore(tmp_path),
        logger=logging.getLogger("test.pipeline.performance"),
        stop=threading.Event(),
    )


def stored(storage: MemoryStorage, kind: str = RECORD_PERFORMANCE, key: str = "2026-11-26") -> Any:
    found = storage.get_record(kind, key)
    assert found is not None
    return found


def snapshot(storage: MemoryStorage, day: str, net_assets: int) -> None:
    storage.put_record(
        RECORD_BALANCE_SNAPSHOT,
        day,
        {"date": day, "cash": net_assets, "total_value": net_assets, "net_assets": net_assets},
    )


def test_report_from_stored_snapshots(tmp_path: pathlib.Path) -> None:
    storage = MemoryStorage()
    snapshot(storage, "2026-11-24", 100_000_000)
    snapshot(storage, "2026-11-25", 110_000_000)
    snapshot(storage, "2026-11-26", 99_000_000)
    snapshot(storage, "2026-11-27", 1)  # after the trading date: ignored
    PerformanceJob()(context(tmp_path, storage))
    path = report_path(tmp_path, "2026-11-26")
    assert path == tmp_path / "reports" / "performance_2026-11-26.json"
    report = json.loads(path.read_text("utf-8"))
    assert report == stored(storage)
    assert report["snapshots"] == 3
    assert (report["first_date"], report["last_date"]) == ("2026-11-24", "2026-11-26")
    assert report["has_snapshot_for_date"] is True
    assert report["daily_return"] == pytest.approx(-0.1)
    assert report["cumulative_return"] == pytest.approx(-0.01)
    assert report["volatility"] == pytest.approx(2.2449944, abs=1e-6)
    assert report["sharpe_ratio"] == pytest.approx(-0.0089087, abs=1e-7)
    assert report["max_drawdown"] == pytest.approx(0.1)
    assert report["risk_free_rate"] == RISK_FREE_RATE
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("count", [0, 1])
def test_too_little_history_still_reports(tmp_path: pathlib.Path, count: int) -> None:
    storage = MemoryStorage()
    if count:
        snapshot(storage, "2026-11-26", 100_000_000)
    PerformanceJob()(context(tmp_path, storage))
    report = stored(storage)
    assert report["snapshots"] == count
    assert report["daily_return"] is None
    assert report["sharpe_ratio"] is None
    assert report["volatility"] is None
    assert report["cumulative_return"] == (0.0 if count else None)
    assert report_path(tmp_path, "2026-11-26").is_file()


def test_unusable_snapshots_are_skipped(tmp_path: pathlib.Path) -> None:
    storage = MemoryStorage()
    snapshot(storage, "2026-11-24", 0)
    storage.put_record(RECORD_BALANCE_SNAPSHOT, "2026-11-25", {"oops": True})
    snapshot(storage, "2026-11-26", 100)
    PerformanceJob()(context(tmp_path, storage))
    report = stored(storage)
    assert report["snapshots"] == 1


def test_rerun_rewrites_the_same_report(tmp_path: pathlib.Path) -> None:
    storage = MemoryStorage()
    snapshot(storage, "2026-11-25", 100)
    snapshot(storage, "2026-11-26", 101)
    PerformanceJob()(context(tmp_path, storage))
    first = stored(storage)
    PerformanceJob()(context(tmp_path, storage))
    assert stored(storage) == first
    assert len(list((tmp_path / "reports").iterdir())) == 1


def _snap(net: int, previous: object = None, previous_date: object = None) -> dict[str, object]:
    return {"net_assets": net, "previous_total": previous, "previous_date": previous_date}


def test_the_first_snapshot_brings_its_previous_close_so_one_day_has_a_return() -> None:
    one = {"2026-06-04": _snap(101_000_000, 100_000_000, "2026-06-02")}
    assert account_series(one, "2026-06-04") == (
        ["2026-06-02", "2026-06-04"],
        [100_000_000.0, 101_000_000.0],
        [],
    )
    two = {**one, "2026-06-05": _snap(99_990_000, 101_000_000, "2026-06-04")}
    # Only the earliest snapshot of all starts with its previous close; later ones never add one.
    assert account_series(two, "2026-06-05")[0] == ["2026-06-02", "2026-06-04", "2026-06-05"]
    assert account_series(two, "2026-06-05", since="2026-06-05")[0] == ["2026-06-05"]
    for previous, date in ((0, "2026-06-02"), (True, "2026-06-02"), (None, None),
                           (100, "2026-06-04"), (float("nan"), "2026-06-02")):  # fmt: skip
        bad = {"2026-06-04": _snap(101_000_000, previous, date)}
        assert account_series(bad, "2026-06-04")[0] == ["2026-06-04"], (previous, date)
