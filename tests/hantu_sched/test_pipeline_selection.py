"""The selection job: deterministic batches, valid batch files, momentum scores, final top N."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys
from collections.abc import Iterator

import pytest

from hantu_sched import BatchStore
from hantu_sched.pipeline import (
    RECORD_FINAL_SELECTION,
    PipelineConfig,
    SelectionJob,
    rank_selection,
    split_batch,
)
from hantu_sched.pipeline._selection import score_bars
from kisclient import DailyBar

sys.path.append(str(pathlib.Path(__file__).parent))
from test_pipeline_support import DAY, Harness, at, make_harness, tradable_stocks


@pytest.fixture
def harness(tmp_path: pathlib.Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, start=at("07:00"))
    yield h
    h.close()


def bar(day: int, close: int, volume: int = 1000) -> DailyBar:
    return DailyBar(date=dt.date(2026, 10, 1) + dt.timedelta(days=day), close=close, volume=volume)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    codes = [f"{i:06d}" for i in range(10)]
    ids = ("a", "b", "c")
    parts = [split_batch(codes, ids, b) for b in ids]
    assert parts[0] == ["000000", "000003", "000006", "000009"]
    assert sorted(c for part in parts for c in part) == codes
    assert sum(len(p) for p in parts) == len(codes)
    with pytest.raises(ValueError, match="not one of the configured batches"):
        split_batch(codes, ids, "d")


def test_score_is_the_momentum_return_with_a_volume_filter() -> None:
    bars = [bar(i, 100 + i) for i in range(25)]  # closes 100..124
    scored = score_bars(bars, momentum_days=20, min_avg_volume=1000)
    assert scored is not None
    assert scored["score"] == pytest.approx(124 / 104 - 1)
    assert scored["close"] == 124
    assert scored["avg_volume"] == 1000
    assert scored["bar_date"] == bars[-1].date.isoformat()
    assert score_bars(bars, momentum_days=20, min_avg_volume=1001) is None
    assert score_bars(bars[:20], momentum_days=20, min_avg_volume=0) is None  # 21 bars needed
    assert score_bars(bars[:21], momentum_days=20, min_avg_volume=0) is not None


def test_rank_selection_takes_the_best_across_batches() -> None:
    rows = {
        "1": [{"code": "A", "score": 0.3}, {"code": "B", "score": -0.1}],
        "2": [{"code": "C", "score": 0.5}, {"code": "D", "score": 0.3}, "junk"],
        "3": [{"code": "E", "score": 0.0}, {"code": "F", "score": True}],
    }
    assert [i["code"] for i in rank_selection(rows, top_n=10)] == ["C", "A", "D"]
    assert [i["code"] for i in rank_selection(rows, top_n=2)] == ["C", "A"]
    assert [i["code"] for i in rank_selection(rows, top_n=10, min_score=-1)] == [
        "C", "A", "D", "E", "B"
    ]  # fmt: skip


def test_batches_cover_the_watchlist_and_write_valid_files(harness: Harness) -> None:
    codes = tradable_stocks(harness.fake, 14)
    harness.storage.put_watchlist(DAY, {"codes": codes})
    config = PipelineConfig(min_avg_volume=0, min_score=-1.0, top_n=5)
    store = BatchStore(harness.data_dir)
    union: list[str] = []
    for batch in harness.batch_ids:
        assert harness.storage.get_record(RECORD_FINAL_SELECTION, DAY.isoformat()) is None
        SelectionJob(config)(harness.ctx("selection", batch))
        assert store.is_complete(DAY, batch)
        document = json.loads(store.path(batch).read_text("utf-8"))
        assert document["trading_date"] == DAY.isoformat()
        assert document["batch_id"] == batch
        items = document["items"]
        assert items == harness.storage.get_selection(DAY)[batch]
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)
        assert {i["code"] for i in items} == set(split_batch(codes, harness.batch_ids, batch))
        for item in items:
            assert set(item) == {"code", "score", "close", "avg_volume", "bar_date"}
            assert dt.date.fromisoformat(item["bar_date"]) < DAY
        union += [i["code"] for i in items]
    assert sorted(union) == sorted(codes)
    final = harness.record(RECORD_FINAL_SELECTION)
    assert final["batches"] == list(harness.batch_ids)
    expected = rank_selection(harness.storage.get_selection(DAY), 5, -1.0)
    assert final["items"] == expected
    assert len(expected) == 5


def test_score_matches_the_bars_from_kis(harness: Harness) -> None:
    code = tradable_stocks(harness.fake, 1)[0]
    harness.storage.put_watchlist(DAY, {"codes": [code]})
    harness.batch_ids = ("only",)
    SelectionJob(PipelineConfig(min_avg_volume=0))(harness.ctx("selection", "only"))
    (item,) = harness.storage.get_selection(DAY)["only"]
    bars = harness.kis.get_daily_prices(
        code, DAY - dt.timedelta(days=60), DAY - dt.timedelta(days=1)
    )
    closes = [b.close for b in bars]
    assert item["close"] == closes[-1]
    assert item["score"] == pytest.approx(closes[-1] / closes[-21] - 1)
    assert item["avg_volume"] == round(sum(b.volume for b in bars[-20:]) / 20)


def test_volume_filter_and_a_plain_list_watchlist(harness: Harness) -> None:
    codes = tradable_stocks(harness.fake, 6)
    harness.storage.put_watchlist(DAY, codes)  # a replacement screening may store a list
    harness.batch_ids = ("1",)
    SelectionJob(PipelineConfig(min_avg_volume=10**12))(harness.ctx("selection", "1"))
    assert harness.storage.get_selection(DAY)["1"] == []
    assert BatchStore(harness.data_dir).is_complete(DAY, "1")


def test_selection_without_a_watchlist_fails_clearly(harness: Harness) -> None:
    with pytest.raises(RuntimeError, match="screening must run first"):
        SelectionJob()(harness.ctx("selection", "1"))
    assert not BatchStore(harness.data_dir).path("1").exists()


def test_all_codes_failing_is_a_failure_not_an_empty_batch(harness: Harness) -> None:
    harness.storage.put_watchlist(DAY, {"codes": ["NOT-A-CODE", "ALSO-BAD"]})
    harness.batch_ids = ("1",)
    with pytest.raises(RuntimeError, match="failed for all 2 codes"):
        SelectionJob()(harness.ctx("selection", "1"))
    assert harness.storage.get_selection(DAY) == {}
