"""Resting limit orders fill when the fake's moving price reaches them (issue 13).

With ``moving_prices`` the fake's price follows a deterministic intraday path; a limit order
that did not cross when placed rests until the path reaches its limit (buy: at or below, sell:
at or above), then fills at its limit, stamped at that second. The fake evaluates this lazily,
whenever it is asked (no thread), so what has filled at a moment depends on the clock alone.
The real clients are driven through the fake, in-process and over loopback; the moments and
limits come from the fake's public path (:meth:`FakeKIS.price_at`).
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.sync.client import connect

from kisclient import KST, FakeClock, KISClient
from kisclient.testing import FakeKIS, FakeKISServer, FakeWSServer, OrderEvent
from kisclient.testing._universe import tick_size
from kisclient.testing._ws_records import NOTICE_FIELDS

sys.path.append(str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent))
from test_fake_support import FakeHarness
from test_fake_ws import _notice, approval, ask, request

from kis_support import NO_JITTER, SESSION_TIME, sync_client

CODE = "005930"
#: How far ahead the tests look for a price the path reaches.
WINDOW = dt.timedelta(hours=2)
#: From SESSION_TIME (10:00) to the close.
REST_OF_DAY = dt.timedelta(hours=5, minutes=30)


def _path(fake: FakeKIS, start: dt.datetime, span: dt.timedelta) -> list[tuple[dt.datetime, int]]:
    """(moment, price) for every whole second in (start, start + span]."""
    seconds = int(span.total_seconds())
    moments = [start + dt.timedelta(seconds=s) for s in range(1, seconds + 1)]
    return [(moment, fake.price_at(CODE, moment)) for moment in moments]


def _first(path: list[tuple[dt.datetime, int]], reached: int, side: str) -> dt.datetime:
    """The first moment of *path* whose price reaches *reached* for a *side* limit."""
    return next(
        moment
        for moment, price in path
        if (price <= reached if side == "buy" else price >= reached)
    )


def _moving(clock: FakeClock | None = None) -> tuple[FakeKIS, FakeClock]:
    clock = clock or FakeClock(SESSION_TIME)
    return FakeKIS(clock=clock, seed=7, moving_prices=True), clock


def _fills(fake: FakeKIS) -> list[OrderEvent]:
    events: list[OrderEvent] = []
    fake.on_order_event(lambda event: events.append(event) if event.kind == "filled" else None)
    return events


@pytest.fixture(name="fake_and_clock")
def _fake_and_clock() -> tuple[FakeKIS, FakeClock]:
    return _moving()


def test_a_resting_buy_fills_at_its_limit_when_the_path_comes_down_to_it(
    fake_and_clock: tuple[FakeKIS, FakeClock], tmp_path: pathlib.Path
) -> None:
    fake, clock = fake_and_clock
    app = fake.add_app("real")
    fills = _fills(fake)
    path = _path(fake, SESSION_TIME, WINDOW)
    limit = min(price for _, price in path)
    assert limit < fake.price_of(CODE)  # it rests when placed
    reached = _first(path, limit, "buy")
    with sync_client(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", CODE, 3, limit)
        cash = kis.get_balance().summary.cash
        clock.set(reached - dt.timedelta(seconds=1))
        [before] = kis.get_daily_orders()
        assert (before.order_no, before.filled_quantity) == (placed.order_no, 0)
        clock.set(reached)
        [after] = kis.get_daily_orders()
        balance = kis.get_balance()
    assert (after.filled_quantity, after.avg_fill_price) == (3, Decimal(limit))
    assert balance.summary.cash == cash - 3 * limit
    assert [(h.code, h.quantity) for h in balance.held] == [(CODE, 3)]
    assert [(e.order_no, e.fill_qty, e.fill_price, e.time) for e in fills] == [
        (placed.order_no, 3, limit, reached)
    ]


def test_a_resting_sell_fills_when_the_path_rises_to_it(
    fake_and_clock: tuple[FakeKIS, FakeClock], tmp_path: pathlib.Path
) -> None:
    fake, clock = fake_and_clock
    app = fake.add_app("real")
    fake.seed_holdings(app.app_key, {CODE: 5})
    path = _path(fake, SESSION_TIME, REST_OF_DAY)
    limit = max(price for _, price in path)
    assert limit > fake.price_of(CODE)
    reached = _first(path, limit, "sell")
    with sync_client(fake, app, clock, tmp_path) as kis:
        cash = kis.get_balance().summary.cash
        kis.order_cash("sell", CODE, 5, limit)
        clock.set(reached - dt.timedelta(seconds=1))
        assert kis.get_balance().summary.cash == cash
        clock.set(reached + dt.timedelta(minutes=5))
        balance = kis.get_balance()
    assert balance.summary.cash == cash + 5 * limit
    assert balance.is_empty


def _ladder(fake: FakeKIS, limits: list[int]) -> tuple[str, list[OrderEvent]]:
    """A new app of *fake* with one resting 1-share buy at each of *limits*; its app key and
    the fill events to come."""
    app = fake.add_app("real")
    fills = _fills(fake)
    harness = FakeHarness(fake, None)
    for limit in limits:
        body = {
            "CANO": app.cano,
            "ACNT_PRDT_CD": app.acnt_prdt_cd,
            "PDNO": CODE,
            "ORD_DVSN": "00",
            "ORD_QTY": "1",
            "ORD_UNPR": str(limit),
        }
        answer = harness.call(app, "order_cash", json=body, side="buy").json()
        assert answer["rt_cd"] == "0", answer
    harness.close()
    return app.app_key, fills


def test_what_has_filled_depends_on_the_clock_not_on_how_often_the_fake_is_asked() -> None:
    polled, polled_clock = _moving()
    asked_once, once_clock = _moving()
    path = _path(polled, SESSION_TIME, WINDOW)
    ladder = sorted({price for _, price in path if price < polled.price_of(CODE)})[:4]
    assert len(ladder) >= 2
    polled_key, polled_fills = _ladder(polled, ladder)
    once_key, once_fills = _ladder(asked_once, ladder)
    while polled_clock.now() < SESSION_TIME + WINDOW:
        polled_clock.advance(37)
        polled.cash(polled_key)  # an inquiry: the fake looks at its orders
    once_clock.set(polled_clock.now())
    assert asked_once.cash(once_key) == polled.cash(polled_key)
    seen = [(e.order_no, e.fill_price, e.time) for e in polled_fills]
    assert seen == [(e.order_no, e.fill_price, e.time) for e in once_fills]
    assert sorted(price for _, price, _ in seen) == ladder  # each filled once, at its limit
    assert [moment for _, _, moment in seen] == sorted(moment for _, _, moment in seen)


def test_a_limit_the_path_never_reaches_keeps_resting(
    fake_and_clock: tuple[FakeKIS, FakeClock], tmp_path: pathlib.Path
) -> None:
    fake, clock = fake_and_clock
    app = fake.add_app("real")
    path = _path(fake, SESSION_TIME, WINDOW)
    limit = min(price for _, price in path) - 100
    with sync_client(fake, app, clock, tmp_path) as kis:
        kis.order_cash("buy", CODE, 2, limit)
        clock.set(SESSION_TIME + WINDOW)
        [order] = kis.get_daily_orders()
        pending = kis.get_pending_orders()
    assert (order.filled_quantity, order.remaining_quantity) == (0, 2)
    assert [p.order_no for p in pending] == [order.order_no]


def test_without_moving_prices_a_resting_order_waits_for_set_price(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(SESSION_TIME)
    fake = FakeKIS(clock=clock, seed=7)
    app = fake.add_app("real")
    low = fake.price_of(CODE) - 500
    with sync_client(fake, app, clock, tmp_path) as kis:
        kis.order_cash("buy", CODE, 1, low)
        clock.advance(WINDOW.total_seconds())
        assert kis.get_daily_orders()[0].filled_quantity == 0
        fake.set_price(CODE, low)
        assert kis.get_daily_orders()[0].filled_quantity == 1


def test_a_path_fill_is_seen_over_loopback(tmp_path: pathlib.Path) -> None:
    fake, clock = _moving()
    app = fake.add_app("real")
    path = _path(fake, SESSION_TIME, WINDOW)
    limit = min(price for _, price in path)
    reached = _first(path, limit, "buy")
    with (
        FakeKISServer(fake) as server,
        KISClient(
            app.app_key,
            app.app_secret,
            env="real",
            account=app.account,
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
            clock=clock,
            retry=NO_JITTER,
        ) as kis,
    ):
        kis.order_cash("buy", CODE, 4, limit)
        clock.set(reached - dt.timedelta(seconds=1))
        assert kis.get_daily_orders()[0].filled_quantity == 0
        clock.set(reached)
        [order] = kis.get_daily_orders()
    assert (order.filled_quantity, order.avg_fill_price) == (4, Decimal(limit))


@pytest.fixture(name="ws_fake")
def _ws_fake() -> Iterator[tuple[FakeKIS, FakeClock, FakeWSServer]]:
    fake, clock = _moving()
    with FakeWSServer(fake, slot_hold_s=0.3) as server:
        yield fake, clock, server


def test_a_path_fill_sends_an_execution_notice(
    ws_fake: tuple[FakeKIS, FakeClock, FakeWSServer],
) -> None:
    fake, clock, ws = ws_fake
    app = fake.add_app("real")
    harness = FakeHarness(fake, None)
    path = _path(fake, SESSION_TIME, WINDOW)
    limit = min(price for _, price in path)
    reached = _first(path, limit, "buy")
    key = approval(harness, app)
    with connect(ws.url) as client:
        pair = ask(client, request(key, "H0STCNI0", app.hts_id))["body"]["output"]
        body = {
            "CANO": app.cano,
            "ACNT_PRDT_CD": app.acnt_prdt_cd,
            "PDNO": CODE,
            "ORD_DVSN": "00",
            "ORD_QTY": "6",
            "ORD_UNPR": str(limit),
        }
        placed = harness.call(app, "order_cash", json=body, side="buy").json()["output"]
        accepted = dict(zip(NOTICE_FIELDS, _notice(client, pair["key"], pair["iv"]), strict=True))
        clock.set(reached)
        fake.orders(app.app_key)  # any look at the fake
        filled = dict(zip(NOTICE_FIELDS, _notice(client, pair["key"], pair["iv"]), strict=True))
    harness.close()
    assert accepted["ODER_NO"] == filled["ODER_NO"] == placed["ODNO"]
    assert (accepted["CNTG_YN"], filled["CNTG_YN"]) == ("1", "2")
    assert (filled["CNTG_QTY"], filled["CNTG_UNPR"]) == ("6", str(limit))
    assert filled["STCK_CNTG_HOUR"] == reached.astimezone(KST).strftime("%H%M%S")


def test_the_balance_reports_the_change_since_the_previous_close(
    fake_and_clock: tuple[FakeKIS, FakeClock], tmp_path: pathlib.Path
) -> None:
    """bfdy_tot_asst_evlu_amt is the account at the previous close, asst_icdc_amt and
    asst_icdc_erng_rt the change since: with moving prices a day's performance is not 0."""
    fake, clock = fake_and_clock
    app = fake.add_app("real", cash=10_000_000)
    fake.seed_holdings(app.app_key, {CODE: 100})
    previous_close = fake.price_at(CODE, SESSION_TIME.replace(hour=8))  # before the open
    later = SESSION_TIME + dt.timedelta(hours=3)
    bought_at = fake.price_of(CODE)
    with sync_client(fake, app, clock, tmp_path) as kis:
        kis.order_cash("buy", CODE, 10)  # a market buy: cash into shares at the price
        clock.set(later)
        summary = kis.get_balance().summary
    before = 10_000_000 + 100 * previous_close
    now = fake.price_at(CODE, later)
    change = 100 * (now - previous_close) + 10 * (now - bought_at)
    assert change != 0
    assert summary.previous_total == before  # bfdy_tot_asst_evlu_amt
    assert summary.extra["asst_icdc_amt"] == str(change)
    assert summary.total_value == before + change
    assert summary.extra["asst_icdc_erng_rt"] == f"{change * 100 / before:.8f}"


