"""Quotation handlers: current price, daily prices, daily chart and the multi-symbol quote.

All numbers are sent as strings, as KIS does. Prices agree across endpoints: the bar of the
current trading day closes at :meth:`Core.price_of`.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from kisclient._codes import BAD_FIELD, UNKNOWN_CODE
from kisclient._config import DAILY_CHART_MAX_ROWS, MULTIPRICE_MAX_CODES

from ._core import Core, Ctx
from ._http import FakeResponse
from ._universe import FIRST_DAY, Bar, Listing, previous_weekday, round_to_tick, tick_size

__all__ = ["daily_chart", "daily_price", "inquire_price", "multprice", "price_snapshot"]

_MARKET_KOR = {"KOSPI": "코스피", "KOSDAQ": "코스닥"}


def _sign(change: int, price: int, upper: int, lower: int) -> str:
    """KIS prdy_vrss_sign: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down."""
    if change > 0:
        return "1" if price >= upper else "2"
    if change < 0:
        return "4" if price <= lower else "5"
    return "3"


def _rate(change: int, prev: int) -> str:
    return f"{change * 100 / prev:.2f}" if prev else "0.00"


def _limits(prev: int, kind: str) -> tuple[int, int]:
    upper = round_to_tick(prev * 1.3, kind)
    lower = round_to_tick(prev * 0.7, kind)
    lower += tick_size(lower, kind) if lower < prev * 0.7 else 0
    return upper, lower


def _bar(core: Core, listing: Listing, day: dt.date) -> Bar:
    """The bar of *day*; the current trading day's closes at the current price."""
    close = core.price_of(listing.code) if day == core.session_day() else None
    return core.universe.bar(listing.code, day, close)


def _status_code(listing: Listing) -> str:
    if listing.halted:
        return "58"
    if listing.managed:
        return "51"
    return {"03": "52", "02": "53", "01": "54"}.get(listing.warning, "55")


def price_snapshot(core: Core, listing: Listing) -> dict[str, Any]:
    """Today's numbers for *listing* (shared by inquire-price and the multi-symbol quote)."""
    bar = _bar(core, listing, core.session_day())
    price, prev = bar.close, bar.prev_close
    upper, lower = _limits(prev, listing.kind)
    change = price - prev
    return {
        "price": price,
        "prev": prev,
        "bar": bar,
        "upper": upper,
        "lower": lower,
        "change": change,
        "sign": _sign(change, price, upper, lower),
        "rate": _rate(change, prev),
    }


def _fundamentals(core: Core, listing: Listing, price: int) -> dict[str, str]:
    """PER/PBR fixed per code (from the seed); EPS/BPS follow the price."""
    ratios = core.ratios.get(listing.code)
    if ratios is None:
        ratios = core.ratios[listing.code] = _ratios(core.seed, listing)
    if ratios is None:
        return {"per": "0.00", "pbr": "0.00", "eps": "0.00", "bps": "0.00"}
    per, pbr = ratios
    return {
        "per": f"{per:.2f}",
        "pbr": f"{pbr:.2f}",
        "eps": f"{price / per:.2f}",
        "bps": f"{price / pbr:.2f}",
    }


def _ratios(seed: int, listing: Listing) -> tuple[float, float] | None:
    if listing.kind in ("etf", "etn"):
        return None
    rng = random.Random(f"fund:{seed}:{listing.code}")
    return rng.uniform(4.0, 40.0), rng.uniform(0.3, 4.0)


def _week52(core: Core, listing: Listing) -> tuple[int, int]:
    day = core.session_day()
    key = (listing.code, day)
    cached = core.cache.get(key)
    if cached is None:
        cached = core.cache[key] = core.universe.close_extremes(listing.code, day, 250)
    high, low = cached
    price = core.price_of(listing.code)
    return max(high, price), min(low, price)


