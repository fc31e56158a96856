"""The market-data operations of issue 12: sans-I/O generators, as in :mod:`kisclient._operations`.

Each operation yields the :class:`~kisclient._core.Call` it needs next, receives the
:class:`~kisclient._operations.Response`, and returns typed models from
:mod:`kisclient._market_models`. Paging lives here once:

- minute bars: the charts have no cursor; each call answers the bars *ending* at
  ``FID_INPUT_HOUR_1`` (newest first, up to 30 today / 120 for a past day), so the next call
  asks for the minute before the oldest bar received, until 09:00 or a short page;
- period bars (``inquire-daily-itemchartprice``): at most 100 rows per call, newest first; the
  next call moves ``FID_INPUT_DATE_2`` to the day before the oldest bar;
- holidays and rankings: one call (no continuation is documented for them);
- period profit: ``tr_cont`` / ``CTX_AREA_*`` continuation (KIS's 연속조회 rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal

from ._config import DAILY_CHART_MAX_ROWS, ENDPOINTS, Env
from ._core import Call, next_page
from ._errors import BadRequest
from ._market_models import (
    MarketDay,
    MinuteBar,
    OrderBookSnapshot,
    PeriodProfit,
    PeriodProfitDay,
    PeriodProfitSummary,
    RankedStock,
    StockInfo,
)
from ._models import DailyBar
from ._operations import Operation, Response, _output, _tr, _yyyymmdd
from ._validation import Account, StockCode, normalize_code

__all__ = [
    "BEGINNING",
    "MARKET_CLOSE",
    "MARKET_OPEN",
    "MINUTE_PAGE_PAST",
    "MINUTE_PAGE_TODAY",
    "PERIODS",
    "RANK_MARKETS",
    "Market",
    "Period",
    "get_bars",
    "get_fluctuation_rank",
    "get_holidays",
    "get_market_cap_rank",
    "get_minute_bars",
    "get_orderbook",
    "get_period_profit",
    "get_stock_info",
    "get_volume_rank",
    "stock_info_call",
]

Period = Literal["D", "W", "M", "Y"]
Market = Literal["all", "kospi", "kosdaq"]

#: ``FID_PERIOD_DIV_CODE`` values: day, week, month, year (KIS's period-chart documentation).
PERIODS: Final = ("D", "W", "M", "Y")
#: ``FID_INPUT_DATE_1`` for "from the beginning" (what python-kis sends; one call then answers
#: the newest 100 periods).
BEGINNING: Final = "00000101"
#: The KRX regular session: minute charts start at 09:00 and end at 15:30.
MARKET_OPEN: Final = dt.time(9, 0)
MARKET_CLOSE: Final = dt.time(15, 30)
#: Rows per call of today's minute chart and of a past day's (KIS documents ≤120 for past days).
MINUTE_PAGE_TODAY: Final = 30
MINUTE_PAGE_PAST: Final = 120
#: ``FID_INPUT_ISCD`` of the rankings per market (0000 all, 0001 KOSPI/거래소, 1001 KOSDAQ).
RANK_MARKETS: Final[dict[str, str]] = {"all": "0000", "kospi": "0001", "kosdaq": "1001"}
#: volume-rank ``FID_BLNG_CLS_CODE`` per ordering.
VOLUME_RANK_BY: Final[dict[str, str]] = {
    "volume": "0",
    "volume_increase": "1",
    "turnover": "2",
    "traded_value": "3",
    "traded_value_turnover": "4",
}
#: ranking/fluctuation ``FID_RANK_SORT_CLS_CODE`` per direction.
FLUCTUATION_SORT: Final[dict[str, str]] = {"up": "0", "down": "1"}


def _hhmmss(value: dt.time) -> str:
    return value.strftime("%H%M%S")


def _market_code(market: str) -> str:
    try:
        return RANK_MARKETS[market]
    except KeyError:
        raise ValueError(f"market must be one of {sorted(RANK_MARKETS)}, not {market!r}") from None


def _rows(response: Response, key: str) -> list[Mapping[str, Any]]:
    value = response.data.get(key)
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return []
    return [
        row
        for row in value
        if isinstance(row, Mapping) and any(str(v).strip() for v in row.values())
    ]


# --- order book --------------------------------------------------------------------------------


def get_orderbook(env: Env, raw_code: str) -> Operation[OrderBookSnapshot]:
    """The ten-level book and the expected trade of one code; :class:`BadRequest` for a code
    KIS does not list (an answer with no price anywhere: no best ask or bid, no current price).
    """
    code = normalize_code(raw_code)
    tr_id = _tr("inquire_asking_price_exp_ccn", env)
    response = yield Call(
        ENDPOINTS["inquire_asking_price_exp_ccn"],
        tr_id,
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code.query_code},
    )
    book, expected = _output(response, "output1"), _output(response, "output2")
    prices = (book.get("askp1"), book.get("bidp1"), expected.get("stck_prpr"))
    if all(_no_price(value) for value in prices):
        raise BadRequest(f"{code.code} is not listed (empty order book)", tr_id=tr_id)
    return OrderBookSnapshot.from_outputs(code.code, book, expected)


def _no_price(value: Any) -> bool:
    """A missing, blank or zero price field."""
    text = str(value if value is not None else "").strip()
    return not text or not text.strip("0.")


# --- minute bars -------------------------------------------------------------------------------


def _minute_call(env: Env, code: StockCode, day: dt.date | None, until: dt.time) -> Call:
    """One page of minute bars ending at *until*: today's chart (*day* ``None``) or *day*'s."""
    if day is None:
        return Call(
            ENDPOINTS["inquire_time_itemchartprice"],
            _tr("inquire_time_itemchartprice", env),
            params={
                "FID_ETC_CLS_CODE": "",
                "FID_COND_MRKT_DIV_CODE": "J",
                "FID_INPUT_ISCD": code.query_code,
                "FID_INPUT_HOUR_1": _hhmmss(until),
                "FID_PW_DATA_INCU_YN": "Y",
            },
        )
    return Call(
        ENDPOINTS["inquire_time_dailychartprice"],
        _tr("inquire_time_dailychartprice", env),
        params={
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": code.query_code,
            "FID_INPUT_HOUR_1": _hhmmss(until),
            "FID_INPUT_DATE_1": _yyyymmdd(day),
            "FID_PW_DATA_INCU_YN": "Y",
            "FID_FAKE_TICK_INCU_YN": "",
        },
    )


def _minute_before(value: dt.time) -> dt.time | None:
    """The minute before *value*'s minute, ``None`` before the session opens."""
    moment = dt.datetime.combine(dt.date(2000, 1, 1), value.replace(second=0, microsecond=0))
    earlier = (moment - dt.timedelta(minutes=1)).time()
    return earlier if earlier >= MARKET_OPEN and moment.date() == dt.date(2000, 1, 1) else None


