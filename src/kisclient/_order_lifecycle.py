"""The order lifecycle (issue 12) as sans-I/O operations: revise and cancel (``order-rvsecncl``),
the orders still open, buyable cash and sellable quantity.

Every revise or cancel is one non-idempotent :class:`~kisclient._core.Call` (it carries a
``request`` record), so the attempt flow never resends it once it may have arrived: a lost answer
is :class:`~kisclient.OrderOutcomeUnknown`, and ``reconcile_order`` matches the revision or
cancellation row it produced (``orgn_odno``), never the original order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import attrs

from ._config import ENDPOINTS, Env, Side
from ._core import Call, next_page
from ._errors import BusinessRejection, OrderNotRevisable, ValidationError
from ._models import DailyOrder, OrderResult
from ._operations import (
    Flow,
    Operation,
    _output,
    _tr,
    get_balance,
    get_daily_orders,
)
from ._order_models import Buyable, PendingOrder, Sellable
from ._validation import Account, normalize_code

__all__ = [
    "NOT_REVISABLE_MSG_CDS",
    "PRICED_DIVISIONS",
    "OrderRef",
    "RvseCncl",
    "Target",
    "buyable",
    "lookup_order",
    "pending_orders",
    "revise_or_cancel",
    "rvsecncl_call",
    "sellable",
]

#: What ``revise_order`` / ``cancel_order`` accept: the result of ``order_cash`` (or of an
#: earlier revision), a row of the day's orders, an open order, or a bare order number (looked
#: up first).
OrderRef: TypeAlias = OrderResult | DailyOrder | PendingOrder | str

#: ``RVSE_CNCL_DVSN_CD``: ``01`` revise, ``02`` cancel.
RvseCncl = Literal["01", "02"]

#: Message codes of a revise/cancel refused because nothing (or less than asked) remains.
#: KIS's published API documentation does not list this refusal; ``APBK0918``
#: "취소가능수량이 없습니다." is the code a third-party KIS client's fixtures record for it.
#: Any other refusal stays a plain :class:`~kisclient.BusinessRejection` / ``BadRequest``.
NOT_REVISABLE_MSG_CDS = frozenset({"APBK0918"})

#: ``ORD_DVSN`` codes that carry a price (see :class:`~kisclient.OrderCondition`).
PRICED_DIVISIONS = frozenset({"00", "02", "07", "11", "12"})


@attrs.frozen
class Target:
    """What a revise or cancel needs to know about the order it changes.

    ``remaining`` is ``None`` when the caller's object does not say (an ``OrderResult``).
    """

    order_no: str
    branch: str
    side: Side | None
    code: str
    price: int | None
    division: str
    remaining: int | None
    exchange_id: str = ""

    @classmethod
    def of(cls, order: OrderResult | DailyOrder | PendingOrder) -> Target:
        if isinstance(order, OrderResult):
            return cls(
                order.order_no,
                order.branch,
                order.side,
                order.code,
                order.price,
                order.order_division,
                None,
            )
        if isinstance(order, DailyOrder):
            remaining: int | None = order.remaining_quantity
            settled = order.filled_quantity + order.cancel_confirmed_quantity
            if remaining == 0 and not (order.cancelled or settled >= order.quantity > 0):
                remaining = None  # a row without the remainder: let KIS decide
            if order.cancelled or order.extra.get("rvse_cncl_dvsn_name", "").strip() == "취소":
                remaining = 0  # a cancellation row is not an order that can change
            return cls(
                order.order_no,
                order.branch,
                order.side,
                order.code,
                order.price or None,
                order.order_division,
                remaining,
                order.exchange_id,
            )
        if isinstance(order, PendingOrder):
            return cls(
                order.order_no,
                order.branch,
                order.side,
                order.code,
                order.price or None,
                order.order_division,
                order.remaining_quantity,
                order.exchange_id,
            )
        raise TypeError(
            "order must be an OrderResult, DailyOrder, PendingOrder or order number, "
            f"not {type(order).__name__}"
        )


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValidationError(f"{name} must be a positive int or None, not {value!r}")


def _check_remaining(target: Target, qty: int | None, what: str) -> None:
    """Refuse, before sending, what the caller's own copy of the order already rules out."""
    if target.remaining is None:
        return
    if target.remaining <= 0:
        raise OrderNotRevisable(
            f"order {target.order_no} has nothing left to {what} (filled or cancelled)"
        )
    if qty is not None and qty > target.remaining:
        raise ValidationError(
            f"cannot {what} {qty} of order {target.order_no}: only {target.remaining} remain"
        )


