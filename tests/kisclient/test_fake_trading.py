"""Fake KIS accounts: orders, cancellation, balance and order history with pagination."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from kisclient import DailyOrder
from kisclient._clock import FakeClock
from kisclient._config import ENDPOINTS, KST, Env, env_settings
from kisclient.testing import FakeApp, FakeKIS

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)


def _order(app: FakeApp, code: str, qty: int, price: int = 0, **extra: str) -> dict[str, str]:
    return {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "PDNO": code,
        "ORD_DVSN": "00" if price else "01",
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
        **extra,
    }


def _buy(
    h: FakeHarness, app: FakeApp, code: str, qty: int, price: int = 0, *, legacy: bool = False
) -> dict[str, Any]:
    tr_id = ENDPOINTS["order_cash"].tr_id(Env(app.env), "buy", legacy=legacy)
    body: dict[str, Any] = h.call(
        app, "order_cash", json=_order(app, code, qty, price), tr_id=tr_id
    ).json()
    return body


def _account(app: FakeApp) -> dict[str, str]:
    return {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }


def test_market_buy_executes(fake_harness: FakeHarness, fake_clock: FakeClock) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real")
    price = fake.price_of("005930")
    body = _buy(fake_harness, app, "005930", 10)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "APBK0013")
    out = body["output"]
    assert out["ODNO"].isdigit()
    assert len(out["ODNO"]) == 10
    assert out["ORD_TMD"] == fake_clock.now().strftime("%H%M%S")
    assert out["KRX_FWDG_ORD_ORGNO"]
    [order] = fake.orders(app.app_key)
    assert (order.order_no, order.side, order.code, order.qty, order.price) == (
        out["ODNO"],
        "buy",
        "005930",
        10,
        price,
    )
    assert order.tr_id == ENDPOINTS["order_cash"].tr_id(Env.REAL, "buy")
    assert order.time == fake_clock.now()
    assert fake.cash(app.app_key) == 100_000_000 - 10 * price
    assert fake.holdings(app.app_key) == {"005930": 10}


def test_legacy_tr_ids_and_paper_codes(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    paper = fake.add_app("paper")
    assert _buy(fake_harness, paper, "005930", 2, legacy=True)["msg_cd"] == "40600000"
    sell = fake_harness.call(
        paper,
        "order_cash",
        json=_order(paper, "005930", 1),
        tr_id=ENDPOINTS["order_cash"].tr_id(Env.PAPER, "sell"),
    )
    assert sell.json()["msg_cd"] == "40610000"
    assert fake.holdings(paper.app_key) == {"005930": 1}


def test_limit_order_rests_then_fills_or_cancels(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    price = fake.price_of("000660")
    low = price - 10 * 100
    first = _buy(fake_inprocess, app, "000660", 3, low)["output"]["ODNO"]
    second = _buy(fake_inprocess, app, "000660", 2, low)["output"]["ODNO"]
    assert [o.filled_qty for o in fake.orders(app.app_key)] == [0, 0]
    assert fake.holdings(app.app_key) == {}
    cancel = fake_inprocess.call(
        app,
        "order_rvsecncl",
        json={
            "CANO": app.cano,
            "ACNT_PRDT_CD": "01",
            "KRX_FWDG_ORD_ORGNO": "91252",
            "ORGN_ODNO": second,
            "ORD_DVSN": "00",
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "0",
            "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y",
        },
    ).json()
    assert (cancel["rt_cd"], cancel["msg_cd"]) == ("0", "APBK0013")
    again = fake_inprocess.call(
        app,
        "order_rvsecncl",
        json={
            "CANO": app.cano,
            "ACNT_PRDT_CD": "01",
            "ORGN_ODNO": second,
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "0",
            "QTY_ALL_ORD_YN": "Y",
        },
    ).json()
    assert again["rt_cd"] != "0"
    fake.set_price("000660", low)
    orders = {o.order_no: o for o in fake.orders(app.app_key)}
    assert (orders[first].filled_qty, orders[first].price) == (3, low)
    assert (orders[second].filled_qty, orders[second].cancelled_qty) == (0, 2)
    assert fake.holdings(app.app_key) == {"000660": 3}


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2026, 11, 26, 8, 59, tzinfo=KST),
        dt.datetime(2026, 11, 26, 15, 30, tzinfo=KST),
        dt.datetime(2026, 11, 28, 10, 0, tzinfo=KST),
    ],
)
def test_paper_orders_outside_hours(when: dt.datetime) -> None:
    fake = FakeKIS(clock=FakeClock(when), seed=7)
    harness = FakeHarness(fake, None)
    paper = fake.add_app("paper")
    body = _buy(harness, paper, "005930", 1)
    assert (body["rt_cd"], body["msg_cd"]) == ("1", "40580000")
    assert fake.orders(paper.app_key) == []
    fake.set_market_open(True)
    assert _buy(harness, paper, "005930", 1)["rt_cd"] == "0"
    harness.close()


def test_business_rejections(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real", cash=1_000)
    poor = _buy(fake_harness, app, "005930", 1)
    assert (poor["rt_cd"], poor["msg_cd"]) == ("7", "APBK0952")
    unknown = _buy(fake_harness, app, "999990", 1)
    assert (unknown["rt_cd"], unknown["msg_cd"]) == ("7", "40070000")
    sell = fake_harness.call(
        app,
        "order_cash",
        json=_order(app, "005930", 1),
        tr_id=ENDPOINTS["order_cash"].tr_id(Env.REAL, "sell"),
    ).json()
    assert sell["rt_cd"] == "7"
    price = fake.price_of("005930")
    off_tick = _buy(fake_harness, app, "005930", 1, price + 1)
    assert off_tick["msg_cd"] == "40030000"
    wrong = fake_harness.call(
        app,
        "order_cash",
        json={**_order(app, "005930", 1), "CANO": "00000000"},
        tr_id=ENDPOINTS["order_cash"].tr_id(Env.REAL, "buy"),
    )
    assert wrong.status_code == 200
    assert (wrong.json()["rt_cd"], wrong.json()["msg_cd"]) == ("7", "APAC0081")
    assert fake.orders(app.app_key) == []


def _pages(h: FakeHarness, app: FakeApp, name: str, params: dict[str, str]) -> list[Any]:
    pages: list[Any] = []
    extra: dict[str, str] = {}
    while True:
        response = h.call(app, name, params, extra=extra)
        body = response.json()
        assert body["rt_cd"] == "0", body
        pages.append((response.headers["tr_cont"], body))
        if response.headers["tr_cont"] in ("D", "E"):
            return pages
        params = {
            **params,
            "CTX_AREA_FK100": body["ctx_area_fk100"],
            "CTX_AREA_NK100": body["ctx_area_nk100"],
        }
        extra = {"tr_cont": "N"}


@pytest.mark.parametrize("env", ["real", "paper"])
def test_balance_pagination(fake_harness: FakeHarness, env: str) -> None:
    fake = fake_harness.fake
    app = fake.add_app(env)
    codes = fake.universe[:120]
    fake.seed_holdings(app.app_key, dict.fromkeys(codes, 2))
    pages = _pages(fake_harness, app, "inquire_balance", _account(app))
    rows = env_settings(env).limits.balance_page_rows
    assert [len(body["output1"]) for _, body in pages][:-1] == [rows] * (len(pages) - 1)
    assert [cont for cont, _ in pages] == ["F"] + ["M"] * (len(pages) - 2) + ["E"]
    assert sorted(r["pdno"] for _, body in pages for r in body["output1"]) == sorted(codes)
    summary = pages[0][1]["output2"][0]
    assert summary["dnca_tot_amt"] == "100000000"
    value = sum(2 * fake.price_of(c) for c in codes)
    assert summary["scts_evlu_amt"] == str(value)
    assert summary["tot_evlu_amt"] == str(100_000_000 + value)


def test_balance_single_page_and_wrong_account(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    response = fake_inprocess.call(app, "inquire_balance", _account(app))
    assert response.headers["tr_cont"] == "D"
    assert response.json()["output1"] == []
    wrong = fake_inprocess.call(app, "inquire_balance", {**_account(app), "CANO": "12345678"})
    assert (wrong.json()["rt_cd"], wrong.json()["msg_cd"]) == ("7", "APAC0081")


def test_daily_ccld(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    fake.set_market_open(True)
    app = fake.add_app("paper")
    for code in [c for c in fake.universe if not fake.listing(c).halted][:20]:
        assert _buy(fake_inprocess, app, code, 1)["rt_cd"] == "0"
    params = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": "01",
        "INQR_STRT_DT": "20261126",
        "INQR_END_DT": "20261126",
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00",
        "PDNO": "",
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }
    pages = _pages(fake_inprocess, app, "inquire_daily_ccld", params)
    assert [len(body["output1"]) for _, body in pages] == [15, 5]
    rows = [row for _, body in pages for row in body["output1"]]
    numbers = [o.order_no for o in fake.orders(app.app_key)]
    assert [row["odno"] for row in rows] == numbers[::-1]
    row = rows[0]
    assert (row["sll_buy_dvsn_cd"], row["tot_ccld_qty"], row["rmn_qty"], row["cncl_yn"]) == (
        "02",
        "1",
        "0",
        "N",
    )
    assert {
        "ord_dt",
        "ord_gno_brno",
        "orgn_odno",
        "pdno",
        "prdt_name",
        "ord_qty",
        "ord_unpr",
        "ord_tmd",
        "avg_prvs",
        "tot_ccld_amt",
        "rjct_qty",
    } <= set(row)
    only_sells = fake_inprocess.call(
        app, "inquire_daily_ccld", {**params, "SLL_BUY_DVSN_CD": "01"}
    ).json()
    assert only_sells["output1"] == []
    assert pages[0][1]["output2"]["tot_ccld_qty"] == "20"


def test_daily_ccld_rows_tell_originals_from_revisions_and_cancellations(
    fake_inprocess: FakeHarness,
) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    low = fake.price_of("000660") - 10 * 100
    placed = _buy(fake_inprocess, app, "000660", 3, low)["output"]
    resting = placed["ODNO"]
    market = _buy(fake_inprocess, app, "000660", 1)["output"]["ODNO"]
    body = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": "01",
        "KRX_FWDG_ORD_ORGNO": placed["KRX_FWDG_ORD_ORGNO"],
        "ORGN_ODNO": resting,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
    }
    cancel = fake_inprocess.call(app, "order_rvsecncl", json=body).json()["output"]["ODNO"]
    params = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": "01",
        "INQR_STRT_DT": "20261126",
        "INQR_END_DT": "20261126",
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "01",
        "PDNO": "",
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }
    rows = {
        r["odno"]: r
        for r in fake_inprocess.call(app, "inquire_daily_ccld", params).json()["output1"]
    }
    fields = ("orgn_odno", "cncl_yn", "ord_dvsn_cd", "ord_dvsn_name", "cnc_cfrm_qty")
    assert [rows[resting][f] for f in fields] == ["", "N", "00", "지정가", "3"]
    assert [rows[market][f] for f in fields] == ["", "N", "01", "시장가", "0"]
    assert [rows[cancel][f] for f in fields] == [resting, "Y", "00", "지정가", "3"]
    assert rows[cancel]["cncl_yn"] == "Y"
    assert "cncl_cfrm_qty" not in rows[cancel]  # the documented name is cnc_cfrm_qty
    parsed = {n: DailyOrder.from_row(r) for n, r in rows.items()}
    assert [parsed[n].is_original for n in (resting, market, cancel)] == [True, True, False]
    assert parsed[market].order_division == "01"
