"""The decoder builds a frame's trades column-wise (a fast path) and falls back to one record at
a time when a typed field is not a plain integer: both must give exactly the events the
record-by-record reading gives, and a bad record must cost only itself. With
``trade_batches=True`` a frame's trades are one ``TradeBatch`` holding exactly those trades."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kisclient import TradeBatch
from kisclient._stream_events import Trade
from kisclient._stream_protocol import TRADE_FIELDS, FrameDecoder

WIDTH = len(TRADE_FIELDS)
numbers = st.integers(min_value=0, max_value=10**9).map(str)
texts = st.text(alphabet="0123456789ABCZ ", max_size=6)


def record(code: str, time: str, price: str, volume: str, filler: list[str]) -> list[str]:
    rec = [code, time, price, *filler[:9], volume, *filler[9:]]
    assert len(rec) == WIDTH
    return rec


records = st.builds(
    record,
    st.sampled_from(["005930", "000660", "0001A0"]),
    st.from_regex(r"\A[0-2][0-9][0-5][0-9][0-5][0-9]\Z"),
    numbers | texts,
    numbers | texts,
    st.lists(texts, min_size=WIDTH - 4, max_size=WIDTH - 4),
)


def expected(rec: list[str]) -> Trade | None:
    """A record read on its own (the documented per-record rule): None if it is dropped."""
    items = FrameDecoder().decode(f"0|H0STCNT0|001|{'^'.join(rec)}")
    assert len(items) <= 1
    return items[0] if items else None  # type: ignore[return-value]


@given(st.lists(records, min_size=1, max_size=12))
def test_a_frame_gives_the_events_of_its_records_read_one_by_one(recs: list[list[str]]) -> None:
    decoder = FrameDecoder()
    payload = "^".join(field for rec in recs for field in rec)
    got = decoder.decode(f"0|H0STCNT0|{len(recs):03d}|{payload}")
    want = [t for t in map(expected, recs) if t is not None]
    assert got == want
    assert all(type(t) is Trade and t.fields["MKSC_SHRN_ISCD"] == t.code for t in got)
    assert decoder.stats.records == len(want)
    assert decoder.stats.malformed == len(recs) - len(want)


def test_one_bad_price_drops_only_its_record() -> None:
    good = record("005930", "090000", "71000", "10", ["1"] * (WIDTH - 4))
    bad = record("000660", "090001", "12x", "10", ["1"] * (WIDTH - 4))
    decoder = FrameDecoder()
    got = decoder.decode(f"0|H0STCNT0|003|{'^'.join(good + bad + good)}")
    assert [(t.code, t.price, t.volume) for t in got] == [("005930", 71000, 10)] * 2  # type: ignore[union-attr]
    assert decoder.stats.malformed == 1


# --- trade_batches=True: one TradeBatch per frame ---------------------------------------------


@given(st.lists(records, min_size=1, max_size=12))
def test_a_batch_holds_exactly_the_trades_the_per_record_reading_gives(
    recs: list[list[str]],
) -> None:
    events = FrameDecoder()
    batches = FrameDecoder(trade_batches=True)
    frame = f"0|H0STCNT0|{len(recs):03d}|{'^'.join(field for rec in recs for field in rec)}"
    want = events.decode(frame)
    got = batches.decode(frame)
    if not want:  # every record was bad: nothing at all, not an empty batch
        assert got == []
    else:
        [batch] = got
        assert isinstance(batch, TradeBatch)
        assert list(batch) == want
        assert len(batch) == len(want)
        trades = cast("list[Trade]", want)
        assert list(batch.codes) == [t.code for t in trades]
        assert list(batch.times) == [t.time for t in trades]
        assert list(batch.prices) == [t.price for t in trades]
        assert list(batch.volumes) == [t.volume for t in trades]
        assert all(type(p) is int for p in batch.prices)
        for i, t in enumerate(trades):
            assert dict(batch.fields(i)) == dict(t.fields)
            assert batch[i - len(trades)] == t  # negative indexes too
        assert batch[1:] == want[1:]
    assert batches.stats == events.stats


def test_a_batch_keeps_extra_fields_and_refuses_bad_indexes() -> None:
    wide = [*record("005930", "090000", "71000", "10", ["1"] * (WIDTH - 4)), "EXTRA"]
    decoder = FrameDecoder(trade_batches=True)
    [batch] = decoder.decode(f"0|H0STCNT0|002|{'^'.join(wide + wide)}")
    assert isinstance(batch, TradeBatch)
    assert batch.tr_id == "H0STCNT0"
    assert len(batch.fields(1)) == WIDTH + 1
    assert batch.fields(1)["field_47"] == "EXTRA"
    assert batch[1].fields["MKSC_SHRN_ISCD"] == "005930"
    with pytest.raises(IndexError):
        batch[2]
    with pytest.raises(IndexError):
        batch.fields(-3)
    assert "EXTRA" not in repr(batch)  # the fields stay out of the repr, as for Trade


def test_order_books_and_fills_are_not_batched() -> None:
    book = ["005930", "090000", "0", *["100"] * 40, *["0"] * 16]
    decoder = FrameDecoder(trade_batches=True)
    got = decoder.decode(f"0|H0STASP0|001|{'^'.join(book[:59])}")
    assert [type(e).__name__ for e in got] == ["OrderBook"]
