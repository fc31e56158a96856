"""Market-data handlers of issue 12: order book, minute and period charts, stock information,
rankings, the holiday calendar and the period profit.

Everything is derived from the fake's existing state, so the endpoints agree with each other and
with inquire-price: the session day's daily bar closes at :meth:`Core.price_of`, minute bars
walk from that bar's open to its close inside its high and low, week/month/year bars aggregate
the daily bars, names and markets come from the universe's listings. The fake's calendar is
the universe's: every weekday trades, weekends never (no holiday table).

Documented choices where KIS's behaviour is not recorded:

- minute charts answer only the asked day's bars (09:00–15:30, one a minute), newest first,
  ending at ``FID_INPUT_HOUR_1`` (and, for the current session, at the current minute); today's
  chart gives 30 a call, a past day's 120;
- period bars are dated on the period's last trading day (clipped to the session day); a
  ``FID_INPUT_DATE_1`` before the first bar, or ``00000101``, means "from the beginning";
  ``FID_ORG_ADJ_PRC`` is accepted and changes nothing (the fake has no splits);
- the book: ``askp1`` one tick above the price, ``bidp1`` at it; the expected trade
  (``antc_cnpr``, ``antc_vol``) is filled during the auctions (before 09:00, 15:20–15:30) and
  ``0`` otherwise;
- a code KIS does not know, on the book and the charts: the answer inquire-price gives it
  (:func:`~._quotes.quoted_listing`: ``rt_cd "0"``, documented fields zeroed, no rows);
- rankings answer the top 30 of the universe, no continuation; chk-holiday answers 30 calendar
  days from ``BASS_DT``, no continuation;
- period profit pages :data:`PERIOD_PROFIT_PAGE_ROWS` days a call (``tr_cont`` / ``CTX_AREA_*``);
  realised profit is each sell's fill price against the holding's current average cost; fees
  and taxes are 0.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any, Final

from kisclient._codes import ACCOUNT_INVALID, BAD_FIELD, UNKNOWN_CODE
from kisclient._config import DAILY_CHART_MAX_ROWS

from ._core import MARKET_CLOSE, MARKET_OPEN, Core, Ctx
from ._http import FakeResponse
from ._quotes import _bar, _bar_row, _fundamentals, _rate, _sign, price_snapshot, quoted_listing
from ._trading import _account_matches, _cursors, _page
from ._universe import FIRST_DAY, Bar, Listing, previous_weekday, tick_size, weekdays

__all__ = [
    "BOOK_DEPTH",
    "PERIOD_PROFIT_PAGE_ROWS",
    "book_of",
    "chk_holiday",
    "fluctuation_rank",
    "market_cap_rank",
    "minute_bars_of",
    "orderbook",
    "period_chart",
    "period_profit",
    "search_info",
    "search_stock_info",
    "time_dailychart",
    "time_itemchart",
    "volume_rank",
]

BOOK_DEPTH: Final = 10
MINUTES_TODAY_ROWS: Final = 30
MINUTES_PAST_ROWS: Final = 120
RANK_ROWS: Final = 30
HOLIDAY_DAYS: Final = 30
PERIOD_PROFIT_PAGE_ROWS: Final = 20
_AUCTION_CLOSE: Final = dt.time(15, 20)
#: FID_INPUT_ISCD of the rankings → the listings' market (None: all).
_RANK_MARKETS: Final[dict[str, str | None]] = {
    "0000": None,
    "0001": "KOSPI",
    "1001": "KOSDAQ",
    "2001": "KOSPI",
}


def _listing(ctx: Ctx, key: str) -> Listing | None:
    return ctx.core.universe.get(ctx.query.get(key, ""))


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def _parse_hour(value: str) -> dt.time | None:
    text = value.strip()
    if len(text) != 6 or not text.isdigit():
        return None
    try:
        return dt.time(int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        return None


# --- the order book ----------------------------------------------------------------------------


def book_of(core: Core, listing: Listing) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The fake's ten-level book of *listing* now: (asks, bids), each ``(price, qty)`` best
    first; ``askp1`` one tick above the current price, ``bidp1`` at it. Quantities are a pure
    function of the seed, the code and the minute."""
    price = core.price_of(listing.code)
    minute = core.now().replace(second=0, microsecond=0)
    rng = random.Random(f"book:{core.seed}:{listing.code}:{minute.isoformat()}")
    asks, bids = [], []
    ask = price
    bid = price
    for level in range(BOOK_DEPTH):
        ask = ask + tick_size(ask, listing.kind)
        if level > 0:
            bid = max(bid - tick_size(max(bid - 1, 1), listing.kind), 0)
        asks.append((ask, rng.randrange(1, 500) * 10))
        bids.append((bid, rng.randrange(1, 500) * 10 if bid > 0 else 0))
    return asks, bids


