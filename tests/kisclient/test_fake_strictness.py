"""The fake refuses what the gateway refuses (issue 13): a buggy client fails here, not in
production. Each rule names its evidence in the fake's code (kis-api-facts.md, or "facts
silent" with the choice made)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kisclient._config import ENDPOINTS, Env
from kisclient.testing import FakeApp, FakeKIS

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

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