def test_an_order_resting_overnight_fills_at_the_open_when_the_day_opens_through_it() -> None:
    """The opening auction pays a resting buy the opening price, below its limit."""
    late = SESSION_TIME.replace(hour=15)
    fake, clock = _moving(FakeClock(late))
    next_open = (late + dt.timedelta(days=1)).replace(hour=9)
    chosen = None
    for code in fake.universe[:60]:
        rest = min(fake.price_at(code, late + dt.timedelta(seconds=s)) for s in range(1, 1801))
        limit = rest - tick_size(rest, fake.listing(code).kind)
        opening = fake.price_at(code, next_open)
        if opening < limit and fake.listing(code).kind == "stock":
            chosen = code, limit, opening
            break
    assert chosen is not None, "no code of the universe opens below yesterday's late prices"
    code, limit, opening = chosen
    app = fake.add_app("real")
    fills = _fills(fake)
    harness = FakeHarness(fake, None)
    body = {
        "CANO": app.cano,
        "ACNT_PRDT_CD": app.acnt_prdt_cd,
        "PDNO": code,
        "ORD_DVSN": "00",
        "ORD_QTY": "2",
        "ORD_UNPR": str(limit),
    }
    assert harness.call(app, "order_cash", json=body, side="buy").json()["rt_cd"] == "0"
    harness.close()
    clock.set(next_open - dt.timedelta(seconds=1))
    assert fake.orders(app.app_key)[0].filled_qty == 0  # the evening and the night: no fill
    clock.set(next_open + dt.timedelta(minutes=1))
    [order] = fake.orders(app.app_key)
    assert (order.filled_qty, order.price) == (2, opening)
    assert [(e.fill_price, e.time) for e in fills] == [(opening, next_open)]
