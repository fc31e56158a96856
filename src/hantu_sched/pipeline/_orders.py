"""Order bookkeeping shared by trading, its reconciler and market close.

Order records (``RECORD_ORDER``, key ``"<date>/<code>"``) follow one life cycle::

    intent ──► sent          (order_cash answered; order_no known)
       │  └──► unknown ──► reconciled   (found among today's orders; order_no known)
       │                └─► absent      (not found: it never reached KIS; safe to send again)
       ├─────► rejected / not-sent      (KIS refused it, or it certainly never left)
    dry-run                             (dry-run mode: what would have been sent)

``intent`` is written *before* the request is sent, so a crash between sending and recording
leaves an ``intent`` (or ``unknown``) record; :func:`reconcile_day` settles those against
today's orders from KIS, which are the truth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

import attrs

from kisclient import DailyOrder, KISClient, KISRejected, MarketClosed

from .._jobs import JobContext
from ._services import RECORD_ORDER, order_key

__all__ = [
    "ACTIVE_STATUSES",
    "UNSETTLED_STATUSES",
    "CancelReport",
    "DayOrders",
    "cancel_open",
    "open_orders",
    "order_summary",
    "reconcile_day",
    "todays_records",
]

#: Statuses that mean "this code was (or may have been) ordered today": never order it again.
ACTIVE_STATUSES: Final = frozenset({"intent", "unknown", "sent", "reconciled"})
#: Statuses whose outcome is not known yet.
UNSETTLED_STATUSES: Final = frozenset({"intent", "unknown"})


def order_summary(order: DailyOrder) -> dict[str, Any]:
    """A JSON-serialisable view of *order* (no account data)."""
    return {
        "order_no": order.order_no,
        "code": order.code,
        "side": order.side,
        "quantity": order.quantity,
        "price": order.price,
        "filled_quantity": order.filled_quantity,
        "remaining_quantity": order.remaining_quantity,
        "cancelled": order.cancelled,
        "ordered_at": order.ordered_at,
    }


def open_orders(orders: Iterable[DailyOrder]) -> list[DailyOrder]:
    """Orders with an unfilled remainder that are not cancellation rows."""
    return [o for o in orders if o.remaining_quantity > 0 and not o.cancelled]


def todays_records(ctx: JobContext) -> dict[str, dict[str, Any]]:
    """This trading date's order records, by code."""
    prefix = order_key(ctx.trading_date, "")
    found: dict[str, dict[str, Any]] = {}
    for key, payload in ctx.storage.list_records(RECORD_ORDER).items():
        if key.startswith(prefix) and isinstance(payload, dict):
            found[key[len(prefix) :]] = payload
    return found


@attrs.frozen
class DayOrders:
    """Today's orders from KIS and what they mean for trading.

    ``ordered``: codes bought today (any buy row, cancelled or not) or with an active record;
    trading never orders them again. ``settled``: code → new status of records that were
    ``intent``/``unknown`` and were settled against KIS.
    """

    orders: tuple[DailyOrder, ...]
    ordered: frozenset[str]
    settled: dict[str, str]


def reconcile_day(ctx: JobContext, kis: KISClient) -> DayOrders:
    """Read today's orders from KIS and settle unfinished order records against them."""
    orders = tuple(kis.get_daily_orders(ctx.trading_date, ctx.trading_date))
    bought: dict[str, DailyOrder] = {}
    for order in orders:
        if order.side == "buy" and not order.cancelled:
            bought.setdefault(order.code, order)
    bought_codes = {o.code for o in orders if o.side == "buy"}
    settled: dict[str, str] = {}
    now = ctx.clock.now().isoformat()
    records = todays_records(ctx)
    for code, record in records.items():
        if record.get("status") not in UNSETTLED_STATUSES:
            continue
        match = bought.get(code)
        if match is not None:
            update = {"status": "reconciled", "order_no": match.order_no}
        else:
            update = {"status": "absent"}
        record.update(update, updated_at=now, note="settled against today's orders")
        ctx.storage.put_record(RECORD_ORDER, order_key(ctx.trading_date, code), record)
        settled[code] = str(update["status"])
        ctx.logger.warning(
            "order record for %s was %s after an interrupted run: %s",
            code,
            "found" if match else "not found",
            update["status"],
        )
    active = {c for c, r in records.items() if r.get("status") in ACTIVE_STATUSES}
    return DayOrders(orders, frozenset(bought_codes | active), settled)


@attrs.frozen
class CancelReport:
    """What :func:`cancel_open` did: cancelled order numbers, failures (order no → error), and
    whether the market was closed (the remaining orders then expire with the session)."""

    cancelled: tuple[str, ...] = ()
    failed: dict[str, str] = attrs.field(factory=dict)
    market_closed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "cancelled": list(self.cancelled),
            "failed": dict(self.failed),
            "market_closed": self.market_closed,
        }


def cancel_open(
    kis: KISClient, orders: Iterable[DailyOrder], log: logging.Logger, *, dry_run: bool
) -> CancelReport:
    """Cancel each open order in *orders* (dry run: only log them).

    A refusal of one order is logged and recorded, the rest are still tried; a
    :class:`~kisclient.MarketClosed` refusal stops the loop (every other cancel would be refused
    too; unfilled day orders expire at the close). Other errors propagate.
    """
    pending = open_orders(orders)
    cancelled: list[str] = []
    failed: dict[str, str] = {}
    for order in pending:
        if dry_run:
            log.info(
                "dry-run: would cancel order %s (%s %s, %d left)",
                order.order_no,
                order.side,
                order.code,
                order.remaining_quantity,
            )
            continue
        try:
            kis.cancel_order(order)
        except MarketClosed as exc:
            log.warning(
                "market closed, %d unfilled order(s) expire with the session: %s",
                len(pending) - len(cancelled),
                exc,
            )
            return CancelReport(tuple(cancelled), failed, market_closed=True)
        except KISRejected as exc:
            failed[order.order_no] = str(exc)
            log.warning("cancel of order %s (%s) refused: %s", order.order_no, order.code, exc)
            continue
        cancelled.append(order.order_no)
        log.info(
            "cancelled order %s (%s %s, %d unfilled)",
            order.order_no,
            order.side,
            order.code,
            order.remaining_quantity,
        )
    return CancelReport(tuple(cancelled), failed)
