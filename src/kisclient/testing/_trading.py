"""Account handlers: cash orders, cancellation, balance and the daily order/fill inquiry.

Model: orders execute in full and at once at the current price when marketable (market orders,
or limits that cross); other limit orders rest until :meth:`FakeKIS.set_price` makes them cross,
the moving price reaches them (``moving_prices``, :mod:`._resting`) or they are cancelled. Cash
moves at execution (no fees, no settlement lag). Business refusals are HTTP 200 with ``rt_cd``
other than ``"0"``.

Every acceptance, execution, revision, cancellation and late refusal is reported to the core's
``order_events`` observers (:class:`~kisclient.testing.OrderEvent`), under the lock.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any, Literal

from kisclient._codes import (
    ACCOUNT_INVALID,
    BAD_FIELD,
    BAD_TICK,
    INSUFFICIENT_CASH,
    JSON_PARSE,
    MARKET_CLOSED,
    NOT_TRADABLE,
    ORDER_DAY_MISMATCH,
    ORDER_OK,
    CodeInfo,
    Kind,
)
from kisclient._config import Env, env_settings
from kisclient._order_lifecycle import NOT_REVISABLE_MSG_CDS

from ._core import BRANCH, Core, Ctx
from ._http import FakeResponse, envelope
from ._quotes import price_snapshot
from ._state import Account, Holding, Order, OrderEvent, OrderEventKind
from ._universe import tick_size

__all__ = [
    "balance",
    "daily_ccld",
    "fill_crossing",
    "order_cash",
    "order_rvsecncl",
    "psbl_order",
    "psbl_rvsecncl",
    "psbl_sell",
    "set_liquidity",
]

#: ``ORD_DVSN`` codes per environment (see :class:`kisclient.OrderCondition`): real takes all
#: twelve; paper only 00 limit and 01 market (the client's documented assumption; other codes
#: are refused with OPSQ2001, ``rt_cd "1"``, like any bad field).
ORD_DVSN_ACCEPTED = {
    Env.REAL: frozenset({"00", "01", "02", "03", "04", "05", "06", "07", "11", "12", "13", "14"}),
    Env.PAPER: frozenset({"00", "01"}),
}
#: Divisions with a price (ORD_UNPR): limit, conditional limit, after-hours single price,
#: IOC/FOK limit. The others execute at the current price in this fake (its book is one price
#: per code): market, best, priority, and the pre-/after-market close-price sessions.
_PRICED = frozenset({"00", "02", "07", "11", "12"})
#: Immediate-or-cancel (fill what crosses now, cancel the rest) and fill-or-kill (all or none).
_IOC = frozenset({"11", "13"})
_FOK = frozenset({"12", "14"})

#: The refusal of a revise/cancel whose order has nothing (or less than asked) left; the code is
#: the client's (``kisclient._order_lifecycle.NOT_REVISABLE_MSG_CDS``, a third-party record).
NOT_REVISABLE = CodeInfo(min(NOT_REVISABLE_MSG_CDS), Kind.BUSINESS, "취소가능수량이 없습니다.")

#: The refusal of a sell beyond the orderable holding (see :func:`order_cash`).
INSUFFICIENT_HOLDINGS = INSUFFICIENT_CASH

#: Rows per page of inquire-psbl-rvsecncl (one call answers at most 50, third-party sample notes).
PSBL_RVSECNCL_PAGE_ROWS = 50

#: Shares available now at the current price per code, for IOC/FOK orders (absent: unlimited).
_LIQUIDITY: weakref.WeakKeyDictionary[Core, dict[str, int]] = weakref.WeakKeyDictionary()


def set_liquidity(core: Core, code: str, qty: int | None) -> None:
    """How many shares of *code* an IOC/FOK order can take at the current price (``None``:
    unlimited, the default). Other orders ignore it. Call with ``core.lock`` held or from the
    test thread while no request is in flight."""
    book = _LIQUIDITY.setdefault(core, {})
    if qty is None:
        book.pop(code, None)
    else:
        book[code] = qty


def _int(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _event(
    core: Core,
    kind: OrderEventKind,
    app_key: str,
    order: Order,
    *,
    fill_qty: int = 0,
    fill_price: int = 0,
) -> None:
    """Report *kind* for *order* of *app_key* to the core's observers."""
    app = core.apps.get(app_key)
    if app is None or not core.order_events:
        return
    core.emit_order_event(
        OrderEvent(
            kind,
            app_key,
            app.env,
            order.order_no,
            order.side,
            order.code,
            order.qty,
            order.order_price,
            order.ord_dvsn,
            core.now(),
            orig_order_no=order.orgn_odno,
            fill_qty=fill_qty,
            fill_price=fill_price,
        )
    )