def get_minute_bars(
    env: Env,
    raw_code: str,
    *,
    day: dt.date,
    today: dt.date,
    until: dt.time,
    max_calls: int = 40,
) -> Operation[list[MinuteBar]]:
    """*day*'s minute bars from the open to *until* (inclusive), oldest first.

    *today* (KST) picks the endpoint: today's chart for today, the daily minute chart for a past
    day. Pages back one minute before the oldest bar received until 09:00, a short page, a page
    with nothing new, or *max_calls* calls (a bound, never reached by a full session).
    """
    if day > today:
        raise ValueError(f"day {day} is in the future (today is {today})")
    code = normalize_code(raw_code)
    page_size = MINUTE_PAGE_TODAY if day == today else MINUTE_PAGE_PAST
    bars: dict[dt.time, MinuteBar] = {}
    cursor: dt.time | None = min(until, MARKET_CLOSE)
    calls = 0
    while cursor is not None and cursor >= MARKET_OPEN and calls < max_calls:
        response = yield _minute_call(env, code, None if day == today else day, cursor)
        calls += 1
        page = [bar for bar in MinuteBar.from_rows(_rows(response, "output2")) if bar.date == day]
        fresh = [bar for bar in page if bar.time not in bars and bar.time <= cursor]
        for bar in fresh:
            bars[bar.time] = bar
        if not fresh or len(page) < page_size:
            break
        cursor = _minute_before(min(bar.time for bar in page))
    return [bars[t] for t in sorted(bars) if MARKET_OPEN <= t <= until]


