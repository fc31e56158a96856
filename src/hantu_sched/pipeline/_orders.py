"""Order bookkeeping shared by trading, its reconciler and market close.

Order records (``RECORD_ORDER``, key ``"<date>/<code>"``) follow one life cycle::

    intent ──► sent          (order_cash answered; order_no known)
       │  └──► unknown ──► reconciled   (found among today's orders; order_no known)
       │           │    └─► absent      (certainly never reached KIS: the settle window passed
       │           │                     on KIS's clock without it; safe to send again)
       │           └──────► unknown     (neither is certain: counted as ordered, never resent)
       ├─────► rejected / not-sent      (KIS refused it, or it certainly never left)
    dry-run                             (dry-run mode: what would have been sent)

``intent`` is written *before* the request is sent, with the send time on the local clock
(``intent_at``) and on KIS's clock (``intent_at_kis``: local time plus the client's measured
``clock_offset``), so a crash between sending and recording leaves an ``intent`` (or
``unknown``) record; :func:`reconcile_day` settles those against today's orders from KIS with
:meth:`kisclient.KISClient.reconcile_order`: the same rule as the trading job (absence only once
certain, one KIS order matched to at most one record). Both wait out the settle window with
:func:`settle_order`, on the job's clock, so a stop interrupts the wait: the record then stays
unsettled, which every later run counts as ordered.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from kisclient import DailyOrder, KISRejected, MarketClosed, OrderOutcomeUnknown, Reconciliation

from .._jobs import JobContext
from ._services import RECORD_ORDER, order_key

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import KISClient

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_SEND_DELAY_S",
    "UNSETTLED_STATUSES",
    "CancelReport",
    "DayOrders",
    "cancel_open",
    "claimed_order_numbers",
    "kis_time",
    "open_orders",
    "order_summary",
    "reconcile_day",
    "reconcile_record",
    "record_request",
    "settle_order",
    "todays_records",
]

#: Statuses that mean "this code was (or may have been) ordered today": never order it again.
ACTIVE_STATUSES: Final = frozenset({"intent", "unknown", "sent", "reconciled"})
#: Statuses whose outcome is not known yet.
UNSETTLED_STATUSES: Final = frozenset({"intent", "unknown"})
#: How long after its ``intent`` was journalled an order can still leave the client: the retry
#: deadline (30 s), a token issuance wait (KIS allows one a minute) and the timeout, generously.
#: A restart measures the settle window from this bound, never from "now": the process that
#: journalled the intent may not be dead (a leader cut off from a shared journal still reaches
#: KIS), so its order may leave until then.
MAX_SEND_DELAY_S: Final = 120.0
#: While an order's outcome is unknown inside its settle window, today's orders are looked up
#: again this often (seconds, on the job's clock), as the client's own waiting reconciler does.
SETTLE_POLL_S: Final = 5.0
#: ... and for this long after the window (a look-up that failed, ``Date`` headers in whole
#: seconds), before the outcome is left unknown.
SETTLE_GRACE_S: Final = 4 * SETTLE_POLL_S


def kis_time(kis: KISClient, now: dt.datetime) -> dt.datetime:
    """*now* (local clock) on KIS's clock: plus the client's measured ``clock_offset``."""
    offset = kis.clock_offset
    return now if offset is None else now + dt.timedelta(seconds=offset)


def claimed_order_numbers(records: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """KIS order numbers already matched to a record: never matched to another one."""
    return {str(r["order_no"]) for r in records.values() if r.get("order_no")}


def record_request(record: Mapping[str, Any], now_kis: dt.datetime | None = None) -> dict[str, Any]:
    """The ``reconcile_order`` request of an order record (what was, or may have been, sent).

    The send time is the record's (``sent_at_kis`` from the client when the answer was lost,
    else the journalled ``intent_at_kis``/``intent_at``, which are no later than the send). With
    *now_kis* (a restart) the settle window runs from the latest moment the order can have
    left (``sent_by_kis``): intent + :data:`MAX_SEND_DELAY_S`, or *now_kis* when the record has
    no intent time.
    """
    price = record.get("price")
    request: dict[str, Any] = {
        "side": record.get("side", "buy"),
        "code": record["code"],
        "qty": record.get("quantity"),
        "price": price,
        "ord_dvsn": "00" if price is not None else "01",
        "sent_at": record.get("sent_at") or record.get("intent_at"),
        "sent_at_kis": record.get("sent_at_kis") or record.get("intent_at_kis"),
    }
    if now_kis is not None and not record.get("sent_at_kis"):
        started = request["sent_at_kis"] or request["sent_at"]
        latest = now_kis
        if started:
            latest = dt.datetime.fromisoformat(str(started)) + dt.timedelta(
                seconds=MAX_SEND_DELAY_S
            )
        request["sent_by_kis"] = latest.isoformat()
    return request


def reconcile_record(
    kis: KISClient,
    record: Mapping[str, Any],
    claimed: Iterable[str],
    *,
    now_kis: dt.datetime | None = None,
    wait: bool = True,
) -> Reconciliation:
    """Reconcile one order record against KIS (waiting out the settle window with *wait*)."""
    return kis.reconcile_order(record_request(record, now_kis), exclude=claimed, wait=wait)


def settle_order(
    ctx: JobContext,
    kis: KISClient,
    request: OrderOutcomeUnknown | Mapping[str, Any],
    claimed: Iterable[str],
) -> Reconciliation:
    """:meth:`~kisclient.KISClient.reconcile_order` of *request*, its settle window waited out on
    the job's clock instead of inside the client: while the answer is ``UNKNOWN`` and the window
    (``settle_until``, on KIS's clock) has not passed by :data:`SETTLE_GRACE_S`, sleep with
    :meth:`JobContext.sleep_until` for at most :data:`SETTLE_POLL_S` and look again. A stop raises
    :class:`~hantu_sched.JobInterrupted` from that sleep (the order's record stays unsettled, and
    every later run counts it as ordered), so shutting down never waits for a window that can
    reach two minutes after a restart. *request* must stay the same across the look-ups (a
    record's :func:`record_request` is computed once by the caller)."""
    exclude = frozenset(claimed)
    answer = kis.reconcile_order(request, exclude=exclude, wait=False)
    lookups = answer.lookups
    while answer.unknown and answer.settle_until is not None:
        now = ctx.clock.now()
        left = (answer.settle_until - kis_time(kis, now)).total_seconds()
        if left < -SETTLE_GRACE_S:
            break  # long past the window and still not readable: unknown it stays
        ctx.sleep_until(now + dt.timedelta(seconds=min(SETTLE_POLL_S, max(left, 0.0) + 1.0)))
        answer = kis.reconcile_order(request, exclude=exclude, wait=False)
        lookups += answer.lookups
    return attrs.evolve(answer, lookups=lookups)


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
    """Read today's orders from KIS and settle unfinished order records against them.

    Each ``intent``/``unknown`` record is reconciled (:func:`reconcile_record`): ``reconciled``
    when found (each KIS order matched to at most one record), ``absent`` only once the settle
    window has passed on KIS's clock without it (this waits, on the client's clock, when the
    record is recent), and left ``unknown`` otherwise, still counted as ordered.
    """
    orders = tuple(kis.get_daily_orders(ctx.trading_date, ctx.trading_date))
    bought_codes = {o.code for o in orders if o.side == "buy"}
    settled: dict[str, str] = {}
    records = todays_records(ctx)
    claimed = claimed_order_numbers(records)
    for code, record in records.items():
        if record.get("status") not in UNSETTLED_STATUSES:
            continue
        request = record_request(record, kis_time(kis, ctx.clock.now()))
        answer = settle_order(ctx, kis, request, claimed)
        if answer.order is not None:
            update: dict[str, Any] = {"status": "reconciled", "order_no": answer.order.order_no}
            claimed.add(answer.order.order_no)
        elif answer.absent:
            update = {"status": "absent"}
        else:
            update = {"status": "unknown"}
        record.update(
            update,
            updated_at=ctx.clock.now().isoformat(),
            note=f"settled against today's orders: {answer.reason}",
        )
        ctx.storage.put_record(RECORD_ORDER, order_key(ctx.trading_date, code), record)
        settled[code] = str(update["status"])
        ctx.logger.warning(
            "order record for %s after an interrupted run: %s (%s; %d look-up(s))",
            code,
            update["status"],
            answer.reason,
            answer.lookups,
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
