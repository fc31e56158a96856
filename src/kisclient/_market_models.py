"""Typed models of the market-data endpoints (issue 12), structured by :mod:`kisclient._models`'s
one converter from KIS's all-string rows.

Every documented response field (KIS's endpoint pages) is a typed attribute whose KIS name is in
its metadata; fields KIS adds without notice are kept, raw, in ``extra`` (as every model does).
Conversion rules are :mod:`kisclient._models`'s, plus: ``time`` from ``"HHMMSS"``; a date field
that may be blank (a listing date the stock never had) is ``None`` when KIS sends ``""`` or
``"00000000"``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs

from ._config import KST
from ._models import DEFAULT_SOURCE, ModelError, _BadValue, _is_blank, _kis, converter, kis_names
from ._models import structure_kis as _structure_kis
from ._stream_events import Level

__all__ = [
    "BOOK_DEPTH",
    "ExpectedTrade",
    "MarketDay",
    "MinuteBar",
    "OrderBookSnapshot",
    "PeriodProfit",
    "PeriodProfitDay",
    "PeriodProfitSummary",
    "RankedStock",
    "StockInfo",
]

#: Levels per side of the REST order book (askp1..askp10, bidp1..bidp10).
BOOK_DEPTH: Final = 10

_M = TypeVar("_M", bound=attrs.AttrsInstance)
_TIME_RE: Final = re.compile("[0-9]{6}", re.ASCII)


def _structure_time(value: object, _type: object) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str) and _TIME_RE.fullmatch(value.strip()):
        text = value.strip()
        try:
            return dt.time(int(text[:2]), int(text[2:4]), int(text[4:]))
        except ValueError:
            pass
    raise _BadValue(f"expected a time 'HHMMSS', got {value!r:.40}")


# ``dt.time`` is used by these models only; the hooks extend the one converter.
converter.register_structure_hook(dt.time, _structure_time)
converter.register_unstructure_hook(dt.time, lambda t: t.strftime("%H%M%S"))


def _optional_dates(cls: type[attrs.AttrsInstance]) -> frozenset[str]:
    """The KIS names (lower case) of *cls*'s ``date | None`` fields."""
    names = kis_names(cls)
    return frozenset(
        names[f.name].lower()
        for f in attrs.fields(cls)
        if f.name in names and f.type in (dt.date | None, "dt.date | None")
    )


def structure_row(
    cls: type[_M], row: Mapping[str, Any], source: str = DEFAULT_SOURCE, **given: Any
) -> _M:
    """:func:`kisclient._models.structure_kis`, with blank optional dates read as ``None``."""
    if isinstance(row, Mapping):
        optional = _optional_dates(cls)
        if optional:
            cleaned: dict[str, Any] = {}
            for key, value in row.items():
                blank = isinstance(value, str) and value.strip() in ("", "00000000")
                cleaned[key] = None if blank and str(key).lower() in optional else value
            row = cleaned
    return _structure_kis(cls, row, source, **given)


def _rows(value: object) -> list[Mapping[str, Any]]:
    """An ``output*`` value as a list of non-blank rows (an object is one row)."""
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return []
    return [row for row in value if isinstance(row, Mapping) and not _is_blank(row)]


# --- the order book (inquire-asking-price-exp-ccn) ---------------------------------------------


