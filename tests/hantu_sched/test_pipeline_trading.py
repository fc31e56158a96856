"""The trading job and its reconciler against the fake KIS paper environment."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import pathlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hantu_sched import FakeClock, JobInterrupted, MemoryStorage
from hantu_sched.pipeline import (
    RECORD_FINAL_SELECTION,
    RECORD_ORDER,
    RECORD_TRADING,
    RECORD_TRADING_RECONCILE,
    PipelineConfig,
    TradingJob,
    TradingReconcileJob,
)
from hantu_sched.pipeline._orders import MAX_SEND_DELAY_S
from hantu_sched.testing import SimulatedCrash
from kisclient._config import ENDPOINTS
from kisclient.testing import Fault
from kisclient.testing._universe import round_to_tick

sys.path.append(str(pathlib.Path(__file__).parent))
from test_pipeline_support import (
    DAY,
    Harness,
    at,
    make_harness,
    put_selection,
    tradable_stocks,
)

ORDER_PATH = ENDPOINTS["order_cash"].path
CCLD_PATH = ENDPOINTS["inquire_daily_ccld"].path
PAPER = PipelineConfig(trading_mode="paper", top_n=4)
CASH = 100_000_000  # the fake's default account cash


class HookedStorage(MemoryStorage):
    """MemoryStorage that calls *hook(kind, key, payload)* before each ``put_record``."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[str, str, Any], None] | None = None

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        if self.hook is not None:
            self.hook(kind, key, payload)
        super().put_record(kind, key, payload)


class StoppingClock(FakeClock):
    """Sets *stop* once, when a wait would pass *stop_at* (a SIGTERM arriving mid-session)."""

    def __init__(self, start: dt.datetime, stop_at: dt.datetime, stop: threading.Event) -> None:
        super().__init__(start)
        self.stop_at: dt.datetime | None = stop_at
        self.stop = stop

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        if self.stop_at is not None and when >= self.stop_at:
            super().sleep_until(self.stop_at, cancel)
            self.stop_at = None
            self.stop.set()
        super().sleep_until(when, cancel)


@pytest.fixture
def harness(tmp_path: pathlib.Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, storage=HookedStorage())
    yield h
    h.close()


def select(harness: Harness, count: int = 4) -> list[str]:
    codes = tradable_stocks(harness.fake, count, max_price=2_000_000)
    put_selection(harness.storage, harness.batch_ids, codes)
    return codes


def records(harness: Harness) -> dict[str, dict[str, Any]]:
    prefix = f"{DAY.isoformat()}/"
    return {
        k.removeprefix(prefix): v for k, v in harness.storage.list_records(RECORD_ORDER).items()
    }


