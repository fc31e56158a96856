"""The ``market_close`` job: cancel today's unfilled orders, store the end-of-day balance.

1. Today's orders are read (``get_daily_orders`` for the trading date); every order *of this
   strategy* with an unfilled remainder that is not a cancellation row is cancelled
   (``cancel_order``). The strategy's orders are those with an order record of the day: its
   ``order_no``, or, for a record still ``intent``/``unknown``, the order it matches (one
   look-up, ``reconcile_order(wait=False)``; never an order another record claims). Orders
   placed by hand are left alone, and logged and recorded (``left_alone``) as such. In
   ``dry-run`` mode nothing is cancelled; what would be is logged. After the session KIS refuses
   cancels (:class:`~kisclient.MarketClosed`); that is logged and recorded, not an error:
   unfilled day orders expire with the session. Trading itself cancels its own unfilled orders
   shortly before the close (``cancel_before_close_minutes``).
2. ``get_balance()`` is stored as the ``balance_snapshot`` record (key: the ISO trading date)::

       {"date", "taken_at", "cash", "total_value", "net_assets", "securities_value",
        "previous_total", "previous_date",
        "holdings": [{"code", "name", "quantity", "avg_price", "price", "value"}]}

   (``avg_price`` as a decimal string; ``previous_total`` is KIS's total assets at the previous
   close, ``previous_date`` the KRX calendar's trading day before). Performance reads these
   snapshots; the previous close gives the first day of a history its return.
3. The cancellations, and the open orders left alone, go to the ``market_close`` record.

Running it twice the same day is harmless (nothing left to cancel; the snapshot is replaced).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from kisclient import Balance, DailyOrder, KISError

from .._calendar import CalendarNotCoveredError, KRXCalendar
from .._jobs import JobContext
from ._config import PipelineConfig
from ._orders import (
    UNSETTLED_STATUSES,
    cancel_open,
    claimed_order_numbers,
    open_orders,
    reconcile_record,
    todays_records,
)
from ._services import RECORD_BALANCE_SNAPSHOT, RECORD_MARKET_CLOSE, sync_client

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import KISClient

__all__ = ["MarketCloseJob", "balance_snapshot", "own_order_numbers"]


def balance_snapshot(balance: Balance, date: str, taken_at: str) -> dict[str, Any]:
    """The JSON snapshot of *balance* stored by market close (see the module docstring)."""
    summary = balance.summary
    try:
        previous_date: str | None = (
            KRXCalendar().previous_trading_day(dt.date.fromisoformat(date)).isoformat()
        )
    except CalendarNotCoveredError:
        previous_date = None
    return {
        "date": date,
        "taken_at": taken_at,
        "cash": summary.cash,
        "total_value": summary.total_value,
        "net_assets": summary.net_assets,
        "securities_value": summary.securities_value,
        "previous_total": summary.previous_total,
        "previous_date": previous_date,
        "holdings": [
            {
                "code": h.code,
                "name": h.name,
                "quantity": h.quantity,
                "avg_price": format(h.avg_price, "f"),
                "price": h.price,
                "value": h.value,
            }
            for h in balance.held
        ],
    }


def own_order_numbers(ctx: JobContext, kis: KISClient) -> set[str]:
    """Order numbers of today's orders placed by this strategy (see the module docstring)."""
    records = todays_records(ctx)
    own = claimed_order_numbers(records)
    for code, record in records.items():
        if record.get("status") not in UNSETTLED_STATUSES or record.get("order_no"):
            continue
        try:
            answer = reconcile_record(kis, record, own, wait=False)
        except KISError as exc:
            ctx.logger.warning("could not match the unsettled order record of %s: %s", code, exc)
            continue
        if answer.order is not None:
            own.add(answer.order.order_no)
    return own


def _describe(orders: list[DailyOrder]) -> str:
    return ", ".join(
        f"{o.order_no} ({o.side} {o.code}, {o.remaining_quantity} left)" for o in orders
    )


@attrs.frozen
class MarketCloseJob:
    """The ``market_close`` job (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        kis = sync_client(ctx)
        log = ctx.logger
        dry_run = self.config.trading_mode == "dry-run"
        orders = kis.get_daily_orders(ctx.trading_date, ctx.trading_date)
        unfilled = open_orders(orders)
        own = own_order_numbers(ctx, kis) if unfilled else set()
        pending = [o for o in unfilled if o.order_no in own]
        left_alone = [o for o in unfilled if o.order_no not in own]
        log.info("%d unfilled order(s) of this strategy today", len(pending))
        if left_alone:
            log.info(
                "left alone %d unfilled order(s) not placed by this strategy: %s",
                len(left_alone),
                _describe(left_alone),
            )
        report = cancel_open(kis, pending, log, dry_run=dry_run)
        ctx.check_stop()
        date = ctx.trading_date.isoformat()
        now = ctx.clock.now().isoformat()
        snapshot = balance_snapshot(kis.get_balance(), date, now)
        ctx.storage.put_record(RECORD_BALANCE_SNAPSHOT, date, snapshot)
        ctx.storage.put_record(
            RECORD_MARKET_CLOSE,
            date,
            {
                "at": now,
                "mode": self.config.trading_mode,
                "open_orders": [o.order_no for o in pending],
                "left_alone": [o.order_no for o in left_alone],
                **report.to_dict(),
            },
        )
        log.info(
            "end of day %s: cash %d, total value %d, net assets %d, %d holding(s); "
            "%d order(s) cancelled",
            date,
            snapshot["cash"],
            snapshot["total_value"],
            snapshot["net_assets"],
            len(snapshot["holdings"]),
            len(report.cancelled),
        )