@attrs.frozen
class ExpectedTrade:
    """The expected trade (예상체결) and day figures: inquire-asking-price-exp-ccn ``output2``.

    ``price`` is ``antc_cnpr`` (0 outside an auction), ``volume`` ``antc_vol``. Numbers default
    to 0, text to ``""``.
    """

    price: int = attrs.field(default=0, metadata=_kis("antc_cnpr"))
    volume: int = attrs.field(default=0, metadata=_kis("antc_vol"))
    change: int = attrs.field(default=0, metadata=_kis("antc_cntg_vrss"))
    #: ``antc_cntg_vrss_sign``: 1 upper limit, 2 up, 3 unchanged, 4 lower limit, 5 down.
    change_sign: str = attrs.field(default="", metadata=_kis("antc_cntg_vrss_sign"))
    change_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("antc_cntg_prdy_ctrt"))
    #: ``antc_mkop_cls_code`` 예상 장운영 구분 코드.
    market_op_code: str = attrs.field(default="", metadata=_kis("antc_mkop_cls_code"))
    current_price: int = attrs.field(default=0, metadata=_kis("stck_prpr"))
    open: int = attrs.field(default=0, metadata=_kis("stck_oprc"))
    high: int = attrs.field(default=0, metadata=_kis("stck_hgpr"))
    low: int = attrs.field(default=0, metadata=_kis("stck_lwpr"))
    base_price: int = attrs.field(default=0, metadata=_kis("stck_sdpr"))
    code: str = attrs.field(default="", metadata=_kis("stck_shrn_iscd"))
    #: ``vi_cls_code`` VI적용구분코드.
    vi_code: str = attrs.field(default="", metadata=_kis("vi_cls_code"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExpectedTrade:
        return structure_row(cls, row)


@attrs.frozen
class _BookTotals:
    """The un-numbered fields of ``output1`` (the numbered levels are read separately)."""

    time: str = attrs.field(default="", metadata=_kis("aspr_acpt_hour"))
    total_ask_qty: int = attrs.field(default=0, metadata=_kis("total_askp_rsqn"))
    total_bid_qty: int = attrs.field(default=0, metadata=_kis("total_bidp_rsqn"))
    total_ask_qty_change: int = attrs.field(default=0, metadata=_kis("total_askp_rsqn_icdc"))
    total_bid_qty_change: int = attrs.field(default=0, metadata=_kis("total_bidp_rsqn_icdc"))
    after_hours_total_ask_qty: int = attrs.field(default=0, metadata=_kis("ovtm_total_askp_rsqn"))
    after_hours_total_bid_qty: int = attrs.field(default=0, metadata=_kis("ovtm_total_bidp_rsqn"))
    after_hours_total_ask_change: int = attrs.field(
        default=0, metadata=_kis("ovtm_total_askp_icdc")
    )
    after_hours_total_bid_change: int = attrs.field(
        default=0, metadata=_kis("ovtm_total_bidp_icdc")
    )
    net_bid_qty: int = attrs.field(default=0, metadata=_kis("ntby_aspr_rsqn"))
    market_op_code: str = attrs.field(default="", metadata=_kis("new_mkop_cls_code"))
    extra: dict[str, str] = attrs.field(factory=dict)


#: The numbered ``output1`` series: KIS prefix → (side, what).
_SERIES: Final = {
    "askp_rsqn_icdc": "ask_change",
    "bidp_rsqn_icdc": "bid_change",
    "askp_rsqn": "ask_qty",
    "bidp_rsqn": "bid_qty",
    "askp": "ask",
    "bidp": "bid",
}
_NUMBERED_RE: Final = re.compile(
    r"(askp_rsqn_icdc|bidp_rsqn_icdc|askp_rsqn|bidp_rsqn|askp|bidp)([0-9]+)"
)


@attrs.frozen(kw_only=True)
class OrderBookSnapshot(_BookTotals):
    """The order book of one code from ``inquire-asking-price-exp-ccn``: ten ask and ten bid
    levels, best first (``asks[0]`` is ``askp1``/``askp_rsqn1``, the lowest ask; ``bids[0]`` is
    ``bidp1``, the highest bid), the per-level quantity changes, the totals of ``output1``
    (inherited: ``time`` ``aspr_acpt_hour``, ``total_ask_qty``, ``net_bid_qty``, ...) and the
    expected trade (``output2``). Empty levels are kept as ``Level(0, 0)``, so positions match
    KIS's numbers. ``extra`` holds undocumented ``output1`` fields (``output2``'s are in
    ``expected.extra``). (The stream's book event is :class:`kisclient.OrderBook`.)
    """

    code: str
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    #: ``askp_rsqn_icdc1..10`` 매도호가 잔량 증감, best first.
    ask_qty_changes: tuple[int, ...] = ()
    #: ``bidp_rsqn_icdc1..10`` 매수호가 잔량 증감, best first.
    bid_qty_changes: tuple[int, ...] = ()
    expected: ExpectedTrade = attrs.field(factory=ExpectedTrade)

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks and self.asks[0].price > 0 else None

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids and self.bids[0].price > 0 else None

    @classmethod
    def from_outputs(
        cls, code: str, output1: Mapping[str, Any], output2: Mapping[str, Any]
    ) -> OrderBookSnapshot:
        """Read ``output1`` (the book) and ``output2`` (the expected trade) for *code*."""
        totals = structure_row(_BookTotals, output1)
        series: dict[str, dict[int, int]] = {what: {} for what in _SERIES.values()}
        extra: dict[str, str] = {}
        problems: dict[str, str] = {}
        for key, value in totals.extra.items():
            match = _NUMBERED_RE.fullmatch(key.lower())
            number = int(match.group(2)) if match else 0
            if match is None or not 1 <= number <= BOOK_DEPTH:
                extra[key] = value
                continue
            try:
                series[_SERIES[match.group(1)]][number] = converter.structure(value, int)
            except _BadValue as exc:
                problems[key] = f"KIS field {key!r}: {exc}"
        if problems:
            raise ModelError(cls.__name__, problems)

        def column(what: str) -> list[int]:
            return [series[what].get(n, 0) for n in range(1, BOOK_DEPTH + 1)]

        asks = tuple(Level(p, q) for p, q in zip(column("ask"), column("ask_qty"), strict=True))
        bids = tuple(Level(p, q) for p, q in zip(column("bid"), column("bid_qty"), strict=True))
        fields = attrs.asdict(totals, recurse=False)
        fields["extra"] = extra
        return cls(
            code=code,
            asks=asks,
            bids=bids,
            ask_qty_changes=tuple(column("ask_change")),
            bid_qty_changes=tuple(column("bid_change")),
            expected=ExpectedTrade.from_row(output2),
            **fields,
        )


# --- minute bars (inquire-time-itemchartprice / inquire-time-dailychartprice) -----------------


@attrs.frozen
class MinuteBar:
    """One minute bar (``output2`` of the minute charts). ``time`` is the bar's minute
    (``stck_cntg_hour``, KST); ``close`` is ``stck_prpr``; ``volume`` ``cntg_vol`` (that minute's
    volume) and ``amount`` ``acml_tr_pbmn`` (its traded value, KRW). Required: ``date``,
    ``time``, ``close``."""

    date: dt.date = attrs.field(metadata=_kis("stck_bsop_date"))
    time: dt.time = attrs.field(metadata=_kis("stck_cntg_hour"))
    close: int = attrs.field(metadata=_kis("stck_prpr"))
    open: int = attrs.field(default=0, metadata=_kis("stck_oprc"))
    high: int = attrs.field(default=0, metadata=_kis("stck_hgpr"))
    low: int = attrs.field(default=0, metadata=_kis("stck_lwpr"))
    volume: int = attrs.field(default=0, metadata=_kis("cntg_vol"))
    amount: int = attrs.field(default=0, metadata=_kis("acml_tr_pbmn"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @property
    def at(self) -> dt.datetime:
        """The bar's minute as an aware KST datetime."""
        return dt.datetime.combine(self.date, self.time, tzinfo=KST)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MinuteBar:
        return structure_row(cls, row)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> list[MinuteBar]:
        """Every non-blank row, in the order given."""
        return [cls.from_row(row) for row in _rows(list(rows))]


# --- stock information (search-stock-info) ----------------------------------------------------


@attrs.frozen
class StockInfo:
    """A product's master data from ``search-stock-info`` ``output`` (every documented field).

    Dates that may be absent (a KOSPI stock has no KOSDAQ listing date) are ``None`` when blank.
    :attr:`market` and :attr:`listed_on` pick the listing the code has. Required: ``code``.
    """

    code: str = attrs.field(metadata=_kis("pdno"))
    product_type: str = attrs.field(default="", metadata=_kis("prdt_type_cd"))
    name: str = attrs.field(default="", metadata=_kis("prdt_name"))
    name120: str = attrs.field(default="", metadata=_kis("prdt_name120"))
    short_name: str = attrs.field(default="", metadata=_kis("prdt_abrv_name"))
    english_name: str = attrs.field(default="", metadata=_kis("prdt_eng_name"))
    english_name120: str = attrs.field(default="", metadata=_kis("prdt_eng_name120"))
    english_short_name: str = attrs.field(default="", metadata=_kis("prdt_eng_abrv_name"))
    #: ``mket_id_cd`` 시장ID코드 (e.g. ``STK`` KOSPI, ``KSQ`` KOSDAQ).
    market_id: str = attrs.field(default="", metadata=_kis("mket_id_cd"))
    #: ``scty_grp_id_cd`` 증권그룹ID코드 (e.g. ``ST`` stock, ``EF`` ETF, ``EN`` ETN).
    security_group: str = attrs.field(default="", metadata=_kis("scty_grp_id_cd"))
    exchange_code: str = attrs.field(default="", metadata=_kis("excg_dvsn_cd"))
    settlement_month_day: str = attrs.field(default="", metadata=_kis("setl_mmdd"))
    listed_shares: int = attrs.field(default=0, metadata=_kis("lstg_stqt"))
    listed_capital: int = attrs.field(default=0, metadata=_kis("lstg_cptl_amt"))
    capital: int = attrs.field(default=0, metadata=_kis("cpta"))
    par_value: int = attrs.field(default=0, metadata=_kis("papr"))
    issue_price: int = attrs.field(default=0, metadata=_kis("issu_pric"))
    kospi200: bool = attrs.field(default=False, metadata=_kis("kospi200_item_yn"))
    kospi_listed_on: dt.date | None = attrs.field(default=None, metadata=_kis("scts_mket_lstg_dt"))
    kospi_delisted_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("scts_mket_lstg_abol_dt")
    )
    kosdaq_listed_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("kosdaq_mket_lstg_dt")
    )
    kosdaq_delisted_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("kosdaq_mket_lstg_abol_dt")
    )
    freeboard_listed_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("frbd_mket_lstg_dt")
    )
    freeboard_delisted_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("frbd_mket_lstg_abol_dt")
    )
    reits_kind: str = attrs.field(default="", metadata=_kis("reits_kind_cd"))
    etf_kind: str = attrs.field(default="", metadata=_kis("etf_dvsn_cd"))
    oil_fund: bool = attrs.field(default=False, metadata=_kis("oilf_fund_yn"))
    #: ``idx_bztp_lcls_cd`` / ``_name``: the index sector, large classification.
    sector_large_code: str = attrs.field(default="", metadata=_kis("idx_bztp_lcls_cd"))
    sector_medium_code: str = attrs.field(default="", metadata=_kis("idx_bztp_mcls_cd"))
    sector_small_code: str = attrs.field(default="", metadata=_kis("idx_bztp_scls_cd"))
    sector_large: str = attrs.field(default="", metadata=_kis("idx_bztp_lcls_cd_name"))
    sector_medium: str = attrs.field(default="", metadata=_kis("idx_bztp_mcls_cd_name"))
    sector_small: str = attrs.field(default="", metadata=_kis("idx_bztp_scls_cd_name"))
    stock_kind: str = attrs.field(default="", metadata=_kis("stck_kind_cd"))
    mutual_fund_opened_on: dt.date | None = attrs.field(default=None, metadata=_kis("mfnd_opng_dt"))
    mutual_fund_ends_on: dt.date | None = attrs.field(default=None, metadata=_kis("mfnd_end_dt"))
    deposit_cancelled_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("dpsi_erlm_cncl_dt")
    )
    etf_cu_qty: int = attrs.field(default=0, metadata=_kis("etf_cu_qty"))
    isin: str = attrs.field(default="", metadata=_kis("std_pdno"))
    deposit_designated: bool = attrs.field(default=False, metadata=_kis("dpsi_aptm_erlm_yn"))
    etf_taxation_type: str = attrs.field(default="", metadata=_kis("etf_txtn_type_cd"))
    etf_type: str = attrs.field(default="", metadata=_kis("etf_type_cd"))
    delisted_on: dt.date | None = attrs.field(default=None, metadata=_kis("lstg_abol_dt"))
    new_old_share_code: str = attrs.field(default="", metadata=_kis("nwst_odst_dvsn_cd"))
    substitute_price: int = attrs.field(default=0, metadata=_kis("sbst_pric"))
    house_substitute_price: int = attrs.field(default=0, metadata=_kis("thco_sbst_pric"))
    house_substitute_price_changed_on: dt.date | None = attrs.field(
        default=None, metadata=_kis("thco_sbst_pric_chng_dt")
    )
    trading_halted: bool = attrs.field(default=False, metadata=_kis("tr_stop_yn"))
    administrative_issue: bool = attrs.field(default=False, metadata=_kis("admn_item_yn"))
    close_today: int = attrs.field(default=0, metadata=_kis("thdt_clpr"))
    close_yesterday: int = attrs.field(default=0, metadata=_kis("bfdy_clpr"))
    close_changed_on: dt.date | None = attrs.field(default=None, metadata=_kis("clpr_chng_dt"))
    #: ``std_idst_clsf_cd`` / ``_name``: the standard industry classification.
    industry_code: str = attrs.field(default="", metadata=_kis("std_idst_clsf_cd"))
    industry: str = attrs.field(default="", metadata=_kis("std_idst_clsf_cd_name"))
    ocr_no: str = attrs.field(default="", metadata=_kis("ocr_no"))
    crowdfunding: bool = attrs.field(default=False, metadata=_kis("crfd_item_yn"))
    electronic_security: bool = attrs.field(default=False, metadata=_kis("elec_scty_yn"))
    issuer_code: str = attrs.field(default="", metadata=_kis("issu_istt_cd"))
    etf_tracking_multiple: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("etf_chas_erng_rt_dbnb")
    )
    etf_etn_caution: bool = attrs.field(default=False, metadata=_kis("etf_etn_ivst_heed_item_yn"))
    stock_loan_rate_code: str = attrs.field(default="", metadata=_kis("stln_int_rt_dvsn_cd"))
    foreign_personal_limit_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("frnr_psnl_lmt_rt")
    )
    listing_applicant_issuer_code: str = attrs.field(
        default="", metadata=_kis("lstg_rqsr_issu_istt_cd")
    )
    listing_applicant_item_code: str = attrs.field(default="", metadata=_kis("lstg_rqsr_item_cd"))
    trust_issuer_code: str = attrs.field(default="", metadata=_kis("trst_istt_issu_istt_cd"))
    #: ``cptt_trad_tr_psbl_yn``: tradable on NXT.
    nxt_tradable: bool = attrs.field(default=False, metadata=_kis("cptt_trad_tr_psbl_yn"))
    nxt_halted: bool = attrs.field(default=False, metadata=_kis("nxt_tr_stop_yn"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @property
    def market(self) -> str:
        """``"KOSPI"``, ``"KOSDAQ"``, ``"KONEX"`` (free board) or ``""``, from the listing dates
        (a date without a delisting date is the current listing)."""
        for market, listed, delisted in (
            ("KOSPI", self.kospi_listed_on, self.kospi_delisted_on),
            ("KOSDAQ", self.kosdaq_listed_on, self.kosdaq_delisted_on),
            ("KONEX", self.freeboard_listed_on, self.freeboard_delisted_on),
        ):
            if listed is not None and delisted is None:
                return market
        return ""

    @property
    def listed_on(self) -> dt.date | None:
        """The listing date on :attr:`market`."""
        return {
            "KOSPI": self.kospi_listed_on,
            "KOSDAQ": self.kosdaq_listed_on,
            "KONEX": self.freeboard_listed_on,
        }.get(self.market)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StockInfo:
        return structure_row(cls, row)


# --- rankings (volume-rank, ranking/fluctuation, ranking/market-cap) --------------------------


@attrs.frozen
class RankedStock:
    """One row of a ranking: ``volume-rank`` (source ``"volume"``), ``ranking/fluctuation``
    (``"fluctuation"``) or ``ranking/market-cap`` (``"market_cap"``). The common fields come
    first; each ranking's own fields default to 0 (or ``None`` / ``""``) in the others.
    Required: ``code``, ``rank``.
    """

    code: str = attrs.field(metadata=_kis("mksc_shrn_iscd", fluctuation="stck_shrn_iscd"))
    rank: int = attrs.field(metadata=_kis("data_rank"))
    name: str = attrs.field(default="", metadata=_kis("hts_kor_isnm"))
    price: int = attrs.field(default=0, metadata=_kis("stck_prpr"))
    change: int = attrs.field(default=0, metadata=_kis("prdy_vrss"))
    change_sign: str = attrs.field(default="", metadata=_kis("prdy_vrss_sign"))
    change_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("prdy_ctrt"))
    volume: int = attrs.field(default=0, metadata=_kis("acml_vol"))
    # volume-rank
    prev_volume: int = attrs.field(default=0, metadata=_kis("prdy_vol"))
    listed_shares: int = attrs.field(default=0, metadata=_kis("lstn_stcn"))
    avg_volume: int = attrs.field(default=0, metadata=_kis("avrg_vol"))
    prev_close_change_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("n_befr_clpr_vrss_prpr_rate")
    )
    volume_increase_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("vol_inrt"))
    volume_turnover: Decimal = attrs.field(default=Decimal(0), metadata=_kis("vol_tnrt"))
    nday_volume_turnover: Decimal = attrs.field(default=Decimal(0), metadata=_kis("nday_vol_tnrt"))
    avg_traded_value: int = attrs.field(default=0, metadata=_kis("avrg_tr_pbmn"))
    traded_value_turnover: Decimal = attrs.field(default=Decimal(0), metadata=_kis("tr_pbmn_tnrt"))
    nday_traded_value_turnover: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("nday_tr_pbmn_tnrt")
    )
    traded_value: int = attrs.field(default=0, metadata=_kis("acml_tr_pbmn"))
    # ranking/fluctuation
    high: int = attrs.field(default=0, metadata=_kis("stck_hgpr"))
    high_time: str = attrs.field(default="", metadata=_kis("hgpr_hour"))
    high_date: dt.date | None = attrs.field(default=None, metadata=_kis("acml_hgpr_date"))
    low: int = attrs.field(default=0, metadata=_kis("stck_lwpr"))
    low_time: str = attrs.field(default="", metadata=_kis("lwpr_hour"))
    low_date: dt.date | None = attrs.field(default=None, metadata=_kis("acml_lwpr_date"))
    low_to_price_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("lwpr_vrss_prpr_rate")
    )
    period_close_to_price_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("dsgt_date_clpr_vrss_prpr_rate")
    )
    up_days: int = attrs.field(default=0, metadata=_kis("cnnt_ascn_dynu"))
    high_to_price_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("hgpr_vrss_prpr_rate")
    )
    down_days: int = attrs.field(default=0, metadata=_kis("cnnt_down_dynu"))
    open_change_sign: str = attrs.field(default="", metadata=_kis("oprc_vrss_prpr_sign"))
    open_change: int = attrs.field(default=0, metadata=_kis("oprc_vrss_prpr"))
    open_change_rate: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("oprc_vrss_prpr_rate")
    )
    period_change: int = attrs.field(default=0, metadata=_kis("prd_rsfl"))
    period_change_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("prd_rsfl_rate"))
    # ranking/market-cap
    market_cap: int = attrs.field(default=0, metadata=_kis("stck_avls"))
    market_cap_weight: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("mrkt_whol_avls_rlim")
    )
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], source: str = DEFAULT_SOURCE) -> RankedStock:
        """Read one ``output`` row; *source* ``"fluctuation"`` reads the code from
        ``stck_shrn_iscd``."""
        return structure_row(cls, row, source)