def _execute(
    core: Core, app_key: str, account: Account, order: Order, price: int, qty: int | None = None
) -> None:
    """Fill *qty* (default: all) of *order*'s open quantity at *price*, move cash and shares,
    report the fill."""
    qty = order.open_qty if qty is None else min(qty, order.open_qty)
    if qty <= 0:
        return
    order.filled_qty += qty
    order.price = price
    holding = account.holdings.get(order.code)
    if order.side == "buy":
        account.cash -= qty * price
        if holding is None:
            holding = account.holdings[order.code] = Holding(0, 0)
        holding.qty += qty
        holding.cost += qty * price
        holding.today_buy += qty
    elif holding is not None:
        holding.cost -= holding.cost * qty // holding.qty
        holding.qty -= qty
        holding.today_sell += qty
        account.cash += qty * price
        if holding.qty == 0:
            del account.holdings[order.code]
    _event(core, "filled", app_key, order, fill_qty=qty, fill_price=price)


def _crosses(order: Order, price: int) -> bool:
    if order.ord_dvsn not in _PRICED:
        return True
    return order.order_price >= price if order.side == "buy" else order.order_price <= price


def fill_crossing(core: Core, code: str) -> None:
    """Execute every resting order for *code* that the current price now crosses."""
    price = core.price_of(code)
    for app_key, account in core.accounts.items():
        for order in account.orders:
            if order.code == code and order.open_qty and _crosses(order, price):
                _execute(core, app_key, account, order, price)


def _account_matches(ctx: Ctx, fields: dict[str, Any] | Any) -> bool:
    account = ctx.account
    return (
        str(fields.get("CANO", "")).strip() == account.cano
        and str(fields.get("ACNT_PRDT_CD", "")).strip() == account.acnt_prdt_cd
    )


def _closed(ctx: Ctx) -> FakeResponse | None:
    if ctx.core.market_open():
        return None
    if ctx.env is Env.PAPER:
        return ctx.reject(MARKET_CLOSED, "1")
    return ctx.reject(ORDER_DAY_MISMATCH)


def _reserved(account: Account, side: str, code: str | None = None) -> int:
    """Cash (buy) or shares (sell, for *code*) held by resting orders."""
    total = 0
    for order in account.orders:
        if order.open_qty and order.side == side and (code is None or order.code == code):
            total += order.open_qty * order.order_price if side == "buy" else order.open_qty
    return total


def _order_output(order: Order) -> dict[str, str]:
    return {
        "KRX_FWDG_ORD_ORGNO": BRANCH,
        "ODNO": order.order_no,
        "ORD_TMD": order.time.strftime("%H%M%S"),
    }


