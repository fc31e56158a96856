"""Fake KIS gateway: header checks, tokens on data calls, environment routing, rate window."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from kisclient._clock import FakeClock
from kisclient._codes import CODES, PAPER_TR_MISMATCH_MESSAGE
from kisclient._config import ENDPOINTS, TOKEN_LIFETIME_S, Env
from kisclient.testing import FakeKIS

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

PRICE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
PRICE_PATH = ENDPOINTS["inquire_price"].path


def _envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["rt_cd"] == ("0" if CODES[code].kind.value == "success" else "1")
    assert body["msg_cd"] == code
    # the paper host pads msg1 with spaces (kis-api-facts §5.1): clients must strip it
    assert body["msg1"].rstrip() == CODES[code].message


def test_success_envelope_and_headers(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    response = fake_harness.call(app, "inquire_price", PRICE)
    _envelope(response, 200, "MCA00000")
    raw = dict(response.headers.raw)
    assert raw[b"Content-Type"] == b"application/json; charset=utf-8"
    assert raw[b"tr_id"] == ENDPOINTS["inquire_price"].tr_id(Env.REAL).encode()
    assert len(raw[b"gt_uid"]) == 32
    paper = fake_harness.fake.add_app("paper")
    _envelope(fake_harness.call(paper, "inquire_price", PRICE), 200, "20310000")


def test_unknown_and_revoked_token(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    bad = {"authorization": "Bearer not-a-token"}
    _envelope(fake_harness.call(app, "inquire_price", PRICE, extra=bad), 500, "EGW00121")
    assert fake_harness.call(app, "inquire_price", PRICE).status_code == 200
    fake_harness.fake.revoke_all_tokens()
    _envelope(fake_harness.call(app, "inquire_price", PRICE), 500, "EGW00121")


def test_expired_token(fake_harness: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_clock.advance(TOKEN_LIFETIME_S)
    _envelope(fake_harness.call(app, "inquire_price", PRICE), 500, "EGW00123")


def test_token_must_belong_to_the_app(fake_harness: FakeHarness) -> None:
    one, two = fake_harness.fake.add_app("real"), fake_harness.fake.add_app("real")
    stolen = {"authorization": f"Bearer {fake_harness.token(one)}"}
    _envelope(fake_harness.call(two, "inquire_price", PRICE, extra=stolen), 500, "EGW00121")


def test_header_names_are_case_insensitive(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    headers = {
        "Authorization": f"Bearer {fake_harness.token(app)}",
        "AppKey": app.app_key,
        "AppSecret": app.app_secret,
        "TR_ID": "FHKST01010100",
    }
    response = fake_harness.client().get(PRICE_PATH, params=PRICE, headers=headers)
    _envelope(response, 200, "MCA00000")


def test_missing_pieces(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    client = fake_harness.client()
    headers = fake_harness.headers(app, "")
    _envelope(client.get(PRICE_PATH, params=PRICE, headers=headers), 500, "OPSQ9999")
    no_bearer = {**headers, "tr_id": "FHKST01010100", "authorization": ""}
    _envelope(client.get(PRICE_PATH, params=PRICE, headers=no_bearer), 500, "EGW00205")
    wrong_secret = {**headers, "tr_id": "FHKST01010100", "appsecret": "x"}
    _envelope(client.get(PRICE_PATH, params=PRICE, headers=wrong_secret), 500, "EGW00105")
    # an unknown path answers with the gateway's JSON envelope, never an HTML 404 page
    unknown = client.get("/uapi/nothing-here", headers=headers)
    assert unknown.status_code == 500
    assert (unknown.json()["rt_cd"], unknown.json()["msg_cd"]) == ("1", "EGW00101")


def test_paper_key_on_real_host(fake_harness: FakeHarness) -> None:
    paper = fake_harness.fake.add_app("paper")
    fake_harness.token(paper)
    response = fake_harness.call(paper, "inquire_price", PRICE, env="real")
    _envelope(response, 500, "EGW02004")


@pytest.mark.parametrize(
    ("name", "tr_id"),
    [
        ("intstock_multprice", ENDPOINTS["intstock_multprice"].tr_id(Env.REAL)),
        ("inquire_balance", ENDPOINTS["inquire_balance"].tr_id(Env.REAL)),
        ("inquire_balance", ENDPOINTS["inquire_price"].tr_id(Env.REAL)),
    ],
)
def test_real_tr_id_on_paper_host(fake_harness: FakeHarness, name: str, tr_id: str) -> None:
    paper = fake_harness.fake.add_app("paper")
    response = fake_harness.call(paper, name, {"FID_INPUT_ISCD_1": "005930"}, tr_id=tr_id)
    assert response.status_code == 500
    answer = response.json()
    # The paper host right-pads msg1, its gateway refusals too.
    assert answer["msg1"] != answer["msg1"].rstrip()
    assert {**answer, "msg1": answer["msg1"].rstrip()} == {
        "rt_cd": "1",
        "msg_cd": "EGW00213",
        "msg1": PAPER_TR_MISMATCH_MESSAGE,
    }


def test_paper_tr_id_on_real_host(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    paper_tr = ENDPOINTS["inquire_balance"].tr_id(Env.PAPER)
    response = fake_harness.call(app, "inquire_balance", {}, tr_id=paper_tr)
    _envelope(response, 200, "OPSQ0002")


def test_paper_prefix_on_any_host_in_process(fake_kis: FakeKIS) -> None:
    paper = fake_kis.add_app("paper")
    with httpx.Client(transport=fake_kis.transport(), base_url="http://fake/paper") as client:
        token = client.post(
            ENDPOINTS["token"].path,
            json={
                "grant_type": "client_credentials",
                "appkey": paper.app_key,
                "appsecret": paper.app_secret,
            },
        ).json()["access_token"]
        response = client.get(
            PRICE_PATH,
            params=PRICE,
            headers={
                "authorization": f"Bearer {token}",
                "appkey": paper.app_key,
                "appsecret": paper.app_secret,
                "tr_id": "FHKST01010100",
            },
        )
    _envelope(response, 200, "20310000")
    assert fake_kis.stats.requests(path=PRICE_PATH) == 1


# --- rate window ---------------------------------------------------------------------------


def test_real_limit_per_second(fake_harness: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    for _ in range(18):
        assert fake_harness.call(app, "inquire_price", PRICE).status_code == 200
    _envelope(fake_harness.call(app, "inquire_price", PRICE), 500, "EGW00201")
    fake_clock.advance(0.5)
    _envelope(fake_harness.call(app, "inquire_price", PRICE), 500, "EGW00201")
    fake_clock.advance(0.5)  # one second after the first 18: they leave the window
    assert fake_harness.call(app, "inquire_price", PRICE).status_code == 200
    stats = fake_harness.fake.stats
    assert stats.max_in_any_second(app.app_key) == 18
    assert stats.rate_limited(app.app_key) == 2
    assert stats.rate_limited() == 2


def test_paper_limit_and_token_calls_excluded(
    fake_harness: FakeHarness, fake_clock: FakeClock
) -> None:
    fake_harness.pace_paper = False
    paper = fake_harness.fake.add_app("paper")
    fake_harness.token(paper)
    assert fake_harness.call(paper, "inquire_price", PRICE).status_code == 200
    fake_clock.advance(0.999)
    _envelope(fake_harness.call(paper, "inquire_price", PRICE), 500, "EGW00201")
    fake_clock.advance(60.0)
    assert fake_harness.issue(paper).status_code == 200  # token endpoint: not rate limited
    assert fake_harness.call(paper, "inquire_price", PRICE).status_code == 200
    assert fake_harness.fake.stats.max_in_any_second(paper.app_key) == 1


def test_windows_are_per_app_key(fake_inprocess: FakeHarness) -> None:
    fake_inprocess.pace_paper = False
    one, two = fake_inprocess.fake.add_app("paper"), fake_inprocess.fake.add_app("paper")
    assert fake_inprocess.call(one, "inquire_price", PRICE).status_code == 200
    assert fake_inprocess.call(two, "inquire_price", PRICE).status_code == 200


def test_configurable_and_unlimited(fake_clock: FakeClock) -> None:
    fake = FakeKIS(clock=fake_clock, rate_limits={"real": None, "paper": 3})
    harness = FakeHarness(fake, None)
    harness.pace_paper = False
    real, paper = fake.add_app("real"), fake.add_app("paper")
    for _ in range(50):
        assert harness.call(real, "inquire_price", PRICE).status_code == 200
    assert fake.stats.max_in_any_second(real.app_key) == 50
    codes = [harness.call(paper, "inquire_price", PRICE).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 500]
    harness.close()
