"""The screening job against the fake KIS: filters, both quote paths, universe sources."""

from __future__ import annotations

import logging
import pathlib
import sys
from collections.abc import Iterator

import pytest

from hantu_sched.pipeline import RECORD_SCREENING, UNIVERSE_SERVICE, PipelineConfig, ScreeningJob
from hantu_sched.pipeline._screening import progress_logger, watchlist_codes
from kisclient._config import ENDPOINTS

sys.path.append(str(pathlib.Path(__file__).parent))
from test_pipeline_support import DAY, Harness, at, make_harness


@pytest.fixture
def paper(tmp_path: pathlib.Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path, start=at("06:00"))
    yield harness
    harness.close()


def flagged(harness: Harness) -> tuple[set[str], set[str], set[str]]:
    """(warned, halted, cheap) codes of the fake universe."""
    warned, halted, cheap = set(), set(), set()
    for code in harness.fake.universe:
        listing = harness.fake.listing(code)
        if listing.warning != "00":
            warned.add(code)
        if listing.halted:
            halted.add(code)
        if harness.fake.price_of(code) < 1000:
            cheap.add(code)
    return warned, halted, cheap


def test_screening_drops_warned_halted_and_cheap_codes(paper: Harness) -> None:
    warned, halted, cheap = flagged(paper)
    assert warned and halted and cheap, "the fake universe should contain each kind of code"
    ScreeningJob(PipelineConfig(min_traded_value=0))(paper.ctx("screening"))
    payload = paper.watchlist()
    kept = set(watchlist_codes(payload))
    assert kept
    assert not kept & (warned | halted | cheap)
    # Everything else is kept: the flags and the price, nothing more, removed codes.
    assert kept == set(paper.fake.universe) - warned - halted - cheap
    assert all(payload["quotes"][c]["price"] >= 1000 for c in kept)
    stats = paper.record(RECORD_SCREENING)
    assert stats["scanned"] == len(paper.fake.universe)
    assert stats["kept"] == len(kept)
    assert stats["failed"] == 0
    assert stats["warning"] == len(warned - halted - cheap)


def test_flags_can_be_switched_off(paper: Harness) -> None:
    warned, halted, cheap = flagged(paper)
    config = PipelineConfig(min_traded_value=0, exclude_warnings=False, exclude_halted=False)
    ScreeningJob(config)(paper.ctx("screening"))
    kept = set(watchlist_codes(paper.watchlist()))
    assert (warned | halted) - cheap <= kept


def test_price_range_and_traded_value(paper: Harness) -> None:
    config = PipelineConfig(min_price=5000, max_price=100_000, min_traded_value=3_000_000_000)
    ScreeningJob(config)(paper.ctx("screening"))
    quotes = paper.watchlist()["quotes"]
    assert quotes
    for quote in quotes.values():
        assert 5000 <= quote["price"] <= 100_000
        assert quote["traded_value"] >= 3_000_000_000
    stats = paper.record(RECORD_SCREENING)
    assert stats["price"] > 0
    assert stats["traded_value"] > 0


def test_real_environment_uses_multi_price_then_fetches_flags(tmp_path: pathlib.Path) -> None:
    """The multi-price quotes carry no warning/halt flags; screening asks for them per code."""
    real = make_harness(tmp_path / "real", env="real", start=at("06:00"))
    paper = make_harness(tmp_path / "paper", start=at("06:00"))
    try:
        config = PipelineConfig(min_traded_value=0)
        ScreeningJob(config)(real.ctx("screening"))
        ScreeningJob(config)(paper.ctx("screening"))
        multi_path = ENDPOINTS["intstock_multprice"].path
        assert real.fake.stats.requests(path=multi_path) >= 1
        assert paper.fake.stats.requests(path=multi_path) == 0
        real_kept = watchlist_codes(real.watchlist())
        assert real_kept == watchlist_codes(paper.watchlist())
        warned, halted, _ = flagged(real)
        assert not set(real_kept) & (warned | halted)
    finally:
        real.close()
        paper.close()


def test_configured_universe_wins_and_bad_codes_count_as_failed(paper: Harness) -> None:
    codes = [*paper.fake.universe[:5], "NOT-A-CODE"]
    ScreeningJob(PipelineConfig(universe=codes, min_traded_value=0, min_price=1))(
        paper.ctx("screening")
    )
    stats = paper.record(RECORD_SCREENING)
    assert stats["scanned"] == 6
    assert stats["failed"] == 1
    assert set(watchlist_codes(paper.watchlist())) <= set(codes[:5])


def test_missing_universe_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, start=at("06:00"), universe=False)
    try:
        with pytest.raises(RuntimeError, match="screening has no universe"):
            ScreeningJob()(harness.ctx("screening"))
        assert harness.storage.get_watchlist(DAY) is None
    finally:
        harness.close()


def test_missing_async_service_is_a_clear_error(paper: Harness) -> None:
    ctx = paper.ctx("screening", services={UNIVERSE_SERVICE: ["005930"]})
    with pytest.raises(RuntimeError, match=r"ctx.services\['kis_async'\]"):
        ScreeningJob()(ctx)


def test_progress_is_logged_about_every_ten_percent(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.pipeline.progress")
    progress = progress_logger(logger, "quotes")
    with caplog.at_level(logging.INFO, logger=logger.name):
        for done in range(1, 201):
            progress(done, 200)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[0] == "quotes: 20/200 (10%)"
    assert lines[-1] == "quotes: 200/200 (100%)"


def test_progress_during_screening(paper: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="test.pipeline.screening"):
        ScreeningJob(PipelineConfig(min_traded_value=0))(paper.ctx("screening"))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("quotes:")]
    assert 5 <= len(progress) <= 11
    assert progress[-1].endswith("(100%)")
    assert any("scanned 120, failed 0, kept" in r.getMessage() for r in caplog.records)


def test_screening_can_start_from_kis_rankings(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, env="real", start=at("06:00"), universe=False)
    try:
        config = PipelineConfig(
            universe=["005930"],
            universe_rankings="volume, market-cap",
            min_traded_value=0,
            min_price=1,
        )
        ScreeningJob(config)(harness.ctx("screening"))
        with harness.kis as kis:
            ranked = [r.code for r in kis.get_volume_rank() + kis.get_market_cap_rank()]
    finally:
        harness.close()
    expected = list(dict.fromkeys(["005930", *ranked]))
    assert harness.record(RECORD_SCREENING)["scanned"] == len(expected)
    assert set(watchlist_codes(harness.watchlist())) <= set(expected)
    volume = ENDPOINTS["volume_rank"].path
    assert harness.fake.stats.requests(path=volume) == 2  # the job's and the check's


def test_an_unknown_ranking_is_refused() -> None:
    with pytest.raises(ValueError, match="'likes' is not one of volume, market-cap, fluctuation"):
        PipelineConfig(universe_rankings=["volume", "likes"])