def order_cash(ctx: Ctx) -> FakeResponse:
    """order-cash (buy or sell per tr_id). ORD_DVSN "00" limit or "01" market only."""
    body = ctx.body()
    if body is None:
        return envelope(500, JSON_PARSE)
    if not _account_matches(ctx, body):
        return ctx.reject(ACCOUNT_INVALID)
    closed = _closed(ctx)
    if closed is not None:
        return closed
    core, account = ctx.core, ctx.account
    listing = core.universe.get(str(body.get("PDNO", "")))
    if listing is None or listing.halted:
        return ctx.reject(NOT_TRADABLE)
    ord_dvsn = str(body.get("ORD_DVSN", "")).strip()
    qty, unit = _int(body.get("ORD_QTY")), _int(body.get("ORD_UNPR"))
    if ord_dvsn not in ORD_DVSN_ACCEPTED[ctx.env] or not qty or unit is None:
        return ctx.reject(BAD_FIELD, "1")
    snap = price_snapshot(core, listing)
    price: int = snap["price"]
    in_band = snap["lower"] <= unit <= snap["upper"]
    priced = ord_dvsn in _PRICED
    if priced and (unit <= 0 or unit % tick_size(unit, listing.kind) or not in_band):
        return ctx.reject(BAD_TICK)
    side: Literal["buy", "sell"] = "buy" if ctx.side == "buy" else "sell"
    limit = unit if priced else price
    refusal = None
    if side == "buy" and qty * limit > account.cash - _reserved(account, "buy"):
        refusal = INSUFFICIENT_CASH[ctx.env]
    if side == "sell":
        held = account.holdings.get(listing.code)
        if held is None or qty > held.qty - _reserved(account, "sell", listing.code):
            # Oversell. KIS's sources record no code for insufficient holdings (40070000 is
            # "매매불가 종목", the wrong message); the closest documented rows are the
            # orderable-amount refusals (APBK0952 real / 40250000 paper, via _codes).
            refusal = INSUFFICIENT_HOLDINGS[ctx.env]
    order = Order(
        "" if refusal is not None else core.next_order_no(),  # a refused order gets no number
        side,
        listing.code,
        qty,
        limit,
        ctx.tr_id,
        core.now(),
        ord_dvsn=ord_dvsn,
        order_price=unit if priced else 0,
        branch=BRANCH,
    )
    if refusal is not None:
        _event(core, "refused", ctx.app.app_key, order)
        return ctx.reject(refusal)
    account.orders.append(order)
    _event(core, "accepted", ctx.app.app_key, order)
    crosses = _crosses(order, price)
    if ord_dvsn in _IOC or ord_dvsn in _FOK:
        available = _LIQUIDITY.get(core, {}).get(listing.code, qty) if crosses else 0
        take = min(qty, available) if ord_dvsn in _IOC else (qty if available >= qty else 0)
        _execute(core, ctx.app.app_key, account, order, price, take)
        if order.open_qty:
            _cancel(core, ctx, account, order, order.open_qty)
    elif crosses:
        _execute(core, ctx.app.app_key, account, order, price)
    return ctx.ok(ORDER_OK[(ctx.env, side)], output=_order_output(order))


def _cancel(core: Core, ctx: Ctx, account: Account, original: Order, qty: int) -> Order:
    """Cancel *qty* of *original*'s open quantity: a cancellation record, reported."""
    original.cancelled_qty += qty
    record = Order(
        core.next_order_no(),
        original.side,
        original.code,
        qty,
        0,
        ctx.tr_id,
        core.now(),
        ord_dvsn=original.ord_dvsn,
        kind="cancel",
        orgn_odno=original.order_no,
        branch=BRANCH,
    )
    account.orders.append(record)
    _event(core, "cancelled", ctx.app.app_key, record)
    return record


