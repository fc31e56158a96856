"""Issue 9, "an order is never sent twice": one scenario per item, at the hantu_sched level.

Each test drives the real trading job, its reconciler or market close, with a real
:class:`~kisclient.KISClient`, against the in-process :class:`~kisclient.testing.FakeKIS` on one
:class:`~hantu_sched.FakeClock` (the fake possibly on an :class:`~kisclient.testing.OffsetClock`
of it), and checks the fake's own order book (``FakeKIS.orders``): exactly one order per code,
no order record ever ``absent`` while its order could still land, hand-placed orders untouched.
"""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
import sys
from typing import Any

import httpx
import pytest

from hantu_sched import FakeClock, MemoryStorage
from hantu_sched.pipeline import (
    RECORD_MARKET_CLOSE,
    RECORD_ORDER,
    RECORD_TRADING_RECONCILE,
    UNIVERSE_SERVICE,
    MarketCloseJob,
    PipelineConfig,
    TradingJob,
    TradingReconcileJob,
)
from hantu_sched.testing import SimulatedCrash
from kisclient import KISClient, RetryPolicy
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, Fault, OffsetClock
from kisclient.testing._universe import round_to_tick

sys.path.append(str(pathlib.Path(__file__).parents[1] / "hantu_sched"))
from test_pipeline_support import DAY, Harness, at, put_selection, tradable_stocks

ORDER_PATH = ENDPOINTS["order_cash"].path
PAPER = PipelineConfig(trading_mode="paper", top_n=2)
TIMEOUT_S = 10.0


class WatchedStorage(MemoryStorage):
    """MemoryStorage that remembers every status each order record passed through."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, list[str]] = collections.defaultdict(list)

    def put_record(self, kind: str, key: str, payload: Any) -> None:
        if kind == RECORD_ORDER and isinstance(payload, dict) and "status" in payload:
            self.statuses[key.rsplit("/", 1)[-1]].append(str(payload["status"]))
        super().put_record(kind, key, payload)


class KillingTransport(httpx.BaseTransport):
    """Kills "the process" on the first order-cash request: ``before_send`` (the intent is
    journalled, nothing left) or ``in_flight`` (the request left; no answer before the kill)."""

    def __init__(self, inner: httpx.BaseTransport, when: str) -> None:
        self._inner = inner
        self._when = when
        self.armed = True

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not (self.armed and request.url.path.endswith(ORDER_PATH)):
            return self._inner.handle_request(request)
        self.armed = False
        if self._when == "before_send":
            raise SimulatedCrash("killed before the order left")
        try:
            return self._inner.handle_request(request)
        except httpx.TimeoutException:
            raise SimulatedCrash("killed with the order in flight") from None


def client(h: Harness, transport: httpx.BaseTransport | None = None) -> KISClient:
    """A new client (a restarted process has a new one) on the harness' clock and fake."""
    return KISClient(
        h.app.app_key,
        h.app.app_secret,
        env=h.app.env,
        account=h.app.account,
        state_dir=h.data_dir / "kis-state",
        transport=transport or h.fake.transport(),
        clock=h.clock,
        timeout=TIMEOUT_S,
        rate_limits=[],
        retry=RetryPolicy(jitter=False),
    )


def make(tmp_path: pathlib.Path, *, kis_ahead_s: float = 0.0, start: str = "10:00") -> Harness:
    """The pipeline harness with KIS's clock *kis_ahead_s* ahead of the host's."""
    clock = FakeClock(at(start))
    fake_clock = OffsetClock(clock, kis_ahead_s) if kis_ahead_s else clock
    fake = FakeKIS(
        clock=fake_clock, seed=11, universe_size=120, rate_limits={"real": None, "paper": None}
    )
    app = fake.add_app(env="paper")
    h = Harness(fake, clock, app, None, WatchedStorage(), tmp_path)  # type: ignore[arg-type]
    h.kis = client(h)
    h.extra_services[UNIVERSE_SERVICE] = fake.universe
    return h


def once_each(h: Harness, codes: list[str]) -> bool:
    return collections.Counter(h.order_codes()) == dict.fromkeys(codes, 1)


def statuses(h: Harness) -> dict[str, list[str]]:
    assert isinstance(h.storage, WatchedStorage)
    return h.storage.statuses