def _revise_terms(target: Target, price: int | None) -> tuple[str, int | None]:
    """``ORD_DVSN`` and price of a revision: a new price makes a market-type order a limit
    order; without one the order keeps its own division and price (which must be known)."""
    division = target.division or ("00" if target.price else "01")
    if price is not None:
        return (division if division in PRICED_DIVISIONS else "00"), price
    if division in PRICED_DIVISIONS:
        if not target.price:
            raise ValidationError(
                f"order {target.order_no}'s price is unknown: pass price= to revise it"
            )
        return division, target.price
    return division, None


def rvsecncl_call(
    env: Env,
    account: Account,
    target: Target,
    rvse_cncl: RvseCncl,
    *,
    qty: int | None,
    price: int | None,
    division: str,
    legacy_tr_id: bool = False,
) -> Call:
    """One ``order-rvsecncl`` call (documented fields: KRX_FWDG_ORD_ORGNO, ORGN_ODNO, ORD_DVSN,
    RVSE_CNCL_DVSN_CD, ORD_QTY, ORD_UNPR, QTY_ALL_ORD_YN, EXCG_ID_DVSN_CD). ``qty=None`` sends
    ``QTY_ALL_ORD_YN`` ``Y``: everything that remains."""
    tr_id = _tr("order_rvsecncl", env, legacy=legacy_tr_id)
    body = {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "KRX_FWDG_ORD_ORGNO": target.branch,
        "ORGN_ODNO": target.order_no,
        "ORD_DVSN": division,
        "RVSE_CNCL_DVSN_CD": rvse_cncl,
        "ORD_QTY": str(qty) if qty is not None else "0",
        "ORD_UNPR": str(price) if price is not None else "0",
        "QTY_ALL_ORD_YN": "Y" if qty is None else "N",
        # A change must go to the original order's exchange (KIS's order-cash documentation).
        "EXCG_ID_DVSN_CD": target.exchange_id or "KRX",
    }
    request = {
        "rvse_cncl": rvse_cncl,
        "orgn_odno": target.order_no,
        "side": target.side,
        "code": target.code,
        "qty": qty,
        "price": price,
        "ord_dvsn": division,
        "tr_id": tr_id,
    }
    return Call(ENDPOINTS["order_rvsecncl"], tr_id, body=body, request=request)


def lookup_order(env: Env, account: Account, order_no: str, today: dt.date) -> Flow[DailyOrder]:
    """Today's row of order *order_no* (one ``inquire-daily-ccld`` filtered on ``ODNO``)."""
    number = str(order_no).strip()
    if not number.isascii() or not number.isdigit():
        raise ValidationError(f"an order number is digits, not {order_no!r}")
    rows = yield from get_daily_orders(env, account, today, today, today=today, order_no=number)
    for row in rows:
        if row.order_no.lstrip("0") == number.lstrip("0"):
            return row
    raise ValidationError(f"order {number} is not among today's orders; nothing was sent")