def order_rvsecncl(ctx: Ctx) -> FakeResponse:
    """order-rvsecncl: RVSE_CNCL_DVSN_CD "02" cancels, "01" revises part or all of the open
    quantity (QTY_ALL_ORD_YN "Y": all of it; else ORD_QTY of it).

    A revision moves the quantity to a new order (new ODNO, ``orgn_odno`` the original) at
    ORD_UNPR with ORD_DVSN; the rest stays on the original. An unknown ORGN_ODNO or field →
    OPSQ2001 (``rt_cd "7"``); an order with nothing open (filled, cancelled, revised away), or
    a quantity beyond what is open → :data:`NOT_REVISABLE` (``rt_cd "7"``).
    """
    body = ctx.body()
    if body is None:
        return envelope(500, JSON_PARSE)
    if not _account_matches(ctx, body):
        return ctx.reject(ACCOUNT_INVALID)
    closed = _closed(ctx)
    if closed is not None:
        return closed
    core, account = ctx.core, ctx.account
    number = _int(body.get("ORGN_ODNO"))
    original = next(
        (
            o
            for o in account.orders
            if o.kind == "order" and number is not None and int(o.order_no) == number
        ),
        None,
    )
    dvsn = str(body.get("RVSE_CNCL_DVSN_CD", "")).strip()
    if original is None or dvsn not in ("01", "02"):
        return ctx.reject(BAD_FIELD)
    # KRX_FWDG_ORD_ORGNO is a documented request field: it must name the
    # original order's branch. The gateway's answer to a wrong one is not recorded:
    # refused like an unknown ORGN_ODNO, OPSQ2001 with rt_cd "7".
    if str(body.get("KRX_FWDG_ORD_ORGNO", "")).strip() != original.branch:
        return ctx.reject(BAD_FIELD)
    wanted = _int(body.get("ORD_QTY")) or 0
    all_qty = str(body.get("QTY_ALL_ORD_YN", "")).strip().upper() == "Y"
    if not all_qty and not wanted:
        return ctx.reject(BAD_FIELD)
    if not original.open_qty or (not all_qty and wanted > original.open_qty):
        return ctx.reject(NOT_REVISABLE)
    qty = original.open_qty if all_qty else wanted
    if dvsn == "02":
        record = _cancel(core, ctx, account, original, qty)
        return ctx.ok(ORDER_OK[(ctx.env, "cancel")], output=_order_output(record))
    ord_dvsn = str(body.get("ORD_DVSN", "")).strip() or original.ord_dvsn
    if ord_dvsn not in ORD_DVSN_ACCEPTED[ctx.env]:
        return ctx.reject(BAD_FIELD, "1")
    listing = core.universe.get(original.code)
    assert listing is not None
    price = core.price_of(original.code)
    unit = _int(body.get("ORD_UNPR")) or 0
    if ord_dvsn in _PRICED and (not unit or unit % tick_size(unit, listing.kind)):
        return ctx.reject(BAD_TICK)
    original.cancelled_qty += qty
    record = Order(
        core.next_order_no(),
        original.side,
        original.code,
        qty,
        unit if ord_dvsn in _PRICED else price,
        ctx.tr_id,
        core.now(),
        ord_dvsn=ord_dvsn,
        order_price=unit if ord_dvsn in _PRICED else 0,
        orgn_odno=original.order_no,
        branch=BRANCH,
    )
    account.orders.append(record)
    _event(core, "revised", ctx.app.app_key, record)
    if _crosses(record, price):
        _execute(core, ctx.app.app_key, account, record, price)
    return ctx.ok(ORDER_OK[(ctx.env, "cancel")], output=_order_output(record))


def psbl_rvsecncl(ctx: Ctx) -> FakeResponse:
    """inquire-psbl-rvsecncl (real only): every order with an open quantity, oldest first,
    :data:`PSBL_RVSECNCL_PAGE_ROWS` per page; INQR_DVSN_2 "1"/"2" keeps sells/buys."""
    if not _account_matches(ctx, ctx.query):
        return ctx.reject(ACCOUNT_INVALID)
    side = {"1": "sell", "2": "buy"}.get(ctx.query.get("INQR_DVSN_2", "0").strip())
    live = [
        o
        for o in ctx.account.orders
        if o.kind == "order" and o.open_qty and (side is None or o.side == side)
    ]
    numbers = [o.order_no for o in live]
    first, stop, tr_cont = _page(ctx, numbers, PSBL_RVSECNCL_PAGE_ROWS)
    rows = [_psbl_row(ctx.core, o) for o in live[first:stop]]
    last = numbers[stop - 1] if stop else ""
    return ctx.ok(tr_cont=tr_cont, output=rows, **_cursors(ctx, last))


