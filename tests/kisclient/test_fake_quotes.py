"""Fake KIS quotations and universe: fields, determinism, charts agreeing with quotes."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

from kisclient._clock import FakeClock
from kisclient._config import DAILY_CHART_MAX_ROWS, KST, MULTIPRICE_MAX_CODES
from kisclient.testing import FakeKIS
from kisclient.testing._universe import tick_size

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

REAL_EXAMPLES = [
    "005930",
    "000660",
    "005935",
    "005385",
    "005387",
    "005389",
    "00680K",
    "02826K",
    "03473K",
    "37550K",
    "37550L",
    "0037T0",
    "0009K0",
    "0126Z0",
    "069500",
    "0167A0",
    "530036",
    "900110",
]
STRICT = re.compile(r"[0-9]{4}[0-9A-HJ-NP-TV-Z]{2}|[5-8][0-9A-HJ-NP-TV-Z][0-9][0-9A-HJ-NP-TV-Z]{3}")
PRICE_FIELDS = [
    "stck_prpr",
    "prdy_vrss",
    "prdy_vrss_sign",
    "prdy_ctrt",
    "acml_vol",
    "acml_tr_pbmn",
    "stck_oprc",
    "stck_hgpr",
    "stck_lwpr",
    "stck_mxpr",
    "stck_llam",
    "stck_sdpr",
    "per",
    "pbr",
    "eps",
    "bps",
    "hts_avls",
    "lstn_stcn",
    "aspr_unit",
    "w52_hgpr",
    "w52_lwpr",
    "stck_shrn_iscd",
    "rprs_mrkt_kor_name",
    "bstp_kor_isnm",
    "iscd_stat_cls_code",
    "temp_stop_yn",
    "mrkt_warn_cls_code",
    "invt_caful_yn",
    "sltr_yn",
    "mang_issu_cls_code",
]


def test_universe(fake_kis: FakeKIS) -> None:
    codes = fake_kis.universe
    assert len(codes) == 300
    assert len(set(codes)) == 300
    assert codes[: len(REAL_EXAMPLES)] == REAL_EXAMPLES
    assert all(STRICT.fullmatch(code) for code in codes)
    assert any(re.fullmatch(r"[0-9]{4}[A-Z]0", c) for c in codes[len(REAL_EXAMPLES) :])
    assert any(c[-1] in "KL" for c in codes[len(REAL_EXAMPLES) :])
    assert FakeKIS(seed=7).universe == codes
    assert FakeKIS(seed=8).universe != codes
    assert len(FakeKIS(universe_size=40).universe) == 40
    assert fake_kis.listing("Q530036").kind == "etn"
    for code in codes:
        price = fake_kis.price_of(code)
        assert price % tick_size(price, fake_kis.listing(code).kind) == 0


def test_inquire_price(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real")
    body = fake_harness.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    ).json()
    out = body["output"]
    assert set(PRICE_FIELDS) <= set(out)
    assert all(isinstance(value, str) for value in out.values())
    assert int(out["stck_prpr"]) == fake.price_of("005930")
    assert int(out["stck_prpr"]) - int(out["stck_sdpr"]) == int(out["prdy_vrss"])
    assert int(out["stck_lwpr"]) <= int(out["stck_prpr"]) <= int(out["stck_hgpr"])
    assert out["temp_stop_yn"] == "N"
    assert out["stck_shrn_iscd"] == "005930"


def test_etn_with_q_prefix_and_unknown_code(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real")
    etn = fake_harness.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "Q530036"}
    ).json()
    assert int(etn["output"]["stck_prpr"]) == fake.price_of("530036")
    # a well-formed but unlisted code: a success with every field zeroed (what python-kis
    # 2.1.6 detects as "no such stock"); a malformed code is refused (OPSQ2002)
    unknown = fake_harness.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "999999"}
    )
    assert unknown.status_code == 200
    assert (unknown.json()["rt_cd"], unknown.json()["output"]["stck_prpr"]) == ("0", "0")
    malformed = fake_harness.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "99"}
    )
    assert (malformed.json()["rt_cd"], malformed.json()["msg_cd"]) == ("1", "OPSQ2002")


def test_status_flags(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    halted = [c for c in fake.universe if fake.listing(c).halted]
    warned = [c for c in fake.universe if fake.listing(c).warning != "00"]
    assert halted
    assert warned
    out = fake_inprocess.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": halted[0]}
    ).json()
    assert out["output"]["temp_stop_yn"] == "Y"
    out = fake_inprocess.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": warned[0]}
    ).json()
    assert out["output"]["mrkt_warn_cls_code"] in ("01", "02", "03")


def test_daily_price(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    rows = fake_inprocess.call(
        app,
        "inquire_daily_price",
        {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "000660", "FID_PERIOD_DIV_CODE": "D"},
    ).json()
    dates = [row["stck_bsop_date"] for row in rows["output"]]
    assert len(dates) == 30
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == "20261126"
    assert all(dt.datetime.strptime(d, "%Y%m%d").weekday() < 5 for d in dates)
    assert int(rows["output"][0]["stck_clpr"]) == fake.price_of("000660")


def _chart(harness: FakeHarness, start: str, end: str) -> dict[str, object]:
    app = harness.fake.apps[0] if harness.fake.apps else harness.fake.add_app("real")
    response = harness.call(
        app,
        "inquire_daily_itemchartprice",
        {
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": "005930",
            "FID_INPUT_DATE_1": start,
            "FID_INPUT_DATE_2": end,
            "FID_PERIOD_DIV_CODE": "D",
            "FID_ORG_ADJ_PRC": "0",
        },
    )
    body: dict[str, object] = response.json()
    return body


def test_daily_chart(fake_harness: FakeHarness) -> None:
    body = _chart(fake_harness, "20250101", "20261231")
    bars = body["output2"]
    assert isinstance(bars, list)
    assert len(bars) == DAILY_CHART_MAX_ROWS
    dates = [bar["stck_bsop_date"] for bar in bars]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == "20261126"
    assert int(bars[0]["stck_clpr"]) == fake_harness.fake.price_of("005930")
    for bar in bars:
        assert int(bar["stck_lwpr"]) <= int(bar["stck_clpr"]) <= int(bar["stck_hgpr"])
        assert {"acml_vol", "acml_tr_pbmn", "flng_cls_code", "prtt_rate", "mod_yn"} <= set(bar)
    summary = body["output1"]
    assert isinstance(summary, dict)
    assert summary["stck_prpr"] == bars[0]["stck_clpr"]
    window = _chart(fake_harness, "20261102", "20261106")["output2"]
    assert isinstance(window, list)
    assert [b["stck_bsop_date"] for b in window] == [f"202611{d:02d}" for d in (6, 5, 4, 3, 2)]
    assert _chart(fake_harness, "20261102", "20261106") == _chart(
        fake_harness, "20261102", "20261106"
    )


def test_chart_before_open_has_no_bar_for_today(fake_kis: FakeKIS, fake_clock: FakeClock) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 26, 8, 59, tzinfo=KST))
    harness = FakeHarness(FakeKIS(clock=clock, seed=7), None)
    bars = _chart(harness, "20261101", "20261130")["output2"]
    assert isinstance(bars, list)
    assert bars[0]["stck_bsop_date"] == "20261125"
    assert int(bars[0]["stck_clpr"]) == harness.fake.price_of("005930")
    harness.close()


def test_multprice(fake_harness: FakeHarness) -> None:
    fake = fake_harness.fake
    app = fake.add_app("real")
    codes = fake.universe[:MULTIPRICE_MAX_CODES]
    params = {}
    for i, code in enumerate(codes, 1):
        params[f"FID_COND_MRKT_DIV_CODE_{i}"] = "J"
        params[f"FID_INPUT_ISCD_{i}"] = code
    rows = fake_harness.call(app, "intstock_multprice", params).json()["output"]
    assert [row["inter_shrn_iscd"] for row in rows] == codes
    assert [int(row["inter2_prpr"]) for row in rows] == [fake.price_of(c) for c in codes]
    assert {
        "inter_kor_isnm",
        "inter2_prdy_clpr",
        "kospi_kosdaq_cls_name",
        "mrkt_trtm_cls_name",
        "inter2_mxpr",
        "inter2_llam",
    } <= set(rows[0])
    params["FID_INPUT_ISCD_31"] = fake.universe[31]
    too_many = fake_harness.call(app, "intstock_multprice", params).json()
    assert (too_many["rt_cd"], too_many["msg_cd"]) == ("1", "OPSQ2001")


@pytest.mark.parametrize("seed", [0, 1])
def test_prices_are_deterministic(seed: int, fake_clock: FakeClock) -> None:
    one, two = FakeKIS(clock=fake_clock, seed=seed), FakeKIS(clock=fake_clock, seed=seed)
    assert [one.price_of(c) for c in one.universe] == [two.price_of(c) for c in two.universe]
    before = one.price_of("005930")
    fake_clock.advance(86400)
    assert one.price_of("005930") != before or one.price_of("000660") != two.price_of("000660")


def test_set_price(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    fake.set_price("005930", 80000)
    out = fake_inprocess.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    ).json()
    assert out["output"]["stck_prpr"] == "80000"
