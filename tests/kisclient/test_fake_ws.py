"""Fake KIS WebSocket (FakeWSServer), driven by a bare ``websockets`` sync client.

Approval keys come from the REST fake's ``/oauth2/Approval``; orders (for execution notices) go
through the REST fake too. Waits poll with a deadline instead of sleeping blindly.
"""

from __future__ import annotations

import json
import string
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from kisclient._clock import FakeClock
from kisclient._config import ENDPOINTS, Env
from kisclient.testing import FakeApp, FakeKIS, FakeWSServer, decrypt_notice
from kisclient.testing._core import BRANCH
from kisclient.testing._ws_records import NOTICE_FIELDS, TRADE_FIELDS

sys.path.append(str(Path(__file__).parent))
from test_fake_support import (
    FakeHarness,
    _fake_clock,  # noqa: F401 (fixture)
    _fake_inprocess,  # noqa: F401 (fixture)
    _fake_kis,  # noqa: F401 (fixture)
)

CODE = "005930"


# --- helpers -----------------------------------------------------------------------------------
def approval(h: FakeHarness, app: FakeApp) -> str:
    """A fresh approval key for *app* from the REST fake."""
    body = {"grant_type": "client_credentials", "appkey": app.app_key, "secretkey": app.app_secret}
    response = h.client(app.env).post(ENDPOINTS["approval"].path, json=body)
    assert response.status_code == 200, response.text
    key: str = response.json()["approval_key"]
    return key


def request(key: str, tr_id: str, tr_key: str, tr_type: str = "1", **header: str) -> str:
    """A subscribe (``tr_type`` "1") or unsubscribe ("2") message."""
    head = {"approval_key": key, "custtype": "P", "tr_type": tr_type, "content-type": "utf-8"}
    message = {"header": {**head, **header}, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}
    return json.dumps(message)


def recv(ws: ClientConnection, timeout: float = 3.0) -> str:
    """The next message that is not a PINGPONG."""
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        assert isinstance(message, str)
        if '"PINGPONG"' not in message:
            return message


def ask(ws: ClientConnection, message: str) -> dict[str, Any]:
    """Send *message* and return the JSON answer."""
    ws.send(message)
    answer: dict[str, Any] = json.loads(recv(ws))
    return answer