# --- the market calendar (chk-holiday) --------------------------------------------------------


@attrs.frozen
class MarketDay:
    """One day of ``chk-holiday`` ``output``. ``trading_day`` (``tr_day_yn``) is whether
    securities trade settle-wise; ``open_day`` (``opnd_yn``) whether the market opens — the flag
    to schedule trading on. Required: ``date``."""

    date: dt.date = attrs.field(metadata=_kis("bass_dt"))
    #: ``wday_dvsn_cd`` 요일구분코드: ``01`` Sunday … ``07`` Saturday.
    weekday_code: str = attrs.field(default="", metadata=_kis("wday_dvsn_cd"))
    business_day: bool = attrs.field(default=False, metadata=_kis("bzdy_yn"))
    trading_day: bool = attrs.field(default=False, metadata=_kis("tr_day_yn"))
    open_day: bool = attrs.field(default=False, metadata=_kis("opnd_yn"))
    settlement_day: bool = attrs.field(default=False, metadata=_kis("sttl_day_yn"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MarketDay:
        return structure_row(cls, row)


# --- period profit (inquire-period-profit) ----------------------------------------------------


@attrs.frozen
class PeriodProfitDay:
    """One day of ``inquire-period-profit`` ``output1``. KRW integers. Required: ``date``."""

    date: dt.date = attrs.field(metadata=_kis("trad_dt"))
    buy_amount: int = attrs.field(default=0, metadata=_kis("buy_amt"))
    sell_amount: int = attrs.field(default=0, metadata=_kis("sll_amt"))
    realized_profit: int = attrs.field(default=0, metadata=_kis("rlzt_pfls"))
    fee: int = attrs.field(default=0, metadata=_kis("fee"))
    loan_interest: int = attrs.field(default=0, metadata=_kis("loan_int"))
    tax: int = attrs.field(default=0, metadata=_kis("tl_tax"))
    profit_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("pfls_rt"))
    sell_qty: int = attrs.field(default=0, metadata=_kis("sll_qty1"))
    buy_qty: int = attrs.field(default=0, metadata=_kis("buy_qty1"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PeriodProfitDay:
        return structure_row(cls, row)


@attrs.frozen
class PeriodProfitSummary:
    """``inquire-period-profit`` ``output2``: the period's totals (KRW integers)."""

    sell_qty: int = attrs.field(default=0, metadata=_kis("sll_qty_smtl"))
    sell_traded_amount: int = attrs.field(default=0, metadata=_kis("sll_tr_amt_smtl"))
    sell_fee: int = attrs.field(default=0, metadata=_kis("sll_fee_smtl"))
    sell_tax: int = attrs.field(default=0, metadata=_kis("sll_tltx_smtl"))
    sell_settled_amount: int = attrs.field(default=0, metadata=_kis("sll_excc_amt_smtl"))
    buy_qty: int = attrs.field(default=0, metadata=_kis("buy_qty_smtl"))
    buy_traded_amount: int = attrs.field(default=0, metadata=_kis("buy_tr_amt_smtl"))
    buy_fee: int = attrs.field(default=0, metadata=_kis("buy_fee_smtl"))
    buy_tax: int = attrs.field(default=0, metadata=_kis("buy_tax_smtl"))
    buy_settled_amount: int = attrs.field(default=0, metadata=_kis("buy_excc_amt_smtl"))
    total_qty: int = attrs.field(default=0, metadata=_kis("tot_qty"))
    total_traded_amount: int = attrs.field(default=0, metadata=_kis("tot_tr_amt"))
    total_fee: int = attrs.field(default=0, metadata=_kis("tot_fee"))
    total_tax: int = attrs.field(default=0, metadata=_kis("tot_tltx"))
    total_settled_amount: int = attrs.field(default=0, metadata=_kis("tot_excc_amt"))
    total_realized_profit: int = attrs.field(default=0, metadata=_kis("tot_rlzt_pfls"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PeriodProfitSummary:
        return structure_row(cls, row)


@attrs.frozen
class PeriodProfit:
    """``get_period_profit``'s answer: the days (every page, oldest first) and the summary."""

    days: tuple[PeriodProfitDay, ...]
    summary: PeriodProfitSummary


for _cls in (
    ExpectedTrade,
    _BookTotals,
    OrderBookSnapshot,
    MinuteBar,
    StockInfo,
    RankedStock,
    MarketDay,
    PeriodProfitDay,
    PeriodProfitSummary,
    PeriodProfit,
):
    attrs.resolve_types(_cls)
