"""The order lifecycle (issue 12) through the fake, on both shells: revise and cancel
(one request when the order is held, two with only its number), partial cancels, typed
refusals, lost answers never resent, pending orders, buyable cash, sellable quantity, order
conditions (IOC/FOK, paper refusals), the daily orders' tr_id families, and a property: the
fake's open orders and ``get_pending_orders()`` always agree."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_support import make_fake, sync_client
from kisclient import (
    BusinessRejection,
    FakeClock,
    KISError,
    OrderCondition,
    OrderNotRevisable,
    OrderOutcomeUnknown,
    OrderResult,
    ReconcileOutcome,
    ValidationError,
)
from kisclient._config import ENDPOINTS, Side
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer, Fault
from kisclient.testing._trading import set_liquidity
from kisclient.testing._universe import tick_size

sys.path.append(str(Path(__file__).parent))
from client_shells import SHELLS, Shell

RVSECNCL = ENDPOINTS["order_rvsecncl"].path
CCLD = ENDPOINTS["inquire_daily_ccld"].path
ORDER = ENDPOINTS["order_cash"].path
PSBL_RVSECNCL = ENDPOINTS["inquire_psbl_rvsecncl"].path


@pytest.fixture(params=SHELLS, name="shell")
def _shell(request: pytest.FixtureRequest) -> Shell:
    return Shell(request.param)


def _code(fake: FakeKIS) -> tuple[str, int, int]:
    """A stock, its price and its tick."""
    code = fake.universe[0]
    price = fake.price_of(code)
    return code, price, tick_size(price, fake.listing(code).kind)


def _open_book(fake: FakeKIS, app: FakeApp) -> dict[str, int]:
    """The fake's open orders: order number → open quantity."""
    return {o.order_no: o.open_qty for o in fake.orders(app.app_key) if o.open_qty}


def _account(env: str) -> tuple[FakeKIS, FakeClock, FakeApp, tuple[str, int, int]]:
    """A fake on its session clock, an app of *env*, and a tradable code with its price and
    tick."""
    fake, clock = make_fake()
    return fake, clock, fake.add_app(env=env), _code(fake)


def _requests(fake: FakeKIS, path: str) -> int:
    return fake.stats.requests(path=path)