def orderbook(ctx: Ctx) -> FakeResponse:
    """inquire-asking-price-exp-ccn: ``output1`` the book, ``output2`` the expected trade."""
    listing = quoted_listing(ctx, "inquire_asking_price_exp_ccn")
    if not isinstance(listing, Listing):
        return listing
    core = ctx.core
    asks, bids = book_of(core, listing)
    now = core.now()
    rng = random.Random(f"book-icdc:{core.seed}:{listing.code}:{now.isoformat()}")
    book: dict[str, str] = {"aspr_acpt_hour": now.strftime("%H%M%S")}
    for n, ((ask, ask_qty), (bid, bid_qty)) in enumerate(zip(asks, bids, strict=True), start=1):
        book[f"askp{n}"] = str(ask)
        book[f"bidp{n}"] = str(bid)
        book[f"askp_rsqn{n}"] = str(ask_qty)
        book[f"bidp_rsqn{n}"] = str(bid_qty)
        book[f"askp_rsqn_icdc{n}"] = str(rng.randrange(-50, 51))
        book[f"bidp_rsqn_icdc{n}"] = str(rng.randrange(-50, 51))
    total_ask, total_bid = sum(q for _, q in asks), sum(q for _, q in bids)
    book.update(
        {
            "total_askp_rsqn": str(total_ask),
            "total_bidp_rsqn": str(total_bid),
            "total_askp_rsqn_icdc": "0",
            "total_bidp_rsqn_icdc": "0",
            "ovtm_total_askp_icdc": "0",
            "ovtm_total_bidp_icdc": "0",
            "ovtm_total_askp_rsqn": "0",
            "ovtm_total_bidp_rsqn": "0",
            "ntby_aspr_rsqn": str(total_bid - total_ask),
            "new_mkop_cls_code": "20",
        }
    )
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    auction = now.weekday() < 5 and (
        now.time() < MARKET_OPEN or _AUCTION_CLOSE <= now.time() < MARKET_CLOSE
    )
    price = snap["price"]
    expected_change = price - snap["prev"] if auction else 0
    expected = {
        "antc_mkop_cls_code": "112" if auction else "",
        "stck_prpr": str(price),
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "stck_sdpr": str(snap["prev"]),
        "antc_cnpr": str(price) if auction else "0",
        "antc_cntg_vrss_sign": snap["sign"] if auction else "3",
        "antc_cntg_vrss": str(expected_change),
        "antc_cntg_prdy_ctrt": _rate(expected_change, snap["prev"]) if auction else "0.00",
        "antc_vol": str(min(total_ask, total_bid)) if auction else "0",
        "stck_shrn_iscd": listing.code,
        "vi_cls_code": "N",
    }
    return ctx.ok(output1=book, output2=expected)


# --- minute bars -------------------------------------------------------------------------------


def _session_minutes() -> list[dt.time]:
    """09:00 … 15:30, one a minute."""
    start = dt.datetime.combine(dt.date(2000, 1, 1), MARKET_OPEN)
    count = (MARKET_CLOSE.hour - MARKET_OPEN.hour) * 60 + MARKET_CLOSE.minute + 1
    return [(start + dt.timedelta(minutes=i)).time() for i in range(count)]


_MINUTES: Final = _session_minutes()


