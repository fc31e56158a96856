"""The ``trading`` job and its reconciler: buy the final selection, then hold until the close.

Modes (``PipelineConfig.trading_mode``):

- ``dry-run`` (default): reads the balance, prices and today's orders, logs each order it would
  place and records it with status ``dry-run``; sends nothing.
- ``paper``: places orders through ``ctx.services["kis"]``, which must be a paper client.
- ``live``: the same on a real-environment client; the configuration requires ``allow_live``.

A run, in order:

1. If the session is over, it does nothing; before the open, it waits for the open.
2. Reconcile (always, and logged as such when ``ctx.resume``): today's orders are read from KIS
   and unsettled order records (``intent``/``unknown``, left by a crash) are settled against
   them (:func:`~hantu_sched.pipeline._orders.reconcile_day`). A code with a buy order today or
   an active record is never ordered again that day.
3. The final selection is ranked from the storage selection rows of every configured batch
   (trading refuses to run on a missing batch) and stored as ``final_selection``.
4. Sizing: available cash is ``min(cash, D+2 cash)`` from ``get_balance()`` (so today's buys
   count before settlement); each name gets ``floor(available × max_position_fraction)`` KRW,
   floored to whole shares at the current price, and never more than the cash left. Codes
   already held are skipped.
5. Each order: its record is written with status ``intent`` *before* sending (with the time
   on the local clock and on KIS's clock), then updated. :class:`~kisclient.OrderOutcomeUnknown`
   is reconciled (``kis.reconcile_order``, the settle window waited out on the job's clock by
   :func:`~hantu_sched.pipeline._orders.settle_order`, so a stop interrupts it) before
   anything else happens: found → ``reconciled``; certainly absent → ``absent`` and sent once
   more; still unknown (e.g. the look-up failed) → ``unknown``: the code counts as ordered and
   is never resent that day. A refusal is recorded and the next code is tried; a
   :class:`~kisclient.MarketClosed` refusal stops placing orders.
6. Hold: wake every ``monitor_interval_minutes`` on the clock (``ctx.sleep_until``, so a stop
   request ends the job promptly with :class:`~hantu_sched.JobInterrupted`), log the state of
   this run's orders, cancel this strategy's unfilled orders ``cancel_before_close_minutes``
   before the close, and return at the session close. With ``fill_notices`` the stream's fill
   notices (opened before the first order) are taken at every wake-up too; the trading record
   keeps the fills each path saw (``notice_fills``, ``polled_fills``). Polling stays the
   fallback, and recovery reconciles by polling alone.

The reconciler (registered with the job) runs after an unfinished trading run: it settles the
order records, and stores today's orders and positions as the ``trading_reconcile`` record.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from kisclient import (
    DailyOrder,
    Env,
    KISError,
    KISRejected,
    MarketClosed,
    OrderOutcomeUnknown,
    OrderResult,
    RequestNotSent,
)

from .._events import OrderOutcomeUnknownSeen, OrderReconciled, OrdersTallied
from .._jobs import JobContext
from ._config import PipelineConfig
from ._fill_notices import FillNotices
from ._orders import (
    ACTIVE_STATUSES,
    DayOrders,
    cancel_open,
    claimed_order_numbers,
    kis_time,
    order_summary,
    reconcile_day,
    settle_order,
    todays_records,
)
from ._selection import rank_selection
from ._services import (
    RECORD_FINAL_SELECTION,
    RECORD_ORDER,
    RECORD_TRADING,
    RECORD_TRADING_RECONCILE,
    order_key,
    sync_client,
)

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import KISClient

__all__ = ["TradingJob", "TradingReconcileJob", "final_selection"]

#: At the close, how long (real seconds) trading waits for notices of fills polling has seen.
NOTICE_GRACE_S = 2.0


def check_environment(kis: KISClient, config: PipelineConfig) -> None:
    """Refuse a client whose environment does not match the trading mode."""
    mode, env = config.trading_mode, kis.environment
    if mode == "paper" and env is not Env.PAPER:
        raise ValueError(
            f"trading_mode 'paper' needs a paper-environment client, but ctx.services['kis'] is "
            f"{env.value}"
        )
    if mode == "live" and env is not Env.REAL:
        raise ValueError(
            f"trading_mode 'live' needs a real-environment client, but ctx.services['kis'] is "
            f"{env.value}"
        )


def final_selection(ctx: JobContext, config: PipelineConfig) -> list[dict[str, Any]]:
    """Rank the selection rows of every configured batch (see :func:`rank_selection`) and store
    the result as the ``final_selection`` record. Raises if a configured batch has no row."""
    rows = ctx.storage.get_selection(ctx.trading_date)
    batch_ids = ctx.batch_ids or tuple(rows)
    missing = [b for b in batch_ids if b not in rows]
    if missing:
        raise RuntimeError(
            f"selection for {ctx.trading_date} is incomplete (no rows for batch(es) "
            f"{', '.join(missing)}): trading never starts on a partial selection"
        )
    final = rank_selection({b: rows[b] for b in batch_ids}, config.top_n, config.min_score)
    ctx.storage.put_record(
        RECORD_FINAL_SELECTION,
        ctx.trading_date.isoformat(),
        {"batches": list(batch_ids), "top_n": config.top_n, "items": final},
    )
    return final


@attrs.define
class _Run:
    """Mutable bookkeeping of one trading run (becomes the ``trading`` record)."""

    mode: str
    started_at: str
    selection: list[str] = attrs.field(factory=list)
    placed: dict[str, str] = attrs.field(factory=dict)  # code -> status
    skipped: dict[str, str] = attrs.field(factory=dict)  # code -> reason
    cancelled_before_close: list[str] = attrs.field(factory=list)
    #: Filled quantity per order number, as fill notices reported it and as polling found it.
    notice_fills: dict[str, int] = attrs.field(factory=dict)
    polled_fills: dict[str, int] = attrs.field(factory=dict)
    resumed: bool = False
    finished_at: str | None = None


@attrs.frozen
class TradingJob:
    """The ``trading`` job (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        cfg = self.config
        kis = sync_client(ctx)
        check_environment(kis, cfg)
        log = ctx.logger
        run = _Run(cfg.trading_mode, ctx.clock.now().isoformat(), resumed=ctx.resume)
        if ctx.clock.now() >= ctx.session.close:
            log.warning("session closed at %s: no orders", ctx.session.close.strftime("%H:%M"))
            self._save(ctx, run)
            return
        if ctx.clock.now() < ctx.session.open:
            log.info("waiting for the open at %s", ctx.session.open.strftime("%H:%M"))
            ctx.sleep_until(ctx.session.open)
        day = reconcile_day(ctx, kis)
        self._wait_for_the_open_on_kis_clock(ctx, kis)
        if ctx.resume:
            log.warning(
                "resuming after an unfinished run: %d code(s) already ordered today, %d record(s) "
                "settled",
                len(day.ordered),
                len(day.settled),
            )
        selection = final_selection(ctx, cfg)
        run.selection = [item["code"] for item in selection]
        log.info("final selection: %s", ", ".join(run.selection) or "none")
        notices = FillNotices(kis, log)
        if cfg.fill_notices and cfg.trading_mode != "dry-run":
            notices.open()
        try:
            self._place(ctx, kis, selection, day, run)
            self._save(ctx, run)
            self._hold(ctx, kis, run, notices)
        finally:
            notices.close()
        run.finished_at = ctx.clock.now().isoformat()
        self._save(ctx, run)
        log.info(
            "trading done at the close: %d order(s) placed; fills: %d by notice, %d by polling",
            len(run.placed),
            len(run.notice_fills),
            len(run.polled_fills),
        )

    @staticmethod
    def _wait_for_the_open_on_kis_clock(ctx: JobContext, kis: KISClient) -> None:
        """Wait until the session is open on KIS's clock, not only on this host's.

        A host clock ahead of KIS by even a second sends the first orders before KIS's open,
        and KIS refuses them as "market closed", which ends the day's placing. The offset is
        the client's (measured from the answers' ``Date`` header, which reads KIS's time
        rounded down, so the wait errs late, never early); ``None`` means nothing was measured.
        """
        offset = kis.clock_offset
        if offset is None or offset >= 0:
            return
        open_here = ctx.session.open - dt.timedelta(seconds=offset)
        if ctx.clock.now() < open_here:
            ctx.logger.info(
                "this host's clock is %.1f s ahead of KIS's: waiting for the open on KIS's clock "
                "(%s here)",
                -offset,
                open_here.strftime("%H:%M:%S"),
            )
            ctx.sleep_until(open_here)

    # --- placing ---

    def _place(
        self,
        ctx: JobContext,
        kis: KISClient,
        selection: list[dict[str, Any]],
        day: DayOrders,
        run: _Run,
    ) -> None:
        cfg, log = self.config, ctx.logger
        balance = kis.get_balance()
        summary = balance.summary
        available = min(summary.cash, summary.cash_d2)
        reserved = sum(
            o.remaining_quantity * o.price
            for o in day.orders
            if o.side == "buy" and o.remaining_quantity > 0 and not o.cancelled
        )
        remaining = max(available - reserved, 0)
        budget = int(available * cfg.max_position_fraction)
        held = {h.code for h in balance.held}
        log.info(
            "sizing: available cash %d KRW (%d reserved by open orders), %d KRW per name",
            available,
            reserved,
            budget,
        )
        for item in selection:
            ctx.check_stop()
            code = str(item["code"])
            if code in day.ordered:
                run.skipped[code] = "already ordered today"
                log.info("skip %s: already ordered today", code)
                continue
            if code in held:
                run.skipped[code] = "already held"
                log.info("skip %s: already held", code)
                continue
            try:
                price = kis.get_price(code).price
            except KISError as exc:  # a read: skipping the code is safe
                run.skipped[code] = f"no quote: {exc}"
                log.warning("skip %s: no quote: %s", code, exc)
                continue
            qty = min(budget, remaining) // price if price > 0 else 0
            if qty < 1:
                run.skipped[code] = f"budget too small for one share at {price}"
                log.info("skip %s: %d KRW buys no share at %d", code, min(budget, remaining), price)
                continue
            status = self._order(ctx, kis, code, qty, price)
            if status is None:
                run.skipped[code] = "market closed"
                log.warning("market closed: no further orders today")
                break
            run.placed[code] = status
            if status in ("sent", "reconciled", "unknown", "dry-run"):
                remaining -= qty * price

    def _order(
        self, ctx: JobContext, kis: KISClient, code: str, qty: int, price: int
    ) -> str | None:
        """Place one buy order with intent-first bookkeeping; the final status, or ``None`` if
        the market is closed."""
        cfg, log = self.config, ctx.logger
        limit = price if cfg.order_type == "limit" else None
        key = order_key(ctx.trading_date, code)
        record: dict[str, Any] = {
            "trading_date": ctx.trading_date.isoformat(),
            "code": code,
            "side": "buy",
            "quantity": qty,
            "price": limit,
            "quoted_price": price,
            "order_type": cfg.order_type,
            "mode": cfg.trading_mode,
            "order_no": None,
            "error": None,
            "attempts": 0,
        }

        def put(status: str, **changes: Any) -> None:
            record.update(changes, status=status, updated_at=ctx.clock.now().isoformat())
            ctx.storage.put_record(RECORD_ORDER, key, record)

        if cfg.trading_mode == "dry-run":
            put("dry-run")
            log.info("dry-run: would buy %d %s at %s", qty, code, limit or "market")
            return "dry-run"
        for attempt in (1, 2):
            now = ctx.clock.now()
            put(
                "intent",
                attempts=attempt,
                intent_at=now.isoformat(),
                intent_at_kis=kis_time(kis, now).isoformat(),
                sent_at=None,  # this attempt's, once the client reports it
                sent_at_kis=None,
            )
            try:
                result: OrderResult = kis.order_cash("buy", code, qty, limit)
            except OrderOutcomeUnknown as exc:
                sent = exc.request
                put(
                    "unknown",
                    error=str(exc),
                    sent_at=sent.get("sent_at"),
                    sent_at_kis=sent.get("sent_at_kis"),
                )
                log.warning("order for %s: outcome unknown (%s); reconciling", code, exc)
                day = ctx.trading_date
                ctx.emit(OrderOutcomeUnknownSeen(day, code, "buy", qty, str(exc), ctx.clock.now()))
                claimed = claimed_order_numbers(todays_records(ctx))
                answer = settle_order(ctx, kis, exc, claimed)
                found = answer.order
                outcome = "found" if found else "absent" if answer.absent else "unknown"
                order_no = found.order_no if found is not None else None
                ctx.emit(OrderReconciled(day, code, "buy", outcome, answer.reason,
                                         ctx.clock.now(), order_no))  # fmt: skip
                if answer.order is not None:
                    put("reconciled", order_no=answer.order.order_no, note=answer.reason)
                    log.info(
                        "order for %s found after reconciling: %s", code, answer.order.order_no
                    )
                    return "reconciled"
                if answer.absent:
                    put("absent", note=answer.reason)
                    log.warning(
                        "order for %s did not reach KIS: %s (%d look-up(s); attempt %d)",
                        code,
                        answer.reason,
                        answer.lookups,
                        attempt,
                    )
                    continue
                put("unknown", note=answer.reason)
                log.warning(
                    "order for %s: outcome still unknown (%s); counted as ordered, not resent",
                    code,
                    answer.reason,
                )
                return "unknown"
            except MarketClosed as exc:
                put("rejected", error=str(exc))
                return None
            except RequestNotSent as exc:
                put("not-sent", error=str(exc))
                log.warning("order for %s not sent: %s", code, exc)
                return "not-sent"
            except KISRejected as exc:
                put("rejected", error=str(exc))
                log.warning("order for %s refused: %s", code, exc)
                return "rejected"
            put("sent", order_no=result.order_no, error=None)
            log.info("bought %d %s at %s: order %s", qty, code, limit or "market", result.order_no)
            return "sent"
        return "absent"

    # --- holding ---

    def _hold(self, ctx: JobContext, kis: KISClient, run: _Run, notices: FillNotices) -> None:
        cfg, log = self.config, ctx.logger
        close = ctx.session.close
        step = dt.timedelta(minutes=cfg.monitor_interval_minutes)
        cancel_at: dt.datetime | None = None
        if cfg.cancel_before_close_minutes:
            cancel_at = close - dt.timedelta(minutes=cfg.cancel_before_close_minutes)
        live = cfg.trading_mode != "dry-run"
        while (now := ctx.clock.now()) < close:
            target = min(now + step, close)
            if cancel_at is not None and cancel_at > now:
                target = min(target, cancel_at)
            ctx.sleep_until(target)
            now = ctx.clock.now()
            if not live:
                continue
            mine = self._my_order_numbers(ctx)
            if not mine:
                continue
            try:
                orders = [
                    o
                    for o in kis.get_daily_orders(ctx.trading_date, ctx.trading_date)
                    if o.order_no in mine
                ]
            except KISError as exc:
                log.warning("order status check failed: %s", exc)
                continue
            if cancel_at is not None and cancel_at <= now < close:
                report = cancel_open(kis, orders, log, dry_run=False)
                run.cancelled_before_close = list(report.cancelled)
                self._save(ctx, run)
                cancel_at = None
                continue
            filled = sum(1 for o in orders if o.remaining_quantity == 0 and o.filled_quantity)
            log.info(
                "%s: %d of %d order(s) filled",
                now.strftime("%H:%M"),
                filled,
                len(orders),
            )
            self._note_fills(ctx, run, notices, orders, mine)
        if live and notices.active:
            # the last notices may still be on the wire: wait briefly for every polled fill's
            mine = self._my_order_numbers(ctx)
            notices.drain(mine, until_filled=list(run.polled_fills), grace_s=NOTICE_GRACE_S)
            run.notice_fills = dict(notices.filled)

    def _note_fills(
        self,
        ctx: JobContext,
        run: _Run,
        notices: FillNotices,
        orders: list[DailyOrder],
        mine: set[str],
    ) -> None:
        """Record what polling found filled and what the notices said, side by side."""
        run.polled_fills.update(
            {o.order_no: o.filled_quantity for o in orders if o.filled_quantity}
        )
        notices.drain(mine)
        run.notice_fills = dict(notices.filled)
        self._save(ctx, run)

    def _my_order_numbers(self, ctx: JobContext) -> set[str]:
        return {
            str(r["order_no"])
            for r in todays_records(ctx).values()
            if r.get("status") in ACTIVE_STATUSES and r.get("order_no")
        }

    def _save(self, ctx: JobContext, run: _Run) -> None:
        ctx.storage.put_record(RECORD_TRADING, ctx.trading_date.isoformat(), attrs.asdict(run))
        statuses = collections.Counter(str(r.get("status")) for r in todays_records(ctx).values())
        ctx.emit(OrdersTallied(ctx.trading_date, dict(statuses), dict(run.polled_fills)))


@attrs.frozen
class TradingReconcileJob:
    """The trading reconciler: settle order records against today's orders from KIS and store
    the orders and positions found as the ``trading_reconcile`` record. Sends no order."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        kis = sync_client(ctx)
        day = reconcile_day(ctx, kis)
        balance = kis.get_balance()
        found = {
            "at": ctx.clock.now().isoformat(),
            "orders": [order_summary(o) for o in day.orders],
            "settled": day.settled,
            "ordered_codes": sorted(day.ordered),
            "holdings": {h.code: h.quantity for h in balance.held},
            "cash": balance.summary.cash,
        }
        ctx.storage.put_record(RECORD_TRADING_RECONCILE, ctx.trading_date.isoformat(), found)
        ctx.logger.info(
            "reconciled trading of %s: %d order(s) today, %d record(s) settled, %d position(s)",
            ctx.trading_date,
            len(day.orders),
            len(day.settled),
            len(balance.held),
        )