@pytest.mark.parametrize("env", ["real", "paper"])
def test_revise_is_one_request_when_held_and_two_with_only_the_number(
    shell: Shell, env: str, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account(env)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", code, 10, price - 5 * tick)
        assert (placed.side, placed.code, placed.quantity) == ("buy", code, 10)
        assert (placed.price, placed.order_division) == (price - 5 * tick, "00")
        before = fake.stats.requests()
        revised = kis.revise_order(placed, price=price - 4 * tick)
        held_cost = fake.stats.requests() - before
        before = fake.stats.requests()
        again = kis.revise_order(revised.order_no, price=price - 3 * tick)
        number_cost = fake.stats.requests() - before
    assert (held_cost, number_cost) == (1, 2)
    assert _requests(fake, RVSECNCL) == 2 and _requests(fake, CCLD) == 1
    assert revised.order_no != placed.order_no and revised.price == price - 4 * tick
    orders = {o.order_no: o for o in fake.orders(app.app_key)}
    assert orders[placed.order_no].open_qty == 0
    assert orders[revised.order_no].orgn_odno == placed.order_no
    assert _open_book(fake, app) == {again.order_no: 10}
    assert orders[again.order_no].order_price == price - 3 * tick


def test_a_qty_only_revise_keeps_the_price_from_the_order_result(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", code, 10, price - 2 * tick)
        moved = kis.revise_order(placed, qty=4)
    orders = {o.order_no: o for o in fake.orders(app.app_key)}
    assert orders[moved.order_no].qty == 4
    assert orders[moved.order_no].order_price == price - 2 * tick
    assert orders[placed.order_no].open_qty == 6
    assert _requests(fake, RVSECNCL) == 1 and _requests(fake, CCLD) == 0


def test_an_unknown_order_number_is_refused_after_the_look_up(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", code, 3, price - tick)
        with pytest.raises(ValidationError, match="not among today's orders"):
            kis.cancel_order("9999999999")
        with pytest.raises(ValidationError, match="only 3 remain"):
            kis.cancel_order(placed.order_no, qty=4)
        with pytest.raises(ValidationError, match="needs a new price"):
            kis.revise_order(placed)
    assert _requests(fake, RVSECNCL) == 0 and _requests(fake, CCLD) == 2


@pytest.mark.parametrize("env", ["real", "paper"])
def test_partial_cancels_then_the_rest(shell: Shell, env: str, tmp_path: pathlib.Path) -> None:
    fake, clock, app, (code, price, tick) = _account(env)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", code, 10, price - 5 * tick)
        kis.cancel_order(placed, qty=4)
        assert _open_book(fake, app) == {placed.order_no: 6}
        (pending,) = kis.get_pending_orders()
        assert (pending.order_no, pending.remaining_quantity) == (placed.order_no, 6)
        with pytest.raises(ValidationError, match="only 6 remain"):
            kis.cancel_order(pending, qty=7)
        kis.cancel_order(pending)
        assert kis.get_pending_orders() == []
        rows = kis.get_daily_orders()
    assert _open_book(fake, app) == {}
    cancels = [r for r in rows if r.original_order_no == placed.order_no]
    assert sorted(r.quantity for r in cancels) == [4, 6]
    assert all(r.cancelled for r in cancels)


@pytest.mark.parametrize("env", ["real", "paper"])
def test_revising_or_cancelling_a_filled_order_is_a_typed_rejection(
    shell: Shell, env: str, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account(env)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        filled = kis.order_cash("buy", code, 3)  # market: fills at once
        with pytest.raises(OrderNotRevisable) as refused:
            kis.revise_order(filled, price=price - tick)
        assert refused.value.msg_cd == "APBK0918"
        assert isinstance(refused.value, BusinessRejection)
        sent = _requests(fake, RVSECNCL)
        (row,) = [r for r in kis.get_daily_orders() if r.order_no == filled.order_no]
        with pytest.raises(OrderNotRevisable):
            kis.cancel_order(row)  # the row shows it filled: refused before sending
        assert _requests(fake, RVSECNCL) == sent == 1
        resting = kis.order_cash("buy", code, 5, price - 3 * tick)
        with pytest.raises(OrderNotRevisable):
            kis.cancel_order(resting, qty=6)  # more than remains: the fake refuses
    assert _open_book(fake, app) == {resting.order_no: 5}


@pytest.mark.parametrize("rvse", ["revise", "cancel"])
def test_a_lost_revise_or_cancel_is_unknown_never_resent_and_reconciles(
    shell: Shell, rvse: str, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    with shell.connect(fake, app, clock, tmp_path, order_settle=10.0) as kis:
        placed = kis.order_cash("buy", code, 10, price - 5 * tick)
        fake.faults.add(Fault("drop_after", path=RVSECNCL))

        def change() -> OrderResult:
            if rvse == "revise":
                return kis.revise_order(placed, price=price - 4 * tick)
            return kis.cancel_order(placed, qty=3)

        with pytest.raises(OrderOutcomeUnknown) as lost:
            change()
        assert _requests(fake, RVSECNCL) == 1  # never resent
        request = lost.value.request
        assert request["orgn_odno"] == placed.order_no and "CANO" not in request
        answer = kis.reconcile_order(lost.value)
    assert answer.outcome is ReconcileOutcome.FOUND
    assert answer.order is not None and answer.order.original_order_no == placed.order_no
    assert answer.order.order_no != placed.order_no  # the change, never the original
    assert _requests(fake, RVSECNCL) == 1
    assert _open_book(fake, app) == (
        {answer.order.order_no: 10} if rvse == "revise" else {placed.order_no: 7}
    )


def test_a_lost_cancel_that_never_arrived_is_absent_after_the_window(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    with shell.connect(fake, app, clock, tmp_path, order_settle=10.0) as kis:
        placed = kis.order_cash("buy", code, 10, price - 5 * tick)
        fake.faults.add(Fault("drop_before", path=RVSECNCL))
        with pytest.raises(OrderOutcomeUnknown) as lost:
            kis.cancel_order(placed)
        answer = kis.reconcile_order(lost.value)
    assert answer.outcome is ReconcileOutcome.ABSENT  # the original is never mistaken for it
    assert _open_book(fake, app) == {placed.order_no: 10}


@pytest.mark.parametrize("env", ["real", "paper"])
def test_pending_orders_agree_with_the_fake_book(
    shell: Shell, env: str, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account(env)
    fake.seed_holdings(app.app_key, {code: 50})
    with shell.connect(fake, app, clock, tmp_path) as kis:
        kis.order_cash("buy", code, 2)  # fills
        a = kis.order_cash("buy", code, 7, price - 2 * tick)
        b = kis.order_cash("sell", code, 5, price + 3 * tick)
        kis.cancel_order(b, qty=2)
        kis.revise_order(a, price=price - tick, qty=3)
        pending = kis.get_pending_orders()
    assert {p.order_no: p.remaining_quantity for p in pending} == _open_book(fake, app)
    assert {p.side for p in pending} == {"buy", "sell"}
    assert _requests(fake, PSBL_RVSECNCL) == (1 if env == "real" else 0)


def test_pending_orders_page_through_every_page_on_real(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real", cash=10**12)
    code, price, tick = _code(fake)
    with shell.connect(fake, app, clock, tmp_path, rate_limits=[]) as kis:
        for _ in range(55):
            kis.order_cash("buy", code, 1, price - tick)
        pending = kis.get_pending_orders()
    assert len(pending) == 55 and _requests(fake, PSBL_RVSECNCL) == 2


@pytest.mark.parametrize("env", ["real", "paper"])
def test_buyable_shrinks_after_a_buy_order(shell: Shell, env: str, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env=env, cash=10_000_000)
    code, price, tick = _code(fake)
    limit = price - 5 * tick
    with shell.connect(fake, app, clock, tmp_path) as kis:
        before = kis.get_buyable(code, limit)
        kis.order_cash("buy", code, 10, limit)
        after = kis.get_buyable(code, limit)
        market = kis.get_buyable(code)
    assert before.orderable_cash == 10_000_000 and before.code == code
    assert before.max_buy_qty == 10_000_000 // limit == before.no_credit_buy_qty
    assert after.orderable_cash == 10_000_000 - 10 * limit
    assert after.max_buy_qty == (10_000_000 - 10 * limit) // limit
    assert market.unit_price == price


@pytest.mark.parametrize("env", ["real", "paper"])
def test_sellable_from_holdings_and_sell_all(
    shell: Shell, env: str, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account(env)
    other = fake.universe[1]
    fake.seed_holdings(app.app_key, {code: 30})
    with shell.connect(fake, app, clock, tmp_path) as kis:
        assert kis.get_sellable(code).orderable_qty == 30
        kis.order_cash("sell", code, 12, price + 5 * tick)  # rests, holds 12
        sellable = kis.get_sellable(code)
        assert (sellable.orderable_qty, sellable.code) == (18, code)
        result = kis.sell_all(code)
        assert (result.side, result.quantity, result.order_division) == ("sell", 18, "01")
        assert kis.get_sellable(code).orderable_qty == 0
        with pytest.raises(ValidationError, match="nothing to sell"):
            kis.sell_all(other)
    assert fake.holdings(app.app_key)[code] == 12
    assert _requests(fake, ENDPOINTS["inquire_psbl_sell"].path) == (5 if env == "real" else 0)


def test_ioc_fills_what_crosses_and_fok_all_or_nothing(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    set_liquidity(fake._core, code, 3)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        ioc = kis.order_cash("buy", code, 5, price, condition=OrderCondition.IOC_LIMIT)
        fok = kis.order_cash("buy", code, 5, price, condition=OrderCondition.FOK_LIMIT)
        away = kis.order_cash("buy", code, 5, price - tick, condition=OrderCondition.IOC_LIMIT)
        fok_mkt = kis.order_cash("buy", code, 2, condition=OrderCondition.FOK_MARKET)
        rows = {r.order_no: r for r in kis.get_daily_orders()}
    orders = {o.order_no: o for o in fake.orders(app.app_key)}
    filled = {n: (orders[n].filled_qty, orders[n].cancelled_qty) for n in orders}
    assert filled[ioc.order_no] == (3, 2)
    assert filled[fok.order_no] == (0, 5)
    assert filled[away.order_no] == (0, 5)
    assert filled[fok_mkt.order_no] == (2, 0)
    assert _open_book(fake, app) == {}
    assert rows[ioc.order_no].order_division == "11"
    assert rows[ioc.order_no].fill_condition_name == "IOC"
    assert fake.holdings(app.app_key)[code] == 5


@pytest.mark.parametrize(
    "condition",
    [c for c in OrderCondition if c not in (OrderCondition.LIMIT, OrderCondition.MARKET)],
)
def test_paper_refuses_other_conditions_locally(
    condition: OrderCondition, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    code, price, _ = _code(fake)
    with (
        sync_client(fake, app, clock, tmp_path) as kis,
        pytest.raises(ValidationError, match="not sent on paper"),
    ):
        kis.order_cash(
            "buy", code, 1, price if condition.needs_price else None, condition=condition
        )
    assert _requests(fake, ORDER) == 0


def test_condition_and_price_must_fit(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    code, price, _ = _code(fake)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        with pytest.raises(ValidationError, match="needs a price"):
            kis.order_cash("buy", code, 1, condition=OrderCondition.LIMIT)
        with pytest.raises(ValidationError, match="takes no price"):
            kis.order_cash("buy", code, 1, price, condition=OrderCondition.MARKET)
        best = kis.order_cash("buy", code, 1, condition=OrderCondition.BEST)
        plain = kis.order_cash("buy", code, 1)
    assert _requests(fake, ORDER) == 2
    assert (best.order_division, plain.order_division) == ("03", "01")


def test_the_real_fake_refuses_no_documented_condition_and_paper_only_two(
    tmp_path: pathlib.Path,
) -> None:
    fake, clock = make_fake()
    paper = fake.add_app(env="paper")
    code, price, _ = _code(fake)
    with sync_client(fake, paper, clock, tmp_path) as kis:
        body = {
            "CANO": paper.cano,
            "ACNT_PRDT_CD": paper.acnt_prdt_cd,
            "PDNO": code,
            "ORD_DVSN": "11",
            "ORD_QTY": "1",
            "ORD_UNPR": str(price),
        }
        with pytest.raises(KISError) as refused:
            kis.request("POST", ORDER, tr_id="VTTC0012U", body=body)
    assert refused.value.msg_cd == "OPSQ2001"


@pytest.mark.parametrize("legacy", [False, True])
def test_daily_orders_pick_the_tr_id_by_date(
    shell: Shell, legacy: bool, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    today = clock.now().date()
    recent = "TTTC8001R" if legacy else "TTTC0081R"
    with shell.connect(fake, app, clock, tmp_path, legacy_order_tr_ids=legacy) as kis:
        kis.get_daily_orders()
        assert fake.stats.requests(tr_id=recent) == 1
        kis.get_daily_orders(today - dt.timedelta(days=200), today - dt.timedelta(days=120))
        assert fake.stats.requests(tr_id="CTSC9215R") == 1
        assert fake.stats.requests(tr_id=recent) == 1
        kis.get_daily_orders(today - dt.timedelta(days=120), today)  # crosses: split in two
    assert fake.stats.requests(tr_id="CTSC9215R") == 2
    assert fake.stats.requests(tr_id=recent) == 2


def test_daily_orders_keep_every_documented_field(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock, app, (code, price, tick) = _account("paper")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", code, 4, price - tick)
        kis.cancel_order(placed, qty=1)
        rows = kis.get_daily_orders()
    assert fake.stats.requests(tr_id="VTTC0081R") == 1
    original = next(r for r in rows if r.order_no == placed.order_no)
    cancel = next(r for r in rows if r.original_order_no == placed.order_no)
    assert original.cancel_confirmed_quantity == 1 and cancel.cancel_confirmed_quantity == 1
    assert original.exchange_code == "01" and original.exchange_id == "KRX"
    assert original.order_division_name == "지정가" and original.side_name == "현금매수"
    assert original.remaining_quantity == 3


@pytest.mark.loopback
def test_revise_and_cancel_over_loopback(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock, app, (code, price, tick) = _account("real")
    with (
        FakeKISServer(fake) as server,
        shell.open(
            app.app_key,
            app.app_secret,
            env="real",
            account=app.account,
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
            clock=clock,
        ) as kis,
    ):
        placed = kis.order_cash("buy", code, 6, price - 3 * tick)
        revised = kis.revise_order(placed, price=price - 2 * tick)
        kis.cancel_order(revised.order_no, qty=2)
        pending = kis.get_pending_orders()
        buyable = kis.get_buyable(code, price)
    assert {p.order_no: p.remaining_quantity for p in pending} == {revised.order_no: 4}
    assert _open_book(fake, app) == {revised.order_no: 4}
    assert buyable.orderable_cash == fake.cash(app.app_key) - 4 * (price - 2 * tick)


# --- the property: the fake's book and the client's view never disagree ----------------------

#: (kind, a, b, c): order (side 0 buy / 1 sell, qty, ticks from the base price); revise (which
#: held order, ticks, qty or 0 for all); cancel (which, qty or 0 for all); fill (ticks).
_STEP = st.one_of(
    st.tuples(st.just("order"), st.integers(0, 1), st.integers(1, 5), st.integers(-3, 3)),
    st.tuples(st.just("revise"), st.integers(0, 20), st.integers(-3, 3), st.integers(0, 2)),
    st.tuples(st.just("cancel"), st.integers(0, 20), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("fill"), st.integers(-3, 3), st.just(0), st.just(0)),
)


@settings(max_examples=12)
@given(env=st.sampled_from(["real", "paper"]), steps=st.lists(_STEP, max_size=8))
def test_no_sequence_makes_the_book_and_pending_orders_disagree(
    env: str, steps: list[tuple[str, int, int, int]]
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env=env, cash=10**9)
    code, base, tick = _code(fake)
    fake.seed_holdings(app.app_key, {code: 40})
    held: list[OrderResult] = []
    with (
        tempfile.TemporaryDirectory() as state,
        sync_client(fake, app, clock, pathlib.Path(state), rate_limits=[]) as kis,
    ):
        for kind, a, b, c in steps:
            try:
                if kind == "order":
                    side: Side = "buy" if a == 0 else "sell"
                    held.append(kis.order_cash(side, code, b, base + c * tick))
                elif kind == "revise" and held:
                    target = held[a % len(held)]
                    held.append(kis.revise_order(target, price=base + b * tick, qty=c or None))
                elif kind == "cancel" and held:
                    kis.cancel_order(held[a % len(held)], qty=b or None)
                elif kind == "fill":
                    fake.set_price(code, base + a * tick)
            except (BusinessRejection, ValidationError):
                pass  # refused: nothing changed, on either side
            pending = kis.get_pending_orders()
            assert {p.order_no: p.remaining_quantity for p in pending} == _open_book(fake, app)