def _psbl_row(core: Core, order: Order) -> dict[str, str]:
    """One inquire-psbl-rvsecncl row, with the documented names."""
    listing = core.universe.get(order.code)
    return {
        "ord_gno_brno": order.branch,
        "odno": order.order_no,
        "orgn_odno": order.orgn_odno,
        "ord_dvsn_name": _DVSN_NAMES.get(order.ord_dvsn, ""),
        "pdno": order.code,
        "prdt_name": listing.name if listing else "",
        "rvse_cncl_dvsn_name": "정정" if order.orgn_odno else "",
        "ord_qty": str(order.qty),
        "ord_unpr": str(order.order_price),
        "ord_tmd": order.time.strftime("%H%M%S"),
        "tot_ccld_qty": str(order.filled_qty),
        "tot_ccld_amt": str(order.filled_qty * order.price),
        "psbl_qty": str(order.open_qty),
        "sll_buy_dvsn_cd": "02" if order.side == "buy" else "01",
        "ord_dvsn_cd": order.ord_dvsn,
        "mgco_aptm_odno": "",
        "excg_dvsn_cd": "01",
        "excg_id_dvsn_cd": "KRX",
        "excg_id_dvsn_name": "한국거래소",
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_yn": "N",
    }


def psbl_order(ctx: Ctx) -> FakeResponse:
    """inquire-psbl-order: orderable cash is the account's cash less what open buy orders
    hold; quantities at ORD_UNPR (limit) or the current price (market). No margin: the
    no-credit (nrcvb) and maximum figures are equal."""
    q = ctx.query
    if not _account_matches(ctx, q):
        return ctx.reject(ACCOUNT_INVALID)
    listing = ctx.core.universe.get(q.get("PDNO", "").strip())
    if listing is None:
        return ctx.reject(NOT_TRADABLE)
    account = ctx.account
    unit = _int(q.get("ORD_UNPR", "")) or 0
    if q.get("ORD_DVSN", "00").strip() not in _PRICED or not unit:
        unit = ctx.core.price_of(listing.code)
    cash = max(account.cash - _reserved(account, "buy"), 0)
    qty = cash // unit if unit else 0
    output = {
        "ord_psbl_cash": str(cash),
        "ord_psbl_sbst": "0",
        "ruse_psbl_amt": "0",
        "fund_rpch_chgs": "0",
        "psbl_qty_calc_unpr": str(unit),
        "nrcvb_buy_amt": str(qty * unit),
        "nrcvb_buy_qty": str(qty),
        "max_buy_amt": str(qty * unit),
        "max_buy_qty": str(qty),
        "cma_evlu_amt": "0",
        "ovrs_re_use_amt_wcrc": "0",
        "ord_psbl_frcr_amt_wcrc": "0",
    }
    return ctx.ok(output=output)


def psbl_sell(ctx: Ctx) -> FakeResponse:
    """inquire-psbl-sell (real only): the holding of PDNO; ``ord_psbl_qty`` is the holding
    less open sell orders."""
    q = ctx.query
    if not _account_matches(ctx, q):
        return ctx.reject(ACCOUNT_INVALID)
    code = q.get("PDNO", "").strip()
    listing = ctx.core.universe.get(code)
    if listing is None:
        return ctx.reject(NOT_TRADABLE)
    account = ctx.account
    holding = account.holdings.get(listing.code) or Holding(0, 0)
    price = ctx.core.price_of(listing.code)
    value = holding.qty * price
    profit = value - holding.cost
    output = {
        "pdno": listing.code,
        "buy_qty": str(holding.today_buy),
        "sll_qty": str(holding.today_sell),
        "cblc_qty": str(holding.qty),
        "nsvg_qty": "0",
        "ord_psbl_qty": str(max(holding.qty - _reserved(account, "sell", listing.code), 0)),
        "pchs_avg_pric": f"{holding.cost / holding.qty:.4f}" if holding.qty else "0.0000",
        "pchs_amt": str(holding.cost),
        "now_pric": str(price),
        "evlu_amt": str(value),
        "evlu_pfls_amt": str(profit),
        "evlu_pfls_rt": f"{profit * 100 / holding.cost:.2f}" if holding.cost else "0.00",
    }
    return ctx.ok(output=output)