def record(h: Harness, code: str) -> dict[str, Any]:
    found = h.storage.get_record(RECORD_ORDER, f"{DAY.isoformat()}/{code}")
    assert isinstance(found, dict)
    return found


def test_item_1_a_gateway_slower_than_the_timeout_never_gets_a_second_order(
    tmp_path: pathlib.Path,
) -> None:
    """Item 1: the order's answer takes 40 s (timeout 10 s); the job must wait, not resend."""
    h = make(tmp_path)
    codes = tradable_stocks(h.fake, 2, max_price=2_000_000)
    put_selection(h.storage, h.batch_ids, codes)
    h.fake.faults.add(Fault("latency", path=ORDER_PATH, delay_s=40.0))
    TradingJob(PAPER)(h.ctx("trading"))
    assert once_each(h, codes)
    first = record(h, codes[0])
    assert (first["status"], first["attempts"]) == ("reconciled", 1)
    assert first["order_no"] == h.fake.orders(h.app.app_key)[0].order_no
    assert "absent" not in statuses(h)[codes[0]]
    h.kis.close()


@pytest.mark.parametrize("restart_with", ["reconciler", "trading"])
def test_item_2_a_restart_before_the_in_flight_order_lands_does_not_buy_again(
    tmp_path: pathlib.Path, restart_with: str
) -> None:
    """Item 2: killed with an order in flight (it lands 45 s after it left); restarted at once."""
    h = make(tmp_path)
    codes = tradable_stocks(h.fake, 2, max_price=2_000_000)
    put_selection(h.storage, h.batch_ids, codes)
    h.kis = client(h, KillingTransport(h.fake.transport(), "in_flight"))
    h.fake.faults.add(Fault("latency", path=ORDER_PATH, delay_s=45.0))
    sent = h.clock.now()
    with pytest.raises(SimulatedCrash):
        TradingJob(PAPER)(h.ctx("trading"))
    assert record(h, codes[0])["status"] == "intent"
    assert h.fake.orders(h.app.app_key) == []  # still on its way
    h.kis.close()
    h.kis = client(h)  # the restarted process
    if restart_with == "reconciler":
        TradingReconcileJob(PAPER)(h.ctx("trading", resume=True))
        assert h.record(RECORD_TRADING_RECONCILE)["settled"] == {codes[0]: "reconciled"}
    TradingJob(PAPER)(h.ctx("trading", resume=True, attempt=2))
    assert once_each(h, codes)
    assert record(h, codes[0])["order_no"] == h.fake.orders(h.app.app_key)[0].order_no
    assert "absent" not in statuses(h)[codes[0]]
    assert h.clock.now() >= sent + dt.timedelta(seconds=45)  # it waited for the landing
    h.kis.close()


@pytest.mark.parametrize("kis_ahead_s", [-61.0, -300.0])
def test_item_3_a_host_clock_off_by_a_minute_or_more_still_finds_the_order(
    tmp_path: pathlib.Path, kis_ahead_s: float
) -> None:
    """Item 3: the host clock is ≥61 s off KIS's; an executed order whose answer was lost."""
    h = make(tmp_path, kis_ahead_s=kis_ahead_s)
    codes = tradable_stocks(h.fake, 2, max_price=2_000_000)
    put_selection(h.storage, h.batch_ids, codes)
    h.fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    TradingJob(PAPER)(h.ctx("trading"))
    assert once_each(h, codes)
    assert record(h, codes[0])["status"] == "reconciled"
    assert "absent" not in statuses(h)[codes[0]]
    h.kis.close()


def journal_intent(h: Harness, code: str, qty: int, price: int | None) -> None:
    """The order record a trading run killed after journalling, before sending, leaves."""
    now = h.clock.now().isoformat()
    h.storage.put_record(
        RECORD_ORDER,
        f"{DAY.isoformat()}/{code}",
        {
            "trading_date": DAY.isoformat(),
            "code": code,
            "side": "buy",
            "quantity": qty,
            "price": price,
            "order_type": "limit" if price else "market",
            "status": "intent",
            "attempts": 1,
            "intent_at": now,
            "intent_at_kis": now,
        },
    )


