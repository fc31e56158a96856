"""The fake's answers carry every documented field and nothing else (issue 13).

Table-driven from ``kisclient.testing._documented.DOCUMENTED`` (the one registry of documented
response names): for every endpoint the fake serves, in every environment it exists in, one call
through the in-process fake; every documented name of each output is present, every name served is
documented, every value is a string (KIS sends numbers as strings). Only the *requests* are listed
here (what to ask), never the field names.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kisclient._config import ENDPOINTS, Env
from kisclient.testing import FakeApp, FakeKIS
from kisclient.testing._documented import DOCUMENTED
from kisclient.testing._gateway import _DATA_HANDLERS
from kisclient.testing._universe import round_to_tick

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

CODE = "005930"
_ENVELOPE = {"rt_cd", "msg_cd", "msg1", "ctx_area_fk100", "ctx_area_nk100"}


def _cases() -> Iterator[Any]:
    for name in sorted(DOCUMENTED):
        endpoint = ENDPOINTS[name]
        envs = [env for env in Env if endpoint.available_in(env)]
        for env in envs:
            yield pytest.param(name, env.value, id=f"{name}-{env.value}")


def test_registry_covers_every_served_endpoint() -> None:
    served = set(_DATA_HANDLERS) | {"token", "revoke", "approval", "hashkey"}
    assert set(DOCUMENTED) == served


class _Scene:
    """An app with a holding, a filled buy and a resting buy (so row lists are not empty)."""

    def __init__(self, harness: FakeHarness, env: str) -> None:
        self.h = harness
        fake: FakeKIS = harness.fake
        self.app: FakeApp = fake.add_app(env, cash=100_000_000)
        fake.seed_holdings(self.app.app_key, {CODE: 10})
        price = fake.price_of(CODE)
        self.buy({"ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"})
        limit = round_to_tick(price * 0.95, "stock")
        resting = self.buy({"ORD_DVSN": "00", "ORD_QTY": "2", "ORD_UNPR": str(limit)})
        self.resting = resting["output"]

    def account(self) -> dict[str, str]:
        return {"CANO": self.app.cano, "ACNT_PRDT_CD": self.app.acnt_prdt_cd}

    def buy(self, fields: dict[str, str]) -> dict[str, Any]:
        body = {**self.account(), "PDNO": CODE, **fields}
        response = self.h.call(self.app, "order_cash", json=body, side="buy")
        answer: dict[str, Any] = response.json()
        assert answer["rt_cd"] == "0", answer
        return answer

    def call(self, name: str) -> httpx.Response:
        day = self.h.fake.clock.now().strftime("%Y%m%d")
        acct = self.account()
        quote = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": CODE}
        params: dict[str, dict[str, str]] = {
            "inquire_price": quote,
            "inquire_daily_price": {**quote, "FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "0"},
            "inquire_daily_itemchartprice": {
                **quote,
                "FID_INPUT_DATE_1": "20260101",
                "FID_INPUT_DATE_2": day,
                "FID_PERIOD_DIV_CODE": "D",
                "FID_ORG_ADJ_PRC": "0",
            },
            "inquire_asking_price_exp_ccn": quote,
            "inquire_time_itemchartprice": {
                **quote,
                "FID_ETC_CLS_CODE": "",
                "FID_INPUT_HOUR_1": "100000",
                "FID_PW_DATA_INCU_YN": "Y",
            },
            "inquire_time_dailychartprice": {
                **quote,
                "FID_INPUT_HOUR_1": "100000",
                "FID_INPUT_DATE_1": day,
                "FID_PW_DATA_INCU_YN": "Y",
            },
            "search_stock_info": {"PRDT_TYPE_CD": "300", "PDNO": CODE},
            "search_info": {"PRDT_TYPE_CD": "300", "PDNO": CODE},
            "volume_rank": {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "0000"},
            "ranking_fluctuation": {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "0000"},
            "ranking_market_cap": {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "0000"},
            "chk_holiday": {"BASS_DT": day, "CTX_AREA_FK": "", "CTX_AREA_NK": ""},
            "inquire_period_profit": {**acct, "INQR_STRT_DT": day, "INQR_END_DT": day},
            "intstock_multprice": {
                "FID_COND_MRKT_DIV_CODE_1": "J",
                "FID_INPUT_ISCD_1": CODE,
                "FID_COND_MRKT_DIV_CODE_2": "J",
                "FID_INPUT_ISCD_2": "000660",
            },
            "inquire_balance": {
                **acct,
                "AFHR_FLPR_YN": "N",
                "OFL_YN": "",
                "INQR_DVSN": "02",
                "UNPR_DVSN": "01",
                "FUND_STTL_ICLD_YN": "N",
                "FNCG_AMT_AUTO_RDPT_YN": "N",
                "PRCS_DVSN": "00",
                "CTX_AREA_FK100": "",
                "CTX_AREA_NK100": "",
            },
            "inquire_daily_ccld": {
                **acct,
                "INQR_STRT_DT": day,
                "INQR_END_DT": day,
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
            },
            "inquire_psbl_rvsecncl": {
                **acct,
                "INQR_DVSN_1": "0",
                "INQR_DVSN_2": "0",
                "CTX_AREA_FK100": "",
                "CTX_AREA_NK100": "",
            },
            "inquire_psbl_order": {
                **acct,
                "PDNO": CODE,
                "ORD_UNPR": "",
                "ORD_DVSN": "01",
                "CMA_EVLU_AMT_ICLD_YN": "N",
                "OVRS_ICLD_YN": "N",
            },
            "inquire_psbl_sell": {**acct, "PDNO": CODE},
        }
        if name == "order_cash":
            body = {**acct, "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"}
            return self.h.call(self.app, name, json=body, side="sell")
        if name == "order_rvsecncl":
            body = {
                **acct,
                "KRX_FWDG_ORD_ORGNO": self.resting["KRX_FWDG_ORD_ORGNO"],
                "ORGN_ODNO": self.resting["ODNO"],
                "ORD_DVSN": "00",
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0",
                "ORD_UNPR": "0",
                "QTY_ALL_ORD_YN": "Y",
                "EXCG_ID_DVSN_CD": "KRX",
            }
            return self.h.call(self.app, name, json=body)
        return self.h.call(self.app, name, params[name])

    def call_unauthenticated(self, name: str) -> httpx.Response:
        app, client = self.app, self.h.client(self.app.env)
        path = ENDPOINTS[name].path
        if name == "token":
            self.h.fake.clock.advance(61.0)  # type: ignore[attr-defined]
            return self.h.issue(app)
        if name == "revoke":
            token = self.h.token(app)
            body = {"appkey": app.app_key, "appsecret": app.app_secret, "token": token}
            return client.post(path, json=body)
        if name == "approval":
            body = {
                "grant_type": "client_credentials",
                "appkey": app.app_key,
                "secretkey": app.app_secret,
            }
            return client.post(path, json=body)
        headers = {"appkey": app.app_key, "appsecret": app.app_secret}
        return client.post(path, json={**self.account(), "PDNO": CODE}, headers=headers)


def _rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    assert isinstance(value, list), value
    return value


@pytest.mark.parametrize(("name", "env"), list(_cases()))
def test_documented_fields_served(fake_inprocess: FakeHarness, name: str, env: str) -> None:
    scene = _Scene(fake_inprocess, env)
    documented = DOCUMENTED[name]
    if not ENDPOINTS[name].authenticated:
        response = scene.call_unauthenticated(name)
        assert response.status_code == 200, response.text
        assert set(response.json()) == set(documented["body"])
        return
    response = scene.call(name)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["rt_cd"] == "0", answer
    assert set(answer) - _ENVELOPE == set(documented), sorted(answer)
    for key, names in documented.items():
        rows = _rows(answer[key])
        assert rows, f"{name}.{key} is empty: nothing to check"
        for row in rows:
            missing = set(names) - set(row)
            extra = set(row) - set(names)
            assert not missing, f"{name}.{key} lacks documented {sorted(missing)}"
            assert not extra, f"{name}.{key} serves undocumented {sorted(extra)}"
            wrong = {k: v for k, v in row.items() if not isinstance(v, str)}
            assert not wrong, f"{name}.{key} non-string values {wrong}"