#: 주문구분명 per ORD_DVSN, as the order rows name them.
_DVSN_NAMES = {
    "00": "지정가",
    "01": "시장가",
    "02": "조건부지정가",
    "03": "최유리지정가",
    "04": "최우선지정가",
    "05": "장전 시간외",
    "06": "장후 시간외",
    "07": "시간외 단일가",
    "11": "IOC지정가",
    "12": "FOK지정가",
    "13": "IOC시장가",
    "14": "FOK시장가",
}


def _page(ctx: Ctx, keys: list[str], rows: int) -> tuple[int, int, str]:
    """Slice of *keys* for this call: (start, stop, tr_cont header).

    The NK100 cursor is ``"<CANO>^<ACNT_PRDT_CD>^<last key sent>"``; it is honoured only with the
    request header ``tr_cont: N``. Response header: F/M (more to come) or D/E (last page).
    """
    continuing = ctx.request.headers.get("tr_cont", "").strip().upper() == "N"
    cursor = ctx.query.get("CTX_AREA_NK100", "").strip()
    start = 0
    if continuing and cursor:
        last = cursor.rsplit("^", 1)[-1]
        start = next((i + 1 for i, key in enumerate(keys) if key == last), len(keys))
    stop = min(start + rows, len(keys))
    more = stop < len(keys)
    return start, stop, ("M" if continuing else "F") if more else ("E" if continuing else "D")


def _cursors(ctx: Ctx, last: str) -> dict[str, Any]:
    account = ctx.account
    return {
        "ctx_area_fk100": f"{account.cano}^{account.acnt_prdt_cd}^",
        "ctx_area_nk100": f"{account.cano}^{account.acnt_prdt_cd}^{last}",
    }


def balance(ctx: Ctx) -> FakeResponse:
    """inquire-balance: holdings by code, ``balance_page_rows`` per page; output2 summary."""
    if not _account_matches(ctx, ctx.query):
        return ctx.reject(ACCOUNT_INVALID)
    core, account = ctx.core, ctx.account
    codes = sorted(account.holdings)
    start, stop, tr_cont = _page(ctx, codes, env_settings(ctx.env).limits.balance_page_rows)
    rows, total_value, total_cost = [], 0, 0
    for index, code in enumerate(codes):
        holding = account.holdings[code]
        listing = core.universe.get(code)
        assert listing is not None
        snap = price_snapshot(core, listing)
        value = holding.qty * snap["price"]
        total_value, total_cost = total_value + value, total_cost + holding.cost
        if start <= index < stop:
            rows.append(
                _holding_row(account, code, holding, name=listing.name, snap=snap, value=value)
            )
    today = core.session_day()
    fills = [o for o in account.orders if o.kind == "order" and o.time.date() == today]
    bought = sum(o.filled_qty * o.price for o in fills if o.side == "buy")
    sold = sum(o.filled_qty * o.price for o in fills if o.side == "sell")
    total = account.cash + total_value
    before = _previous_close_assets(core, account, fills, bought - sold)
    change = total - before
    summary = {
        "dnca_tot_amt": str(account.cash),
        "nxdy_excc_amt": str(account.cash),
        "prvs_rcdl_excc_amt": str(account.cash),
        "cma_evlu_amt": "0",
        "bfdy_buy_amt": "0",
        "thdt_buy_amt": str(bought),
        "nxdy_auto_rdpt_amt": "0",
        "bfdy_sll_amt": "0",
        "thdt_sll_amt": str(sold),
        "d2_auto_rdpt_amt": "0",
        "bfdy_tlex_amt": "0",
        "thdt_tlex_amt": "0",
        "tot_loan_amt": "0",
        "scts_evlu_amt": str(total_value),
        "tot_evlu_amt": str(total),
        "nass_amt": str(total),
        "fncg_gld_auto_rdpt_yn": "N",
        "pchs_amt_smtl_amt": str(total_cost),
        "evlu_amt_smtl_amt": str(total_value),
        "evlu_pfls_smtl_amt": str(total_value - total_cost),
        "tot_stln_slng_chgs": "0",
        "bfdy_tot_asst_evlu_amt": str(before),
        "asst_icdc_amt": str(change),
        "asst_icdc_erng_rt": f"{change * 100 / before:.8f}" if before else "0.00000000",
    }
    last = codes[stop - 1] if stop else ""
    return ctx.ok(tr_cont=tr_cont, output1=rows, output2=[summary], **_cursors(ctx, last))


