"""The market_close job: cancel unfilled orders (paper), snapshot the balance (every mode)."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

from hantu_sched.pipeline import (
    RECORD_BALANCE_SNAPSHOT,
    RECORD_MARKET_CLOSE,
    RECORD_ORDER,
    MarketCloseJob,
    PipelineConfig,
)
from kisclient.testing._universe import round_to_tick

sys.path.append(str(pathlib.Path(__file__).parent))
from test_pipeline_support import DAY, Harness, at, make_harness, tradable_stocks

PAPER = PipelineConfig(trading_mode="paper")


@pytest.fixture
def harness(tmp_path: pathlib.Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, start=at("10:00"))
    yield h
    h.close()


def record_order(harness: Harness, code: str, order_no: str) -> None:
    """The order record trading leaves for an order it placed."""
    harness.storage.put_record(
        RECORD_ORDER,
        f"{DAY.isoformat()}/{code}",
        {"code": code, "status": "sent", "order_no": order_no},
    )


def place_resting_and_filled(harness: Harness) -> tuple[list[str], str]:
    """Two resting limit orders far below the price, and one filled at the price, all placed by
    the strategy (each has its order record)."""
    codes = tradable_stocks(harness.fake, 3)
    resting = []
    for code in codes[:2]:
        low = round_to_tick(harness.fake.price_of(code) * 0.8)
        resting.append(harness.kis.order_cash("buy", code, 2, low).order_no)
        record_order(harness, code, resting[-1])
    price = harness.fake.price_of(codes[2])
    record_order(harness, codes[2], harness.kis.order_cash("buy", codes[2], 5, price).order_no)
    return resting, codes[2]


def test_paper_cancels_open_orders_and_snapshots(harness: Harness) -> None:
    resting, held = place_resting_and_filled(harness)
    harness.clock.set(at("15:00"))  # still in session: KIS accepts cancels
    MarketCloseJob(PAPER)(harness.ctx("market_close"))
    orders = {o.order_no: o for o in harness.fake.orders(harness.app.app_key)}
    assert all(orders[n].open_qty == 0 and orders[n].cancelled_qty == 2 for n in resting)
    assert sum(o.filled_qty for o in orders.values()) == 5
    summary = harness.record(RECORD_MARKET_CLOSE)
    assert sorted(summary["cancelled"]) == sorted(resting)
    assert summary["market_closed"] is False
    snapshot = harness.record(RECORD_BALANCE_SNAPSHOT)
    cash = harness.fake.cash(harness.app.app_key)
    assert snapshot["date"] == DAY.isoformat()
    assert snapshot["cash"] == cash
    value = 5 * harness.fake.price_of(held)
    assert snapshot["total_value"] == snapshot["net_assets"] == cash + value
    (holding,) = snapshot["holdings"]
    assert (holding["code"], holding["quantity"], holding["value"]) == (held, 5, value)
    # A second run finds nothing left to cancel and replaces the snapshot.
    MarketCloseJob(PAPER)(harness.ctx("market_close"))
    assert harness.record(RECORD_MARKET_CLOSE)["cancelled"] == []


def test_dry_run_cancels_nothing_but_still_snapshots(harness: Harness) -> None:
    resting, _ = place_resting_and_filled(harness)
    harness.clock.set(at("15:00"))
    MarketCloseJob(PipelineConfig())(harness.ctx("market_close"))
    orders = {o.order_no: o for o in harness.fake.orders(harness.app.app_key)}
    assert all(orders[n].open_qty == 2 for n in resting)
    summary = harness.record(RECORD_MARKET_CLOSE)
    assert summary["cancelled"] == []
    assert sorted(summary["open_orders"]) == sorted(resting)
    assert harness.record(RECORD_BALANCE_SNAPSHOT) is not None


def test_after_the_close_refused_cancels_are_recorded_not_fatal(harness: Harness) -> None:
    resting, _ = place_resting_and_filled(harness)
    harness.clock.set(at("16:00"))  # the default market_close time: KIS refuses cancels now
    MarketCloseJob(PAPER)(harness.ctx("market_close"))
    summary = harness.record(RECORD_MARKET_CLOSE)
    assert summary["market_closed"] is True
    assert summary["cancelled"] == []
    assert sorted(summary["open_orders"]) == sorted(resting)
    assert harness.record(RECORD_BALANCE_SNAPSHOT) is not None


def test_empty_account_snapshot(harness: Harness) -> None:
    harness.clock.set(at("16:00"))
    MarketCloseJob(PAPER)(harness.ctx("market_close"))
    snapshot = harness.record(RECORD_BALANCE_SNAPSHOT)
    assert snapshot["holdings"] == []
    assert snapshot["cash"] == snapshot["net_assets"] == 100_000_000


def test_orders_placed_by_hand_are_left_alone(harness: Harness) -> None:
    resting, _ = place_resting_and_filled(harness)
    code = tradable_stocks(harness.fake, 4)[3]
    low = round_to_tick(harness.fake.price_of(code) * 0.8)
    by_hand = harness.kis.order_cash("buy", code, 1, low).order_no  # no order record
    harness.clock.set(at("15:00"))
    MarketCloseJob(PAPER)(harness.ctx("market_close"))
    orders = {o.order_no: o for o in harness.fake.orders(harness.app.app_key)}
    assert orders[by_hand].open_qty == 1 and orders[by_hand].cancelled_qty == 0
    assert all(orders[n].cancelled_qty == 2 for n in resting)
    summary = harness.record(RECORD_MARKET_CLOSE)
    assert sorted(summary["cancelled"]) == sorted(resting)
    assert summary["left_alone"] == [by_hand]
