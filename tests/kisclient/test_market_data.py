"""Market data (issue 12): order book, minute and period bars, stock information, rankings, the
holiday calendar, period profit and ``Quote.name``, through the fake KIS server with both client
shells (``[sync]`` / ``[async]``), in-process and over loopback."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kis_support import SESSION_TIME, make_fake
from kisclient import (
    KST,
    BadRequest,
    DailyBar,
    EndpointUnavailable,
    ExpectedTrade,
    FakeClock,
    InvalidStockCode,
    KISClient,
    MarketDay,
    MinuteBar,
    OrderBookSnapshot,
    PeriodProfitDay,
    PeriodProfitSummary,
    RankedStock,
    StockInfo,
    _market,
)
from kisclient._config import ENDPOINTS, Env
from kisclient._core import Call
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer

sys.path.append(str(Path(__file__).parent))
import itertools

from client_shells import SHELLS, ClientDriver, Shell

TODAY_MINUTES = ENDPOINTS["inquire_time_itemchartprice"].path
PAST_MINUTES = ENDPOINTS["inquire_time_dailychartprice"].path
CHART = ENDPOINTS["inquire_daily_itemchartprice"].path
INFO = ENDPOINTS["search_stock_info"].path
PRICE = ENDPOINTS["inquire_price"].path
#: The weekday before SESSION_TIME (Thursday 2026-11-26, 10:00 KST).
YESTERDAY = dt.date(2026, 11, 25)


@pytest.fixture(params=SHELLS, name="shell")
def _shell(request: pytest.FixtureRequest) -> Shell:
    """Each scenario once with the sync client and once with the async one."""
    return Shell(request.param)


def _real(
    shell: Shell, tmp_path: pathlib.Path, clock: FakeClock | None = None, **kwargs: Any
) -> tuple[FakeKIS, FakeApp, ClientDriver]:
    """A fake with one real app, and a driver of *shell* connected to it."""
    fake, clock = make_fake(clock)
    app = fake.add_app(env="real")
    return fake, app, shell.connect(fake, app, clock, tmp_path, **kwargs)


# --- order book -------------------------------------------------------------------------------


def test_orderbook_has_ten_levels_best_first_and_totals(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        book = kis.get_orderbook("005930")
    price = fake.price_of("005930")
    assert isinstance(book, OrderBookSnapshot)
    assert book.code == "005930"
    assert len(book.asks) == len(book.bids) == 10
    assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)
    assert [b.price for b in book.bids] == sorted((b.price for b in book.bids), reverse=True)
    assert book.best_bid is not None and book.best_bid.price == price
    assert book.best_ask is not None and book.best_ask.price > price
    assert book.total_ask_qty == sum(a.qty for a in book.asks)
    assert book.total_bid_qty == sum(b.qty for b in book.bids)
    assert len(book.ask_qty_changes) == len(book.bid_qty_changes) == 10
    assert book.time == "100000"
    # outside the auctions there is no expected trade
    assert book.expected.price == 0
    assert book.expected.code == "005930"
    assert book.expected.current_price == price
    assert book.extra == {} and book.expected.extra == {}


def test_orderbook_expected_trade_in_the_closing_auction(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    clock = FakeClock(SESSION_TIME.replace(hour=15, minute=25))
    fake, _app, driver = _real(shell, tmp_path, clock)
    with driver as kis:
        book = kis.get_orderbook("000660")
    assert book.expected.price == fake.price_of("000660")
    assert book.expected.volume > 0


# --- minute bars ------------------------------------------------------------------------------


def _consecutive(bars: list[MinuteBar]) -> bool:
    moments = [bar.at for bar in bars]
    return all(b - a == dt.timedelta(minutes=1) for a, b in itertools.pairwise(moments))


def test_todays_minute_bars_page_back_through_the_day(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        bars = kis.get_minute_bars("005930")
    # 09:00 … 10:00 is 61 bars: 30 + 30 + 1, three calls stepping back a minute each time
    assert len(bars) == 61
    assert bars[0].time == dt.time(9, 0) and bars[-1].time == dt.time(10, 0)
    assert _consecutive(bars)
    assert {bar.date for bar in bars} == {SESSION_TIME.date()}
    assert bars[-1].close == fake.price_of("005930")
    assert fake.stats.requests(path=TODAY_MINUTES) == 3
    assert fake.stats.requests(path=PAST_MINUTES) == 0
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.amount == bar.volume * bar.close


def test_minute_bars_until_a_time(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        bars = kis.get_minute_bars("005930", until=dt.time(9, 29))
    assert [bar.time for bar in bars] == [dt.time(9, m) for m in range(30)]
    # exactly one full page: a second call finds nothing before 09:00
    assert fake.stats.requests(path=TODAY_MINUTES) == 1


def test_a_past_days_minute_bars_agree_with_its_daily_bar(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        bars = kis.get_minute_bars("000660", day=YESTERDAY)
        (daily,) = kis.get_bars("000660", YESTERDAY, YESTERDAY)
    # 09:00 … 15:30 is 391 bars: 120 + 120 + 120 + 31
    assert len(bars) == 391
    assert _consecutive(bars)
    assert fake.stats.requests(path=PAST_MINUTES) == 4
    assert fake.stats.requests(path=TODAY_MINUTES) == 0
    assert bars[0].open == daily.open
    assert bars[-1].close == daily.close
    assert max(bar.high for bar in bars) <= daily.high
    assert min(bar.low for bar in bars) >= daily.low


def test_minute_bars_of_a_weekend_are_empty_and_future_days_refused(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    _fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        assert kis.get_minute_bars("005930", day=dt.date(2026, 11, 22)) == []
        with pytest.raises(ValueError, match="future"):
            kis.get_minute_bars("005930", day=dt.date(2026, 11, 27))


# --- period bars ------------------------------------------------------------------------------


def test_get_bars_defaults_to_the_last_100_days_in_one_call(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        bars = kis.get_bars("005930")
    assert len(bars) == 100
    assert bars[-1].date == SESSION_TIME.date()
    assert bars[-1].close == fake.price_of("005930")
    assert [b.date for b in bars] == sorted(b.date for b in bars)
    assert fake.stats.requests(path=CHART) == 1


def test_get_daily_prices_still_matches_daily_bars(shell: Shell, tmp_path: pathlib.Path) -> None:
    _fake, _app, driver = _real(shell, tmp_path)
    start, end = dt.date(2026, 1, 5), dt.date(2026, 11, 20)
    with driver as kis:
        daily = kis.get_daily_prices("005930", start, end)
        bars = kis.get_bars("005930", start, end)
    assert [(b.date, b.close) for b in daily] == [(b.date, b.close) for b in bars]
    assert len(bars) > 100  # paged past the 100-row limit
    assert bars[0].date == start and bars[-1].date == end


def _period_key(day: dt.date, period: str) -> tuple[int, ...]:
    if period == "W":
        return tuple(day.isocalendar()[:2])
    if period == "M":
        return (day.year, day.month)
    return (day.year,)


@pytest.mark.parametrize("period", ["W", "M", "Y"])
def test_week_month_year_bars_aggregate_the_daily_bars(
    shell: Shell, tmp_path: pathlib.Path, period: str
) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    start = {"W": dt.date(2024, 6, 3), "M": dt.date(2023, 1, 1), "Y": dt.date(2020, 1, 1)}[period]
    with driver as kis:
        daily = kis.get_bars("005930", start)
        bars = kis.get_bars("005930", start, period=period)  # type: ignore[arg-type]
    groups: dict[tuple[int, ...], list[DailyBar]] = {}
    for bar in daily:
        groups.setdefault(_period_key(bar.date, period), []).append(bar)
    assert [_period_key(b.date, period) for b in bars] == sorted(groups)
    for bar in bars:
        days = groups[_period_key(bar.date, period)]
        assert bar.date == days[-1].date
        assert (bar.open, bar.close) == (days[0].open, days[-1].close)
        assert bar.high == max(d.high for d in days)
        assert bar.low == min(d.low for d in days)
        assert bar.volume == sum(d.volume for d in days)
    assert bars[-1].close == fake.price_of("005930")


def test_yearly_bars_from_the_beginning(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        years = kis.get_bars("005930", period="Y")
    assert [b.date.year for b in years] == list(range(2010, 2027))
    assert fake.stats.requests(path=CHART) == 1


def test_the_chart_call_sends_the_period_the_adjustment_and_the_beginning() -> None:
    adjusted = _market.get_bars(Env.REAL, "005930", None, dt.date(2026, 1, 2), period="M")
    call = next(adjusted)
    assert isinstance(call, Call) and call.params is not None
    assert call.params["FID_PERIOD_DIV_CODE"] == "M"
    assert call.params["FID_ORG_ADJ_PRC"] == "0"  # 수정주가 (facts §5.3)
    assert call.params["FID_INPUT_DATE_1"] == "00000101"
    raw = _market.get_bars(
        Env.REAL, "005930", dt.date(2025, 1, 2), dt.date(2026, 1, 2), adjusted=False
    )
    call = next(raw)
    assert call.params is not None
    assert call.params["FID_ORG_ADJ_PRC"] == "1"  # 원주가
    assert call.params["FID_INPUT_DATE_1"] == "20250102"
    with pytest.raises(ValueError, match="period"):
        next(_market.get_bars(Env.REAL, "005930", None, dt.date(2026, 1, 2), period="Q"))  # type: ignore[arg-type]


def test_the_fake_accepts_the_beginning_on_the_period_chart(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with Shell("sync").connect(fake, app, clock, tmp_path) as kis:
        response = kis.request(
            "GET",
            CHART,
            tr_id="FHKST03010100",
            params={
                "FID_COND_MRKT_DIV_CODE": "J",
                "FID_INPUT_ISCD": "005930",
                "FID_INPUT_DATE_1": "00000101",
                "FID_INPUT_DATE_2": "20261126",
                "FID_PERIOD_DIV_CODE": "D",
                "FID_ORG_ADJ_PRC": "0",
            },
        )
    rows = response.data["output2"]
    assert len(rows) == 100 and rows[0]["stck_bsop_date"] == "20261126"


# --- stock information and Quote.name ---------------------------------------------------------


def test_get_stock_info_reads_the_listing(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        info = kis.get_stock_info("005930")
        kosdaq = kis.get_stock_info("0009K0")
    assert isinstance(info, StockInfo)
    assert (info.code, info.name, info.market) == ("005930", "삼성전자", "KOSPI")
    assert info.listed_on is not None and info.listed_on == info.kospi_listed_on
    assert info.kosdaq_listed_on is None
    assert info.listed_shares == 5_969_782_550
    assert info.sector_medium == "전기·전자"
    assert info.close_today == fake.price_of("005930")
    assert kosdaq.market == "KOSDAQ" and kosdaq.kosdaq_listed_on is not None


def test_get_price_fills_the_name_once_a_day(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path, quote_cache_ttl=0) as kis:
        plain = kis.get_price("005930")  # by default no extra request: the name is unknown
        assert (fake.stats.requests(path=PRICE), fake.stats.requests(path=INFO)) == (1, 0)
        first = kis.get_price("005930", with_name=True)
        assert (fake.stats.requests(path=PRICE), fake.stats.requests(path=INFO)) == (2, 1)
        again = kis.get_price("005930")
        # the name is cached: get_price's request count is unchanged (one inquire-price)
        assert (fake.stats.requests(path=PRICE), fake.stats.requests(path=INFO)) == (3, 1)
        clock.advance(86400)  # the next KST day looks the name up again
        kis.get_price("005930", with_name=True)
        assert fake.stats.requests(path=INFO) == 2
    assert plain.name == ""
    assert first.name == again.name == "삼성전자"


def test_stock_info_fills_the_name_cache(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        kis.get_stock_info("000660")
        quote = kis.get_price("000660")
    assert quote.name == "SK하이닉스"
    assert fake.stats.requests(path=INFO) == 1


def _unlisted(fake: FakeKIS) -> str:
    return next(f"{n:05d}0" for n in range(1, 99999) if f"{n:05d}0" not in fake.universe)


def test_unknown_codes_are_typed_errors(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        for call in (
            kis.get_orderbook,
            kis.get_minute_bars,
            kis.get_bars,
            kis.get_stock_info,
        ):
            with pytest.raises(InvalidStockCode):
                call("00593o")
        assert fake.stats.requests() == 0  # not even a token
        with pytest.raises(BadRequest):
            kis.get_stock_info(_unlisted(fake))
        with pytest.raises(BadRequest):
            kis.get_orderbook(_unlisted(fake))


# --- rankings ---------------------------------------------------------------------------------


def test_rankings_with_defaults_are_sorted(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        volume = kis.get_volume_rank()
        up = kis.get_fluctuation_rank()
        down = kis.get_fluctuation_rank(direction="down")
        caps = kis.get_market_cap_rank()
        kosdaq = kis.get_market_cap_rank("kosdaq")
    for ranking in (volume, up, down, caps, kosdaq):
        assert len(ranking) == 30
        assert [r.rank for r in ranking] == list(range(1, 31))
        assert all(isinstance(r, RankedStock) and r.code in fake.universe for r in ranking)
        assert all(r.price == fake.price_of(r.code) for r in ranking)
    assert [r.volume for r in volume] == sorted((r.volume for r in volume), reverse=True)
    assert [r.change_rate for r in up] == sorted((r.change_rate for r in up), reverse=True)
    assert [r.change_rate for r in down] == sorted(r.change_rate for r in down)
    assert [r.market_cap for r in caps] == sorted((r.market_cap for r in caps), reverse=True)
    assert caps[0].code == "005930" and caps[0].name == "삼성전자"
    assert "005930" not in {r.code for r in kosdaq}
    with pytest.raises(ValueError, match="market"):
        kis_bad_market(shell, tmp_path)


def kis_bad_market(shell: Shell, tmp_path: pathlib.Path) -> None:
    _fake, _app, driver = _real(shell, tmp_path / "bad")
    with driver as kis:
        kis.get_volume_rank("nyse")  # type: ignore[arg-type]


# --- the calendar -----------------------------------------------------------------------------


def test_holidays_agree_with_the_fakes_calendar(shell: Shell, tmp_path: pathlib.Path) -> None:
    _fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        days = kis.get_holidays()
        later = kis.get_holidays(dt.date(2027, 1, 1))
    assert days[0].date == SESSION_TIME.date()
    assert [d.date for d in days] == [
        SESSION_TIME.date() + dt.timedelta(days=i) for i in range(len(days))
    ]
    for day in [*days, *later]:
        assert isinstance(day, MarketDay)
        weekday = day.date.weekday() < 5
        assert day.open_day is day.business_day is day.trading_day is weekday
        assert day.settlement_day is weekday
    assert later[0].date == dt.date(2027, 1, 1) and later[0].weekday_code == "06"  # a Friday


def test_holidays_are_real_only_without_a_data_key(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    paper = fake.add_app(env="paper")
    with shell.connect(fake, paper, clock, tmp_path) as kis, pytest.raises(EndpointUnavailable):
        kis.get_holidays()
    real = fake.add_app(env="real")
    with shell.connect(
        fake, paper, clock, tmp_path, data_key=real.app_key, data_secret=real.app_secret
    ) as kis:
        assert kis.get_holidays()[0].open_day


# --- period profit ----------------------------------------------------------------------------


def test_period_profit_reports_the_days_fills(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, _app, driver = _real(shell, tmp_path)
    with driver as kis:
        bought = kis.order_cash("buy", "005930", 10)
        assert bought.order_no
        kis.order_cash("sell", "005930", 4)
        profit = kis.get_period_profit(dt.date(2026, 11, 1))
    price = fake.price_of("005930")
    (day,) = profit.days
    assert day.date == SESSION_TIME.date()
    assert (day.buy_qty, day.sell_qty) == (10, 4)
    assert (day.buy_amount, day.sell_amount) == (10 * price, 4 * price)
    assert profit.summary.total_qty == 14
    assert profit.summary.buy_traded_amount == 10 * price


def test_period_profit_is_refused_on_paper(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    paper = fake.add_app(env="paper")
    with shell.connect(fake, paper, clock, tmp_path) as kis, pytest.raises(EndpointUnavailable):
        kis.get_period_profit(dt.date(2026, 11, 1))


# --- over loopback ----------------------------------------------------------------------------


def test_market_data_over_loopback(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with (
        FakeKISServer(fake) as server,
        shell.open(
            app.app_key,
            app.app_secret,
            env="real",
            account=app.account,
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
            clock=clock,
        ) as kis,
    ):
        book = kis.get_orderbook("005930")
        bars = kis.get_minute_bars("005930")
        weeks = kis.get_bars("005930", period="W")
        info = kis.get_stock_info("069500")
        ranking = kis.get_volume_rank()
        quote = kis.get_price("005930", with_name=True)
    assert book.bids[0].price == fake.price_of("005930") == bars[-1].close == quote.price
    assert len(bars) == 61 and len(weeks) == 100
    assert info.security_group == "EF" and info.name == "KODEX 200"
    assert len(ranking) == 30
    assert quote.name == "삼성전자"


# --- every model keeps unknown fields ---------------------------------------------------------

_NEW = {"zz_new_field": "42"}


def _row(**fields: str) -> Mapping[str, str]:
    return {**fields, **_NEW}


def test_every_model_keeps_an_unknown_extra_field() -> None:
    models: list[Any] = [
        ExpectedTrade.from_row(_row(antc_cnpr="100")),
        MinuteBar.from_row(_row(stck_bsop_date="20261126", stck_cntg_hour="093000", stck_prpr="5")),
        StockInfo.from_row(_row(pdno="005930", scts_mket_lstg_dt="")),
        RankedStock.from_row(_row(mksc_shrn_iscd="005930", data_rank="1")),
        RankedStock.from_row(_row(stck_shrn_iscd="005930", data_rank="1"), "fluctuation"),
        MarketDay.from_row(_row(bass_dt="20261126", opnd_yn="Y")),
        PeriodProfitDay.from_row(_row(trad_dt="20261126")),
        PeriodProfitSummary.from_row(_row(tot_qty="3")),
    ]
    for model in models:
        assert model.extra == _NEW, type(model).__name__
    book = OrderBookSnapshot.from_outputs(
        "005930", _row(askp1="101", askp_rsqn1="7", bidp1="100"), _row(antc_cnpr="0")
    )
    assert book.extra == _NEW and book.expected.extra == _NEW
    assert book.asks[0].price == 101 and book.asks[0].qty == 7 and book.bids[0].price == 100
    bar = MinuteBar.from_row(
        {"stck_bsop_date": "20261126", "stck_cntg_hour": "093000", "stck_prpr": "5"}
    )
    assert bar.at == dt.datetime(2026, 11, 26, 9, 30, tzinfo=KST)


def test_minute_bars_agree_with_the_quote_when_prices_move(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 26, 10, 30, 20, tzinfo=KST))
    fake = FakeKIS(clock=clock, seed=3, moving_prices=True)
    app = fake.add_app(env="real")
    with KISClient(
        app.app_key, app.app_secret, account=app.account, state_dir=tmp_path,
        transport=fake.transport(), clock=clock, rate_limits=[],
    ) as kis:  # fmt: skip
        first = kis.get_price("005930").price
        bars = kis.get_minute_bars("005930")
        clock.advance(3600)  # an hour later the path has moved on
        later = kis.get_price("005930").price
        later_bars = kis.get_minute_bars("005930")
    assert bars[-1].close == first
    assert later_bars[-1].close == later
    assert len(later_bars) == len(bars) + 60
    assert min(b.low for b in later_bars) <= later <= max(b.high for b in later_bars)
