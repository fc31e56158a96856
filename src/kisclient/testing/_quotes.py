"""Quotation handlers: current price, daily prices and the multi-symbol quote, and the answer
every quote endpoint gives a code KIS does not know (:func:`quoted_listing`).

All numbers are sent as strings, as KIS does. Prices agree across endpoints: the bar of the
current trading day closes at :meth:`Core.price_of`.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any, Final

from kisclient._codes import BAD_FIELD, CODES, UNKNOWN_CODE
from kisclient._config import MULTIPRICE_MAX_CODES

from ._core import Core, Ctx
from ._documented import DOCUMENTED, MULTPRICE_DIVISION_CODES
from ._http import FakeResponse
from ._universe import FIRST_DAY, Bar, Listing, previous_weekday, round_to_tick, tick_size

__all__ = [
    "daily_price",
    "inquire_price",
    "multprice",
    "price_snapshot",
    "quoted_listing",
]

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


def _vs(price: int, ref: int) -> str:
    """``(price - ref) / ref`` in %, two decimals (KIS's ``*_vrss_prpr_rate`` fields)."""
    return _rate(price - ref, ref)


def _extremes(core: Core, listing: Listing, days: int) -> tuple[int, int]:
    """The highest and lowest close of the last *days* trading days, today's price included."""
    day = core.session_day()
    key = (listing.code, day, days)
    cached = core.cache.get(key)
    if cached is None:
        cached = core.cache[key] = core.universe.close_extremes(listing.code, day, days)
    high, low = cached
    price = core.price_of(listing.code)
    return max(high, price), min(low, price)


def _pivots(bar: Bar) -> dict[str, str]:
    """Classic floor-trader pivots of the previous bar (피벗/디마크 fields of inquire-price)."""
    high, low, close = bar.high, bar.low, bar.close
    pivot = (high + low + close) // 3
    demark = (high + low + 2 * close) // 4
    return {
        "pvt_scnd_dmrs_prc": str(pivot + (high - low)),
        "pvt_frst_dmrs_prc": str(2 * pivot - low),
        "pvt_pont_val": str(pivot),
        "pvt_frst_dmsp_prc": str(2 * pivot - high),
        "pvt_scnd_dmsp_prc": str(pivot - (high - low)),
        "dmrs_val": str(2 * demark - low),
        "dmsp_val": str(2 * demark - high),
    }


#: A well-formed domestic code: 6 characters (digits, or the 2024-reform letters), ETN ``Q`` + 6.
_WELL_FORMED = re.compile(r"Q?[0-9A-Z]{6}")
#: Suffixes of the documented names that hold text (names, codes, flags, dates, times): blank
#: in an unknown code's answer; every other field is a number, ``"0"``.
_TEXT_SUFFIXES = ("_yn", "_date", "_code", "_name", "_isnm", "_iscd", "_cnnm", "_hour", "_reas")
#: The quote outputs that are lists of rows (bars); the others are one object.
_ROW_OUTPUTS: Final = frozenset(
    {
        ("inquire_daily_price", "output"),
        ("inquire_daily_itemchartprice", "output2"),
        ("inquire_time_itemchartprice", "output2"),
        ("inquire_time_dailychartprice", "output2"),
    }
)


def _zeroed(names: tuple[str, ...]) -> dict[str, str]:
    """One output object with every name in *names*: texts blank, numbers ``"0"``."""
    return {name: "" if name.endswith(_TEXT_SUFFIXES) else "0" for name in names}


def quoted_listing(ctx: Ctx, name: str) -> Listing | FakeResponse:
    """The listing ``FID_INPUT_ISCD`` names for quote endpoint *name* (``_documented`` name),
    or the whole answer when KIS does not know the code, the same for every quote endpoint.

    KIS's answer to an unknown code is not recorded in its documentation or official samples.
    python-kis (Soju06/python-kis) tells an unknown code by a successful answer whose price is
    ``"0"`` (``output.stck_prpr`` of inquire-price, ``output1.stck_prpr`` of the charts), so a
    well-formed unknown code answers ``rt_cd "0"`` with every documented field of each output
    object zeroed (numbers ``"0"``, texts blank) and every list of rows empty: a shape a client
    written against KIS handles. For the order book python-kis looks for a missing ``askp1`` in
    ``output1``; it parses the zeroed book too (prices ``"0"``), the same shape was kept. Not a
    code at all (not 6 characters, ETN ``Q`` + 6): refused, HTTP 200, ``rt_cd "1"``, OPSQ2002.
    """
    code = ctx.query.get("FID_INPUT_ISCD", "").strip()
    listing = ctx.core.universe.get(code)
    if listing is not None:
        return listing
    if not _WELL_FORMED.fullmatch(code):
        return ctx.reject(UNKNOWN_CODE, "1")
    outputs: dict[str, Any] = {
        key: [] if (name, key) in _ROW_OUTPUTS else _zeroed(names)
        for key, names in DOCUMENTED[name].items()
    }
    return ctx.ok(**outputs)


def inquire_price(ctx: Ctx) -> FakeResponse:
    """inquire-price: one ``output`` object with every documented field (``_documented``); an
    unknown code answers as :func:`quoted_listing` says."""
    listing = quoted_listing(ctx, "inquire_price")
    if not isinstance(listing, Listing):
        return listing
    core = ctx.core
    snap = price_snapshot(core, listing)
    bar: Bar = snap["bar"]
    prev_bar = _bar(core, listing, previous_weekday(bar.day))
    high52, low52 = _week52(core, listing)
    high250, low250 = _extremes(core, listing, 250)
    year_days = max((core.session_day() - core.session_day().replace(month=1, day=1)).days, 1)
    high_year, low_year = _extremes(core, listing, min(year_days * 5 // 7 + 1, 250))
    price = snap["price"]
    day = core.session_day().strftime("%Y%m%d")
    capital = listing.shares * 100
    output = {
        "iscd_stat_cls_code": _status_code(listing),
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": listing.kind.upper()
        if listing.kind in ("etf", "etn")
        else listing.market,
        "new_hgpr_lwpr_cls_code": "",
        "bstp_kor_isnm": listing.sector,
        "temp_stop_yn": "Y" if listing.halted else "N",
        "oprc_rang_cont_yn": "N",
        "clpr_rang_cont_yn": "N",
        "crdt_able_yn": "Y",
        "grmn_rate_cls_code": "40",
        "elw_pblc_yn": "N",
        "stck_prpr": str(price),
        "prdy_vrss": str(snap["change"]),
        "prdy_vrss_sign": snap["sign"],
        "prdy_ctrt": snap["rate"],
        "acml_tr_pbmn": str(bar.value),
        "acml_vol": str(bar.volume),
        "prdy_vrss_vol_rate": _rate(bar.volume, prev_bar.volume) if prev_bar.volume else "0.00",
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
        **_pivots(prev_bar),
        "cpfn": str(capital // 100_000_000),
        "rstc_wdth_prc": str(snap["upper"] - snap["prev"]),
        "stck_fcam": "100",
        "stck_sspr": str(snap["prev"] * 7 // 10),
        "aspr_unit": str(tick_size(price, listing.kind)),
        "hts_deal_qty_unit_val": "1",
        "lstn_stcn": str(listing.shares),
        "hts_avls": str(price * listing.shares // 100_000_000),
        **_fundamentals(core, listing, price),
        "stac_month": "12",
        "vol_tnrt": f"{bar.volume * 100 / listing.shares:.2f}" if listing.shares else "0.00",
        "d250_hgpr": str(high250),
        "d250_hgpr_date": day,
        "d250_hgpr_vrss_prpr_rate": _vs(price, high250),
        "d250_lwpr": str(low250),
        "d250_lwpr_date": day,
        "d250_lwpr_vrss_prpr_rate": _vs(price, low250),
        "stck_dryy_hgpr": str(high_year),
        "dryy_hgpr_vrss_prpr_rate": _vs(price, high_year),
        "dryy_hgpr_date": day,
        "stck_dryy_lwpr": str(low_year),
        "dryy_lwpr_vrss_prpr_rate": _vs(price, low_year),
        "dryy_lwpr_date": day,
        "w52_hgpr": str(high52),
        "w52_hgpr_vrss_prpr_ctrt": _vs(price, high52),
        "w52_hgpr_date": day,
        "w52_lwpr": str(low52),
        "w52_lwpr_vrss_prpr_ctrt": _vs(price, low52),
        "w52_lwpr_date": day,
        "whol_loan_rmnd_rate": "0.00",
        "ssts_yn": "Y",
        "stck_shrn_iscd": listing.code,
        "fcam_cnnm": "원",
        "cpfn_cnnm": "억",
        "apprch_rate": "0.00",
        "frgn_hldn_qty": "0",
        "vi_cls_code": "N",
        "ovtm_vi_cls_code": "N",
        "last_ssts_cntg_qty": "0",
        "invt_caful_yn": "Y" if listing.caution else "N",
        "mrkt_warn_cls_code": listing.warning,
        "short_over_yn": "N",
        "sltr_yn": "N",
        "mang_issu_cls_code": "Y" if listing.managed else "N",
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
    listing = quoted_listing(ctx, "inquire_daily_price")
    if not isinstance(listing, Listing):
        return listing
    rows = []
    for day in _days_back(ctx.core.session_day(), FIRST_DAY, 30):
        row = _bar_row(_bar(ctx.core, listing, day), listing)
        del row["acml_tr_pbmn"]  # not a documented inquire-daily-price field
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
    for n in numbered:
        division = ctx.query.get(f"FID_COND_MRKT_DIV_CODE_{n}", "").strip().upper()
        if division not in MULTPRICE_DIVISION_CODES:  # J or NX only (the documented values)
            return ctx.reject(CODES["OPSQ2000"], "1")
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
                **_multprice_book(ctx.core, listing, snap),
            }
        )
    return ctx.ok(output=rows)


def _multprice_book(core: Core, listing: Listing, snap: dict[str, Any]) -> dict[str, str]:
    """The multi-quote's book and expected-trade fields (no auction in session: zeros)."""
    bar: Bar = snap["bar"]
    rng = random.Random(f"multprice:{core.seed}:{listing.code}:{core.now().isoformat()}")
    ask_qty, bid_qty = rng.randrange(1, 500) * 10, rng.randrange(1, 500) * 10
    return {
        "seln_rsqn": str(ask_qty),
        "shnu_rsqn": str(bid_qty),
        "total_askp_rsqn": str(ask_qty * 10),
        "total_bidp_rsqn": str(bid_qty * 10),
        "oprc_vrss_hgpr_rate": _rate(bar.high - bar.open, bar.open),
        "intr_antc_cntg_vrss": "0",
        "intr_antc_cntg_vrss_sign": "3",
        "intr_antc_cntg_prdy_ctrt": "0.00",
        "intr_antc_vol": "0",
    }


def _empty_multprice_row(code: str) -> dict[str, str]:
    """The multi-quote's row for a code KIS does not know: its code, every other documented
    field zeroed as :func:`quoted_listing` zeroes the other quote endpoints' outputs."""
    return {**_zeroed(DOCUMENTED["intstock_multprice"]["output"]), "inter_shrn_iscd": code}
