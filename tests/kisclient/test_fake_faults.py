"""Fake KIS fault injection, async transport, loopback server, CLI and thread safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from kisclient._clock import FakeClock
from kisclient._config import ENDPOINTS, Env
from kisclient._core import parse_http_date
from kisclient.testing import FakeKIS, FakeKISServer, Fault, FaultKind, OffsetClock
from kisclient.testing.__main__ import main
from kisclient.testing._fake import http_date

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FAKE_SESSION,
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_harness,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

PRICE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
PRICE_PATH = ENDPOINTS["inquire_price"].path
ORDER_TR = ENDPOINTS["order_cash"].tr_id(Env.REAL, "buy")


def _order_body(h: FakeHarness) -> dict[str, str]:
    app = h.fake.apps[0]
    return {
        "CANO": app.cano,
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "01",
        "ORD_QTY": "1",
        "ORD_UNPR": "0",
    }


def test_bare_and_envelope_5xx(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_harness.fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, status=502))
    fake_harness.fake.faults.add(Fault("http_5xx_envelope", code="EGW00202", times=2))
    bare = fake_harness.call(app, "inquire_price", PRICE)
    assert bare.status_code == 502
    with pytest.raises(json.JSONDecodeError):
        bare.json()
    for _ in range(2):
        env = fake_harness.call(app, "inquire_price", PRICE)
        assert (env.status_code, env.json()["msg_cd"]) == (500, "EGW00202")
    assert fake_harness.call(app, "inquire_price", PRICE).status_code == 200
    assert fake_harness.fake.faults.pending() == []


def test_fault_matching_by_tr_id_and_token_path(fake_inprocess: FakeHarness) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    fake.faults.add(Fault("http_5xx_bare", tr_id=ORDER_TR))
    fake.faults.add(Fault("http_5xx_bare", path=ENDPOINTS["token"].path))
    assert fake_inprocess.issue(app).status_code == 500
    fake.faults.clear()
    fake.faults.add(Fault("http_5xx_bare", tr_id=ORDER_TR))
    assert fake_inprocess.call(app, "inquire_price", PRICE).status_code == 200
    assert (
        fake_inprocess.call(
            app, "order_cash", json=_order_body(fake_inprocess), tr_id=ORDER_TR
        ).status_code
        == 500
    )
    assert fake.orders(app.app_key) == []


def test_latency_uses_the_clock(fake_inprocess: FakeHarness, fake_clock: FakeClock) -> None:
    app = fake_inprocess.fake.add_app("real")
    fake_inprocess.token(app)
    before = fake_clock.time()
    fake_inprocess.fake.faults.add(Fault("latency", delay_s=3.5))
    assert fake_inprocess.call(app, "inquire_price", PRICE).status_code == 200
    assert fake_clock.time() - before == pytest.approx(3.5)


def test_connect_error_in_process(fake_inprocess: FakeHarness) -> None:
    app = fake_inprocess.fake.add_app("real")
    fake_inprocess.token(app)
    fake_inprocess.fake.faults.add(Fault("connect_error"))
    with pytest.raises(httpx.ConnectError):
        fake_inprocess.call(app, "order_cash", json=_order_body(fake_inprocess), tr_id=ORDER_TR)
    assert fake_inprocess.fake.orders(app.app_key) == []
    assert fake_inprocess.fake.stats.requests(tr_id=ORDER_TR) == 0


def test_drop_before_processes_nothing(fake_harness: FakeHarness) -> None:
    kind: FaultKind = "connect_error" if fake_harness.mode == "loopback" else "drop_before"
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    for fault in (Fault(kind, tr_id=ORDER_TR), Fault("drop_before", tr_id=ORDER_TR)):
        fake_harness.fake.faults.add(fault)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            fake_harness.call(app, "order_cash", json=_order_body(fake_harness), tr_id=ORDER_TR)
    assert fake_harness.fake.orders(app.app_key) == []


def test_drop_after_executes_the_order(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_harness.fake.faults.add(Fault("drop_after", tr_id=ORDER_TR))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        fake_harness.call(app, "order_cash", json=_order_body(fake_harness), tr_id=ORDER_TR)
    assert len(fake_harness.fake.orders(app.app_key)) == 1
    assert fake_harness.call(app, "inquire_price", PRICE).status_code == 200


def test_read_timeout_executes_the_order(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_harness.fake.faults.add(Fault("read_timeout", tr_id=ORDER_TR, delay_s=2.0))
    client = fake_harness.client()
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            ENDPOINTS["order_cash"].path,
            json=_order_body(fake_harness),
            headers=fake_harness.headers(app, ORDER_TR),
            timeout=0.1,
        )
    assert len(fake_harness.fake.orders(app.app_key)) == 1


@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_spoiled_bodies(fake_harness: FakeHarness, kind: str) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_harness.fake.faults.add(Fault(kind, tr_id=ORDER_TR))  # type: ignore[arg-type]
    response = fake_harness.call(app, "order_cash", json=_order_body(fake_harness), tr_id=ORDER_TR)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(fake_harness.fake.orders(app.app_key)) == 1


def test_rate_burst(fake_harness: FakeHarness) -> None:
    app = fake_harness.fake.add_app("real")
    fake_harness.token(app)
    fake_harness.fake.faults.add(Fault("rate_burst", times=3))
    codes = [fake_harness.call(app, "inquire_price", PRICE).json()["msg_cd"] for _ in range(4)]
    assert codes == ["EGW00201"] * 3 + ["MCA00000"]
    assert fake_harness.fake.stats.rate_limited(app.app_key) == 3


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="code table"):
        Fault("http_5xx_envelope", code="NOPE0000")
    with pytest.raises(ValueError, match="times"):
        Fault("latency", times=0)


async def test_async_transport(fake_kis: FakeKIS, fake_clock: FakeClock) -> None:
    app = fake_kis.add_app("real")
    base = "https://openapi.koreainvestment.com:9443"
    async with httpx.AsyncClient(transport=fake_kis.async_transport(), base_url=base) as client:
        token = (
            await client.post(
                ENDPOINTS["token"].path,
                json={
                    "grant_type": "client_credentials",
                    "appkey": app.app_key,
                    "appsecret": app.app_secret,
                },
            )
        ).json()["access_token"]
        headers = {
            "authorization": f"Bearer {token}",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": ENDPOINTS["inquire_price"].tr_id(Env.REAL),
        }
        fake_kis.faults.add(Fault("latency", delay_s=2.0))
        before = fake_clock.time()
        response = await client.get(PRICE_PATH, params=PRICE, headers=headers)
        assert fake_clock.time() - before == pytest.approx(2.0)
        assert int(response.json()["output"]["stck_prpr"]) == fake_kis.price_of("005930")
        fake_kis.faults.add(Fault("drop_after"))
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(PRICE_PATH, params=PRICE, headers=headers)


def test_server_urls_and_loopback_only(fake_kis: FakeKIS) -> None:
    with FakeKISServer(fake_kis, port=0) as server:
        assert server.base_url("real") == f"http://127.0.0.1:{server.port}"
        assert server.base_url("paper") == f"http://127.0.0.1:{server.paper_port}"
        assert server.paper_port != server.port
        assert server.alias_url() == f"http://127.0.0.1:{server.port}/paper"
    with pytest.raises(ValueError, match="loopback"):
        FakeKISServer(fake_kis, host="0.0.0.0")
    assert main(["serve", "--host", "192.168.0.1"]) == 2


def test_threads_share_state_safely(fake_clock: FakeClock) -> None:
    fake = FakeKIS(clock=fake_clock, rate_limits={"real": None})
    app = fake.add_app("real")
    with FakeKISServer(fake) as server:
        harness = FakeHarness(fake, server)
        headers = harness.headers(app, ENDPOINTS["inquire_price"].tr_id(Env.REAL))
        errors: list[int] = []

        def work() -> None:
            with httpx.Client(base_url=server.base_url()) as client:
                for _ in range(25):
                    status = client.get(PRICE_PATH, params=PRICE, headers=headers).status_code
                    if status != 200:
                        errors.append(status)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        harness.close()
    assert errors == []
    assert fake.stats.requests(path=PRICE_PATH) == 200
    assert fake.stats.max_in_any_second(app.app_key) == 200


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kisclient.testing",
            "serve",
            "--port",
            "0",
            "--seed",
            "3",
            "--real-limit",
            "0",
            "--universe",
            "40",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        real_url = proc.stdout.readline().strip()
        paper_url = proc.stdout.readline().strip()
        assert real_url.startswith("http://127.0.0.1:")
        assert paper_url.startswith("http://127.0.0.1:") and paper_url != real_url
        values = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(9))
        assert len(values["KIS_APP_KEY"]) == 36
        assert len(values["KIS_PAPER_APP_SECRET"]) == 180
        expected = FakeKIS(seed=3)
        assert values["KIS_APP_KEY"] == expected.add_app("real").app_key
        response = httpx.post(
            real_url + ENDPOINTS["token"].path,
            json={
                "grant_type": "client_credentials",
                "appkey": values["KIS_APP_KEY"],
                "appsecret": values["KIS_APP_SECRET"],
            },
            timeout=5.0,
        )
        assert response.status_code == 200
        token = response.json()["access_token"]
        headers = {
            "authorization": f"Bearer {token}",
            "appkey": values["KIS_APP_KEY"],
            "appsecret": values["KIS_APP_SECRET"],
            "tr_id": ENDPOINTS["inquire_price"].tr_id(Env.REAL),
        }
        with httpx.Client(base_url=real_url, headers=headers, timeout=5.0) as http:
            answers = [
                http.get(
                    PRICE_PATH, params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
                )
                for _ in range(25)
            ]
        assert all(a.status_code == 200 for a in answers)  # --real-limit 0: no window
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        stats_line = proc.stdout.read().strip().splitlines()[-1]
        proc.stdout.close()
    assert stats_line.startswith("STATS ")
    stats = json.loads(stats_line.removeprefix("STATS "))
    assert stats["requests"] == 26
    assert stats["apps"]["real"] == {
        "token_issuances": 1,
        "rate_limited": 0,
        "max_in_any_second": 25,
    }


def test_latency_longer_than_the_timeout_lands_later(
    fake_inprocess: FakeHarness, fake_clock: FakeClock
) -> None:
    """The contract: the client sees a timeout, the order lands ``delay_s`` later (fake clock)."""
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    fake_inprocess.token(app)
    fake.faults.add(Fault("latency", path=ENDPOINTS["order_cash"].path, delay_s=30.0))
    arrival = fake_clock.time()
    with pytest.raises(httpx.ReadTimeout):  # the harness client's read timeout is 5 s
        fake_inprocess.call(app, "order_cash", json=_order_body(fake_inprocess), tr_id=ORDER_TR)
    assert fake_clock.time() - arrival == pytest.approx(5.0)
    assert fake.orders(app.app_key) == [] and fake.in_flight() == 1
    fake_clock.advance(24.0)
    assert fake.orders(app.app_key) == []
    fake_clock.advance(1.0)
    (order,) = fake.orders(app.app_key)
    assert order.time.timestamp() == pytest.approx(arrival + 30.0)
    assert fake.in_flight() == 0


def test_a_late_request_is_processed_before_the_next_one(
    fake_inprocess: FakeHarness, fake_clock: FakeClock
) -> None:
    fake = fake_inprocess.fake
    app = fake.add_app("real")
    fake_inprocess.token(app)
    fake.faults.add(Fault("latency", path=ENDPOINTS["order_cash"].path, delay_s=8.0))
    with pytest.raises(httpx.ReadTimeout):
        fake_inprocess.call(app, "order_cash", json=_order_body(fake_inprocess), tr_id=ORDER_TR)
    fake_clock.advance(3.0)
    seen = fake.stats.requests(tr_id=ORDER_TR)
    assert fake_inprocess.call(app, "inquire_price", PRICE).status_code == 200
    assert (seen, fake.stats.requests(tr_id=ORDER_TR)) == (1, 1)
    assert len(fake.orders(app.app_key)) == 1


def test_every_answer_carries_a_date_header_on_the_fake_clock(
    fake_harness: FakeHarness, fake_clock: FakeClock
) -> None:
    app = fake_harness.fake.add_app("real")
    token = fake_harness.issue(app)
    headers = fake_harness.headers(app, "FHKST01010100", token.json()["access_token"])
    answer = fake_harness.client("real").get(PRICE_PATH, params=PRICE, headers=headers)
    missing = fake_harness.client("real").get("/nowhere")
    for response in (token, answer, missing):
        assert response.headers.get_list("date") == [http_date(fake_clock.time())]
    assert parse_http_date(answer.headers["date"]) == pytest.approx(fake_clock.time(), abs=1.0)


async def test_async_latency_longer_than_the_timeout(
    fake_kis: FakeKIS, fake_clock: FakeClock
) -> None:
    app = fake_kis.add_app("real")
    base = "https://openapi.koreainvestment.com:9443"
    fake_kis.faults.add(Fault("latency", path=PRICE_PATH, delay_s=12.0))
    async with httpx.AsyncClient(
        transport=fake_kis.async_transport(), base_url=base, timeout=2.0
    ) as client:
        before = fake_clock.time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(PRICE_PATH, params=PRICE, headers={"appkey": app.app_key})
        assert fake_clock.time() - before == pytest.approx(2.0)
    assert fake_kis.in_flight() == 1
    fake_clock.advance(10.0)
    assert fake_kis.in_flight() == 0
    assert fake_kis.stats.requests(path=PRICE_PATH) == 1


def test_offset_clock_shifts_wall_time_only() -> None:
    base = FakeClock(FAKE_SESSION)
    ahead = OffsetClock(base, 61.0)
    assert ahead.time() == base.time() + 61.0
    assert ahead.now() == base.now() + dt.timedelta(seconds=61)
    assert ahead.monotonic() == base.monotonic()
    ahead.sleep(5.0)
    assert base.time() == FAKE_SESSION.timestamp() + 5.0
    assert "+61" in repr(ahead)


def test_a_late_request_is_rate_counted_when_it_arrives(fake_clock: FakeClock) -> None:
    fake = FakeKIS(clock=fake_clock, seed=7, rate_limits={"real": 1})
    harness = FakeHarness(fake, None)
    app = fake.add_app("real")
    harness.token(app)
    order_path = ENDPOINTS["order_cash"].path
    assert harness.call(app, "inquire_price", PRICE).json()["rt_cd"] == "0"
    fake.faults.add(Fault("latency", path=order_path, delay_s=30.0, times=2))
    with pytest.raises(httpx.ReadTimeout):  # same second as the quote: refused on arrival
        harness.call(app, "order_cash", json=_order_body(harness), tr_id=ORDER_TR)
    assert fake.in_flight() == 0 and fake.stats.rate_limited(app.app_key) == 1
    with pytest.raises(httpx.ReadTimeout):  # 5 s later: admitted, on its way
        harness.call(app, "order_cash", json=_order_body(harness), tr_id=ORDER_TR)
    fake_clock.advance(30.0)
    # Landing now is not a second admission: the quote arriving in the same second passes.
    assert harness.call(app, "inquire_price", PRICE).json()["rt_cd"] == "0"
    assert len(fake.orders(app.app_key)) == 1
    assert fake.stats.rate_limited(app.app_key) == 1
    harness.close()


@pytest.mark.parametrize(
    ("error", "reported"), [(BrokenPipeError(), False), (ConnectionResetError(), False)]
)
def test_a_client_gone_mid_answer_is_not_a_traceback(
    fake_kis: FakeKIS, capsys: pytest.CaptureFixture[str], error: Exception, reported: bool
) -> None:
    """The server thread's error hook stays silent when the client went away (a timeout or a
    killed process) and still reports every other failure."""
    with FakeKISServer(fake_kis) as server, socket.socket() as connection:
        for failure, expected in ((error, reported), (ValueError("a real bug"), True)):
            try:
                raise failure
            except Exception:
                server._httpd.handle_error(connection, ("127.0.0.1", 1))
            err = capsys.readouterr().err
            assert ("Traceback" in err) is expected, err
