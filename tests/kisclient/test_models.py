"""Response models structured from KIS's all-string rows (kis-api-facts.md §5)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kisclient._errors import GatewayError
from kisclient._models import (
    Balance,
    BalanceSummary,
    BatchResult,
    DailyBar,
    DailyOrder,
    Holding,
    ModelError,
    OrderResult,
    PriceBatch,
    Quote,
    converter,
    kis_names,
    structure_kis,
    to_kis_row,
)
from kisclient._validation import normalize_code

# --- realistic sample rows (field lists of kis-api-facts.md §5) -----------------------------

INQUIRE_PRICE_OUTPUT: dict[str, str] = {
    "iscd_stat_cls_code": "55",
    "marg_rate": "20.00",
    "rprs_mrkt_kor_name": "KOSPI200",
    "bstp_kor_isnm": "전기.전자",
    "temp_stop_yn": "N",
    "stck_prpr": "128500",
    "prdy_vrss": "-1500",
    "prdy_vrss_sign": "5",
    "prdy_ctrt": "-1.15",
    "acml_tr_pbmn": "344574212500",
    "acml_vol": "2669075",
    "prdy_vrss_vol_rate": "85.22",
    "stck_oprc": "130000",
    "stck_hgpr": "130500",
    "stck_lwpr": "128000",
    "stck_mxpr": "169000",
    "stck_llam": "91000",
    "stck_sdpr": "130000",
    "wghn_avrg_stck_prc": "129097.23",
    "hts_frgn_ehrt": "50.12",
    "frgn_ntby_qty": "-123456",
    "per": "14.05",
    "pbr": "1.52",
    "eps": "9146.00",
    "bps": "84539.00",
    "hts_avls": "7671052",
    "lstn_stcn": "5969782550",
    "aspr_unit": "100",
    "w52_hgpr": "132000",
    "w52_hgpr_date": "20261002",
    "stck_shrn_iscd": "005930",
    "mrkt_warn_cls_code": "00",
    "vi_cls_code": "N",
    "short_over_yn": "N",
}

MULTPRICE_ROW: dict[str, str] = {
    "kospi_kosdaq_cls_name": "KOSPI",
    "mrkt_trtm_cls_name": "",
    "hour_cls_code": "0",
    "inter_shrn_iscd": "000660",
    "inter_kor_isnm": "SK하이닉스",
    "inter2_prpr": "612000",
    "inter2_prdy_vrss": "8000",
    "prdy_vrss_sign": "2",
    "prdy_ctrt": "1.32",
    "acml_vol": "3102254",
    "acml_tr_pbmn": "1893477620000",
    "inter2_oprc": "605000",
    "inter2_hgpr": "615000",
    "inter2_lwpr": "601000",
    "inter2_mxpr": "785000",
    "inter2_llam": "423000",
    "inter2_askp": "612000",
    "inter2_bidp": "611000",
    "seln_rsqn": "1502",
    "shnu_rsqn": "3811",
    "inter2_prdy_clpr": "604000",
    "inter2_sdpr": "604000",
}

DAILY_PRICE_ROW: dict[str, str] = {
    "stck_bsop_date": "20261105",
    "stck_oprc": "130000",
    "stck_hgpr": "130500",
    "stck_lwpr": "128000",
    "stck_clpr": "128500",
    "acml_vol": "2669075",
    "prdy_vrss_vol_rate": "85.22",
    "prdy_vrss": "-1500",
    "prdy_vrss_sign": "5",
    "prdy_ctrt": "-1.15",
    "hts_frgn_ehrt": "50.12",
    "frgn_ntby_qty": "-123456",
    "flng_cls_code": "00",
    "acml_prtt_rate": "0.00",
}

CHART_ROW: dict[str, str] = {
    "stck_bsop_date": "20261104",
    "stck_clpr": "130000",
    "stck_oprc": "129000",
    "stck_hgpr": "131000",
    "stck_lwpr": "128500",
    "acml_vol": "3013400",
    "acml_tr_pbmn": "391742000000",
    "flng_cls_code": "00",
    "prtt_rate": "0.00",
    "mod_yn": "N",
    "prdy_vrss_sign": "2",
    "prdy_vrss": "500",
    "revl_issu_reas": "",
}

HOLDING_ROW: dict[str, str] = {
    "pdno": "005930",
    "prdt_name": "삼성전자",
    "trad_dvsn_name": "현금",
    "bfdy_buy_qty": "0",
    "bfdy_sll_qty": "0",
    "thdt_buyqty": "10",
    "thdt_sll_qty": "0",
    "hldg_qty": "10",
    "ord_psbl_qty": "10",
    "pchs_avg_pric": "127350.0000",
    "pchs_amt": "1273500",
    "prpr": "128500",
    "evlu_amt": "1285000",
    "evlu_pfls_amt": "11500",
    "evlu_pfls_rt": "0.90",
    "evlu_erng_rt": "0.00000000",
    "loan_dt": "",
    "loan_amt": "0",
    "fltt_rt": "-1.15000000",
    "bfdy_cprs_icdc": "-1500",
}

SUMMARY_ROW: dict[str, str] = {
    "dnca_tot_amt": "8726500",
    "nxdy_excc_amt": "7453000",
    "prvs_rcdl_excc_amt": "7453000",
    "cma_evlu_amt": "0",
    "bfdy_buy_amt": "0",
    "thdt_buy_amt": "1273500",
    "scts_evlu_amt": "1285000",
    "tot_evlu_amt": "8738000",
    "nass_amt": "8738000",
    "pchs_amt_smtl_amt": "1273500",
    "evlu_amt_smtl_amt": "1285000",
    "evlu_pfls_smtl_amt": "11500",
    "bfdy_tot_asst_evlu_amt": "10000000",
    "asst_icdc_amt": "-1262000",
    "asst_icdc_erng_rt": "0.00000000",
}

EMPTY_SUMMARY_ROW: dict[str, str] = dict.fromkeys(SUMMARY_ROW, "0") | {
    "asst_icdc_erng_rt": "0.00000000"
}

ORDER_BODY: dict[str, Any] = {
    "rt_cd": "0",
    "msg_cd": "40600000",
    "msg1": "모의투자 매수주문이 완료 되었습니다.                    ",
    "output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000117057", "ORD_TMD": "091512"},
}

DAILY_CCLD_ROW: dict[str, str] = {
    "ord_dt": "20261105",
    "ord_gno_brno": "06010",
    "odno": "0000117057",
    "orgn_odno": "",
    "ord_dvsn_name": "지정가",
    "sll_buy_dvsn_cd": "02",
    "sll_buy_dvsn_cd_name": "현금매수",
    "pdno": "005930",
    "prdt_name": "삼성전자",
    "ord_qty": "10",
    "ord_unpr": "128500",
    "ord_tmd": "091512",
    "tot_ccld_qty": "4",
    "avg_prvs": "128450.5",
    "cncl_yn": "N",
    "tot_ccld_amt": "513802",
    "loan_dt": "",
    "ordr_empno": "",
    "ord_dvsn_cd": "00",
    "cncl_cfrm_qty": "0",
    "rmn_qty": "6",
    "rjct_qty": "0",
    "ccld_cndt_name": "없음",
    "excg_id_dvsn_cd": "KRX",
}


# --- quotes ---------------------------------------------------------------------------------


def test_quote_from_inquire_price() -> None:
    quote = Quote.from_inquire_price("005930", INQUIRE_PRICE_OUTPUT)
    assert quote == Quote(
        code="005930",
        price=128500,
        name="",
        change=-1500,
        change_sign="5",
        change_rate=Decimal("-1.15"),
        volume=2669075,
        traded_value=344574212500,
        open=130000,
        high=130500,
        low=128000,
        upper_limit=169000,
        lower_limit=91000,
        base_price=130000,
        prev_close=None,
        market_warning="00",
        halted=False,
        extra=quote.extra,
    )
    assert quote.extra["wghn_avrg_stck_prc"] == "129097.23"
    assert quote.extra["stck_shrn_iscd"] == "005930"
    assert "stck_prpr" not in quote.extra
    assert set(quote.extra) == set(INQUIRE_PRICE_OUTPUT) - set(kis_names(Quote).values())


def test_quote_takes_a_stock_code_and_keeps_its_bare_form() -> None:
    quote = Quote.from_inquire_price(normalize_code("Q530036"), {"stck_prpr": "10450"})
    assert quote.code == "530036"
    assert quote.price == 10450


def test_quote_from_inquire_price_with_the_documented_example_values() -> None:
    quote = Quote.from_inquire_price(
        "005930",
        {"stck_prpr": "128500", "prdy_ctrt": "0.00", "acml_vol": "2669075", "temp_stop_yn": "Y"},
    )
    assert quote.price == 128500
    assert quote.change_rate == Decimal("0.00")
    assert quote.volume == 2669075
    assert quote.halted is True


def test_quote_from_multprice() -> None:
    quote = Quote.from_multprice(MULTPRICE_ROW)
    assert quote.code == "000660"
    assert quote.name == "SK하이닉스"
    assert quote.price == 612000
    assert quote.change == 8000
    assert quote.change_sign == "2"
    assert quote.change_rate == Decimal("1.32")
    assert quote.volume == 3102254
    assert quote.traded_value == 1893477620000
    assert (quote.open, quote.high, quote.low) == (605000, 615000, 601000)
    assert (quote.upper_limit, quote.lower_limit) == (785000, 423000)
    assert quote.base_price == 604000
    assert quote.prev_close == 604000
    assert quote.market_warning == ""
    assert quote.halted is False
    assert quote.extra["inter2_askp"] == "612000"
    assert quote.extra["kospi_kosdaq_cls_name"] == "KOSPI"


def test_multprice_etn_code_loses_its_prefix() -> None:
    quote = Quote.from_multprice(MULTPRICE_ROW | {"inter_shrn_iscd": "Q530036"})
    assert quote.code == "530036"


def test_quote_tolerates_missing_optional_fields() -> None:
    quote = Quote.from_inquire_price("005930", {"stck_prpr": "128500"})
    assert quote.volume == 0
    assert quote.change_rate == Decimal(0)
    assert quote.market_warning == ""
    assert quote.extra == {}


def test_empty_strings_become_zero() -> None:
    quote = Quote.from_inquire_price(
        "005930", {"stck_prpr": "128500", "acml_vol": "", "prdy_ctrt": "", "temp_stop_yn": ""}
    )
    assert quote.volume == 0
    assert quote.change_rate == Decimal(0)
    assert quote.halted is False


def test_quote_needs_a_price() -> None:
    with pytest.raises(ModelError, match="'stck_prpr' is missing") as info:
        Quote.from_inquire_price("005930", {"acml_vol": "1"})
    assert info.value.model == "Quote"
    assert set(info.value.problems) == {"price"}
    with pytest.raises(ModelError, match="'inter_shrn_iscd' is missing"):
        Quote.from_multprice({"inter2_prpr": "1"})


@pytest.mark.parametrize("garbage", ["12a", "1,234", "1.5", "--1", "1e5", "1_000", "١٢٣", "１２３"])
def test_garbage_in_an_int_field_names_the_field(garbage: str) -> None:
    with pytest.raises(ModelError) as info:
        Quote.from_inquire_price("005930", {"stck_prpr": "1", "acml_vol": garbage})
    message = str(info.value)
    assert "Quote.volume" in message
    assert "'acml_vol'" in message
    assert repr(garbage) in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("garbage", ["abc", "NaN", "Infinity", "1e3", "1.2.3", "1,000.5", "."])
def test_garbage_in_a_decimal_field_names_the_field(garbage: str) -> None:
    with pytest.raises(ModelError, match=r"Quote\.change_rate: KIS field 'prdy_ctrt'"):
        Quote.from_inquire_price("005930", {"stck_prpr": "1", "prdy_ctrt": garbage})


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(ModelError) as info:
        Quote.from_inquire_price(
            "005930", {"stck_prpr": "x", "acml_vol": "y", "temp_stop_yn": "maybe"}
        )
    assert set(info.value.problems) == {"price", "volume", "halted"}


def test_a_non_mapping_row_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="expected a JSON object"):
        Quote.from_multprice(["000660"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-1500", -1500),
        ("+1500", 1500),
        ("0", 0),
        ("000123", 123),
        ("128500.00", 128500),
        ("-0", 0),
        (" 42 ", 42),
        ("", 0),
    ],
)
def test_int_strings(text: str, value: int) -> None:
    assert Quote.from_inquire_price("005930", {"stck_prpr": text}).price == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.00", "0.00"), ("-2.35", "-2.35"), ("129097.23", "129097.23"), (".5", "0.5"), ("7", "7")],
)
def test_decimal_strings(text: str, value: str) -> None:
    quote = Quote.from_inquire_price("005930", {"stck_prpr": "1", "prdy_ctrt": text})
    assert quote.change_rate == Decimal(value)


def test_field_names_match_case_insensitively() -> None:
    quote = Quote.from_inquire_price("005930", {"STCK_PRPR": "128500"})
    assert quote.price == 128500


def test_models_are_frozen() -> None:
    quote = Quote.from_inquire_price("005930", {"stck_prpr": "1"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        quote.price = 2  # type: ignore[misc]


# --- daily bars -----------------------------------------------------------------------------


def test_daily_bar_from_inquire_daily_price() -> None:
    bar = DailyBar.from_row(DAILY_PRICE_ROW)
    assert bar.date == dt.date(2026, 11, 5)
    assert (bar.open, bar.high, bar.low, bar.close) == (130000, 130500, 128000, 128500)
    assert bar.volume == 2669075
    assert bar.traded_value == 0  # inquire-daily-price has no acml_tr_pbmn
    assert bar.extra["flng_cls_code"] == "00"


def test_daily_bar_from_itemchartprice() -> None:
    bar = DailyBar.from_row(CHART_ROW)
    assert bar.date == dt.date(2026, 11, 4)
    assert bar.close == 130000
    assert bar.traded_value == 391742000000
    assert bar.extra["mod_yn"] == "N"


def test_from_rows_skips_padding_rows() -> None:
    blank = dict.fromkeys(CHART_ROW, "")
    bars = DailyBar.from_rows([CHART_ROW, {}, blank, DAILY_PRICE_ROW])
    assert [bar.date.day for bar in bars] == [4, 5]


@pytest.mark.parametrize("bad", ["2026-11-05", "20261305", "20260230", "2026110", ""])
def test_bad_dates_name_the_field(bad: str) -> None:
    with pytest.raises(ModelError, match=r"DailyBar\.date: KIS field 'stck_bsop_date'"):
        DailyBar.from_row(CHART_ROW | {"stck_bsop_date": bad})


# --- balance --------------------------------------------------------------------------------


def test_holding() -> None:
    holding = Holding.from_row(HOLDING_ROW)
    assert holding == Holding(
        code="005930",
        name="삼성전자",
        quantity=10,
        orderable_quantity=10,
        avg_price=Decimal("127350.0000"),
        purchase_amount=1273500,
        price=128500,
        value=1285000,
        profit=11500,
        profit_rate=Decimal("0.90"),
        extra=holding.extra,
    )
    assert holding.extra["trad_dvsn_name"] == "현금"
    assert holding.extra["loan_dt"] == ""


def test_balance_summary() -> None:
    summary = BalanceSummary.from_row(SUMMARY_ROW)
    assert summary.cash == 8726500
    assert summary.cash_d1 == 7453000
    assert summary.cash_d2 == 7453000
    assert summary.total_value == 8738000
    assert summary.net_assets == 8738000
    assert summary.securities_value == 1285000
    assert summary.purchase_amount_total == 1273500
    assert summary.value_total == 1285000
    assert summary.total_profit == 11500
    assert summary.extra["asst_icdc_amt"] == "-1262000"


def test_balance_from_outputs() -> None:
    sold_today = HOLDING_ROW | {"pdno": "000660", "hldg_qty": "0", "ord_psbl_qty": "0"}
    balance = Balance.from_outputs([HOLDING_ROW, sold_today], [SUMMARY_ROW])
    assert [h.code for h in balance.holdings] == ["005930", "000660"]
    assert [h.code for h in balance.held] == ["005930"]
    assert not balance.is_empty
    assert balance.summary.cash == 8726500
    assert Balance.from_outputs([HOLDING_ROW], SUMMARY_ROW) == Balance.from_outputs(
        [HOLDING_ROW], [SUMMARY_ROW]
    )


def test_an_empty_account_is_a_valid_balance() -> None:
    balance = Balance.from_outputs([], [EMPTY_SUMMARY_ROW])
    assert balance.is_empty
    assert balance.holdings == ()
    assert balance.summary.cash == 0


def test_only_sold_out_rows_is_empty() -> None:
    sold = HOLDING_ROW | {"hldg_qty": "0"}
    assert Balance.from_outputs([sold], [SUMMARY_ROW]).is_empty


def test_balance_without_a_summary_is_an_error() -> None:
    with pytest.raises(ModelError, match="output2 is empty"):
        Balance.from_outputs([HOLDING_ROW], [])
    with pytest.raises(ModelError, match="'dnca_tot_amt' is missing"):
        Balance.from_rows([HOLDING_ROW], {})


def test_balance_from_rows_skips_blank_rows() -> None:
    balance = Balance.from_rows([HOLDING_ROW, {}], SUMMARY_ROW)
    assert len(balance.holdings) == 1


# --- orders ---------------------------------------------------------------------------------


def test_order_result_from_response() -> None:
    result = OrderResult.from_response(ORDER_BODY)
    assert result.order_no == "0000117057"  # leading zeros kept
    assert result.branch == "00950"
    assert result.ordered_at_hhmmss == "091512"
    assert result.msg_cd == "40600000"
    assert result.msg1 == "모의투자 매수주문이 완료 되었습니다."  # padding stripped
    assert result.extra == {}


def test_order_result_from_output() -> None:
    result = OrderResult.from_output(ORDER_BODY["output"], "APBK0013", "주문 전송 완료 되었습니다.")
    assert result.order_no == "0000117057"
    assert result.msg_cd == "APBK0013"


def test_order_result_needs_an_order_number() -> None:
    with pytest.raises(ModelError, match="'ODNO' is missing"):
        OrderResult.from_output({"ORD_TMD": "091512"})
    with pytest.raises(ModelError, match="no 'output' object"):
        OrderResult.from_response({"rt_cd": "0", "msg_cd": "APBK0013", "msg1": ""})


def test_daily_order() -> None:
    order = DailyOrder.from_row(DAILY_CCLD_ROW)
    assert order.order_date == dt.date(2026, 11, 5)
    assert order.branch == "06010"
    assert order.order_no == "0000117057"
    assert order.original_order_no == ""
    assert order.side == "buy"
    assert order.code == "005930"
    assert order.name == "삼성전자"
    assert order.quantity == 10
    assert order.price == 128500
    assert order.ordered_at == "091512"
    assert order.filled_quantity == 4
    assert order.avg_fill_price == Decimal("128450.5")
    assert order.cancelled is False
    assert order.filled_amount == 513802
    assert order.remaining_quantity == 6
    assert order.rejected_quantity == 0
    assert order.extra["excg_id_dvsn_cd"] == "KRX"


def test_daily_order_sell_and_cancelled() -> None:
    order = DailyOrder.from_row(DAILY_CCLD_ROW | {"sll_buy_dvsn_cd": "01", "cncl_yn": "Y"})
    assert order.side == "sell"
    assert order.cancelled is True


@pytest.mark.parametrize("bad", ["00", "03", "", "1", "BUY"])
def test_daily_order_unknown_side_is_an_error(bad: str) -> None:
    with pytest.raises(ModelError, match=r"DailyOrder\.side: KIS field 'sll_buy_dvsn_cd'"):
        DailyOrder.from_row(DAILY_CCLD_ROW | {"sll_buy_dvsn_cd": bad})


def test_daily_order_bad_flag_is_an_error() -> None:
    with pytest.raises(ModelError, match=r"DailyOrder\.cancelled"):
        DailyOrder.from_row(DAILY_CCLD_ROW | {"cncl_yn": "X"})


# --- batches --------------------------------------------------------------------------------


def test_price_batch() -> None:
    quote = Quote.from_multprice(MULTPRICE_ROW)
    assert len(PriceBatch()) == 0
    assert PriceBatch().ok
    batch = PriceBatch()
    batch.succeeded["000660"] = quote
    batch.failed["005930"] = GatewayError("slow")
    batch.requests += 2
    batch.elapsed_s = 0.25
    assert len(batch) == 2
    assert not batch.ok
    assert batch.requests == 2


def test_batch_result_is_generic() -> None:
    bars: BatchResult[tuple[DailyBar, ...]] = BatchResult(
        succeeded={"005930": DailyBar.from_rows([CHART_ROW])}, requests=1, elapsed_s=0.1
    )
    assert bars.ok
    assert len(bars) == 1


def test_batch_result_repr_counts_instead_of_listing() -> None:
    bar = DailyBar.from_rows([CHART_ROW])
    codes = [f"{n:06d}" for n in range(3_000)]
    batch: BatchResult[tuple[DailyBar, ...]] = BatchResult(
        succeeded=dict.fromkeys(codes, bar),
        failed={f"9000{n:02d}": GatewayError("HTTP 500") for n in (7, 1, 0, 6, 2, 5, 3, 4)},
        elapsed_s=1.23456,
        requests=3_010,
    )
    assert repr(batch) == (
        "BatchResult(3000 succeeded, 8 failed (900000, 900001, 900002, 900003, 900004, "
        "... 3 more), elapsed_s=1.235, requests=3010)"
    )
    assert repr(BatchResult()) == "BatchResult(0 succeeded, 0 failed, elapsed_s=0.000, requests=0)"


# --- generic machinery ----------------------------------------------------------------------


def test_unknown_extra_fields_are_kept_raw() -> None:
    row = CHART_ROW | {"new_field_2027": "  padded  ", "nested": None}
    bar = DailyBar.from_row(row)
    assert bar.extra["new_field_2027"] == "  padded  "
    assert bar.extra["nested"] == ""


def test_structure_kis_given_fields_win_over_the_row() -> None:
    quote = structure_kis(Quote, {"stck_prpr": "1"}, code="005930", price="7")
    assert quote.price == 7


def test_one_converter_serves_every_model() -> None:
    assert converter.structure("-1500", int) == -1500
    assert converter.structure("0.00", Decimal) == Decimal("0.00")
    assert converter.structure("20261105", dt.date) == dt.date(2026, 11, 5)
    assert converter.structure("Y", bool) is True


def test_to_kis_row_round_trips_the_samples() -> None:
    cases: list[tuple[Any, str, dict[str, str]]] = [
        (DailyBar.from_row(CHART_ROW), "", CHART_ROW),
        (Holding.from_row(HOLDING_ROW), "", HOLDING_ROW),
        (BalanceSummary.from_row(SUMMARY_ROW), "", SUMMARY_ROW),
        (DailyOrder.from_row(DAILY_CCLD_ROW), "", DAILY_CCLD_ROW),
        (Quote.from_multprice(MULTPRICE_ROW), "multprice", MULTPRICE_ROW),
    ]
    for model, source, row in cases:
        rendered = to_kis_row(model, source)
        assert structure_kis(type(model), rendered, source, **_given(model, source)) == model
        assert set(rendered) >= set(row)


def test_to_kis_row_keeps_the_kis_spelling() -> None:
    row = to_kis_row(OrderResult.from_response(ORDER_BODY))
    assert row["ODNO"] == "0000117057"
    assert "msg1" not in row


def _given(model: Any, source: str) -> dict[str, Any]:
    """Fields with no KIS name in *source* (they come from elsewhere, e.g. Quote.code)."""
    named = kis_names(type(model), source)
    return {
        field.name: getattr(model, field.name)
        for field in attrs.fields(type(model))
        if field.name not in named and field.name != "extra"
    }


# --- properties -----------------------------------------------------------------------------

kis_ints = st.integers(min_value=-(10**15), max_value=10**15)


@given(kis_ints)
def test_any_int_rendered_as_kis_text_parses_back(value: int) -> None:
    assert converter.structure(str(value), int) == value
    assert converter.structure(f"{value}.00", int) == value
    assert converter.structure(converter.unstructure(value), int) == value


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_any_decimal_rendered_as_kis_text_parses_back(value: Decimal) -> None:
    text = format(value, "f")
    assert converter.structure(text, Decimal) == value
    assert converter.structure(converter.unstructure(value), Decimal) == value


@given(st.dates(min_value=dt.date(1956, 3, 3), max_value=dt.date(2999, 12, 31)))
def test_any_date_rendered_as_kis_text_parses_back(value: dt.date) -> None:
    assert converter.structure(value.strftime("%Y%m%d"), dt.date) == value


@given(st.text(max_size=12) | kis_ints.map(str) | st.from_regex(r"\A[+-]?[0-9]{1,5}\.[0-9]{0,3}\Z"))
def test_int_hook_accepts_only_plain_numbers(text: str) -> None:
    stripped = text.strip(" \t\n\r\x0b\x0c")
    plain = re.fullmatch(r"[+-]?[0-9]+(\.0*)?", stripped, re.ASCII) is not None
    try:
        value = converter.structure(text, int)
    except ValueError:
        assert not plain
        assert stripped != ""
        return
    assert plain or stripped == ""
    assert value == (int(stripped.split(".")[0]) if stripped else 0)


holdings = st.builds(
    Holding,
    code=st.sampled_from(["005930", "0037T0", "00680K"]),
    name=st.text(max_size=10).map(str.strip),
    quantity=kis_ints,
    orderable_quantity=kis_ints,
    avg_price=st.decimals(allow_nan=False, allow_infinity=False, places=4),
    purchase_amount=kis_ints,
    price=kis_ints,
    value=kis_ints,
    profit=kis_ints,
    profit_rate=st.decimals(allow_nan=False, allow_infinity=False, places=2),
)


@given(holdings)
def test_any_holding_round_trips_through_kis_text(holding: Holding) -> None:
    row = to_kis_row(holding)
    assert all(isinstance(v, str) for v in row.values())
    assert Holding.from_row(row) == holding


daily_orders = st.builds(
    DailyOrder,
    order_date=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
    order_no=st.text("0123456789", min_size=10, max_size=10),
    side=st.sampled_from(["buy", "sell"]),
    code=st.sampled_from(["005930", "530036"]),
    quantity=kis_ints,
    avg_fill_price=st.decimals(allow_nan=False, allow_infinity=False, places=2),
    cancelled=st.booleans(),
)


@given(daily_orders)
def test_any_daily_order_round_trips_through_kis_text(order: DailyOrder) -> None:
    assert DailyOrder.from_row(to_kis_row(order)) == order