def _previous_close_assets(core: Core, account: Account, fills: list[Order], spent: int) -> int:
    """The account's total assets at the previous close (``bfdy_tot_asst_evlu_amt``): today's
    cash before today's orders (*fills*, which spent *spent* net), and the holdings before them
    valued at each code's previous close. ``asst_icdc_amt`` / ``asst_icdc_erng_rt`` (the change
    since, in KRW and %) then move with the price, as the day's performance does."""
    shares = {code: holding.qty for code, holding in account.holdings.items()}
    for order in fills:
        moved = order.filled_qty if order.side == "buy" else -order.filled_qty
        shares[order.code] = shares.get(order.code, 0) - moved
    value = 0
    for code, qty in shares.items():
        listing = core.universe.get(code)
        if listing is not None and qty > 0:
            value += qty * price_snapshot(core, listing)["prev"]
    return account.cash + spent + value


def _holding_row(
    account: Account, code: str, holding: Holding, *, name: str, snap: dict[str, Any], value: int
) -> dict[str, str]:
    profit = value - holding.cost
    rate = f"{profit * 100 / holding.cost:.2f}" if holding.cost else "0.00"
    return {
        "pdno": code,
        "prdt_name": name,
        "trad_dvsn_name": "현금",
        "bfdy_buy_qty": "0",
        "bfdy_sll_qty": "0",
        "thdt_buyqty": str(holding.today_buy),
        "thdt_sll_qty": str(holding.today_sell),
        "hldg_qty": str(holding.qty),
        "ord_psbl_qty": str(holding.qty - _reserved(account, "sell", code)),
        "pchs_avg_pric": f"{holding.cost / holding.qty:.4f}",
        "pchs_amt": str(holding.cost),
        "prpr": str(snap["price"]),
        "evlu_amt": str(value),
        "evlu_pfls_amt": str(profit),
        "evlu_pfls_rt": rate,
        "evlu_erng_rt": rate,
        "loan_dt": "",
        "loan_amt": "0",
        "stln_slng_chgs": "0",
        "expd_dt": "",
        "fltt_rt": snap["rate"],
        "bfdy_cprs_icdc": str(snap["change"]),
        "item_mgna_rt_name": "",
        "grta_rt_name": "",
        "sbst_pric": "0",
        "stck_loan_unpr": "0",
    }