def minute_bars_of(core: Core, listing: Listing, day: dt.date) -> list[dict[str, str]]:
    """*day*'s minute bars of *listing*, oldest first, as KIS rows: the fake's intraday path
    (:meth:`Core.minute_bars`), so minute bars agree with quotes and the day's bar; for the
    current session only up to the current minute. Empty for a weekend, a day before the first
    bar or after the session day."""
    if day < FIRST_DAY:
        return []
    rows = []
    for bar in core.minute_bars(listing.code, day):
        rows.append(
            {
                "stck_bsop_date": _ymd(day),
                "stck_cntg_hour": bar.time.strftime("%H%M00"),
                "stck_prpr": str(bar.close),
                "stck_oprc": str(bar.open),
                "stck_hgpr": str(bar.high),
                "stck_lwpr": str(bar.low),
                "cntg_vol": str(bar.volume),
                "acml_tr_pbmn": str(bar.volume * bar.close),
            }
        )
    return rows


def _minute_summary(core: Core, listing: Listing) -> dict[str, str]:
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    return {
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "stck_prdy_clpr": str(snap["prev"]),
        "acml_vol": str(bar.volume),
        "acml_tr_pbmn": str(bar.value),
        "hts_kor_isnm": listing.name,
        "stck_prpr": str(snap["price"]),
    }


def _minute_page(rows: list[dict[str, str]], until: dt.time, limit: int) -> list[dict[str, str]]:
    """The *limit* rows ending at *until*'s minute, newest first."""
    cutoff = until.strftime("%H%M%S")
    kept = [row for row in rows if row["stck_cntg_hour"] <= cutoff]
    return list(reversed(kept[-limit:]))


def time_itemchart(ctx: Ctx) -> FakeResponse:
    """inquire-time-itemchartprice: the session day's minute bars, 30 a call, newest first,
    ending at ``FID_INPUT_HOUR_1``."""
    listing = quoted_listing(ctx, "inquire_time_itemchartprice")
    if not isinstance(listing, Listing):
        return listing
    until = _parse_hour(ctx.query.get("FID_INPUT_HOUR_1", ""))
    if until is None:
        return ctx.reject(BAD_FIELD, "1")
    core = ctx.core
    rows = minute_bars_of(core, listing, core.session_day())
    page = _minute_page(rows, until, MINUTES_TODAY_ROWS)
    return ctx.ok(output1=_minute_summary(core, listing), output2=page)


def time_dailychart(ctx: Ctx) -> FakeResponse:
    """inquire-time-dailychartprice: ``FID_INPUT_DATE_1``'s minute bars, 120 a call, newest
    first, ending at ``FID_INPUT_HOUR_1``."""
    listing = quoted_listing(ctx, "inquire_time_dailychartprice")
    if not isinstance(listing, Listing):
        return listing
    until = _parse_hour(ctx.query.get("FID_INPUT_HOUR_1", ""))
    day = _parse_date(ctx.query.get("FID_INPUT_DATE_1", ""))
    if until is None or day is None:
        return ctx.reject(BAD_FIELD, "1")
    core = ctx.core
    rows = minute_bars_of(core, listing, day)
    page = _minute_page(rows, until, MINUTES_PAST_ROWS)
    return ctx.ok(output1=_minute_summary(core, listing), output2=page)


# --- period bars -------------------------------------------------------------------------------


def _period_of(day: dt.date, period: str) -> tuple[dt.date, dt.date]:
    """The calendar period (first, last day) of *period* containing *day*."""
    if period == "W":
        first = day - dt.timedelta(days=day.weekday())
        return first, first + dt.timedelta(days=6)
    if period == "M":
        first = day.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return first, following - dt.timedelta(days=1)
    if period == "Y":
        return day.replace(month=1, day=1), day.replace(month=12, day=31)
    return day, day


def _aggregate(core: Core, listing: Listing, days: list[dt.date]) -> dict[str, str]:
    bars = [_bar(core, listing, day) for day in days]
    first, last = bars[0], bars[-1]
    merged = Bar(
        last.day,
        first.open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        last.close,
        sum(b.volume for b in bars),
        first.prev_close,
    )
    row = _bar_row(merged, listing)
    del row["prdy_ctrt"]  # not a documented bar field (output2)
    row["acml_tr_pbmn"] = str(sum(b.value for b in bars))
    row.update({"flng_cls_code": "00", "prtt_rate": "0.00", "mod_yn": "N", "revl_issu_reas": ""})
    return row


