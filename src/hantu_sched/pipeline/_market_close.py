"""The ``market_close`` job: cancel today's unfilled orders, store the end-of-day balance.

1. Today's orders are read (``get_daily_orders`` for the trading date); every order with an
   unfilled remainder that is not a cancellation row is cancelled (``cancel_order``). In
   ``dry-run`` mode nothing is cancelled; what would be is logged. After the session KIS refuses
   cancels (:class:`~kisclient.MarketClosed`); that is logged and recorded, not an error:
   unfilled day orders expire with the session. Trading itself cancels its own unfilled orders
   shortly before the close (``cancel_before_close_minutes``).
2. ``get_balance()`` is stored as the ``balance_snapshot`` record (key: the ISO trading date)::

       {"date", "taken_at", "cash", "total_value", "net_assets", "securities_value",
        "holdings": [{"code", "name", "quantity", "avg_price", "price", "value"}]}

   (``avg_price`` as a decimal string). Performance reads these snapshots.
3. The cancellations go to the ``market_close`` record.

Running it twice the same day is harmless (nothing left to cancel; the snapshot is replaced).
"""

from __future__ import annotations

from typing import Any

import attrs

from kisclient import Balance

from .._jobs import JobContext
from ._config import PipelineConfig
from ._orders import cancel_open, open_orders
from ._services import RECORD_BALANCE_SNAPSHOT, RECORD_MARKET_CLOSE, sync_client

__all__ = ["MarketCloseJob", "balance_snapshot"]


def balance_snapshot(balance: Balance, date: str, taken_at: str) -> dict[str, Any]:
    """The JSON snapshot of *balance* stored by market close (see the module docstring)."""
    summary = balance.summary
    return {
        "date": date,
        "taken_at": taken_at,
        "cash": summary.cash,
        "total_value": summary.total_value,
        "net_assets": summary.net_assets,
        "securities_value": summary.securities_value,
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


@attrs.frozen
class MarketCloseJob:
    """The ``market_close`` job (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        kis = sync_client(ctx)
        log = ctx.logger
        dry_run = self.config.trading_mode == "dry-run"
        orders = kis.get_daily_orders(ctx.trading_date, ctx.trading_date)
        pending = open_orders(orders)
        log.info("%d unfilled order(s) today", len(pending))
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
