"""The fake refuses what the gateway refuses (issue 13): a buggy client fails here, not in
production. Each rule names its evidence in the fake's code (kis-api-facts.md, or "facts
silent" with the choice made)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pathlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kisclient import KISClient
from kisclient._config import ENDPOINTS, Env
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer, Fault
from kisclient.testing._documented import DOCUMENTED, MARKET_DIVISION_ENDPOINTS

sys.path.append(str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

from kis_support import NO_JITTER, make_fake, sync_client

PRICE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


def _order(app: FakeApp, code: str, qty: int, price: int) -> dict[str, Any]:
    return {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "PDNO": code,
        "ORD_DVSN": "00",
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
    }


def _buy(h: FakeHarness, app: FakeApp, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    tr_id = ENDPOINTS["order_cash"].tr_id(Env(app.env), "buy")
    answer: dict[str, Any] = h.call(app, "order_cash", json=body, tr_id=tr_id, **kwargs).json()
    return answer


def _hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_an_order_whose_hashkey_does_not_match_its_body_is_refused(
    fake_harness: FakeHarness,
) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real")
    body = _order(app, "005930", 1, fake.price_of("005930"))
    wrong = _buy(fake_harness, app, body, extra={"hashkey": _hash({**body, "ORD_QTY": "9"})})
    assert (wrong["rt_cd"], wrong["msg_cd"]) == ("1", "EGW00131")
    assert fake.orders(app.app_key) == []
    right = _buy(fake_harness, app, body, extra={"hashkey": _hash(body)})
    assert right["rt_cd"] == "0"
    assert len(fake.orders(app.app_key)) == 1


def test_numbers_where_the_documentation_requires_strings_are_refused(
    fake_inprocess: FakeHarness,
) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    body = {**_order(app, "005930", 1, fake.price_of("005930")), "ORD_QTY": 1}
    answer = _buy(fake_inprocess, app, body)
    assert (answer["rt_cd"], answer["msg_cd"]) == ("1", "OPSQ0001")
    assert fake.orders(app.app_key) == []


def test_an_unknown_market_division_code_is_refused(fake_inprocess: FakeHarness) -> None:
    app = fake_inprocess.fake.add_app("real")
    good = fake_inprocess.call(app, "inquire_price", PRICE).json()
    bad = fake_inprocess.call(app, "inquire_price", {**PRICE, "FID_COND_MRKT_DIV_CODE": "X"})
    assert good["rt_cd"] == "0"
    assert (bad.json()["rt_cd"], bad.json()["msg_cd"]) == ("1", "OPSQ2000")


def test_a_revise_or_cancel_names_the_original_branch(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    low = fake.price_of("000660") - 10 * 100
    placed = _buy(fake_inprocess, app, _order(app, "000660", 3, low))["output"]
    cancel = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "KRX_FWDG_ORD_ORGNO": "99999",
        "ORGN_ODNO": placed["ODNO"],
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
    }
    wrong = fake_inprocess.call(app, "order_rvsecncl", json=cancel).json()
    assert (wrong["rt_cd"], wrong["msg_cd"]) == ("7", "OPSQ2001")
    right = {**cancel, "KRX_FWDG_ORD_ORGNO": placed["KRX_FWDG_ORD_ORGNO"]}
    assert fake_inprocess.call(app, "order_rvsecncl", json=right).json()["rt_cd"] == "0"


def test_paper_messages_are_right_padded_and_real_ones_are_not(
    fake_inprocess: FakeHarness,
) -> None:
    fake = fake_inprocess.fake
    paper, real = fake.add_app("paper"), fake.add_app("real")
    on_paper = fake_inprocess.call(paper, "inquire_price", PRICE).json()["msg1"]
    on_real = fake_inprocess.call(real, "inquire_price", PRICE).json()["msg1"]
    assert on_paper != on_paper.rstrip() and on_paper.rstrip()
    assert on_real == on_real.rstrip()


def test_a_real_token_on_the_paper_host_is_refused(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    paper, real = fake.add_app("paper"), fake.add_app("real")
    token = fake_inprocess.token(real)
    headers = {"authorization": f"Bearer {token}"}
    answer = fake_inprocess.call(paper, "inquire_price", PRICE, extra=headers)
    assert answer.status_code == 500
    assert answer.json()["msg_cd"] == "EGW00205"


@pytest.mark.parametrize(("env", "code"), [("real", "APBK0952"), ("paper", "40250000")])
def test_selling_more_than_held_is_refused_with_the_orderable_amount_code(
    fake_inprocess: FakeHarness, env: str, code: str
) -> None:
    fake: FakeKIS = fake_inprocess.fake
    app = fake.add_app(env)
    fake.seed_holdings(app.app_key, {"005930": 2})
    body = _order(app, "005930", 5, fake.price_of("005930"))
    tr_id = ENDPOINTS["order_cash"].tr_id(Env(env), "sell")
    answer = fake_inprocess.call(app, "order_cash", json=body, tr_id=tr_id).json()
    assert (answer["rt_cd"] != "0", answer["msg_cd"]) == (True, code)
    assert fake.holdings(app.app_key)["005930"] == 2


# --- the market division code and unknown codes on the quote endpoints ------------------------

_RANKING = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "0000"}
#: One good request per endpoint of the registry MARKET_DIVISION_ENDPOINTS (every endpoint whose
#: documented request fields include FID_COND_MRKT_DIV_CODE).
DIVISION_REQUESTS: dict[str, dict[str, str]] = {
    "inquire_price": PRICE,
    "inquire_daily_price": {**PRICE, "FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "0"},
    "inquire_daily_itemchartprice": {
        **PRICE,
        "FID_INPUT_DATE_1": "20261101",
        "FID_INPUT_DATE_2": "20261126",
        "FID_PERIOD_DIV_CODE": "D",
        "FID_ORG_ADJ_PRC": "0",
    },
    "inquire_asking_price_exp_ccn": PRICE,
    "inquire_time_itemchartprice": {**PRICE, "FID_INPUT_HOUR_1": "100000"},
    "inquire_time_dailychartprice": {
        **PRICE,
        "FID_INPUT_HOUR_1": "153000",
        "FID_INPUT_DATE_1": "20261125",
    },
    "volume_rank": {**_RANKING, "FID_COND_SCR_DIV_CODE": "20171"},
    "ranking_fluctuation": {**_RANKING, "FID_COND_SCR_DIV_CODE": "20170"},
    "ranking_market_cap": {**_RANKING, "FID_COND_SCR_DIV_CODE": "20174"},
}
#: The endpoints whose FID_INPUT_ISCD is a stock code (the rankings' is a market).
QUOTE_ENDPOINTS = sorted(n for n, q in DIVISION_REQUESTS.items() if q["FID_INPUT_ISCD"] == "005930")


def test_every_endpoint_of_the_division_registry_has_a_request_here() -> None:
    assert set(DIVISION_REQUESTS) == set(MARKET_DIVISION_ENDPOINTS)


@pytest.mark.parametrize("name", sorted(DIVISION_REQUESTS))
def test_a_missing_or_blank_market_division_code_is_refused(
    fake_inprocess: FakeHarness, name: str
) -> None:
    app = fake_inprocess.fake.add_app("real")
    good = DIVISION_REQUESTS[name]
    assert fake_inprocess.call(app, name, good).json()["rt_cd"] == "0"
    missing = {k: v for k, v in good.items() if k != "FID_COND_MRKT_DIV_CODE"}
    for params in (missing, {**good, "FID_COND_MRKT_DIV_CODE": " "}):
        answer = fake_inprocess.call(app, name, params)
        assert answer.status_code == 200
        assert (answer.json()["rt_cd"], answer.json()["msg_cd"]) == ("1", "OPSQ2000")
        assert "output" not in answer.json() and "output1" not in answer.json()


def _unknown(harness: FakeHarness, app: FakeApp, name: str, code: str) -> dict[str, Any]:
    answer = harness.call(app, name, {**DIVISION_REQUESTS[name], "FID_INPUT_ISCD": code})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("name", QUOTE_ENDPOINTS)
def test_an_unknown_code_answers_every_quote_endpoint_as_inquire_price_does(
    fake_harness: FakeHarness, name: str
) -> None:
    app = fake_harness.fake.add_app("real")
    answer = _unknown(fake_harness, app, name, "999999")
    assert (answer["rt_cd"], answer["msg_cd"]) == ("0", "MCA00000")
    assert set(answer) - {"rt_cd", "msg_cd", "msg1"} == set(DOCUMENTED[name])
    for key, names in DOCUMENTED[name].items():
        value = answer[key]
        if isinstance(value, list):  # rows (bars): none for a code KIS does not know
            assert value == []
            continue
        assert set(value) == set(names)  # every documented field, nothing else
        assert set(value.values()) <= {"0", ""}
        if "stck_prpr" in value:  # what python-kis reads to tell an unknown code
            assert value["stck_prpr"] == "0"
    if name != "inquire_price":  # the same zeroed fields as inquire-price's, where shared
        price = _unknown(fake_harness, app, "inquire_price", "999999")["output"]
        for key, names in DOCUMENTED[name].items():
            if isinstance(answer[key], dict):
                shared = set(names) & set(price)
                assert {n: answer[key][n] for n in shared} == {n: price[n] for n in shared}
    malformed = _unknown(fake_harness, app, name, "99")
    assert (malformed["rt_cd"], malformed["msg_cd"]) == ("1", "OPSQ2002")


def test_the_multi_quote_row_of_an_unknown_code_is_zeroed_alike(
    fake_inprocess: FakeHarness,
) -> None:
    app = fake_inprocess.fake.add_app("real")
    params = {
        "FID_COND_MRKT_DIV_CODE_1": "J",
        "FID_INPUT_ISCD_1": "005930",
        "FID_COND_MRKT_DIV_CODE_2": "J",
        "FID_INPUT_ISCD_2": "999999",
    }
    known, unknown = fake_inprocess.call(app, "intstock_multprice", params).json()["output"]
    assert known["inter2_prpr"] != "0"
    assert set(unknown) == set(DOCUMENTED["intstock_multprice"]["output"])
    assert unknown["inter_shrn_iscd"] == "999999"
    assert {v for k, v in unknown.items() if k != "inter_shrn_iscd"} <= {"0", ""}
    price = _unknown(fake_inprocess, app, "inquire_price", "999999")["output"]
    shared = set(unknown) & set(price)
    assert shared and {n: unknown[n] for n in shared} == {n: price[n] for n in shared}


@pytest.fixture(name="client_on_fake", params=["inprocess", "loopback"])
def _client_on_fake(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[tuple[FakeKIS, KISClient]]:
    """A real KISClient of a new real app on a fake, in-process or over a loopback server."""
    fake, clock = make_fake()
    app = fake.add_app("real")
    if request.param == "inprocess":
        with sync_client(fake, app, clock, tmp_path) as kis:
            yield fake, kis
        return
    with (
        FakeKISServer(fake) as server,
        KISClient(
            app.app_key,
            app.app_secret,
            env="real",
            account=app.account,
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
            clock=clock,
            retry=NO_JITTER,
        ) as kis,
    ):
        yield fake, kis


def test_kisclient_sends_the_market_division_code_on_every_quote_call(
    client_on_fake: tuple[FakeKIS, KISClient],
) -> None:
    """The fake refuses a quote call without FID_COND_MRKT_DIV_CODE: every quote method of
    the real client succeeding through it shows the client sends it."""
    fake, kis = client_on_fake
    yesterday = dt.date(2026, 11, 25)
    price = kis.get_price("005930")
    batch = kis.get_prices(["005930", "000660"], multi=False)
    book = kis.get_orderbook("005930")
    today = kis.get_minute_bars("005930")
    past = kis.get_minute_bars("005930", day=yesterday)
    bars = kis.get_bars("005930", dt.date(2026, 11, 1), yesterday)
    daily = kis.get_daily_prices("005930", dt.date(2026, 11, 1), yesterday)
    ranks = [
        kis.get_volume_rank(),
        kis.get_fluctuation_rank(),
        kis.get_market_cap_rank(),
    ]
    assert price.price == fake.price_of("005930")
    assert sorted(batch.succeeded) == ["000660", "005930"] and not batch.failed
    assert book.asks[0].price > 0
    assert today and past and bars and daily
    assert all(ranks)
    assert fake.stats.requests(ENDPOINTS["inquire_price"].path) >= 3


# --- the paper host pads every msg1, the gateway's own refusals too -----------------------------


def test_gateway_refusals_are_right_padded_on_paper_only(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    paper, real = fake.add_app("paper"), fake.add_app("real")
    bogus = {"authorization": "Bearer not-a-token"}
    refusals = {}
    for app in (paper, real):
        token = fake_harness.call(app, "inquire_price", PRICE, extra=bogus)
        fake.faults.add(Fault("rate_burst", times=1))
        burst = fake_harness.call(app, "inquire_price", PRICE)
        refusals[app.env] = [
            (r.status_code, r.json()["msg_cd"], r.json()["msg1"]) for r in (token, burst)
        ]
    assert [(status, code) for status, code, _ in refusals["paper"]] == [
        (500, "EGW00121"),
        (500, "EGW00201"),
    ]
    assert [code for _, code, _ in refusals["real"]] == ["EGW00121", "EGW00201"]
    for (_, _, on_paper), (_, _, on_real) in zip(refusals["paper"], refusals["real"], strict=True):
        assert on_real == on_real.rstrip() and on_real
        assert on_paper != on_paper.rstrip() and on_paper.rstrip() == on_real