def period_chart(ctx: Ctx) -> FakeResponse:
    """inquire-daily-itemchartprice: ``output1`` summary, ``output2`` at most 100 bars of
    ``FID_PERIOD_DIV_CODE`` (D/W/M/Y) overlapping [FID_INPUT_DATE_1, FID_INPUT_DATE_2], newest
    first; week/month/year bars aggregate the daily bars and are dated on their last trading
    day. ``00000101`` (or any date before the first bar) starts at the beginning. Bad dates or
    period → HTTP 200, ``rt_cd "1"``, OPSQ2001."""
    core = ctx.core
    listing = quoted_listing(ctx, "inquire_daily_itemchartprice")
    if not isinstance(listing, Listing):
        return listing
    raw_start = ctx.query.get("FID_INPUT_DATE_1", "").strip()
    start = FIRST_DAY if raw_start == "00000101" else _parse_date(raw_start)
    end = _parse_date(ctx.query.get("FID_INPUT_DATE_2", ""))
    period = (ctx.query.get("FID_PERIOD_DIV_CODE", "") or "D").strip().upper()
    if start is None or end is None or period not in ("D", "W", "M", "Y"):
        return ctx.reject(BAD_FIELD, "1")
    start = max(start, FIRST_DAY)
    session = core.session_day()
    cursor = min(end, session)
    rows: list[dict[str, str]] = []
    while cursor >= start and len(rows) < DAILY_CHART_MAX_ROWS:
        first, last = _period_of(cursor, period)
        # A whole period (only the current one is cut at the session day), whatever the window.
        days = list(weekdays(max(first, FIRST_DAY), min(last, session)))
        if days:
            rows.append(_aggregate(core, listing, days))
        cursor = first - dt.timedelta(days=1)
    return ctx.ok(output1=_chart_summary(core, listing), output2=rows)


