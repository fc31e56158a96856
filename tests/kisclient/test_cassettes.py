"""Replay recorded KIS exchanges (vcrpy cassettes) through the real client.

Each scenario runs against whatever serves it:

- normally, the committed cassette (``record_mode="none"``: nothing leaves the process);
- ``KIS_RECORD=fake``: the loopback fake server, re-writing the committed cassettes;
- ``KIS_RECORD=1`` plus ``KIS_APP_KEY``/``KIS_APP_SECRET``/``KIS_ACCOUNT`` (``nox -s record``):
  the real KIS API, replacing the cassettes with real recordings.

Secrets never reach a cassette: credentials, tokens and account numbers are filtered from
headers, query strings and bodies before anything is written. ``cassettes/README.md`` says how
the committed files were made.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import vcr
import yaml  # type: ignore[import-untyped]

from kisclient import AuthError, BusinessRejection, FakeClock, KISClient, RetryPolicy
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, FakeKISServer, Fault

CASSETTES = pathlib.Path(__file__).with_name("cassettes")
MODE = os.environ.get("KIS_RECORD", "")
FILTERED = "<filtered>"
SECRET_FIELDS = {
    "appkey",
    "appsecret",
    "secretkey",
    "token",
    "access_token",
    "approval_key",
    "CANO",
}


def _scrub_json(text: bytes | str | None) -> bytes | str | None:
    if not text:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    for key in list(data):
        if key in SECRET_FIELDS:
            data[key] = FILTERED
    scrubbed = json.dumps(data, ensure_ascii=False)
    return scrubbed.encode() if isinstance(text, bytes) else scrubbed


def _scrub_request(request: Any) -> Any:
    request.body = _scrub_json(request.body)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {})
    body["string"] = _scrub_json(body.get("string"))
    headers = response.get("headers", {})
    for name in [h for h in headers if h.lower() in ("content-length", "date", "server")]:
        del headers[name]  # the scrubbed body has another length; the rest is noise
    return response


def _recorder() -> Any:
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if MODE else "none",
        match_on=["method", "path", "query"],
        filter_headers=["authorization", "appkey", "appsecret"],
        filter_query_parameters=["CANO"],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )


class Backend:
    """Where a scenario's requests go, and the client that sends them."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.tmp_path = tmp_path
        self.fake: FakeKIS | None = None
        self.server: FakeKISServer | None = None

    def client(self, *, bad_secret: bool = False, **kwargs: Any) -> KISClient:
        kwargs.setdefault("retry", RetryPolicy(jitter=False))
        if MODE == "1":  # the real API
            overrides = {"app_secret": "x" * 180} if bad_secret else {}
            return KISClient.from_env(state_dir=self.tmp_path, **overrides, **kwargs)
        if MODE == "fake":
            assert self.fake is not None and self.server is not None
            app = self.fake.apps[0]
            secret = "x" * 180 if bad_secret else app.app_secret
            kwargs.setdefault("account", app.account)
            return KISClient(
                app.app_key,
                secret,
                env="real",
                base_url=self.server.base_url("real"),
                state_dir=self.tmp_path,
                **kwargs,
            )
        # replay: any credentials do, the cassette answers (the real host is never contacted)
        kwargs.setdefault("account", "12345678-01")
        return KISClient(
            "P" * 36, "S" * 180, env="real", state_dir=self.tmp_path, clock=FakeClock(), **kwargs
        )

    def inject(self, fault: Fault) -> None:
        if self.fake is not None:
            self.fake.faults.add(fault)


@pytest.fixture
def backend(tmp_path: pathlib.Path) -> Iterator[Backend]:
    result = Backend(tmp_path)
    if MODE == "fake":
        result.fake = FakeKIS(seed=5)
        result.fake.add_app(env="real")
        with FakeKISServer(result.fake) as server:
            result.server = server
            yield result
    else:
        if MODE == "1" and not os.environ.get("KIS_APP_KEY"):
            pytest.fail("KIS_RECORD=1 needs KIS_APP_KEY, KIS_APP_SECRET and KIS_ACCOUNT")
        yield result


def _play(name: str, scenario: Callable[[], None]) -> None:
    with _recorder().use_cassette(f"{name}.yaml") as cassette:
        scenario()
    if not MODE:
        assert cassette.all_played, f"{name}: not every recorded exchange was used"


def test_token_and_current_price(backend: Backend) -> None:
    def scenario() -> None:
        with backend.client() as kis:
            quote = kis.get_price("005930")
        assert quote.code == "005930"
        assert quote.price > 0

    _play("token_and_price", scenario)


def test_rate_limit_envelope_is_retried(backend: Backend) -> None:
    backend.inject(Fault("rate_burst", path=ENDPOINTS["inquire_price"].path))

    def scenario() -> None:
        with backend.client(rate_limits=[]) as kis:
            quote = kis.get_price("000660")
        assert quote.price > 0

    _play("rate_limited_then_ok", scenario)
    if not MODE:
        text = (CASSETTES / "rate_limited_then_ok.yaml").read_text(encoding="utf-8")
        assert "EGW00201" in text  # the documented HTTP 500 envelope is in the cassette


def test_token_endpoint_error_shape(backend: Backend) -> None:
    def scenario() -> None:
        with backend.client(bad_secret=True) as kis, pytest.raises(AuthError) as info:
            kis.get_price("005930")
        assert info.value.msg_cd == "EGW00105"
        assert info.value.http_status == 403

    _play("token_error_shape", scenario)


def test_business_rejection_envelope(backend: Backend) -> None:
    def scenario() -> None:
        with backend.client(account="99999999-01") as kis, pytest.raises(BusinessRejection) as info:
            kis.get_balance()
        assert info.value.msg_cd == "APAC0081"

    _play("business_rejection", scenario)


def test_committed_cassettes_hold_no_secrets() -> None:
    paths = sorted(CASSETTES.glob("*.yaml"))
    assert len(paths) == 4
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "Bearer ey" not in text, path
        for interaction in yaml.safe_load(text)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            for header in ("authorization", "appkey", "appsecret"):
                assert header not in {h.lower() for h in request["headers"]}, (path, header)
            assert "CANO=" not in request["uri"], path
            for body in (request.get("body"), response["body"].get("string")):
                data = json.loads(body) if body and body.lstrip().startswith("{") else {}
                for key in SECRET_FIELDS & set(data):
                    assert data[key] == FILTERED, (path, key)