def test_dry_run_places_nothing_and_holds_until_the_close(harness: Harness) -> None:
    codes = select(harness)
    TradingJob(PipelineConfig(top_n=4))(harness.ctx("trading"))
    assert harness.fake.orders(harness.app.app_key) == []
    found = records(harness)
    assert sorted(found) == sorted(codes)
    for code, record in found.items():
        assert record["status"] == "dry-run"
        assert record["quantity"] == (CASH // 10) // harness.fake.price_of(code)
    assert harness.clock.now() == at("15:30")
    # Woken every 30 minutes on the clock, plus the pre-close step, then the close.
    expected = [at(f"{h:02d}:{m:02d}") for h in range(10, 16) for m in (0, 30)][1:-1]
    assert harness.clock.waits == [*expected, at("15:20"), at("15:30")]
    summary = harness.record(RECORD_TRADING)
    assert summary["mode"] == "dry-run"
    assert summary["selection"] == codes
    assert summary["finished_at"] == at("15:30").isoformat()
    final = harness.record(RECORD_FINAL_SELECTION)
    assert [i["code"] for i in final["items"]] == codes


def test_paper_orders_are_sized_from_the_balance_and_recorded_intent_first(
    harness: Harness,
) -> None:
    codes = select(harness)
    seen: list[tuple[str, str, int]] = []
    assert isinstance(harness.storage, HookedStorage)

    def hook(kind: str, key: str, payload: Any) -> None:
        if kind == RECORD_ORDER:
            seen.append((payload["code"], payload["status"], len(harness.order_codes())))

    harness.storage.hook = hook
    prices = {c: harness.fake.price_of(c) for c in codes}
    TradingJob(PAPER)(harness.ctx("trading"))
    orders = harness.fake.orders(harness.app.app_key)
    assert [o.code for o in orders] == codes
    for order in orders:
        assert order.qty == (CASH // 10) // prices[order.code]
        assert order.order_price == prices[order.code]  # a limit at the quoted price
    assert harness.fake.holdings(harness.app.app_key) == {o.code: o.qty for o in orders}
    # Every intent was stored while the fake had not seen that order yet.
    for index, code in enumerate(codes):
        assert (code, "intent", index) in seen
        assert (code, "sent", index + 1) in seen
    for code, record in records(harness).items():
        assert record["status"] == "sent"
        assert record["order_no"] == next(o.order_no for o in orders if o.code == code)


def test_position_sizing_never_spends_more_than_the_cash(harness: Harness) -> None:
    codes = select(harness, 3)
    config = PipelineConfig(trading_mode="paper", top_n=3, max_position_fraction=0.5)
    TradingJob(config)(harness.ctx("trading"))
    orders = harness.fake.orders(harness.app.app_key)
    spent = sum(o.qty * o.price for o in orders)
    assert spent <= CASH
    assert orders[0].qty == (CASH // 2) // harness.fake.price_of(codes[0])
    assert harness.fake.cash(harness.app.app_key) == CASH - spent >= 0
    summary = harness.record(RECORD_TRADING)
    assert set(summary["placed"]) | set(summary["skipped"]) == set(codes)


def test_an_unknown_outcome_is_reconciled_and_not_resent(harness: Harness) -> None:
    codes = select(harness)
    harness.fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    TradingJob(PAPER)(harness.ctx("trading"))
    assert harness.order_codes() == codes  # each code exactly once
    first = records(harness)[codes[0]]
    assert first["status"] == "reconciled"
    assert first["order_no"] == harness.fake.orders(harness.app.app_key)[0].order_no
    assert first["attempts"] == 1
    assert all(records(harness)[c]["status"] == "sent" for c in codes[1:])


def test_an_order_that_never_arrived_is_sent_once_more(harness: Harness) -> None:
    codes = select(harness, 2)
    harness.fake.faults.add(Fault("http_5xx_bare", path=ORDER_PATH))
    TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
    assert harness.order_codes() == codes
    first = records(harness)[codes[0]]
    assert (first["status"], first["attempts"]) == ("sent", 2)


def test_a_crash_between_sending_and_recording_is_reconciled(harness: Harness) -> None:
    codes = select(harness)
    assert isinstance(harness.storage, HookedStorage)

    def crash(kind: str, key: str, payload: Any) -> None:
        if kind == RECORD_ORDER and payload["code"] == codes[1] and payload["status"] == "sent":
            raise SimulatedCrash("process killed after sending, before recording")

    harness.storage.hook = crash
    with pytest.raises(SimulatedCrash):
        TradingJob(PAPER)(harness.ctx("trading"))
    harness.storage.hook = None
    assert harness.order_codes() == codes[:2]
    assert records(harness)[codes[1]]["status"] == "intent"  # the crash is visible

    harness.clock.advance(600)
    TradingReconcileJob(PAPER)(harness.ctx("trading", resume=True))
    assert records(harness)[codes[1]]["status"] == "reconciled"
    found = harness.record(RECORD_TRADING_RECONCILE)
    assert found["settled"] == {codes[1]: "reconciled"}
    assert sorted(found["ordered_codes"]) == sorted(codes[:2])
    assert set(found["holdings"]) == set(codes[:2])

    TradingJob(PAPER)(harness.ctx("trading", resume=True, attempt=2))
    assert collections.Counter(harness.order_codes()) == dict.fromkeys(codes, 1)
    summary = harness.record(RECORD_TRADING)
    assert summary["resumed"] is True
    assert set(summary["skipped"]) == set(codes[:2])


def test_a_stop_interrupts_the_settle_wait_and_leaves_the_record_unsettled(
    tmp_path: pathlib.Path,
) -> None:
    """After a crash between journalling the intent and sending, the reconciler must wait out
    the settle window (intent + MAX_SEND_DELAY_S) before absence is certain. That wait is on the
    job's clock: a stop ends it at once, the record stays ``intent`` (counted as ordered) and
    nothing is sent; the next run waits the window out and finds the order absent."""
    stop = threading.Event()
    storage = HookedStorage()
    clock = StoppingClock(at("10:00"), at("10:00:30"), stop)
    harness = make_harness(tmp_path, clock=clock, storage=storage)
    harness.stop = stop
    try:
        [code] = select(harness, 1)

        def crash_before_sending(kind: str, key: str, payload: Any) -> None:
            if kind == RECORD_ORDER and payload["status"] == "intent":
                storage.hook = None
                storage.put_record(kind, key, payload)
                raise SimulatedCrash("process killed after the intent, before sending")

        storage.hook = crash_before_sending
        with pytest.raises(SimulatedCrash):
            TradingJob(PAPER)(harness.ctx("trading"))
        assert harness.order_codes() == []
        intent_at = dt.datetime.fromisoformat(records(harness)[code]["intent_at"])

        with pytest.raises(JobInterrupted):
            TradingReconcileJob(PAPER)(harness.ctx("trading", resume=True))
        assert harness.clock.now() == at("10:00:30")  # stopped mid-window, not at its end
        assert records(harness)[code]["status"] == "intent"
        assert harness.order_codes() == []

        stop.clear()
        TradingReconcileJob(PAPER)(harness.ctx("trading", resume=True, attempt=2))
        record = records(harness)[code]
        assert record["status"] == "absent"
        assert harness.clock.now() >= intent_at + dt.timedelta(seconds=MAX_SEND_DELAY_S)
        assert harness.order_codes() == []
    finally:
        harness.close()


def test_a_stop_while_a_lost_answer_is_reconciled_ends_trading_at_once(
    tmp_path: pathlib.Path,
) -> None:
    stop = threading.Event()
    harness = make_harness(tmp_path, clock=StoppingClock(at("10:00"), at("10:00:10"), stop))
    harness.stop = stop
    try:
        codes = select(harness, 2)
        harness.fake.faults.add(Fault("drop_before", path=ORDER_PATH))  # never arrives
        with pytest.raises(JobInterrupted):
            TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
        assert harness.clock.now() == at("10:00:10")  # inside the settle window
        assert records(harness)[codes[0]]["status"] == "unknown"  # counted as ordered
        assert codes[1] not in records(harness)  # nothing after the stop
        assert harness.order_codes() == []

        stop.clear()
        TradingReconcileJob(PAPER)(harness.ctx("trading", resume=True))
        assert records(harness)[codes[0]]["status"] == "absent"
        TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(
            harness.ctx("trading", resume=True, attempt=2)
        )
        assert collections.Counter(harness.order_codes()) == dict.fromkeys(codes, 1)
    finally:
        harness.close()


def test_resume_never_orders_a_code_twice_even_without_records(tmp_path: pathlib.Path) -> None:
    stop = threading.Event()
    clock = StoppingClock(at("10:00"), at("10:30"), stop)
    harness = make_harness(tmp_path, clock=clock)
    harness.stop = stop
    try:
        codes = select(harness)
        with pytest.raises(JobInterrupted):
            TradingJob(PAPER)(harness.ctx("trading"))
        assert harness.order_codes() == codes
        # Same account, a storage that lost every record: today's orders from KIS still rule.
        stop.clear()
        harness.storage = MemoryStorage()
        put_selection(harness.storage, harness.batch_ids, codes)
        TradingJob(PAPER)(harness.ctx("trading", resume=True))
        assert harness.order_codes() == codes
        summary = harness.record(RECORD_TRADING)
        assert summary["placed"] == {}
        assert set(summary["skipped"]) == set(codes)
        assert harness.clock.now() == at("15:30")
    finally:
        harness.close()


def test_trading_waits_for_the_open(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, start=at("08:30"))
    try:
        select(harness, 2)
        TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
        assert harness.clock.waits[0] == at("09:00")
        assert all(o.time >= at("09:00") for o in harness.fake.orders(harness.app.app_key))
        assert len(harness.order_codes()) == 2
    finally:
        harness.close()


@pytest.mark.parametrize("behind_s", [3, 300])
def test_a_host_clock_ahead_of_kis_waits_for_the_open_on_kis_clock(
    tmp_path: pathlib.Path, behind_s: int
) -> None:
    """KIS's clock runs *behind_s* s behind the host's: orders go out after KIS's open, not at
    the host's 09:00 into a "market closed" refusal that would end the day's trading."""
    harness = make_harness(tmp_path, start=at("08:30"), kis_offset_s=-behind_s)
    try:
        select(harness, 2)
        TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
        orders = harness.fake.orders(harness.app.app_key)
        assert len(orders) == 2, harness.record(RECORD_TRADING)
        assert all(o.time >= at("09:00") for o in orders)  # the fake stamps on KIS's clock
        assert harness.record(RECORD_TRADING)["skipped"] == {}
    finally:
        harness.close()


def test_after_the_close_trading_does_nothing(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, start=at("15:45"))
    try:
        select(harness)
        TradingJob(PAPER)(harness.ctx("trading"))
        assert harness.order_codes() == []
        assert harness.record(RECORD_TRADING)["placed"] == {}
    finally:
        harness.close()


def test_paper_mode_refuses_a_real_client(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, env="real")
    try:
        select(harness)
        with pytest.raises(ValueError, match="paper-environment client"):
            TradingJob(PAPER)(harness.ctx("trading"))
        assert harness.order_codes() == []
    finally:
        harness.close()


def test_trading_refuses_a_partial_selection(harness: Harness) -> None:
    codes = tradable_stocks(harness.fake, 2)
    harness.storage.put_selection(DAY, "1", [{"code": codes[0], "score": 0.1}])
    with pytest.raises(RuntimeError, match="never starts on a partial selection"):
        TradingJob(PAPER)(harness.ctx("trading"))
    assert harness.order_codes() == []


def test_a_stop_request_ends_the_holding_phase(tmp_path: pathlib.Path) -> None:
    stop = threading.Event()
    clock = StoppingClock(at("10:00"), at("12:15"), stop)
    harness = make_harness(tmp_path, clock=clock)
    harness.stop = stop
    try:
        codes = select(harness, 2)
        with pytest.raises(JobInterrupted):
            TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
        assert harness.clock.now() == at("12:15")
        assert harness.order_codes() == codes
    finally:
        harness.close()


def test_own_unfilled_orders_are_cancelled_before_the_close(harness: Harness) -> None:
    code = tradable_stocks(harness.fake, 1)[0]
    low = round_to_tick(harness.fake.price_of(code) * 0.8)  # inside the daily band
    result = harness.kis.order_cash("buy", code, 3, low)  # rests: the limit is far below
    harness.storage.put_record(
        RECORD_ORDER,
        f"{DAY.isoformat()}/{code}",
        {"code": code, "status": "sent", "order_no": result.order_no},
    )
    put_selection(harness.storage, harness.batch_ids, [])
    TradingJob(PAPER)(harness.ctx("trading"))
    (order,) = harness.fake.orders(harness.app.app_key)
    assert order.cancelled_qty == 3
    assert at("15:20") in harness.clock.waits
    summary = harness.record(RECORD_TRADING)
    assert summary["cancelled_before_close"] == [result.order_no]


def test_an_order_whose_outcome_stays_unknown_is_never_resent(harness: Harness) -> None:
    codes = select(harness, 2)
    assert isinstance(harness.storage, HookedStorage)
    seen: list[str] = []

    def fail_lookups(kind: str, key: str, payload: Any) -> None:
        if kind == RECORD_ORDER and payload["code"] == codes[0]:
            seen.append(payload["status"])
            if payload["status"] == "unknown" and len(seen) == 2:  # the answer was just lost
                harness.fake.faults.add(Fault("http_5xx_bare", path=CCLD_PATH, times=10_000))

    harness.storage.hook = fail_lookups
    harness.fake.faults.add(Fault("drop_before", path=ORDER_PATH))  # it never arrives...
    TradingJob(PipelineConfig(trading_mode="paper", top_n=2))(harness.ctx("trading"))
    # ...but no look-up can tell: "unknown" is not "absent", and unknown is never resent.
    assert harness.order_codes() == codes[1:]
    assert seen == ["intent", "unknown", "unknown"]
    assert records(harness)[codes[0]]["attempts"] == 1
    assert harness.record(RECORD_TRADING)["placed"][codes[0]] == "unknown"
    # Once look-ups work again, long after the settle window, absence is certain.
    harness.fake.faults.clear()
    TradingReconcileJob(PAPER)(harness.ctx("trading", resume=True))
    assert records(harness)[codes[0]]["status"] == "absent"
    assert harness.order_codes() == codes[1:]


# --- fill notices (the client's stream) ---------------------------------------------------------

NOTICES = PipelineConfig(trading_mode="paper", top_n=4, fill_notices=True)


def test_fill_notices_and_polling_both_record_every_fill(tmp_path: pathlib.Path) -> None:
    h = make_harness(tmp_path, stream=True)
    try:
        codes = select(h)
        TradingJob(NOTICES)(h.ctx("trading"))
        assert h.ws is not None
        stats = h.ws.stats
    finally:
        h.close()
    orders = h.fake.orders(h.app.app_key)
    assert [o.code for o in orders] == codes
    run = h.record(RECORD_TRADING)
    expected = {o.order_no: o.qty for o in orders}
    assert run["polled_fills"] == expected
    assert run["notice_fills"] == expected  # every fill also arrived as a notice
    assert stats.registrations == 1  # the paper notices (H0STCNI9) under the app's HTS id
    assert stats.notices >= 2 * len(orders)  # an acceptance and a fill per order


def test_without_an_hts_id_trading_polls_only(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(tmp_path, stream=True, hts_id=False)
    try:
        select(h)
        with caplog.at_level(logging.WARNING):
            TradingJob(NOTICES)(h.ctx("trading"))
    finally:
        h.close()
    run = h.record(RECORD_TRADING)
    assert run["notice_fills"] == {}
    assert len(run["polled_fills"]) == 4
    assert any("fill notices unavailable" in r.getMessage() for r in caplog.records)


def test_a_stream_already_open_on_the_app_key_leaves_trading_on_polling(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(tmp_path, stream=True)
    try:
        select(h)
        with h.kis.stream(), caplog.at_level(logging.WARNING):  # the session is taken
            TradingJob(NOTICES)(h.ctx("trading"))
    finally:
        h.close()
    assert len(h.record(RECORD_TRADING)["polled_fills"]) == 4
    warnings = [
        r.getMessage() for r in caplog.records if "fill notices unavailable" in r.getMessage()
    ]
    assert warnings and "slot" in warnings[0] and "one session per app key" in warnings[0]
