"""reconcile_order: found / certainly absent / still unknown, never "safe" while unknown.

Issue 9 ("an order is never sent twice"): absence is concluded only once the settle window
(``order_settle`` seconds after the request left, on KIS's clock as the ``Date`` header tells it)
has passed without the order appearing; the order is matched on every field it carries, never
to a cancellation row, never to an earlier identical order, never to an excluded order number.
The pure decision (:func:`kisclient._operations.reconcile_rows`) is tested on rows; the clients
(sync and async) are driven through the fake, in-process and over loopback, on a FakeClock.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import pytest

from kis_support import SESSION_TIME, async_client, make_fake, sync_client
from kisclient import (
    KST,
    DailyOrder,
    FakeClock,
    KISClient,
    OrderOutcomeUnknown,
    ReconcileOutcome,
    Reconciliation,
    SystemClock,
)
from kisclient._config import ENDPOINTS
from kisclient._operations import reconcile_rows
from kisclient.testing import FakeKIS, FakeKISServer, Fault, OffsetClock

ORDER_PATH = ENDPOINTS["order_cash"].path
CCLD_PATH = ENDPOINTS["inquire_daily_ccld"].path
CODE = "005930"


def _row(order_no: str, hhmmss: str, **changes: str) -> DailyOrder:
    row = {
        "ord_dt": "20261126",
        "odno": order_no,
        "orgn_odno": "",
        "sll_buy_dvsn_cd": "02",
        "pdno": CODE,
        "ord_qty": "3",
        "ord_unpr": "0",
        "ord_tmd": hhmmss,
        "ord_dvsn_cd": "01",
        "cncl_yn": "N",
    }
    return DailyOrder.from_row(row | changes)


def _at(hhmmss: str) -> float:
    return dt.datetime.combine(SESSION_TIME.date(), dt.time.fromisoformat(hhmmss), KST).timestamp()


MARKET_BUY: dict[str, Any] = {
    "side": "buy",
    "code": CODE,
    "qty": 3,
    "price": None,
    "ord_dvsn": "01",
}


def _decide(
    rows: list[DailyOrder], sent: str, seen: str, *, request: dict[str, Any] = MARKET_BUY, **kw: Any
) -> tuple[ReconcileOutcome, DailyOrder | None]:
    return reconcile_rows(
        request,
        rows,
        sent_kis=_at(sent),
        seen_kis=_at(seen),
        settle_until=_at(sent) + 61,
        **kw,
    )


# --- the pure decision ---------------------------------------------------------------------------


def test_not_visible_is_unknown_until_the_settle_window_has_passed() -> None:
    assert _decide([], "10:00:00", "10:00:10") == (ReconcileOutcome.UNKNOWN, None)
    assert _decide([], "10:00:00", "10:01:00") == (ReconcileOutcome.UNKNOWN, None)
    assert _decide([], "10:00:00", "10:01:01") == (ReconcileOutcome.ABSENT, None)
    row = _row("0000000007", "100005")
    assert _decide([row], "10:00:00", "10:00:10") == (ReconcileOutcome.FOUND, row)


def test_a_cancellation_row_is_never_the_order() -> None:
    """Item 5: an earlier same-size order, cancelled: its cancellation row must not match."""
    earlier = _row("0000000001", "095000", ord_dvsn_cd="00", ord_unpr="70000")
    cancel = _row(
        "0000000002", "100001", orgn_odno="0000000001", rvse_cncl_dvsn_name="취소", cncl_yn="Y"
    )
    assert _decide([earlier, cancel], "10:00:00", "10:01:05")[0] is ReconcileOutcome.ABSENT
    revision = _row("0000000003", "100001", orgn_odno="0000000001", ord_dvsn_cd="01")
    assert _decide([revision], "10:00:00", "10:01:05")[0] is ReconcileOutcome.ABSENT


def test_an_identical_order_20_seconds_earlier_is_not_this_one() -> None:
    """Item 5: the same limit order sent twice 20 s apart; the first filled."""
    limit = {**MARKET_BUY, "price": 70000, "ord_dvsn": "00"}
    first = _row("0000000001", "100000", ord_unpr="70000", ord_dvsn_cd="00")
    second = _row("0000000002", "100020", ord_unpr="70000", ord_dvsn_cd="00")
    assert _decide([first], "10:00:20", "10:00:30", request=limit)[0] is ReconcileOutcome.UNKNOWN
    assert _decide([first, second], "10:00:20", "10:00:30", request=limit) == (
        ReconcileOutcome.FOUND,
        second,
    )


def test_every_field_must_match() -> None:
    base = _row("0000000001", "100001")
    assert _decide([base], "10:00:00", "10:00:05")[0] is ReconcileOutcome.FOUND
    for changes in (
        {"sll_buy_dvsn_cd": "01"},
        {"pdno": "000660"},
        {"ord_qty": "4"},
        {"ord_dvsn_cd": "00", "ord_unpr": "70000"},
    ):
        other = _row("0000000001", "100001", **changes)
        assert _decide([other], "10:00:00", "10:00:05")[0] is ReconcileOutcome.UNKNOWN, changes
    limit = {**MARKET_BUY, "price": 70000, "ord_dvsn": "00"}
    cheaper = _row("0000000001", "100001", ord_unpr="69900", ord_dvsn_cd="00")
    assert _decide([cheaper], "10:00:00", "10:00:05", request=limit)[0] is ReconcileOutcome.UNKNOWN


def test_excluded_order_numbers_are_never_matched() -> None:
    one, two = _row("0000000001", "100001"), _row("0000000002", "100002")
    assert _decide([one, two], "10:00:00", "10:00:05")[1] == one  # the earliest match
    assert _decide([one, two], "10:00:00", "10:00:05", exclude={"0000000001"})[1] == two
    outcome, _ = _decide([one, two], "10:00:00", "10:02:00", exclude={"0000000001", "0000000002"})
    assert outcome is ReconcileOutcome.ABSENT


# --- through the fake ----------------------------------------------------------------------------


def _lost_order(kis: KISClient, price: int | None = None, qty: int = 3) -> OrderOutcomeUnknown:
    with pytest.raises(OrderOutcomeUnknown) as info:
        kis.order_cash("buy", CODE, qty, price)
    return info.value


def test_the_request_says_when_it_left_on_both_clocks(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(SESSION_TIME)
    fake = FakeKIS(clock=OffsetClock(clock, 61.0), seed=7)
    app = fake.add_app(env="real")
    fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    with sync_client(fake, app, clock, tmp_path) as kis:
        assert kis.clock_offset is None
        kis.get_price(CODE)
        assert kis.clock_offset == pytest.approx(61.0, abs=1.0)
        request = _lost_order(kis).request
    sent = dt.datetime.fromisoformat(request["sent_at"])
    sent_kis = dt.datetime.fromisoformat(request["sent_at_kis"])
    assert sent == clock.now()
    assert (sent_kis - sent).total_seconds() == pytest.approx(61.0, abs=1.0)
    assert request["ord_dvsn"] == "01"
    assert "CANO" not in request and app.cano not in repr(request)


def test_a_slow_gateway_order_is_found_when_it_lands_never_absent(tmp_path: pathlib.Path) -> None:
    """Item 1: the answer takes 30 s, the client gives up at 10 s; the order lands at 30 s."""
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, timeout=10.0) as kis:
        kis.get_price(CODE)
        fake.faults.add(Fault("latency", path=ORDER_PATH, delay_s=30.0))
        sent = clock.time()
        unknown = _lost_order(kis)
        assert clock.time() - sent == pytest.approx(10.0)
        early = kis.reconcile_order(unknown, wait=False)
        assert early.outcome is ReconcileOutcome.UNKNOWN and early.lookups == 1
        assert fake.orders(app.app_key) == []  # not landed yet: not visible is not absent
        answer = kis.reconcile_order(unknown)
    assert answer.outcome is ReconcileOutcome.FOUND and answer.lookups > 1
    (order,) = fake.orders(app.app_key)
    assert answer.order is not None and answer.order.order_no == order.order_no
    assert order.time.timestamp() == pytest.approx(sent + 30.0)


def test_absent_only_once_the_settle_window_has_passed(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, order_settle=20.0) as kis:
        fake.faults.add(Fault("drop_before", path=ORDER_PATH))  # never processed
        sent = clock.time()
        unknown = _lost_order(kis)
        assert kis.reconcile_order(unknown, wait=False).outcome is ReconcileOutcome.UNKNOWN
        answer = kis.reconcile_order(unknown)
    assert answer.outcome is ReconcileOutcome.ABSENT and answer.absent
    assert clock.time() - sent >= 20.0
    assert answer.settle_until is not None
    assert answer.settle_until.timestamp() >= sent + 20.0
    assert answer.lookups > 1
    assert fake.orders(app.app_key) == []


def test_the_settle_window_is_never_shorter_than_the_timeout(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, order_settle=1.0, timeout=15.0) as kis:
        fake.faults.add(Fault("drop_before", path=ORDER_PATH))
        sent = clock.time()
        answer = kis.reconcile_order(_lost_order(kis))
    assert answer.outcome is ReconcileOutcome.ABSENT
    assert clock.time() - sent >= 15.0


@pytest.mark.parametrize("offset", [61.0, -61.0, 300.0, -300.0])
def test_clock_offsets_find_the_order_and_never_call_it_absent_early(
    tmp_path: pathlib.Path, offset: float
) -> None:
    """Item 3: KIS's clock ±61 s and ±5 min from the host's; the order lands 30 s late."""
    clock = FakeClock(SESSION_TIME)
    fake = FakeKIS(clock=OffsetClock(clock, offset), seed=7)
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path) as kis:
        fake.faults.add(Fault("drop_after", path=ORDER_PATH))
        found = kis.reconcile_order(_lost_order(kis, qty=2))
        assert found.outcome is ReconcileOutcome.FOUND and found.lookups == 1
        assert kis.clock_offset == pytest.approx(offset, abs=1.0)
        fake.faults.add(Fault("latency", path=ORDER_PATH, delay_s=30.0))
        late = kis.reconcile_order(_lost_order(kis, qty=3))
        fake.faults.add(Fault("drop_before", path=ORDER_PATH))
        sent = clock.time()
        gone = kis.reconcile_order(_lost_order(kis, qty=4))
    assert late.outcome is ReconcileOutcome.FOUND
    assert late.order is not None and late.order.quantity == 3
    assert gone.outcome is ReconcileOutcome.ABSENT and clock.time() - sent >= 60.0
    assert [o.qty for o in fake.orders(app.app_key)] == [2, 3]


def test_exclude_skips_an_order_matched_elsewhere(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, order_settle=10.0) as kis:
        fake.faults.add(Fault("drop_after", path=ORDER_PATH))
        unknown = _lost_order(kis)
        (order,) = fake.orders(app.app_key)
        answer = kis.reconcile_order(unknown, exclude=[order.order_no])
    assert answer.outcome is ReconcileOutcome.ABSENT


def test_a_failing_look_up_is_unknown_never_absent(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, order_settle=10.0) as kis:
        fake.faults.add(Fault("drop_before", path=ORDER_PATH))
        unknown = _lost_order(kis)
        fake.faults.add(Fault("http_5xx_bare", path=CCLD_PATH, times=10_000))
        once = kis.reconcile_order(unknown, wait=False)
        waited = kis.reconcile_order(unknown)
    for answer in (once, waited):
        assert answer.outcome is ReconcileOutcome.UNKNOWN and not answer.absent
        assert "look-up failed" in answer.reason
    assert waited.lookups > 1
    assert app.cano not in waited.reason


def test_a_request_mapping_without_a_send_time_waits_from_now(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path) as kis:
        started = clock.time()
        answer = kis.reconcile_order({"side": "buy", "code": CODE, "qty": 9, "price": None})
        with pytest.raises(ValueError, match="code"):
            kis.reconcile_order({"qty": 1})
    assert answer.outcome is ReconcileOutcome.ABSENT
    assert clock.time() - started >= 60.0


async def test_async_reconcile_has_the_same_contract(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(SESSION_TIME)
    fake = FakeKIS(clock=OffsetClock(clock, -61.0), seed=7)
    app = fake.add_app(env="real")
    answers: list[Reconciliation] = []
    async with async_client(fake, app, clock, tmp_path) as kis:
        for fault, qty in (
            (Fault("latency", path=ORDER_PATH, delay_s=25.0), 1),
            (Fault("drop_before", path=ORDER_PATH), 2),
        ):
            fake.faults.add(fault)
            with pytest.raises(OrderOutcomeUnknown) as info:
                await kis.order_cash("buy", CODE, qty)
            early = await kis.reconcile_order(info.value, wait=False)
            assert early.outcome is ReconcileOutcome.UNKNOWN
            answers.append(await kis.reconcile_order(info.value))
        fake.faults.add(Fault("http_5xx_bare", path=CCLD_PATH, times=10_000))
        failed = await kis.reconcile_order(info.value, wait=False)
    assert [a.outcome for a in answers] == [ReconcileOutcome.FOUND, ReconcileOutcome.ABSENT]
    assert failed.outcome is ReconcileOutcome.UNKNOWN
    assert [o.qty for o in fake.orders(app.app_key)] == [1]


def test_loopback_measures_kis_clock_and_reconciles(tmp_path: pathlib.Path) -> None:
    fake = FakeKIS(clock=OffsetClock(SystemClock(), 61.0), seed=7, rate_limits={"real": 0})
    fake.set_market_open(True)
    app = fake.add_app(env="real")
    with (
        FakeKISServer(fake) as server,
        KISClient(
            app.app_key,
            app.app_secret,
            env="real",
            account=app.account,
            base_url=server.base_url(),
            state_dir=tmp_path,
            rate_limits=[],
        ) as kis,
    ):
        fake.faults.add(Fault("drop_after", path=ORDER_PATH))
        answer = kis.reconcile_order(_lost_order(kis))
        assert kis.clock_offset == pytest.approx(61.0, abs=2.0)
    assert answer.outcome is ReconcileOutcome.FOUND
    assert len(fake.orders(app.app_key)) == 1