def inquire_price(ctx: Ctx) -> FakeResponse:
    """inquire-price: one ``output`` object. An unknown code is refused with HTTP 200,
    ``rt_cd "1"`` and OPSQ2002 (documented choice; KIS's own answer is not recorded)."""
    listing = ctx.core.universe.get(ctx.query.get("FID_INPUT_ISCD", ""))
    if listing is None:
        return ctx.reject(UNKNOWN_CODE, "1")
    core = ctx.core
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    high52, low52 = _week52(core, listing)
    price = snap["price"]
    output = {
        "iscd_stat_cls_code": _status_code(listing),
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": listing.kind.upper()
        if listing.kind in ("etf", "etn")
        else listing.market,
        "bstp_kor_isnm": listing.sector,
        "temp_stop_yn": "Y" if listing.halted else "N",
        "crdt_able_yn": "Y",
        "stck_prpr": str(price),
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "acml_tr_pbmn": str(bar.value),
        "acml_vol": str(bar.volume),
        "prdy_vrss_vol_rate": "100.00",
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "stck_mxpr": str(snap["upper"]),
        "stck_llam": str(snap["lower"]),
        "stck_sdpr": str(snap["prev"]),
        "wghn_avrg_stck_prc": f"{(bar.high + bar.low + bar.close) / 3:.2f}",
        "hts_frgn_ehrt": "0.00",
        "frgn_ntby_qty": "0",
        "pgtr_ntby_qty": "0",
        **_fundamentals(core, listing, price),
        "hts_avls": str(price * listing.shares // 100_000_000),
        "lstn_stcn": str(listing.shares),
        "stck_fcam": "100",
        "aspr_unit": str(tick_size(price, listing.kind)),
        "w52_hgpr": str(high52),
        "w52_lwpr": str(low52),
        "stck_shrn_iscd": listing.code,
        "vi_cls_code": "N",
        "ovtm_vi_cls_code": "N",
        "mrkt_warn_cls_code": listing.warning,
        "invt_caful_yn": "Y" if listing.caution else "N",
        "short_over_yn": "N",
        "sltr_yn": "N",
        "mang_issu_cls_code": "Y" if listing.managed else "N",
        "ssts_yn": "Y",
    }
    return ctx.ok(output=output)


def _bar_row(bar: Bar, listing: Listing) -> dict[str, str]:
    upper, lower = _limits(bar.prev_close, listing.kind)
    change = bar.close - bar.prev_close
    return {
        "stck_bsop_date": bar.day.strftime("%Y%m%d"),
        "stck_clpr": str(bar.close),
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "acml_vol": str(bar.volume),
        "acml_tr_pbmn": str(bar.value),
        "prdy_vrss": str(change),
        "prdy_vrss_sign": _sign(change, bar.close, upper, lower),
        "prdy_ctrt": _rate(change, bar.prev_close),
    }


def _days_back(end: dt.date, start: dt.date, limit: int) -> list[dt.date]:
    """Weekdays from *end* back to *start* (inclusive, not before FIRST_DAY), newest first."""
    days: list[dt.date] = []
    day = end if end.weekday() < 5 else previous_weekday(end)
    floor = max(start, FIRST_DAY)
    while day >= floor and len(days) < limit:
        days.append(day)
        day = previous_weekday(day)
    return days


def daily_price(ctx: Ctx) -> FakeResponse:
    """inquire-daily-price: the last 30 trading days, newest first (period D only)."""
    listing = ctx.core.universe.get(ctx.query.get("FID_INPUT_ISCD", ""))
    if listing is None:
        return ctx.reject(UNKNOWN_CODE, "1")
    rows = []
    for day in _days_back(ctx.core.session_day(), FIRST_DAY, 30):
        row = _bar_row(_bar(ctx.core, listing, day), listing)
        row.update(
            {
                "prdy_vrss_vol_rate": "0.00",
                "hts_frgn_ehrt": "0.00",
                "frgn_ntby_qty": "0",
                "flng_cls_code": "00",
                "acml_prtt_rate": "0.00",
            }
        )
        rows.append(row)
    return ctx.ok(output=rows)


def _date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def daily_chart(ctx: Ctx) -> FakeResponse:
    """inquire-daily-itemchartprice: ``output1`` summary, ``output2`` at most
    DAILY_CHART_MAX_ROWS daily bars within [FID_INPUT_DATE_1, FID_INPUT_DATE_2], newest first.
    Bad dates → HTTP 200, ``rt_cd "1"``, OPSQ2001. Only daily bars (any period code gets D)."""
    core = ctx.core
    listing = core.universe.get(ctx.query.get("FID_INPUT_ISCD", ""))
    if listing is None:
        return ctx.reject(UNKNOWN_CODE, "1")
    start = _date(ctx.query.get("FID_INPUT_DATE_1", ""))
    end = _date(ctx.query.get("FID_INPUT_DATE_2", ""))
    if start is None or end is None:
        return ctx.reject(BAD_FIELD, "1")
    days = _days_back(min(end, core.session_day()), start, DAILY_CHART_MAX_ROWS)
    bars = []
    for day in days:
        row = _bar_row(_bar(core, listing, day), listing)
        row.update(
            {"flng_cls_code": "00", "prtt_rate": "0.00", "mod_yn": "N", "revl_issu_reas": ""}
        )
        bars.append(row)
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    summary = {
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "stck_prdy_clpr": str(snap["prev"]),
        "acml_vol": str(bar.volume),
        "acml_tr_pbmn": str(bar.value),
        "hts_kor_isnm": listing.name,
        "stck_prpr": str(snap["price"]),
        "stck_shrn_iscd": listing.code,
        "stck_mxpr": str(snap["upper"]),
        "stck_llam": str(snap["lower"]),
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "lstn_stcn": str(listing.shares),
        "hts_avls": str(snap["price"] * listing.shares // 100_000_000),
        **_fundamentals(core, listing, snap["price"]),
    }
    return ctx.ok(output1=summary, output2=bars)


def multprice(ctx: Ctx) -> FakeResponse:
    """intstock-multprice: up to MULTIPRICE_MAX_CODES codes in FID_INPUT_ISCD_1..N.

    More codes (or none) → HTTP 200, ``rt_cd "1"``, OPSQ2001. An unknown code yields a row with
    its code, an empty name and zero numbers (documented choice).
    """
    numbered: dict[int, str] = {}
    for key, value in ctx.query.items():
        if key.startswith("FID_INPUT_ISCD_") and key[15:].isdigit() and value.strip():
            numbered[int(key[15:])] = value.strip()
    if not numbered or max(numbered) > MULTIPRICE_MAX_CODES:
        return ctx.reject(BAD_FIELD, "1")
    rows = []
    for _, code in sorted(numbered.items()):
        listing = ctx.core.universe.get(code)
        if listing is None:
            rows.append(_empty_multprice_row(code))
            continue
        snap = price_snapshot(ctx.core, listing)
        bar: Bar = snap["bar"]
        rows.append(
            {
                "inter_shrn_iscd": listing.code,
                "inter_kor_isnm": listing.name,
                "inter2_prpr": str(snap["price"]),
                "inter2_prdy_vrss": str(snap["change"]),
                "prdy_vrss_sign": snap["sign"],
                "prdy_ctrt": snap["rate"],
                "acml_vol": str(bar.volume),
                "acml_tr_pbmn": str(bar.value),
                "inter2_oprc": str(bar.open),
                "inter2_hgpr": str(bar.high),
                "inter2_lwpr": str(bar.low),
                "inter2_mxpr": str(snap["upper"]),
                "inter2_llam": str(snap["lower"]),
                "inter2_askp": str(snap["price"] + tick_size(snap["price"], listing.kind)),
                "inter2_bidp": str(snap["price"]),
                "inter2_prdy_clpr": str(snap["prev"]),
                "inter2_sdpr": str(snap["prev"]),
                "hour_cls_code": "0",
                "kospi_kosdaq_cls_name": _MARKET_KOR.get(listing.market, listing.market),
                "mrkt_trtm_cls_name": "거래정지" if listing.halted else "",
            }
        )
    return ctx.ok(output=rows)


def _empty_multprice_row(code: str) -> dict[str, str]:
    zero = (
        "inter2_prpr",
        "inter2_prdy_vrss",
        "prdy_ctrt",
        "acml_vol",
        "acml_tr_pbmn",
        "inter2_oprc",
        "inter2_hgpr",
        "inter2_lwpr",
        "inter2_mxpr",
        "inter2_llam",
        "inter2_askp",
        "inter2_bidp",
        "inter2_prdy_clpr",
        "inter2_sdpr",
    )
    row = {
        "inter_shrn_iscd": code,
        "inter_kor_isnm": "",
        "prdy_vrss_sign": "3",
        "hour_cls_code": "0",
        "kospi_kosdaq_cls_name": "",
        "mrkt_trtm_cls_name": "",
    }
    row.update(dict.fromkeys(zero, "0"))
    return row
