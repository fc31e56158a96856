"""Fake KIS: token issuance, reuse, throttle, revocation, approval key and hashkey."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from kisclient._clock import FakeClock
from kisclient._codes import CODES
from kisclient._config import ENDPOINTS, KST, TOKEN_LIFETIME_S
from kisclient.testing import FakeKIS
from kisclient.testing._auth import REVOKE_OK_MESSAGE

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

TOKEN = ENDPOINTS["token"].path


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_token_response_shape(fake_harness: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_harness.fake.add_app("real")
    response = fake_harness.issue(app)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "access_token_token_expired", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TOKEN_LIFETIME_S
    assert len(body["access_token"]) <= 350
    expiry = fake_clock.now() + dt.timedelta(seconds=TOKEN_LIFETIME_S)
    assert body["access_token_token_expired"] == expiry.astimezone(KST).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    claims = _payload(body["access_token"])
    assert claims["iss"] == "unogw"
    assert claims["jti"] == app.app_key  # as KIS: the issuing app key (facts §2)
    assert app.app_key not in body["access_token"]  # base64 inside the JWT, never in clear


def test_second_issue_within_interval_is_throttled(
    fake_harness: FakeHarness, fake_clock: FakeClock
) -> None:
    app = fake_harness.fake.add_app("real")
    first = fake_harness.issue(app)
    fake_clock.advance(59.0)
    second = fake_harness.issue(app)
    assert second.status_code == 403
    assert second.json() == {
        "error_code": "EGW00133",
        "error_description": CODES["EGW00133"].message,
    }
    fake_clock.advance(1.0)  # 60 s after the last successful call: allowed, same token
    third = fake_harness.issue(app)
    assert third.status_code == 200
    assert third.json()["access_token"] == first.json()["access_token"]
    assert third.json()["expires_in"] == TOKEN_LIFETIME_S - 60
    stats = fake_harness.fake.stats
    assert stats.token_issuances(app.app_key) == 1
    assert stats.token_calls(app.app_key) == 3


def test_new_token_after_six_hours(fake_inprocess: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_inprocess.fake.add_app("real")
    first = fake_inprocess.issue(app).json()["access_token"]
    fake_clock.advance(6 * 3600 - 1)
    assert fake_inprocess.issue(app).json()["access_token"] == first
    fake_clock.advance(3600)
    assert fake_inprocess.issue(app).json()["access_token"] != first
    assert fake_inprocess.fake.stats.token_issuances(app.app_key) == 2


def test_revoked_token_is_not_reused(fake_inprocess: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_inprocess.fake.add_app("real")
    first = fake_inprocess.issue(app).json()["access_token"]
    fake_inprocess.fake.revoke_all_tokens()
    fake_clock.advance(60)
    assert fake_inprocess.issue(app).json()["access_token"] != first


def test_custom_token_interval(fake_clock: FakeClock) -> None:
    fake = FakeKIS(clock=fake_clock, token_interval_s=1.0)
    harness = FakeHarness(fake, None)
    app = fake.add_app("real")
    assert harness.issue(app).status_code == 200
    fake_clock.advance(1.0)
    assert harness.issue(app).status_code == 200
    harness.close()


def test_bad_key_and_bad_secret(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    client = fake_harness.client("real")
    bad_key = client.post(
        TOKEN,
        json={"grant_type": "client_credentials", "appkey": "x" * 36, "appsecret": app.app_secret},
    )
    assert bad_key.status_code == 403
    assert bad_key.json()["error_code"] == "EGW00103"
    bad_secret = client.post(
        TOKEN, json={"grant_type": "client_credentials", "appkey": app.app_key, "appsecret": "nope"}
    )
    assert bad_secret.status_code == 403
    assert bad_secret.json() == {
        "error_code": "EGW00105",
        "error_description": CODES["EGW00105"].message,
    }
    assert fake_harness.fake.stats.token_issuances(app.app_key) == 0


def test_keys_are_per_environment(fake_harness: FakeHarness) -> None:
    real, paper = fake_harness.fake.add_app("real"), fake_harness.fake.add_app("paper")
    on_real = fake_harness.issue(paper, env="real")
    assert on_real.status_code == 500
    assert on_real.json()["rt_cd"] == "1"
    assert on_real.json()["msg_cd"] == "EGW02004"
    on_paper = fake_harness.issue(real, env="paper")
    assert on_paper.status_code == 403
    assert on_paper.json()["error_code"] == "EGW00103"
    assert fake_harness.issue(paper).status_code == 200


def test_revoke(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    token = fake_harness.token(app)
    client = fake_harness.client()
    body = {"appkey": app.app_key, "appsecret": app.app_secret, "token": token}
    ok = client.post(ENDPOINTS["revoke"].path, json=body)
    assert ok.json() == {"code": 200, "message": REVOKE_OK_MESSAGE}
    again = client.post(ENDPOINTS["revoke"].path, json=body)
    assert again.status_code == 403
    assert again.json()["error_code"] == "EGW00121"
    price = fake_harness.call(
        app, "inquire_price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    )
    assert price.json()["msg_cd"] == "EGW00121"


def test_approval_key(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    client = fake_harness.client()
    ok = client.post(
        ENDPOINTS["approval"].path,
        json={
            "grant_type": "client_credentials",
            "appkey": app.app_key,
            "secretkey": app.app_secret,
        },
    )
    assert ok.status_code == 200
    assert 0 < len(ok.json()["approval_key"]) <= 286
    wrong_field = client.post(
        ENDPOINTS["approval"].path,
        json={
            "grant_type": "client_credentials",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
        },
    )
    assert wrong_field.status_code == 403


def test_hashkey(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    raw = json.dumps({"CANO": app.cano, "ORD_QTY": "1"}).encode()
    response = fake_harness.client().post(
        ENDPOINTS["hashkey"].path,
        content=raw,
        headers={
            "AppKey": app.app_key,
            "AppSecret": app.app_secret,
            "content-type": "application/json",
        },
    )
    assert response.status_code == 200
    # the hash of the body's canonical JSON (sorted keys, no spaces): the order's hashkey
    # header is checked against it, whatever spacing the client used
    canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert response.json() == {
        "BODY": json.loads(raw),
        "HASH": hashlib.sha256(canonical).hexdigest(),
    }


def test_app_credentials_are_deterministic_and_hidden() -> None:
    one, two = FakeKIS(seed=3), FakeKIS(seed=3)
    a, b = one.add_app("real"), two.add_app("real")
    assert (a.app_key, a.app_secret, a.account) == (b.app_key, b.app_secret, b.account)
    assert len(a.app_key) == 36
    assert len(a.app_secret) == 180
    assert a.account[:8].isdigit()
    assert a.account[8:] == "-01"
    assert a.app_key not in repr(a)
    assert a.app_secret not in repr(a)
    assert one.add_app("paper").app_key != a.app_key
    assert [app.env for app in one.apps] == ["real", "paper"]
    assert FakeKIS(seed=4).add_app("real").app_key != a.app_key