def _chart_summary(core: Core, listing: Listing) -> dict[str, str]:
    """The period chart's ``output1``: every documented summary field."""
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    prev_bar = _bar(core, listing, previous_weekday(bar.day))
    price = snap["price"]
    fundamentals = _fundamentals(core, listing, price)
    return {
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "stck_prdy_clpr": str(snap["prev"]),
        "acml_vol": str(bar.volume),
        "acml_tr_pbmn": str(bar.value),
        "hts_kor_isnm": listing.name,
        "stck_prpr": str(price),
        "stck_shrn_iscd": listing.code,
        "prdy_vol": str(prev_bar.volume),
        "stck_mxpr": str(snap["upper"]),
        "stck_llam": str(snap["lower"]),
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "stck_prdy_oprc": str(prev_bar.open),
        "stck_prdy_hgpr": str(prev_bar.high),
        "stck_prdy_lwpr": str(prev_bar.low),
        "askp": str(price + tick_size(price, listing.kind)),
        "bidp": str(price),
        "prdy_vrss_vol": str(bar.volume - prev_bar.volume),
        "vol_tnrt": f"{bar.volume * 100 / listing.shares:.2f}" if listing.shares else "0.00",
        "stck_fcam": "100",
        "lstn_stcn": str(listing.shares),
        "cpfn": str(listing.shares * 100 // 100_000_000),
        "hts_avls": str(price * listing.shares // 100_000_000),
        "per": fundamentals["per"],
        "eps": fundamentals["eps"],
        "pbr": fundamentals["pbr"],
        "itewhol_loan_rmnd_ratem": "0.00",
    }


# --- stock information -------------------------------------------------------------------------

_GROUPS: Final = {
    "stock": "ST",
    "preferred": "ST",
    "spac": "ST",
    "foreign": "FS",
    "etf": "EF",
    "etn": "EN",
}


def _listing_date(core: Core, listing: Listing) -> dt.date:
    rng = random.Random(f"listed:{core.seed}:{listing.code}")
    return dt.date(1975, 1, 1) + dt.timedelta(days=rng.randrange(0, 12_000))


def search_stock_info(ctx: Ctx) -> FakeResponse:
    """search-stock-info: the listing's master data (``output`` object). An unknown code is
    refused like inquire-price (HTTP 200, ``rt_cd "1"``, OPSQ2002)."""
    listing = _listing(ctx, "PDNO")
    if listing is None:
        return ctx.reject(UNKNOWN_CODE, "1")
    core = ctx.core
    session = core.session_day()
    today_bar = _bar(core, listing, session)
    listed = _ymd(_listing_date(core, listing))
    kospi = listing.market == "KOSPI"
    output = {
        "pdno": listing.code,
        "prdt_type_cd": "300",
        "prdt_name": listing.name,
        "prdt_name120": listing.name,
        "prdt_abrv_name": listing.name,
        "prdt_eng_name": f"FAKE {listing.code}",
        "prdt_eng_name120": f"FAKE {listing.code}",
        "prdt_eng_abrv_name": f"FAKE {listing.code}",
        "mket_id_cd": "STK" if kospi else "KSQ",
        "scty_grp_id_cd": _GROUPS.get(listing.kind, "ST"),
        "excg_dvsn_cd": "02" if kospi else "03",
        "setl_mmdd": "1231",
        "lstg_stqt": str(listing.shares),
        "lstg_cptl_amt": str(listing.shares * 100),
        "cpta": str(listing.shares * 100),
        "papr": "100",
        "issu_pric": "100",
        "kospi200_item_yn": "Y" if kospi and listing.shares > 1_000_000_000 else "N",
        "scts_mket_lstg_dt": listed if kospi else "",
        "scts_mket_lstg_abol_dt": "",
        "kosdaq_mket_lstg_dt": "" if kospi else listed,
        "kosdaq_mket_lstg_abol_dt": "",
        "frbd_mket_lstg_dt": "",
        "frbd_mket_lstg_abol_dt": "",
        "reits_kind_cd": "",
        "etf_dvsn_cd": "1" if listing.kind == "etf" else "",
        "oilf_fund_yn": "N",
        "idx_bztp_lcls_cd": "001",
        "idx_bztp_mcls_cd": "0" + str(1 + sum(map(ord, listing.sector)) % 90).zfill(2),
        "idx_bztp_scls_cd": "",
        "idx_bztp_lcls_cd_name": "시가총액규모대" if kospi else "KOSDAQ",
        "idx_bztp_mcls_cd_name": listing.sector,
        "idx_bztp_scls_cd_name": "",
        "stck_kind_cd": "101" if listing.kind == "stock" else "",
        "mfnd_opng_dt": "",
        "mfnd_end_dt": "",
        "dpsi_erlm_cncl_dt": "",
        "etf_cu_qty": "0",
        "std_pdno": f"KR7{listing.code}00",
        "dpsi_aptm_erlm_yn": "Y",
        "etf_txtn_type_cd": "",
        "etf_type_cd": "",
        "lstg_abol_dt": "",
        "nwst_odst_dvsn_cd": "",
        "sbst_pric": str(today_bar.prev_close * 7 // 10),
        "thco_sbst_pric": str(today_bar.prev_close * 7 // 10),
        "thco_sbst_pric_chng_dt": _ymd(session),
        "tr_stop_yn": "Y" if listing.halted else "N",
        "admn_item_yn": "Y" if listing.managed else "N",
        "thdt_clpr": str(today_bar.close),
        "bfdy_clpr": str(today_bar.prev_close),
        "clpr_chng_dt": _ymd(session),
        "std_idst_clsf_cd": "C26",
        "std_idst_clsf_cd_name": listing.sector,
        "ocr_no": "",
        "crfd_item_yn": "N",
        "elec_scty_yn": "Y",
        "issu_istt_cd": listing.code[:5],
        "etf_chas_erng_rt_dbnb": "0",
        "etf_etn_ivst_heed_item_yn": "Y" if listing.caution else "N",
        "stln_int_rt_dvsn_cd": "",
        "frnr_psnl_lmt_rt": "0.00",
        "lstg_rqsr_issu_istt_cd": "",
        "lstg_rqsr_item_cd": "",
        "trst_istt_issu_istt_cd": "",
        "cptt_trad_tr_psbl_yn": "Y" if listing.kind == "stock" else "N",
        "nxt_tr_stop_yn": "N",
    }
    return ctx.ok(output=output)


def search_info(ctx: Ctx) -> FakeResponse:
    """search-info (상품기본조회): the product's basic record (``output`` object)."""
    listing = _listing(ctx, "PDNO")
    if listing is None:
        return ctx.reject(UNKNOWN_CODE, "1")
    listed = _ymd(_listing_date(ctx.core, listing))
    output = {
        "pdno": listing.code,
        "prdt_type_cd": ctx.query.get("PRDT_TYPE_CD", "300") or "300",
        "std_pdno": f"KR7{listing.code}00",
        "shtn_pdno": listing.code,
        "prdt_sale_stat_cd": "",
        "prdt_risk_grad_cd": "",
        "prdt_clsf_cd": "",
        "sale_strt_dt": "",
        "sale_end_dt": "",
        "wrap_asst_type_cd": "",
        "ivst_prdt_type_cd": "",
        "frst_erlm_dt": listed,
        "prdt_name": listing.name,
        "prdt_name120": listing.name,
        "prdt_abrv_name": listing.name,
        "prdt_eng_name": f"FAKE {listing.code}",
        "prdt_eng_name120": f"FAKE {listing.code}",
        "prdt_eng_abrv_name": f"FAKE {listing.code}",
    }
    return ctx.ok(output=output)


# --- rankings ----------------------------------------------------------------------------------


def _ranked(ctx: Ctx) -> list[tuple[Listing, dict[str, Any]]] | None:
    """Every listing of the asked market (FID_INPUT_ISCD) with today's snapshot; ``None`` for
    an unknown market code."""
    market_code = ctx.query.get("FID_INPUT_ISCD", "0000").strip() or "0000"
    if market_code not in _RANK_MARKETS:
        return None
    market = _RANK_MARKETS[market_code]
    core = ctx.core
    found = []
    for code in core.universe.codes:
        listing = core.universe.get(code)
        if listing is None or (market is not None and listing.market != market):
            continue
        found.append((listing, price_snapshot(core, listing)))
    return found


def _common(rank: int, listing: Listing, snap: dict[str, Any]) -> dict[str, str]:
    bar: Bar = snap["bar"]
    return {
        "hts_kor_isnm": listing.name,
        "data_rank": str(rank),
        "stck_prpr": str(snap["price"]),
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "acml_vol": str(bar.volume),
    }


def volume_rank(ctx: Ctx) -> FakeResponse:
    """volume-rank: the top 30 by today's volume (``FID_BLNG_CLS_CODE`` 3 or 4: by traded
    value)."""
    found = _ranked(ctx)
    if found is None:
        return ctx.reject(BAD_FIELD, "1")
    by_value = ctx.query.get("FID_BLNG_CLS_CODE", "0").strip() in ("3", "4")
    found.sort(
        key=lambda item: (
            -(item[1]["bar"].value if by_value else item[1]["bar"].volume),
            item[0].code,
        )
    )
    core = ctx.core
    rows = []
    for rank, (listing, snap) in enumerate(found[:RANK_ROWS], start=1):
        bar: Bar = snap["bar"]
        prev_volume = _bar(core, listing, previous_weekday(bar.day)).volume
        row = _common(rank, listing, snap)
        row.update(
            {
                "mksc_shrn_iscd": listing.code,
                "prdy_vol": str(prev_volume),
                "lstn_stcn": str(listing.shares),
                "avrg_vol": str(bar.volume),
                "n_befr_clpr_vrss_prpr_rate": snap["rate"],
                "vol_inrt": _rate(bar.volume - prev_volume, prev_volume),
                "vol_tnrt": f"{bar.volume * 100 / listing.shares:.2f}",
                "nday_vol_tnrt": f"{bar.volume * 100 / listing.shares:.2f}",
                "avrg_tr_pbmn": str(bar.value),
                "tr_pbmn_tnrt": "0.00",
                "nday_tr_pbmn_tnrt": "0.00",
                "acml_tr_pbmn": str(bar.value),
            }
        )
        rows.append(row)
    return ctx.ok(output=rows)


def fluctuation_rank(ctx: Ctx) -> FakeResponse:
    """ranking/fluctuation: the top 30 by change rate (``FID_RANK_SORT_CLS_CODE`` 0 rising,
    1 falling)."""
    found = _ranked(ctx)
    if found is None:
        return ctx.reject(BAD_FIELD, "1")
    falling = ctx.query.get("FID_RANK_SORT_CLS_CODE", "0").strip() == "1"

    def rate(item: tuple[Listing, dict[str, Any]]) -> float:
        snap = item[1]
        return float(snap["change"]) / snap["prev"] if snap["prev"] else 0.0

    found.sort(key=lambda item: (rate(item) if falling else -rate(item), item[0].code))
    rows = []
    session = ctx.core.session_day()
    for rank, (listing, snap) in enumerate(found[:RANK_ROWS], start=1):
        bar: Bar = snap["bar"]
        open_change = snap["price"] - bar.open
        row = _common(rank, listing, snap)
        row.update(
            {
                "stck_shrn_iscd": listing.code,
                "stck_hgpr": str(bar.high),
                "hgpr_hour": "100000",
                "acml_hgpr_date": _ymd(session),
                "stck_lwpr": str(bar.low),
                "lwpr_hour": "090000",
                "acml_lwpr_date": _ymd(session),
                "lwpr_vrss_prpr_rate": _rate(snap["price"] - bar.low, bar.low),
                "dsgt_date_clpr_vrss_prpr_rate": snap["rate"],
                "cnnt_ascn_dynu": "1" if snap["change"] > 0 else "0",
                "hgpr_vrss_prpr_rate": _rate(snap["price"] - bar.high, bar.high),
                "cnnt_down_dynu": "1" if snap["change"] < 0 else "0",
                "oprc_vrss_prpr_sign": _sign(open_change, snap["price"], 10**12, 0),
                "oprc_vrss_prpr": str(open_change),
                "oprc_vrss_prpr_rate": _rate(open_change, bar.open),
                "prd_rsfl": str(snap["change"]),
                "prd_rsfl_rate": snap["rate"],
            }
        )
        rows.append(row)
    return ctx.ok(output=rows)


def market_cap_rank(ctx: Ctx) -> FakeResponse:
    """ranking/market-cap: the top 30 by market capitalisation (``stck_avls`` in 억원, as
    inquire-price's ``hts_avls``)."""
    found = _ranked(ctx)
    if found is None:
        return ctx.reject(BAD_FIELD, "1")

    def cap(item: tuple[Listing, dict[str, Any]]) -> int:
        return int(item[1]["price"]) * item[0].shares // 100_000_000

    total = sum(cap(item) for item in found) or 1
    found.sort(key=lambda item: (-cap(item), item[0].code))
    rows = []
    for rank, item in enumerate(found[:RANK_ROWS], start=1):
        listing, snap = item
        row = _common(rank, listing, snap)
        row.update(
            {
                "mksc_shrn_iscd": listing.code,
                "lstn_stcn": str(listing.shares),
                "stck_avls": str(cap(item)),
                "mrkt_whol_avls_rlim": f"{cap(item) * 100 / total:.2f}",
            }
        )
        rows.append(row)
    return ctx.ok(output=rows)


# --- the calendar ------------------------------------------------------------------------------


def chk_holiday(ctx: Ctx) -> FakeResponse:
    """chk-holiday: 30 calendar days from ``BASS_DT``; weekdays open, weekends closed (the
    fake's calendar). ``wday_dvsn_cd``: 01 Sunday … 07 Saturday."""
    start = _parse_date(ctx.query.get("BASS_DT", ""))
    if start is None:
        return ctx.reject(BAD_FIELD, "1")
    rows = []
    for offset in range(HOLIDAY_DAYS):
        day = start + dt.timedelta(days=offset)
        flag = "Y" if day.weekday() < 5 else "N"
        rows.append(
            {
                "bass_dt": _ymd(day),
                "wday_dvsn_cd": f"{(day.weekday() + 1) % 7 + 1:02d}",
                "bzdy_yn": flag,
                "tr_day_yn": flag,
                "opnd_yn": flag,
                "sttl_day_yn": flag,
            }
        )
    return ctx.ok(output=rows)


# --- period profit -----------------------------------------------------------------------------


def _fills_by_day(
    ctx: Ctx, start: dt.date, end: dt.date, code: str
) -> dict[dt.date, dict[str, int]]:
    account = ctx.account
    days: dict[dt.date, dict[str, int]] = {}
    for order in account.orders:
        if order.kind != "order" or order.filled_qty <= 0:
            continue
        day = order.time.date()
        if not start <= day <= end or (code and order.code != code):
            continue
        entry = days.setdefault(
            day, {"buy_amt": 0, "sll_amt": 0, "buy_qty": 0, "sll_qty": 0, "rlzt": 0}
        )
        amount = order.filled_qty * order.price
        if order.side == "buy":
            entry["buy_amt"] += amount
            entry["buy_qty"] += order.filled_qty
        else:
            entry["sll_amt"] += amount
            entry["sll_qty"] += order.filled_qty
            holding = account.holdings.get(order.code)
            if holding is not None and holding.qty > 0:
                entry["rlzt"] += amount - order.filled_qty * holding.cost // holding.qty
    return days


def period_profit(ctx: Ctx) -> FakeResponse:
    """inquire-period-profit: ``output1`` one row per day with fills in [INQR_STRT_DT,
    INQR_END_DT] (newest first, 20 a page, ``tr_cont`` / ``CTX_AREA_*``), ``output2`` the
    period's totals."""
    if not _account_matches(ctx, ctx.query):
        return ctx.reject(ACCOUNT_INVALID)
    start = _parse_date(ctx.query.get("INQR_STRT_DT", ""))
    end = _parse_date(ctx.query.get("INQR_END_DT", ""))
    if start is None or end is None:
        return ctx.reject(BAD_FIELD, "1")
    days = _fills_by_day(ctx, start, end, ctx.query.get("PDNO", "").strip())
    keys = [_ymd(day) for day in sorted(days, reverse=True)]
    first, stop, tr_cont = _page(ctx, keys, PERIOD_PROFIT_PAGE_ROWS)
    rows = []
    for key in keys[first:stop]:
        entry = days[_parse_date(key) or start]
        bought = entry["buy_amt"]
        rows.append(
            {
                "trad_dt": key,
                "buy_amt": str(bought),
                "sll_amt": str(entry["sll_amt"]),
                "rlzt_pfls": str(entry["rlzt"]),
                "fee": "0",
                "loan_int": "0",
                "tl_tax": "0",
                "pfls_rt": _rate(entry["rlzt"], entry["sll_amt"] - entry["rlzt"]),
                "sll_qty1": str(entry["sll_qty"]),
                "buy_qty1": str(entry["buy_qty"]),
            }
        )
    summary = _profit_summary(days.values())
    last = keys[stop - 1] if stop > first else ""
    return ctx.ok(tr_cont=tr_cont, output1=rows, output2=summary, **_cursors(ctx, last))


def _profit_summary(entries: Iterable[dict[str, int]]) -> dict[str, str]:
    listed = list(entries)
    sell_qty = sum(e["sll_qty"] for e in listed)
    buy_qty = sum(e["buy_qty"] for e in listed)
    sell_amt = sum(e["sll_amt"] for e in listed)
    buy_amt = sum(e["buy_amt"] for e in listed)
    return {
        "sll_qty_smtl": str(sell_qty),
        "sll_tr_amt_smtl": str(sell_amt),
        "sll_fee_smtl": "0",
        "sll_tltx_smtl": "0",
        "sll_excc_amt_smtl": str(sell_amt),
        "buy_qty_smtl": str(buy_qty),
        "buy_tr_amt_smtl": str(buy_amt),
        "buy_fee_smtl": "0",
        "buy_tax_smtl": "0",
        "buy_excc_amt_smtl": str(buy_amt),
        "tot_qty": str(sell_qty + buy_qty),
        "tot_tr_amt": str(sell_amt + buy_amt),
        "tot_fee": "0",
        "tot_tltx": "0",
        "tot_excc_amt": str(sell_amt + buy_amt),
        "tot_rlzt_pfls": str(sum(e["rlzt"] for e in listed)),
    }