def msg_cd(answer: dict[str, Any]) -> str:
    code: str = answer["body"]["msg_cd"]
    return code


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def closed_by_server(ws: ClientConnection, timeout: float = 3.0) -> ConnectionClosed:
    """Read until the connection closes; return how."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as info:  # noqa: PT012
        while True:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    return info.value


def fields(frame: str) -> tuple[str, str, int, list[str]]:
    flag, tr_id, count, payload = frame.split("|", 3)
    return flag, tr_id, int(count), payload.split("^")


@pytest.fixture(name="h")
def _h(fake_inprocess: FakeHarness) -> FakeHarness:
    return fake_inprocess


@pytest.fixture(name="ws")
def _ws(fake_kis: FakeKIS) -> Iterator[FakeWSServer]:
    with FakeWSServer(fake_kis, slot_hold_s=0.3) as server:
        yield server


@pytest.fixture(name="app")
def _app(fake_kis: FakeKIS) -> FakeApp:
    return fake_kis.add_app("real")


# --- approval keys ------------------------------------------------------------------------------
def test_approval_keys_are_recorded(h: FakeHarness, app: FakeApp, fake_clock: FakeClock) -> None:
    key = approval(h, app)
    [record] = h.fake.approval_keys(app.app_key)
    assert (record.value, record.app_key, record.env) == (key, app.app_key, "real")
    assert record.issued_at == fake_clock.time()
    assert key not in repr(record)
    assert app.app_key not in repr(record)


def test_hts_id_default_and_custom(fake_kis: FakeKIS) -> None:
    app = fake_kis.add_app("real")
    assert app.hts_id == "hts" + app.cano
    assert app.hts_id not in repr(app)
    assert fake_kis.add_app("paper", hts_id="someone").hts_id == "someone"


def test_invalid_approval_is_refused_and_closed(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    bogus = "00000000-0000-0000-0000-000000000000"
    with connect(ws.url) as client:
        answer = ask(client, request(bogus, "H0STCNT0", CODE))
        assert answer["body"]["rt_cd"] == "1"
        assert msg_cd(answer) == "OPSP0011"
        assert answer["body"]["msg1"] == f"invalid approval : {bogus}"
        closed_by_server(client)
    paper = h.fake.add_app("paper")
    with connect(ws.url) as client:  # a paper key on the real host
        assert msg_cd(ask(client, request(approval(h, paper), "H0STCNT0", CODE))) == "OPSP0011"
    assert ws.stats.invalid_approvals == 2
    assert not ws.slot_held(app.app_key)


def test_approval_key_age_is_checked_at_session_start_only(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp, fake_clock: FakeClock
) -> None:
    key = approval(h, app)
    with connect(ws.url) as live:
        assert msg_cd(ask(live, request(key, "H0STCNT0", CODE))) == "OPSP0000"
        fake_clock.advance(24 * 3600)
        assert ws.publish_trades(CODE) == 1  # the live session keeps receiving
        assert fields(recv(live))[1] == "H0STCNT0"
        assert msg_cd(ask(live, request(key, "H0STASP0", CODE))) == "OPSP0000"
        with connect(ws.url) as late:
            assert msg_cd(ask(late, request(key, "H0STCNT0", CODE))) == "OPSP0011"


# --- registrations ------------------------------------------------------------------------------
def test_subscribe_answers_with_key_and_iv(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        first = ask(client, request(key, "H0STCNT0", CODE))
        assert first["header"] == {"tr_id": "H0STCNT0", "tr_key": CODE, "encrypt": "N"}
        body = first["body"]
        assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == (
            "0",
            "OPSP0000",
            "SUBSCRIBE SUCCESS",
        )
        out = body["output"]
        alphabet = set(string.ascii_letters + string.digits)
        assert len(out["key"]) == 32
        assert len(out["iv"]) == 16
        assert set(out["key"] + out["iv"]) <= alphabet
        second = ask(client, request(key, "H0STASP0", CODE))
        assert second["body"]["output"] != out  # a fresh pair per ack
        assert ws.registrations(app.app_key) == {("H0STCNT0", CODE), ("H0STASP0", CODE)}
        assert ws.sessions(app.app_key) == 1


def test_duplicate_unsubscribe_and_format_errors(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"
        duplicate = ask(client, request(key, "H0STCNT0", CODE))
        assert (duplicate["body"]["rt_cd"], msg_cd(duplicate)) == ("1", "OPSP0002")
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE, "2"))) == "OPSP0001"
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE, "2"))) == "OPSP0003"
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE, "0"))) == "OPSP8998"
        assert msg_cd(ask(client, request(key, "H0XXXXX0", CODE))) == "OPSP8994"
        assert msg_cd(ask(client, request(key, "H0STCNI9", app.hts_id))) == "OPSP8994"  # paper
        assert msg_cd(ask(client, request(key, "H0STCNT0", "999999"))) == "OPSP8993"
        assert msg_cd(ask(client, request(key, "H0STCNI0", "hts00000000"))) == "OPSP8993"
        assert msg_cd(ask(client, "not json")) == "OPSP9999"
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE, custtype="X"))) == "OPSP8997"
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"  # still open
    stats = ws.stats
    assert (stats.registrations, stats.duplicates, stats.unsubscribes) == (2, 1, 1)
    assert (stats.unsubscribe_errors, stats.format_errors, stats.acks) == (1, 7, 12)


def test_the_42nd_registration_is_refused_and_stays_silent(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    key = approval(h, app)
    codes = h.fake.universe[:42]
    with connect(ws.url) as client:
        for code in codes[:41]:
            assert msg_cd(ask(client, request(key, "H0STCNT0", code))) == "OPSP0000"
        refused = ask(client, request(key, "H0STCNT0", codes[41]))
        assert (refused["body"]["rt_cd"], msg_cd(refused)) == ("1", "OPSP0008")
        assert refused["body"]["msg1"] == "MAX SUBSCRIBE OVER"
        assert ws.publish_trades(codes[41]) == 0
        assert ws.publish_trades(codes[0]) == 1
        assert fields(recv(client))[3][0] == codes[0]
    assert ws.stats.refused == 1


# --- the session slot ----------------------------------------------------------------------------
def test_second_session_on_the_same_app_key_is_refused(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    with connect(ws.url) as first:
        assert msg_cd(ask(first, request(approval(h, app), "H0STCNT0", CODE))) == "OPSP0000"
        with connect(ws.url) as second:  # a new approval key does not help
            answer = ask(second, request(approval(h, app), "H0STCNT0", CODE))
            assert answer["header"]["tr_id"] == "(null)"
            assert (answer["body"]["rt_cd"], msg_cd(answer)) == ("9", "OPSP8996")
            assert answer["body"]["msg1"] == "ALREADY IN USE appkey"
            closed_by_server(second)
        assert ws.publish_trades(CODE) == 1
        assert fields(recv(first))[3][0] == CODE
    stats = ws.stats
    assert stats.slot_busy == 1
    assert stats.slot_busy_for(app.app_key) == 1
    assert app.app_key not in repr(stats)


def test_abnormal_disconnect_holds_the_slot(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"
        assert ws.drop_all() == 1
        with pytest.raises(ConnectionClosedError):
            client.recv(timeout=2)
    assert ws.sessions() == 0
    assert ws.slot_held(app.app_key)
    with connect(ws.url) as early:
        assert msg_cd(ask(early, request(key, "H0STCNT0", CODE))) == "OPSP8996"
    wait_until(lambda: not ws.slot_held(app.app_key))
    with connect(ws.url) as later:
        assert msg_cd(ask(later, request(key, "H0STCNT0", CODE))) == "OPSP0000"
    stats = ws.stats
    assert (stats.abnormal_disconnects, stats.slot_busy_for(app.app_key)) == (1, 1)


def test_clean_close_frees_the_slot_at_once(
    h: FakeHarness, fake_kis: FakeKIS, app: FakeApp
) -> None:
    key = approval(h, app)
    with FakeWSServer(fake_kis, slot_hold_s=60.0) as ws:
        with connect(ws.url) as client:
            assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"
        wait_until(lambda: ws.sessions() == 0)
        assert not ws.slot_held(app.app_key)
        with connect(ws.url) as client:
            assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"
            client.close(code=1007)  # closing on bad UTF-8: KIS then holds the slot
        wait_until(lambda: ws.sessions() == 0)
        assert ws.slot_held(app.app_key)
        ws.set_slot_hold(0)
        assert not ws.slot_held(app.app_key)
        assert (ws.stats.clean_disconnects, ws.stats.abnormal_disconnects) == (1, 1)


# --- heartbeat ----------------------------------------------------------------------------------
def test_pingpong_unanswered_closes_and_echo_keeps_open(
    h: FakeHarness, fake_kis: FakeKIS, app: FakeApp, fake_clock: FakeClock
) -> None:
    key = approval(h, app)
    with FakeWSServer(fake_kis, pingpong_interval_s=0.1, pingpong_timeout_s=0.4) as ws:
        with connect(ws.url) as client:
            message = client.recv(timeout=2)
            assert message == json.dumps(
                {
                    "header": {
                        "tr_id": "PINGPONG",
                        "datetime": fake_clock.now().strftime("%Y%m%d%H%M%S"),
                    }
                },
                separators=(",", ":"),
            )
            closed = closed_by_server(client)
            assert closed.rcvd is not None
            assert closed.rcvd.reason == "PINGPONG timeout"
        with connect(ws.url) as client:
            assert msg_cd(ask(client, request(key, "H0STCNT0", CODE))) == "OPSP0000"
            until = time.monotonic() + 0.8
            while time.monotonic() < until:
                message = client.recv(timeout=2)
                if '"PINGPONG"' in message:
                    client.send(message)
            assert ws.sessions(app.app_key) == 1
            assert ws.was_echoed(app.app_key)
        stats = ws.stats
        assert stats.pingpong_timeouts == 1
        assert stats.pingpongs_sent >= stats.echoes_received >= 3
        wait_until(lambda: ws.sessions() == 0)
        assert not ws.slot_held(app.app_key)


# --- data ---------------------------------------------------------------------------------------
def test_trade_bundle_and_widths(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNT0", CODE))
        assert ws.publish_trades(CODE, n=3, bundle=3) == 1
        flag, tr_id, count, values = fields(recv(client))
        assert (flag, tr_id, count, len(values)) == ("0", "H0STCNT0", 3, 3 * 46)
        record = dict(zip(TRADE_FIELDS, values[:46], strict=True))
        assert record["MKSC_SHRN_ISCD"] == CODE
        assert record["STCK_PRPR"] == str(h.fake.price_of(CODE))
        first_volume = int(record["ACML_VOL"])
        assert int(values[46 + TRADE_FIELDS.index("ACML_VOL")]) > first_volume
        ws.trade_fields = 47
        ws.publish_trades(CODE, n=5, bundle=2)
        sizes = [fields(recv(client)) for _ in range(3)]
        assert [(count, len(values)) for _, _, count, values in sizes] == [
            (2, 94),
            (2, 94),
            (1, 47),
        ]
        ws.latency_probe = True
        before = time.perf_counter_ns()
        ws.publish_trades(CODE, n=2, bundle=2)
        _, _, _, values = fields(recv(client))
        stamps = {int(values[46]), int(values[93])}
        assert len(stamps) == 1
        assert before <= stamps.pop() <= time.perf_counter_ns()
    assert (ws.stats.data_frames, ws.stats.data_records) == (5, 10)


def test_orderbook_frame(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STASP0", CODE))
        assert ws.publish_trades(CODE) == 0  # not registered for trades
        assert ws.publish_orderbook(CODE) == 1
        flag, tr_id, count, values = fields(recv(client))
        assert (flag, tr_id, count, len(values)) == ("0", "H0STASP0", 1, 59)
        asks, bids = [int(v) for v in values[3:13]], [int(v) for v in values[13:23]]
        price = h.fake.price_of(CODE)
        assert asks == sorted(asks)
        assert bids == sorted(bids, reverse=True)
        assert asks[0] > price >= bids[0]


def test_feed_and_blast(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNT0", CODE))
        assert ws.blast(CODE, 500, bundle=10) == 500
        got = sum(fields(recv(client))[2] for _ in range(50))
        assert got == 500
        ws.start_feed(200.0, bundle=2)
        frames = [fields(recv(client)) for _ in range(5)]
        ws.stop_feed()
        assert all(count == 2 and len(values) == 92 for _, _, count, values in frames)


# --- execution notices ------------------------------------------------------------------------
def _order(h: FakeHarness, app: FakeApp, qty: int, price: int = 0) -> str:
    body = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "PDNO": CODE,
        "ORD_DVSN": "00" if price else "01",
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
    }
    tr_id = ENDPOINTS["order_cash"].tr_id(Env(app.env), "buy")
    answer = h.call(app, "order_cash", json=body, tr_id=tr_id).json()
    assert answer["rt_cd"] == "0", answer
    odno: str = answer["output"]["ODNO"]
    return odno


def _notice(client: ClientConnection, key: str, iv: str, tr_id: str = "H0STCNI0") -> list[str]:
    flag, got_tr_id, count, payload = recv(client).split("|", 3)
    assert (flag, got_tr_id, count) == ("1", tr_id, "001")
    return decrypt_notice(payload, key, iv).split("^")


def test_fill_notice_is_encrypted_with_the_latest_ack(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNI0", app.hts_id))
        ack = ask(client, request(key, "H0STCNI0", app.hts_id))  # OPSP0002: a new pair
        assert ack["header"]["encrypt"] == "Y"
        pair = ack["body"]["output"]
        price = h.fake.price_of(CODE)
        odno = _order(h, app, 7)
        accepted = dict(zip(NOTICE_FIELDS, _notice(client, pair["key"], pair["iv"]), strict=True))
        filled = dict(zip(NOTICE_FIELDS, _notice(client, pair["key"], pair["iv"]), strict=True))
    assert accepted["ODER_NO"] == filled["ODER_NO"] == odno
    assert (accepted["CNTG_YN"], accepted["RFUS_YN"], accepted["SELN_BYOV_CLS"]) == ("1", "0", "02")
    assert (filled["CNTG_YN"], filled["CNTG_QTY"], filled["CNTG_UNPR"]) == ("2", "7", str(price))
    assert filled["CUST_ID"] == app.hts_id
    assert filled["ACNT_NO"] == app.cano + app.acnt_prdt_cd
    assert (filled["STCK_SHRN_ISCD"], filled["ODER_QTY"]) == (CODE, "7")
    assert ws.stats.notices == 2


def test_cancel_notice_width_and_environment(
    h: FakeHarness, ws: FakeWSServer, fake_kis: FakeKIS, app: FakeApp
) -> None:
    key = approval(h, app)
    other = fake_kis.add_app("real")
    with FakeWSServer(fake_kis, env="paper") as paper_ws, connect(ws.url) as client:
        paper = fake_kis.add_app("paper")
        with connect(paper_ws.url) as paper_client:
            answer = ask(paper_client, request(approval(h, paper), "H0STCNI9", paper.hts_id))
            assert msg_cd(answer) == "OPSP0000"
            pair = ask(client, request(key, "H0STCNI0", app.hts_id))["body"]["output"]
            ws.notice_fields = 23
            price = h.fake.price_of(CODE)
            odno = _order(h, app, 3, price * 9 // 10 // 100 * 100)  # rests: below the price
            _order(h, other, 1)  # another HTS ID: not for this session
            assert len(_notice(client, pair["key"], pair["iv"])) == 23
            ws.notice_fields = 29
            cancel = {
                "CANO": app.cano,
                "ACNT_PRDT_CD": app.acnt_prdt_cd,
                "KRX_FWDG_ORD_ORGNO": BRANCH,  # the original order's branch, as KIS requires
                "ORGN_ODNO": odno,
                "ORD_DVSN": "00",
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0",
                "ORD_UNPR": "0",
                "QTY_ALL_ORD_YN": "Y",
            }
            tr_id = ENDPOINTS["order_rvsecncl"].tr_id(Env.REAL)
            assert h.call(app, "order_rvsecncl", json=cancel, tr_id=tr_id).json()["rt_cd"] == "0"
            values = _notice(client, pair["key"], pair["iv"])
            assert len(values) == 29
            notice = dict(zip(NOTICE_FIELDS, values[:26], strict=True))
            assert (notice["RCTF_CLS"], notice["OODER_NO"], notice["CNTG_YN"]) == ("2", odno, "1")
            assert paper_ws.stats.notices == 0
    assert ws.stats.notices == 2


# --- faults -------------------------------------------------------------------------------------
def test_raw_fault_frames(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNT0", CODE))
        assert ws.send_invalid_utf8() == 1
        raw = client.recv(timeout=2, decode=False)
        assert isinstance(raw, bytes)
        assert raw.startswith(b"0|H0STCNT0|001|005930^")
        assert b"^\xff^" in raw
        assert len(raw.decode(errors="replace").split("|")[3].split("^")) == 46
        assert ws.send_unknown_tr_id() == 1
        assert recv(client).startswith("0|H0ZZZZZ0|001|")
        size = ws.send_oversized(9000)
        frame = recv(client)
        assert len(frame.encode()) == size > 8192
        _, _, count, values = fields(frame)
        assert len(values) == count * 46
        ws.send_raw(b"\x01\x02", text=False)
        assert client.recv(timeout=2) == b"\x01\x02"
        ws.stall(0.3)
        started = time.monotonic()
        ws.publish_trades(CODE)
        recv(client)
        assert time.monotonic() - started >= 0.25
    assert ws.stats.data_frames == 1  # faults are not counted as data


def test_closing_on_invalid_utf8_holds_the_slot(
    h: FakeHarness, ws: FakeWSServer, app: FakeApp
) -> None:
    """The trap of facts §3: a strict client fails the connection with 1007 on the text frame,
    which KIS treats as an abnormal end (the slot is held)."""
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNT0", CODE))
        ws.send_invalid_utf8()
        with pytest.raises(ConnectionClosedError) as info:
            client.recv(timeout=2)  # decodes: the text frame is not valid UTF-8
        assert info.value.sent is not None
        assert info.value.sent.code == 1007
    wait_until(lambda: ws.sessions() == 0)
    assert ws.slot_held(app.app_key)
    assert ws.stats.abnormal_disconnects == 1


def test_repr_hides_secrets(h: FakeHarness, ws: FakeWSServer, app: FakeApp) -> None:
    key = approval(h, app)
    with connect(ws.url) as client:
        ask(client, request(key, "H0STCNI0", app.hts_id))
        text = repr(ws) + repr(ws.stats)
    for secret in (key, app.app_key, app.app_secret, app.hts_id, app.cano):
        assert secret not in text