def _date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def daily_ccld(ctx: Ctx) -> FakeResponse:
    """inquire-daily-ccld: orders (and cancellations) in [INQR_STRT_DT, INQR_END_DT], filtered by
    SLL_BUY_DVSN_CD (00/01 sell/02 buy), PDNO, ODNO and CCLD_DVSN (00 all/01 filled/02 open);
    INQR_DVSN "01" oldest first, otherwise newest first; ``daily_ccld_page_rows`` per page."""
    if not _account_matches(ctx, ctx.query):
        return ctx.reject(ACCOUNT_INVALID)
    q = ctx.query
    start, end = _date(q.get("INQR_STRT_DT", "")), _date(q.get("INQR_END_DT", ""))
    if start is None or end is None:
        return ctx.reject(BAD_FIELD, "1")
    side = {"01": "sell", "02": "buy"}.get(q.get("SLL_BUY_DVSN_CD", "00").strip())
    pdno, odno = q.get("PDNO", "").strip(), _int(q.get("ODNO", ""))
    ccld = q.get("CCLD_DVSN", "00").strip()
    chosen = [
        o
        for o in ctx.account.orders
        if start <= o.time.date() <= end
        and (side is None or o.side == side)
        and (not pdno or o.code == pdno)
        and (odno is None or int(o.order_no) == odno)
        and (ccld != "01" or o.filled_qty)
        and (ccld != "02" or o.open_qty)
    ]
    if q.get("INQR_DVSN", "00").strip() != "01":
        chosen.reverse()
    numbers = [o.order_no for o in chosen]
    first, stop, tr_cont = _page(ctx, numbers, env_settings(ctx.env).limits.daily_ccld_page_rows)
    rows = [_ccld_row(ctx.core, o) for o in chosen[first:stop]]
    real = [o for o in chosen if o.kind == "order"]
    filled_qty = sum(o.filled_qty for o in real)
    filled_amt = sum(o.filled_qty * o.price for o in real)
    summary = {
        "tot_ord_qty": str(sum(o.qty for o in real)),
        "tot_ccld_qty": str(filled_qty),
        "tot_ccld_amt": str(filled_amt),
        "prsm_tlex_smtl": "0",
        "pchs_avg_pric": f"{filled_amt / filled_qty:.4f}" if filled_qty else "0.0000",
    }
    last = numbers[stop - 1] if stop else ""
    return ctx.ok(tr_cont=tr_cont, output1=rows, output2=summary, **_cursors(ctx, last))


def _ccld_row(core: Core, order: Order) -> dict[str, str]:
    """One ``output1`` row. A revision or cancellation row names the order it changes in
    ``orgn_odno`` (blank on an original order); a cancellation has ``cncl_yn "Y"`` (the row has
    no documented ``rvse_cncl_dvsn_name``); ``ord_dvsn_cd`` /
    ``ord_dvsn_name`` carry the order division (``00`` 지정가, ``01`` 시장가)."""
    listing = core.universe.get(order.code)
    cancel = order.kind == "cancel"
    return {
        "ord_dt": order.time.strftime("%Y%m%d"),
        "ord_gno_brno": order.branch,
        "odno": order.order_no,
        "orgn_odno": order.orgn_odno,
        "ord_dvsn_name": _DVSN_NAMES.get(order.ord_dvsn, "지정가"),
        "sll_buy_dvsn_cd": "02" if order.side == "buy" else "01",
        "sll_buy_dvsn_cd_name": ("현금매수" if order.side == "buy" else "현금매도"),
        "pdno": order.code,
        "prdt_name": listing.name if listing else "",
        "ord_qty": str(order.qty),
        "ord_unpr": str(order.order_price),
        "ord_tmd": order.time.strftime("%H%M%S"),
        "tot_ccld_qty": str(order.filled_qty),
        "avg_prvs": str(order.price if order.filled_qty else 0),
        "cncl_yn": "Y" if cancel else "N",
        "tot_ccld_amt": str(order.filled_qty * order.price),
        "loan_dt": "",
        "ord_dvsn_cd": order.ord_dvsn,
        "cnc_cfrm_qty": str(order.qty if cancel else order.cancelled_qty),
        "rmn_qty": str(order.open_qty),
        "rjct_qty": "0",
        "ccld_cndt_name": {"11": "IOC", "12": "FOK", "13": "IOC", "14": "FOK"}.get(
            order.ord_dvsn, "없음"
        ),
        # The other documented fields, with their documented names: note
        # ``excg_id_dvsn_Cd``'s capital C.
        "ordr_empno": "",
        "inqr_ip_addr": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "",
        "cpbc_ordp_infm_mthd_dvsn_cd": "",
        "infm_tmd": "",
        "ctac_tlno": "",
        "prdt_type_cd": "300",
        "excg_dvsn_cd": "01",
        "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": order.branch,
        "rsvn_ord_end_dt": "",
        "excg_id_dvsn_Cd": "KRX",
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    }