def test_item_5_a_cancellation_row_is_not_the_lost_market_order(tmp_path: pathlib.Path) -> None:
    """Item 5: a hand-placed same-size order, cancelled, must not pass for the lost order."""
    h = make(tmp_path)
    code = tradable_stocks(h.fake, 1, max_price=2_000_000)[0]
    config = PipelineConfig(trading_mode="paper", top_n=1, order_type="market")
    qty = (100_000_000 // 10) // h.fake.price_of(code)
    low = round_to_tick(h.fake.price_of(code) * 0.8)
    by_hand = h.kis.order_cash("buy", code, qty, low)
    h.kis.cancel_order(next(o for o in h.kis.get_daily_orders() if o.order_no == by_hand.order_no))
    h.clock.advance(20)
    journal_intent(h, code, qty, None)  # a market buy of the same size, never sent
    TradingReconcileJob(config)(h.ctx("trading", resume=True))
    assert record(h, code)["status"] == "absent"  # never arrived: not "reconciled"
    assert record(h, code).get("order_no") is None
    assert [o.order_no for o in h.fake.orders(h.app.app_key)] == [by_hand.order_no]
    h.kis.close()


def test_item_5_an_identical_order_20_s_earlier_is_not_the_lost_one(
    tmp_path: pathlib.Path,
) -> None:
    """Item 5: the same limit order, filled 20 s before the lost one, must not match it."""
    h = make(tmp_path)
    code = tradable_stocks(h.fake, 1, max_price=2_000_000)[0]
    config = PipelineConfig(trading_mode="paper", top_n=1)
    price = h.fake.price_of(code)
    qty = (100_000_000 // 10) // price
    earlier = h.kis.order_cash("buy", code, qty, price)  # identical, filled at once
    h.clock.advance(20)
    journal_intent(h, code, qty, price)  # the same limit order, never sent
    TradingReconcileJob(config)(h.ctx("trading", resume=True))
    found = record(h, code)
    assert found["status"] == "absent" and found.get("order_no") is None
    assert [o.order_no for o in h.fake.orders(h.app.app_key)] == [earlier.order_no]
    h.kis.close()


def test_item_15_market_close_cancels_only_the_strategys_own_orders(
    tmp_path: pathlib.Path,
) -> None:
    """Item 15: market close cancels the strategy's resting orders, never hand-placed ones."""
    h = make(tmp_path)
    codes = tradable_stocks(h.fake, 3)
    low = {c: round_to_tick(h.fake.price_of(c) * 0.8) for c in codes}
    mine = h.kis.order_cash("buy", codes[0], 2, low[codes[0]]).order_no
    h.storage.put_record(
        RECORD_ORDER,
        f"{DAY.isoformat()}/{codes[0]}",
        {"code": codes[0], "status": "sent", "order_no": mine},
    )
    # A strategy order whose answer was lost (record "unknown", no order number yet).
    sent = h.clock.now().isoformat()
    h.fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    with pytest.raises(Exception, match="outcome unknown"):
        h.kis.order_cash("buy", codes[1], 3, low[codes[1]])
    h.storage.put_record(
        RECORD_ORDER,
        f"{DAY.isoformat()}/{codes[1]}",
        {
            "code": codes[1],
            "side": "buy",
            "quantity": 3,
            "price": low[codes[1]],
            "status": "unknown",
            "intent_at": sent,
            "intent_at_kis": sent,
        },
    )
    by_hand = h.kis.order_cash("buy", codes[2], 1, low[codes[2]]).order_no  # no record
    lost = next(o.order_no for o in h.fake.orders(h.app.app_key) if o.code == codes[1])
    h.clock.set(at("15:00"))
    MarketCloseJob(PipelineConfig(trading_mode="paper"))(h.ctx("market_close"))
    orders = {o.order_no: o for o in h.fake.orders(h.app.app_key)}
    assert orders[by_hand].cancelled_qty == 0 and orders[by_hand].open_qty == 1
    assert orders[mine].cancelled_qty == 2 and orders[lost].cancelled_qty == 3
    summary = h.record(RECORD_MARKET_CLOSE)
    assert sorted(summary["cancelled"]) == sorted([mine, lost])
    assert summary["left_alone"] == [by_hand]
    h.kis.close()
