"""The stream client's no-I/O core: events, wire format, registry, backoff, pacing, buffer."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Callable

import attrs
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from kisclient import TradeBatch
from kisclient._errors import SubscriptionLimitExceeded, ValidationError
from kisclient._stream_events import (
    Fill,
    Level,
    OrderBook,
    StreamConnected,
    StreamEvent,
    StreamOverflow,
    StreamReconnecting,
    SubscriptionRefused,
    Trade,
)
from kisclient._stream_protocol import (
    FILL_FIELDS,
    ORDERBOOK_FIELDS,
    TRADE_FIELDS,
    Ack,
    FrameDecoder,
    PingPong,
    encode_subscription,
)
from kisclient._stream_session import (
    MAX_REGISTRATIONS,
    EventBuffer,
    Registry,
    SendPacer,
    reconnect_delay,
)

LOGGER = "kisclient.stream"
KEY_1 = "abcdefghijklmnopqrstuvwxyz012345"
IV_1 = "0123456789abcdef"
KEY_2 = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654"
IV_2 = "fedcba9876543210"
ACCOUNT = "50123456"
HTS_ID = "hongkd77"


# --- helpers --------------------------------------------------------------------------------


def trade_record(
    code: str = "005930", price: int = 71500, volume: int = 12, hour: str = "093015"
) -> list[str]:
    rec = [str(i) for i in range(len(TRADE_FIELDS))]
    rec[0], rec[1], rec[2], rec[12] = code, hour, str(price), str(volume)
    return rec


def orderbook_record() -> list[str]:
    rec = ["0"] * len(ORDERBOOK_FIELDS)
    rec[0], rec[1], rec[2] = "005930", "093015", "0"
    for i in range(10):
        rec[3 + i] = str(71600 + 100 * i)  # ASKP1..10
        rec[13 + i] = str(71500 - 100 * i)  # BIDP1..10
        rec[23 + i] = str(10 + i)  # ASKP_RSQN1..10
        rec[33 + i] = str(20 + i)  # BIDP_RSQN1..10
    rec[12] = "0"  # ASKP10 empty (price 0)
    rec[32] = "0"
    return rec


def fill_record(*, filled: bool = True, side: str = "02", rejected: bool = False) -> list[str]:
    values = dict.fromkeys(FILL_FIELDS, "")
    values.update(
        CUST_ID=HTS_ID,
        ACNT_NO=ACCOUNT + "01",
        ODER_NO="0000012345",
        SELN_BYOV_CLS=side,
        STCK_SHRN_ISCD="005930",
        CNTG_QTY="7" if filled else "0",
        CNTG_UNPR="71500" if filled else "",
        STCK_CNTG_HOUR="093016",
        RFUS_YN="1" if rejected else "0",
        CNTG_YN="2" if filled else "1",
        ODER_QTY="10",
        ACNT_NAME="홍길동",
        ODER_PRC="71000",
        CNTG_ISNM40="삼성전자",
    )
    return [values[name] for name in FILL_FIELDS]


def data_frame(tr_id: str, records: list[list[str]], flag: str = "0") -> str:
    return f"{flag}|{tr_id}|{len(records):03d}|" + "^".join(f for rec in records for f in rec)


def ack_text(
    tr_id: str,
    tr_key: str,
    msg_cd: str = "OPSP0000",
    rt_cd: str = "0",
    msg: str = "SUBSCRIBE SUCCESS",
    key: str | None = KEY_1,
    iv: str | None = IV_1,
) -> str:
    body: dict[str, object] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg}
    if key is not None:
        body["output"] = {"iv": iv, "key": key}
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


def encrypt(plain: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def encrypted_fill_frame(
    records: list[list[str]], key: str, iv: str, tr_id: str = "H0STCNI0"
) -> str:
    plain = "^".join(f for rec in records for f in rec)
    return f"1|{tr_id}|{len(records):03d}|{encrypt(plain, key, iv)}"


def ack(tr_id: str, tr_key: str, msg_cd: str, rt_cd: str = "0", msg: str = "") -> Ack:
    return Ack(tr_id=tr_id, tr_key=tr_key, rt_cd=rt_cd, msg_cd=msg_cd, msg=msg)


def stock(i: int) -> tuple[str, str]:
    return ("H0STCNT0", f"{i:06d}")


# --- encode_subscription --------------------------------------------------------------------


def test_encode_subscription_builds_the_documented_message() -> None:
    message = json.loads(encode_subscription("KEY", "H0STCNT0", "005930", register=True))
    assert message == {
        "header": {
            "approval_key": "KEY",
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }
    off = json.loads(encode_subscription("KEY", "H0STCNT0", "005930", register=False))
    assert off["header"]["tr_type"] == "2"


def test_encode_subscription_refuses_empty_arguments() -> None:
    with pytest.raises(ValidationError):
        encode_subscription("KEY", "H0STCNT0", "", register=True)


# --- decoding data frames -------------------------------------------------------------------


def test_field_tables_have_the_documented_sizes() -> None:
    assert (len(TRADE_FIELDS), len(ORDERBOOK_FIELDS), len(FILL_FIELDS)) == (46, 59, 26)
    assert len(set(ORDERBOOK_FIELDS)) == 59
    assert ORDERBOOK_FIELDS[3] == "ASKP1"
    assert ORDERBOOK_FIELDS[42] == "BIDP_RSQN10"
    assert ORDERBOOK_FIELDS[-1] == "STCK_DEAL_CLS_CODE"


def test_a_trade_record_is_typed_and_keeps_every_field() -> None:
    decoder = FrameDecoder()
    [trade] = decoder.decode(data_frame("H0STCNT0", [trade_record()]))
    assert isinstance(trade, Trade)
    assert (trade.code, trade.price, trade.volume, trade.time) == ("005930", 71500, 12, "093015")
    assert trade.tr_id == "H0STCNT0"
    assert list(trade.fields) == list(TRADE_FIELDS)
    assert trade.fields["VI_STND_PRC"] == "45"
    assert decoder.stats.frames == 1
    assert decoder.stats.records == 1
    assert decoder.stats.widths_seen == {"H0STCNT0": {46}}


@pytest.mark.parametrize("tr_id", ["H0NXCNT0", "H0UNCNT0"])
def test_nxt_and_combined_trades_share_the_layout(tr_id: str) -> None:
    [trade] = FrameDecoder().decode(data_frame(tr_id, [trade_record(price=-1)]))
    assert isinstance(trade, Trade)
    assert trade.tr_id == tr_id
    assert trade.price == -1


def test_a_bundle_of_three_gives_three_events_in_order() -> None:
    records = [trade_record(price=100 + i, hour=f"09000{i}") for i in range(3)]
    events = FrameDecoder().decode(data_frame("H0STCNT0", records))
    assert [(e.price, e.time) for e in events if isinstance(e, Trade)] == [
        (100, "090000"),
        (101, "090001"),
        (102, "090002"),
    ]
    assert len(events) == 3


def test_a_new_width_keeps_extra_fields_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decoder = FrameDecoder()
    caplog.set_level(logging.INFO, logger=LOGGER)
    decoder.decode(data_frame("H0STCNT0", [trade_record()]))
    assert caplog.records == []  # the documented width is not news
    wide = [[*trade_record(price=200 + i), f"X{i}"] for i in range(2)]
    events = decoder.decode(data_frame("H0STCNT0", wide))
    events += decoder.decode(data_frame("H0STCNT0", wide))
    assert len(events) == 4
    assert all(
        isinstance(e, Trade) and e.fields["field_47"] == f"X{i % 2}" for i, e in enumerate(events)
    )
    assert [e.price for e in events if isinstance(e, Trade)] == [200, 201, 200, 201]
    assert len(caplog.records) == 1
    assert "47" in caplog.records[0].getMessage()
    assert "X0" not in caplog.records[0].getMessage()
    assert decoder.stats.widths_seen == {"H0STCNT0": {46, 47}}


def test_a_width_that_does_not_divide_is_counted_not_raised() -> None:
    decoder = FrameDecoder()
    records = [trade_record(), trade_record()]
    text = data_frame("H0STCNT0", records) + "^extra"
    assert decoder.decode(text) == []
    assert decoder.stats.malformed == 1
    assert decoder.stats.records == 0
    # the decoder still works afterwards
    assert len(decoder.decode(data_frame("H0STCNT0", records))) == 2


@pytest.mark.parametrize(
    "text",
    [
        "0|H0STCNT0|",  # no payload separator
        "0|H0STCNT0|abc|1^2",  # count not a number
        "0|H0STCNT0|000|",  # count zero
        "7|H0STCNT0|001|" + "^".join(trade_record()),  # unknown flag
        "0|H0STCNT0|001|" + "^".join(trade_record()[:10]),  # too short for the typed fields
        "garbage",
        "{not json",
        '["header"]',
    ],
)
def test_malformed_frames_are_counted(text: str) -> None:
    decoder = FrameDecoder()
    assert decoder.decode(text) == []
    assert decoder.stats.malformed == 1


def test_a_bad_number_drops_that_record_only() -> None:
    bad = trade_record()
    bad[2] = "12a"
    events = FrameDecoder().decode(
        data_frame("H0STCNT0", [trade_record(price=1), bad, trade_record(price=3)])
    )
    assert [e.price for e in events if isinstance(e, Trade)] == [1, 3]


def test_unknown_tr_id_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    decoder = FrameDecoder()
    caplog.set_level(logging.INFO, logger=LOGGER)
    for _ in range(3):
        assert decoder.decode("0|H0ZZZZZ0|001|secret^value") == []
    assert decoder.stats.unknown_tr_id == 3
    assert decoder.stats.malformed == 0
    assert len(caplog.records) == 1
    assert "secret" not in caplog.text


def test_invalid_utf8_is_replaced_and_the_frame_still_parsed() -> None:
    rec = trade_record()
    rec[20] = "\x00"  # placeholder replaced by an invalid byte below
    data = data_frame("H0STCNT0", [rec]).encode().replace(b"\x00", b"ab\xffcd")
    [trade] = FrameDecoder().decode_bytes(data)
    assert isinstance(trade, Trade)
    assert trade.fields[TRADE_FIELDS[20]] == "ab\ufffdcd"
    assert trade.price == 71500


def test_an_order_book_lists_levels_best_first_without_empty_ones() -> None:
    [book] = FrameDecoder().decode(data_frame("H0STASP0", [orderbook_record()]))
    assert isinstance(book, OrderBook)
    assert book.code == "005930"
    assert book.time == "093015"
    assert book.asks[0] == Level(71600, 10)
    assert book.bids[0] == Level(71500, 20)
    assert len(book.asks) == 9  # ASKP10 was 0
    assert book.bids[-1] == Level(70600, 29)
    assert [lvl.price for lvl in book.asks] == sorted(lvl.price for lvl in book.asks)
    assert book.fields["STCK_DEAL_CLS_CODE"] == "0"


# --- control frames -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"header":{"tr_id":"PINGPONG","datetime":"20261126093000"}}',
        ' {"header": {"tr_id": "PINGPONG", "datetime": "20261126093010"}}\n',
    ],
)
def test_pingpong_is_returned_verbatim(text: str) -> None:
    decoder = FrameDecoder()
    assert decoder.decode(text) == [PingPong(text)]
    assert decoder.stats.controls == 1
    assert decoder.stats.malformed == 0


def test_a_subscribe_ack_is_parsed() -> None:
    [item] = FrameDecoder().decode(ack_text("H0STCNT0", "005930"))
    assert item == Ack(
        tr_id="H0STCNT0",
        tr_key="005930",
        rt_cd="0",
        msg_cd="OPSP0000",
        msg="SUBSCRIBE SUCCESS",
        key=KEY_1,
        iv=IV_1,
    )
    assert item.ok


def test_opsp8996_is_parsed() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
            "body": {"rt_cd": "9", "msg_cd": "OPSP8996", "msg1": "ALREADY IN USE appkey"},
        }
    )
    [item] = FrameDecoder().decode(text)
    assert isinstance(item, Ack)
    assert (item.tr_id, item.rt_cd, item.msg_cd) == ("(null)", "9", "OPSP8996")
    assert item.key is None
    assert not item.ok


def test_ack_repr_hides_keys_hts_id_and_approval_key() -> None:
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    decoder = FrameDecoder()
    [notice] = decoder.decode(ack_text("H0STCNI0", HTS_ID))
    [invalid] = decoder.decode(
        ack_text("H0STCNT0", "005930", "OPSP0011", "1", f"invalid approval : {uuid}", None)
    )
    for item in (notice, invalid):
        assert KEY_1 not in repr(item)
        assert IV_1 not in repr(item)
        assert HTS_ID not in repr(item)
        assert uuid not in repr(item)
    assert isinstance(invalid, Ack)
    assert invalid.msg_cd == "OPSP0011"


# --- encryption -----------------------------------------------------------------------------


def test_an_encrypted_fill_round_trips_with_the_acks_key() -> None:
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNI0", HTS_ID, key=KEY_1, iv=IV_1))
    frame = encrypted_fill_frame([fill_record(), fill_record(filled=False, side="01")], KEY_1, IV_1)
    fill, order = decoder.decode(frame)
    assert isinstance(fill, Fill)
    assert isinstance(order, Fill)
    assert (fill.order_no, fill.code, fill.side, fill.qty, fill.price) == (
        "0000012345",
        "005930",
        "buy",
        7,
        71500,
    )
    assert fill.filled
    assert not fill.rejected
    assert fill.time == "093016"
    assert fill.fields["ACNT_NAME"] == "홍길동"
    assert fill.fields["ACNT_NO"] == ACCOUNT + "01"
    assert (order.side, order.filled, order.qty, order.price) == ("sell", False, 10, 71000)
    assert decoder.stats.malformed == 0


def test_the_key_switches_when_a_new_ack_arrives() -> None:
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNI0", HTS_ID, key=KEY_1, iv=IV_1))
    assert len(decoder.decode(encrypted_fill_frame([fill_record()], KEY_1, IV_1))) == 1
    decoder.decode(ack_text("H0STCNI0", HTS_ID, msg_cd="OPSP0002", key=KEY_2, iv=IV_2))
    assert len(decoder.decode(encrypted_fill_frame([fill_record()], KEY_2, IV_2))) == 1
    assert decoder.stats.malformed == 0
    assert decoder.decode(encrypted_fill_frame([fill_record()], KEY_1, IV_1)) == []
    assert decoder.stats.malformed == 1


def test_keys_are_per_tr_id() -> None:
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNT0", "005930", key=KEY_2, iv=IV_2))
    decoder.decode(ack_text("H0STCNI9", HTS_ID, key=KEY_1, iv=IV_1))
    frame = encrypted_fill_frame([fill_record()], KEY_1, IV_1, tr_id="H0STCNI9")
    assert [type(e) for e in decoder.decode(frame)] == [Fill]


def test_encrypted_frames_without_key_or_broken_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decoder = FrameDecoder()
    caplog.set_level(logging.INFO, logger=LOGGER)
    frame = encrypted_fill_frame([fill_record()], KEY_1, IV_1)
    assert decoder.decode(frame) == []
    assert decoder.decode(frame) == []
    decoder.decode(ack_text("H0STCNI0", HTS_ID))
    assert decoder.decode("1|H0STCNI0|001|not base64!") == []
    assert decoder.decode("1|H0STCNI0|001|" + base64.b64encode(b"short").decode()) == []
    assert decoder.stats.malformed == 4
    assert ACCOUNT not in caplog.text
    assert KEY_1 not in caplog.text
    # one line for "no key", one for "failed to decrypt"
    assert len(caplog.records) == 2


def test_an_unusable_key_is_ignored() -> None:
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNI0", HTS_ID, key="short", iv=IV_1))
    assert not decoder.has_key("H0STCNI0")


def test_fill_repr_has_no_account_number_or_hts_id() -> None:
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNI0", HTS_ID))
    [fill] = decoder.decode(encrypted_fill_frame([fill_record()], KEY_1, IV_1))
    assert ACCOUNT not in repr(fill)
    assert HTS_ID not in repr(fill)
    assert "홍길동" not in repr(fill)
    assert "0000012345" in repr(fill)


def test_fill_flags_rejection_and_empty_prices() -> None:
    rec = fill_record(filled=False, rejected=True)
    rec[FILL_FIELDS.index("ODER_PRC")] = ""  # a market order
    decoder = FrameDecoder()
    decoder.decode(ack_text("H0STCNI0", HTS_ID))
    [fill] = decoder.decode(encrypted_fill_frame([rec], KEY_1, IV_1))
    assert isinstance(fill, Fill)
    assert fill.rejected
    assert fill.price == 0


# --- registry -------------------------------------------------------------------------------


def test_41_registrations_fit_and_the_42nd_changes_nothing() -> None:
    registry = Registry()
    assert registry.plan_subscribe([stock(i) for i in range(40)]) == [stock(i) for i in range(40)]
    with pytest.raises(SubscriptionLimitExceeded):
        registry.plan_subscribe([stock(40), stock(41)])
    assert len(registry) == 40
    assert registry.state(stock(40)) is None
    assert registry.plan_subscribe([stock(40)]) == [stock(40)]
    assert len(registry) == MAX_REGISTRATIONS
    with pytest.raises(SubscriptionLimitExceeded):
        registry.plan_subscribe([("H0STCNI0", HTS_ID)])
    assert registry.pending_count == 41
    # already wanted pairs cost nothing and are not sent again
    assert registry.plan_subscribe([stock(3), stock(3)]) == []


def test_acks_drive_the_states() -> None:
    registry = Registry()
    registry.plan_subscribe([stock(1), stock(2), stock(3)])
    assert registry.on_ack(ack(*stock(1), "OPSP0000")) == []
    assert registry.on_ack(ack(*stock(2), "OPSP0002", rt_cd="1")) == []
    assert registry.registered_count == 2
    events = registry.on_ack(ack(*stock(3), "OPSP0008", rt_cd="1", msg="MAX SUBSCRIBE OVER"))
    assert events == [
        SubscriptionRefused(
            tr_id="H0STCNT0", tr_key="000003", msg_cd="OPSP0008", msg="MAX SUBSCRIBE OVER"
        )
    ]
    assert registry.refused == [stock(3)]
    assert registry.pending_count == 0
    assert len(registry) == 2  # refused pairs take no slot
    assert registry.on_ack(ack("(null)", "", "OPSP8996", rt_cd="9")) == []
    assert registry.on_ack(ack(*stock(9), "OPSP0008", rt_cd="1")) == []  # not ours


def test_other_errors_refuse_a_known_pair() -> None:
    registry = Registry()
    registry.plan_subscribe([("H0STCNI0", HTS_ID)])
    [event] = registry.on_ack(ack("H0STCNI0", HTS_ID, "OPSP9993", rt_cd="9"))
    assert isinstance(event, SubscriptionRefused)
    assert HTS_ID not in repr(event)
    assert registry.state(("H0STCNI0", HTS_ID)) == "refused"


def test_unsubscribe_holds_the_slot_until_confirmed() -> None:
    registry = Registry()
    registry.plan_subscribe([stock(1), stock(2)])
    assert registry.plan_unsubscribe([stock(1), stock(7)]) == [stock(1)]
    assert registry.state(stock(1)) == "unsubscribing"
    assert len(registry) == 2
    registry.on_ack(ack(*stock(1), "OPSP0001"))
    assert registry.state(stock(1)) is None
    assert len(registry) == 1


def test_replay_sends_each_wanted_pair_once() -> None:
    registry = Registry()
    pairs = [stock(i) for i in range(5)]
    registry.plan_subscribe(pairs)
    registry.plan_subscribe(pairs[:2])
    for pair in pairs[:3]:
        registry.on_ack(ack(*pair, "OPSP0000"))
    registry.on_ack(ack(*pairs[3], "OPSP0008", rt_cd="1"))
    registry.plan_unsubscribe([pairs[4]])
    assert registry.replay() == pairs[:3]
    assert registry.pending_count == 3
    assert registry.refused == [pairs[3]]
    assert registry.replay() == pairs[:3]  # again after a second drop: still once each
    assert registry.plan_subscribe([pairs[3]]) == [pairs[3]]  # a refused pair can be retried


# --- backoff and pacing ---------------------------------------------------------------------


def test_reconnect_delay_grows_then_caps() -> None:
    class Middle(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return (a + b) / 2

    delays = [reconnect_delay(n, 15.0, 300.0, Middle()) for n in range(1, 8)]
    assert delays == [15.0, 30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    assert reconnect_delay(10_000, 15.0, 300.0, Middle()) == 300.0
    with pytest.raises(ValueError, match="attempt"):
        reconnect_delay(0, 15.0, 300.0, Middle())


@given(
    attempt=st.integers(1, 2000),
    initial=st.floats(0.01, 100.0),
    factor=st.floats(1.0, 100.0),
    seed=st.integers(0, 2**32),
)
def test_reconnect_delay_stays_in_bounds(
    attempt: int, initial: float, factor: float, seed: int
) -> None:
    maximum = initial * factor
    delay = reconnect_delay(attempt, initial, maximum, random.Random(seed))
    assert initial * 0.5 <= delay <= maximum
    base = min(initial * 2.0 ** min(attempt - 1, 64), maximum)
    assert base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


def test_send_pacer_spaces_messages() -> None:
    pacer = SendPacer(rate_per_s=4)
    assert pacer.delay(100.0) == 0.0
    pacer.sent(100.0)
    assert pacer.delay(100.0) == pytest.approx(0.25)
    assert pacer.delay(100.1) == pytest.approx(0.15)
    assert pacer.delay(101.0) == 0.0
    pacer.sent(100.25)
    assert pacer.delay(100.25) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="rate"):
        SendPacer(0)


# --- event buffer ---------------------------------------------------------------------------


def make_trade(i: int) -> Trade:
    return Trade("005930", i, 1, "090000", {})


def make_book(i: int) -> OrderBook:
    return OrderBook("005930", [Level(i, 1)], [], "090000", {})


def make_fill(i: int) -> Fill:
    return Fill(
        order_no=str(i),
        code="005930",
        side="buy",
        qty=1,
        price=i,
        filled=True,
        rejected=False,
        time="090000",
        fields={},
    )


def drain(buffer: EventBuffer) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    while (event := buffer.pop()) is not None:
        out.append(event)
    return out


def test_buffer_is_fifo_without_overflow() -> None:
    buffer = EventBuffer(10)
    events: list[StreamEvent] = [make_trade(1), make_book(2), StreamConnected(1), make_fill(3)]
    for event in events:
        buffer.push(event)
    assert len(buffer) == 4
    assert drain(buffer) == events
    assert buffer.pop() is None
    assert len(buffer) == 0


def test_buffer_drops_order_books_first_silently() -> None:
    buffer = EventBuffer(4)
    pushed: list[StreamEvent] = [
        make_book(1),
        make_trade(2),
        make_book(3),
        make_trade(4),
        make_trade(5),
        make_trade(6),
    ]
    for event in pushed:
        buffer.push(event)
    assert buffer.dropped_orderbooks == 2
    assert buffer.dropped_trades == 0
    assert drain(buffer) == [make_trade(2), make_trade(4), make_trade(5), make_trade(6)]


def test_buffer_reports_dropped_trades_and_fills() -> None:
    buffer = EventBuffer(3)
    pushed: list[StreamEvent] = [
        make_book(0),
        make_trade(1),
        make_fill(2),
        make_trade(3),  # drops the book (silently)
        make_trade(4),  # no book left: drops trade 1
        make_trade(5),  # drops fill 2
    ]
    for event in pushed:
        buffer.push(event)
    assert len(buffer) == 4  # three events and the report
    assert buffer.pop() == StreamOverflow(dropped_orderbooks=1, dropped_trades=1, dropped_fills=1)
    buffer.push(make_fill(6))  # drops trade 3
    buffer.push(make_trade(7))  # drops trade 4
    assert drain(buffer) == [
        StreamOverflow(dropped_orderbooks=0, dropped_trades=2, dropped_fills=0),
        make_trade(5),
        make_fill(6),
        make_trade(7),
    ]
    assert (buffer.dropped_orderbooks, buffer.dropped_trades, buffer.dropped_fills) == (1, 3, 1)


def test_buffer_overflow_report_is_never_dropped() -> None:
    buffer = EventBuffer(2)
    for i in range(10):
        buffer.push(make_trade(i))
    assert len(buffer) == 3
    assert drain(buffer) == [
        StreamOverflow(dropped_orderbooks=0, dropped_trades=8, dropped_fills=0),
        make_trade(8),
        make_trade(9),
    ]


def test_a_dropped_trade_batch_counts_each_of_its_trades() -> None:
    records = [trade_record(price=100 + i) for i in range(3)]
    [batch] = FrameDecoder(trade_batches=True).decode(data_frame("H0STCNT0", records))
    assert isinstance(batch, TradeBatch)
    buffer = EventBuffer(2)
    for event in (batch, make_trade(1), make_trade(2)):  # the third push drops the batch
        buffer.push(event)
    assert buffer.dropped_trades == 3
    assert drain(buffer) == [
        StreamOverflow(dropped_orderbooks=0, dropped_trades=3, dropped_fills=0),
        make_trade(1),
        make_trade(2),
    ]


def test_buffer_counts_status_drops() -> None:
    buffer = EventBuffer(1)
    buffer.push(StreamReconnecting(attempt=1, delay_s=15.0, reason="closed"))
    buffer.push(StreamConnected(2))
    assert drain(buffer) == [
        StreamOverflow(dropped_orderbooks=0, dropped_trades=0, dropped_fills=0, dropped_status=1),
        StreamConnected(2),
    ]


def test_buffer_stays_bounded_under_a_flood_of_books() -> None:
    buffer = EventBuffer(50)
    buffer.push(make_trade(-1))
    for i in range(100_000):
        buffer.push(make_book(i))
    assert len(buffer) == 50
    assert len(buffer._items) <= 2 * 50 + 1
    events = drain(buffer)
    assert events[0] == make_trade(-1)
    assert events[1:] == [make_book(i) for i in range(100_000 - 49, 100_000)]


@attrs.frozen
class _Push:
    kind: str


ops = st.lists(
    st.one_of(
        st.sampled_from(["book", "trade", "fill", "status"]).map(_Push),
        st.just("pop"),
    ),
    max_size=300,
)


@given(maxsize=st.integers(1, 8), script=ops)
def test_buffer_never_loses_a_trade_or_fill_unreported(
    maxsize: int, script: list[_Push | str]
) -> None:
    buffer = EventBuffer(maxsize)
    pushed: list[StreamEvent] = []
    popped: list[StreamEvent] = []
    makers: dict[str, Callable[[int], StreamEvent]] = {
        "book": make_book,
        "trade": make_trade,
        "fill": make_fill,
        "status": StreamConnected,
    }
    for n, op in enumerate(script):
        if isinstance(op, _Push):
            event = makers[op.kind](n)
            pushed.append(event)
            buffer.push(event)
        elif (got := buffer.pop()) is not None:
            popped.append(got)
        assert len(buffer) <= maxsize + 1
    popped += drain(buffer)
    reports = [e for e in popped if isinstance(e, StreamOverflow)]
    delivered = [e for e in popped if not isinstance(e, StreamOverflow)]
    # order is preserved: what was delivered is a subsequence of what was pushed
    it = iter(pushed)
    assert all(any(p is d for p in it) for d in delivered)
    lost = [e for e in pushed if not any(e is d for d in delivered)]
    assert sum(r.dropped_trades for r in reports) == sum(isinstance(e, Trade) for e in lost)
    assert sum(r.dropped_fills for r in reports) == sum(isinstance(e, Fill) for e in lost)
    assert sum(r.dropped_status for r in reports) == sum(
        isinstance(e, StreamConnected) for e in lost
    )
    assert sum(isinstance(e, OrderBook) for e in lost) == buffer.dropped_orderbooks
    # a lost trade/fill/status is always followed by a report
    assert bool(reports) == any(not isinstance(e, OrderBook) for e in lost)