# --- period bars -------------------------------------------------------------------------------


def _chart_call(
    env: Env, code: StockCode, first: str, last: dt.date, period: Period, adjusted: bool
) -> Call:
    return Call(
        ENDPOINTS["inquire_daily_itemchartprice"],
        _tr("inquire_daily_itemchartprice", env),
        params={
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": code.query_code,
            "FID_INPUT_DATE_1": first,
            "FID_INPUT_DATE_2": _yyyymmdd(last),
            "FID_PERIOD_DIV_CODE": period,
            # The official sample: for this chart 0 = 수정주가 (adjusted), 1 = 원주가.
            "FID_ORG_ADJ_PRC": "0" if adjusted else "1",
        },
    )


def get_bars(
    env: Env,
    raw_code: str,
    start: dt.date | None,
    end: dt.date,
    *,
    period: Period = "D",
    adjusted: bool = True,
) -> Operation[list[DailyBar]]:
    """Bars of *period* in ``[start, end]``, oldest first.

    With *start* ``None``: one call from :data:`BEGINNING`, i.e. the newest 100 periods up to
    *end*. Otherwise the window steps back past the 100-row limit; a page that brings nothing
    new ends the paging (a week, month or year bar may be dated inside the next window).
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    if start is not None and start > end:
        raise ValueError(f"start {start} is after end {end}")
    code = normalize_code(raw_code)
    first = BEGINNING if start is None else _yyyymmdd(start)
    bars: dict[dt.date, DailyBar] = {}
    window_end = end
    while True:
        response = yield _chart_call(env, code, first, window_end, period, adjusted)
        page = list(DailyBar.from_rows(_rows(response, "output2")))
        fresh = [bar for bar in page if bar.date not in bars]
        for bar in fresh:
            bars[bar.date] = bar
        if start is None or not fresh or len(page) < DAILY_CHART_MAX_ROWS:
            break
        window_end = min(bar.date for bar in page) - dt.timedelta(days=1)
        if window_end < start:
            break
    kept = [bars[d] for d in sorted(bars)]
    if period == "D":
        # Daily bars are clipped exactly; a week, month or year bar overlapping the window is
        # whole, and dated as KIS dates it (possibly outside [start, end]).
        kept = [bar for bar in kept if (start is None or bar.date >= start) and bar.date <= end]
    return kept


# --- stock information -------------------------------------------------------------------------

#: ``PRDT_TYPE_CD`` of a domestic stock (300 주식/ETF/ETN/ELW).
STOCK_PRODUCT_TYPE: Final = "300"


def stock_info_call(env: Env, code: StockCode) -> Call:
    return Call(
        ENDPOINTS["search_stock_info"],
        _tr("search_stock_info", env),
        params={"PRDT_TYPE_CD": STOCK_PRODUCT_TYPE, "PDNO": code.code},
    )


def get_stock_info(env: Env, raw_code: str) -> Operation[StockInfo]:
    """``search-stock-info`` for one code."""
    code = normalize_code(raw_code)
    response = yield stock_info_call(env, code)
    row = _output(response, "output")
    if not any(str(k).lower() == "pdno" for k in row):
        row = {**row, "pdno": code.code}
    return StockInfo.from_row(row)


# --- rankings ----------------------------------------------------------------------------------


def _ranking(response: Response, source: str) -> list[RankedStock]:
    rows = [RankedStock.from_row(row, source) for row in _rows(response, "output")]
    return sorted(rows, key=lambda r: r.rank)


def get_volume_rank(env: Env, market: str, by: str) -> Operation[list[RankedStock]]:
    """``volume-rank`` (the top 30 KIS answers, by rank)."""
    if by not in VOLUME_RANK_BY:
        raise ValueError(f"by must be one of {sorted(VOLUME_RANK_BY)}, not {by!r}")
    response = yield Call(
        ENDPOINTS["volume_rank"],
        _tr("volume_rank", env),
        params={
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_COND_SCR_DIV_CODE": "20171",
            "FID_INPUT_ISCD": _market_code(market),
            "FID_DIV_CLS_CODE": "0",
            "FID_BLNG_CLS_CODE": VOLUME_RANK_BY[by],
            "FID_TRGT_CLS_CODE": "111111111",
            "FID_TRGT_EXLS_CLS_CODE": "0000000000",
            "FID_INPUT_PRICE_1": "",
            "FID_INPUT_PRICE_2": "",
            "FID_VOL_CNT": "",
            "FID_INPUT_DATE_1": "",
        },
    )
    return _ranking(response, "volume")


def get_fluctuation_rank(env: Env, market: str, direction: str) -> Operation[list[RankedStock]]:
    """``ranking/fluctuation``: the biggest risers (``"up"``) or fallers (``"down"``)."""
    if direction not in FLUCTUATION_SORT:
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    response = yield Call(
        ENDPOINTS["ranking_fluctuation"],
        _tr("ranking_fluctuation", env),
        params={
            "FID_RSFL_RATE2": "",
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_COND_SCR_DIV_CODE": "20170",
            "FID_INPUT_ISCD": _market_code(market),
            "FID_RANK_SORT_CLS_CODE": FLUCTUATION_SORT[direction],
            "FID_INPUT_CNT_1": "0",
            "FID_PRC_CLS_CODE": "1",
            "FID_INPUT_PRICE_1": "",
            "FID_INPUT_PRICE_2": "",
            "FID_VOL_CNT": "",
            "FID_TRGT_CLS_CODE": "0",
            "FID_TRGT_EXLS_CLS_CODE": "0",
            "FID_DIV_CLS_CODE": "0",
            "FID_RSFL_RATE1": "",
        },
    )
    return _ranking(response, "fluctuation")


def get_market_cap_rank(env: Env, market: str) -> Operation[list[RankedStock]]:
    """``ranking/market-cap``: the largest companies."""
    response = yield Call(
        ENDPOINTS["ranking_market_cap"],
        _tr("ranking_market_cap", env),
        params={
            "FID_INPUT_PRICE_2": "",
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_COND_SCR_DIV_CODE": "20174",
            "FID_DIV_CLS_CODE": "0",
            "FID_INPUT_ISCD": _market_code(market),
            "FID_TRGT_CLS_CODE": "0",
            "FID_TRGT_EXLS_CLS_CODE": "0",
            "FID_INPUT_PRICE_1": "",
            "FID_VOL_CNT": "",
        },
    )
    return _ranking(response, "market_cap")


# --- holidays ----------------------------------------------------------------------------------


def get_holidays(env: Env, start: dt.date) -> Operation[list[MarketDay]]:
    """``chk-holiday`` from *start*: the days KIS answers in one call, oldest first (the
    official sample advises one call a day: no continuation is requested)."""
    response = yield Call(
        ENDPOINTS["chk_holiday"],
        _tr("chk_holiday", env),
        params={"BASS_DT": _yyyymmdd(start), "CTX_AREA_NK": "", "CTX_AREA_FK": ""},
    )
    days = [MarketDay.from_row(row) for row in _rows(response, "output")]
    return sorted({d.date: d for d in days}.values(), key=lambda d: d.date)


# --- period profit -----------------------------------------------------------------------------


def get_period_profit(
    env: Env, account: Account, start: dt.date, end: dt.date, *, code: str | None = None
) -> Operation[PeriodProfit]:
    """``inquire-period-profit``: daily realised profit in ``[start, end]`` (every page) and the
    period summary (the last page's ``output2``)."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    call: Call | None = Call(
        ENDPOINTS["inquire_period_profit"],
        _tr("inquire_period_profit", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "INQR_STRT_DT": _yyyymmdd(start),
            "INQR_END_DT": _yyyymmdd(end),
            "SORT_DVSN": "00",
            "INQR_DVSN": "00",
            "CBLC_DVSN": "00",
            "PDNO": normalize_code(code).code if code else "",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
    )
    days: dict[dt.date, PeriodProfitDay] = {}
    summary: Mapping[str, Any] = {}
    while call is not None:
        response = yield call
        for row in _rows(response, "output1"):
            day = PeriodProfitDay.from_row(row)
            days[day.date] = day
        summary_rows = _rows(response, "output2")
        if summary_rows:
            summary = summary_rows[0]
        call = next_page(call, response.headers, response.data)
    return PeriodProfit(
        days=tuple(days[d] for d in sorted(days)),
        summary=PeriodProfitSummary.from_row(summary),
    )