def revise_or_cancel(
    env: Env,
    account: Account,
    order: OrderRef,
    rvse_cncl: RvseCncl,
    *,
    qty: int | None,
    price: int | None,
    today: dt.date,
    legacy_tr_id: bool = False,
) -> Flow[OrderResult]:
    """Revise (``01``) or cancel (``02``) *order*: one request when the caller holds the
    order, two (a look-up, then the change) for a bare order number."""
    _positive("qty", qty)
    _positive("price", price)
    if rvse_cncl == "01" and price is None and qty is None:
        raise ValidationError("revise_order needs a new price, a quantity, or both")
    if isinstance(order, str):
        order = yield from lookup_order(env, account, order, today)
    target = Target.of(order)
    what = "revise" if rvse_cncl == "01" else "cancel"
    _check_remaining(target, qty, what)
    if rvse_cncl == "01":
        division, price = _revise_terms(target, price)
    else:
        division, price = "00", None
    call = rvsecncl_call(
        env,
        account,
        target,
        rvse_cncl,
        qty=qty,
        price=price,
        division=division,
        legacy_tr_id=legacy_tr_id,
    )
    try:
        response = yield call
    except BusinessRejection as exc:
        if (exc.msg_cd or "").strip() not in NOT_REVISABLE_MSG_CDS:
            raise
        raise OrderNotRevisable(
            f"order {target.order_no} cannot be {what}d: nothing (or less than asked) remains",
            msg_cd=exc.msg_cd,
            msg1=exc.msg1,
            http_status=exc.http_status,
            tr_id=exc.tr_id,
            raw_body=exc.raw_body,
            attempts=exc.attempts,
        ) from None
    request = dict(call.request or {})
    if request.get("qty") is None and target.remaining is not None:
        request["qty"] = target.remaining
    return OrderResult.from_output(
        _output(response, "output"), response.msg_cd, response.msg1, request
    )


def _rows(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    rows = data.get(key) or []
    if isinstance(rows, Mapping):
        rows = [rows]
    return [r for r in rows if isinstance(r, Mapping) and any(str(v).strip() for v in r.values())]


def pending_orders(env: Env, account: Account, today: dt.date) -> Operation[list[PendingOrder]]:
    """The orders that can still be revised or cancelled, oldest first.

    Real: ``inquire-psbl-rvsecncl`` (TTTC0084R), every page. Paper, where KIS does not offer
    that call: today's open orders from ``inquire-daily-ccld`` (``CCLD_DVSN`` ``02``), keeping
    rows with a remaining quantity that are not cancellations.
    """
    if not ENDPOINTS["inquire_psbl_rvsecncl"].available_in(env):
        rows = yield from get_daily_orders(env, account, today, today, today=today, open_only=True)
        live = [
            PendingOrder.from_daily_order(o)
            for o in rows
            if o.remaining_quantity > 0
            and not o.cancelled
            and o.extra.get("rvse_cncl_dvsn_name", "").strip() != "취소"
        ]
        return sorted(live, key=lambda o: o.order_no)
    call: Call | None = Call(
        ENDPOINTS["inquire_psbl_rvsecncl"],
        _tr("inquire_psbl_rvsecncl", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "INQR_DVSN_1": "0",
            "INQR_DVSN_2": "0",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
    )
    found: list[PendingOrder] = []
    while call is not None:
        response = yield call
        found.extend(PendingOrder.from_row(r) for r in _rows(response.data, "output"))
        call = next_page(call, response.headers, response.data)
    return [o for o in found if o.remaining_quantity > 0]


def buyable(env: Env, account: Account, raw_code: str, price: int | None) -> Operation[Buyable]:
    """``inquire-psbl-order``: cash and quantity orderable for *raw_code* at *price* (limit), or
    at the market (``ORD_DVSN`` ``01``) without one."""
    _positive("price", price)
    code = normalize_code(raw_code)
    response = yield Call(
        ENDPOINTS["inquire_psbl_order"],
        _tr("inquire_psbl_order", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "PDNO": code.query_code,
            "ORD_UNPR": str(price) if price is not None else "",
            "ORD_DVSN": "00" if price is not None else "01",
            "CMA_EVLU_AMT_ICLD_YN": "N",
            "OVRS_ICLD_YN": "N",
        },
    )
    return Buyable.from_output(code.code, _output(response, "output"))


def sellable(env: Env, account: Account, raw_code: str) -> Operation[Sellable]:
    """What can be sold of *raw_code*: ``inquire-psbl-sell`` on real; on paper, where KIS does
    not offer it, the balance's holding (its ``ord_psbl_qty``; every page of the balance)."""
    code = normalize_code(raw_code)
    if not ENDPOINTS["inquire_psbl_sell"].available_in(env):
        balance = yield from get_balance(env, account)
        held = next((h for h in balance.holdings if h.code == code.code), None)
        return Sellable.from_holding(code.code, held)
    response = yield Call(
        ENDPOINTS["inquire_psbl_sell"],
        _tr("inquire_psbl_sell", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "PDNO": code.query_code,
        },
    )
    return Sellable.from_output(code.code, _output(response, "output"))
