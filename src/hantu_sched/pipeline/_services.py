"""What the pipeline's jobs take from ``ctx.services``, and where they leave their results.

Services (``ctx.services`` is a :class:`hantu_sched.Services`; the runner and ``simulate`` build
it with :func:`hantu_sched.build_services`):

- ``ctx.services.kis`` (mapping key :data:`KIS_SERVICE`, ``"kis"``): a
  :class:`kisclient.KISClient` (sync), used by selection, trading, market close and the trading
  reconciler.
- ``ctx.services.kis_async`` (:data:`KIS_ASYNC_SERVICE`, ``"kis_async"``): a zero-argument
  callable returning a *new* :class:`kisclient.AsyncKISClient`; screening opens one inside
  ``asyncio.run`` and closes it.
- ``ctx.services.universe`` (:data:`UNIVERSE_SERVICE`, ``"universe"``): optional codes to scan
  when the configuration names no universe (the fake server's universe in simulation).

Storage records (``ctx.storage.put_record(kind, key, payload)``; keys are ISO dates unless
noted) are listed by the ``RECORD_*`` constants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .._jobs import JobContext

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import AsyncKISClient, KISClient

__all__ = [
    "KIS_ASYNC_SERVICE",
    "KIS_SERVICE",
    "RECORD_BALANCE_SNAPSHOT",
    "RECORD_FINAL_SELECTION",
    "RECORD_MARKET_CLOSE",
    "RECORD_ORDER",
    "RECORD_PERFORMANCE",
    "RECORD_SCREENING",
    "RECORD_TRADING",
    "RECORD_TRADING_RECONCILE",
    "UNIVERSE_SERVICE",
    "async_client_factory",
    "order_key",
    "service_universe",
    "sync_client",
]

KIS_SERVICE: Final = "kis"
KIS_ASYNC_SERVICE: Final = "kis_async"
UNIVERSE_SERVICE: Final = "universe"

#: Screening statistics of the day (scanned, failed, kept, filter counts).
RECORD_SCREENING: Final = "screening"
#: The final selection (top-N across every batch), stored by the last batch and by trading.
RECORD_FINAL_SELECTION: Final = "final_selection"
#: One order of the day; key ``"<date>/<code>"``. Written with status ``intent`` *before* the
#: order is sent, then updated with the outcome.
RECORD_ORDER: Final = "order"
#: The trading run's summary (placed, skipped, mode).
RECORD_TRADING: Final = "trading"
#: What the trading reconciler found (today's orders and positions).
RECORD_TRADING_RECONCILE: Final = "trading_reconcile"
#: Market-close summary (cancellations).
RECORD_MARKET_CLOSE: Final = "market_close"
#: End-of-day balance snapshot (cash, total value, net assets, holdings).
RECORD_BALANCE_SNAPSHOT: Final = "balance_snapshot"
#: The day's performance report (the same JSON as the report file).
RECORD_PERFORMANCE: Final = "performance"


def order_key(trading_date: dt.date, code: str) -> str:
    """The :data:`RECORD_ORDER` key of *code*'s order on *trading_date*."""
    return f"{trading_date.isoformat()}/{code}"


def _missing(ctx: JobContext, name: str, what: str) -> RuntimeError:
    return RuntimeError(
        f"{ctx.key}: the pipeline needs ctx.services[{name!r}] (Services.{name}: {what}); "
        f"available services: {sorted(ctx.services) or 'none'}"
    )


def sync_client(ctx: JobContext) -> KISClient:
    """``ctx.services.kis`` (a :class:`kisclient.KISClient`; checked by
    :class:`~hantu_sched.Services`), or a clear error when it is missing."""
    client = ctx.services.kis
    if client is None:
        raise _missing(ctx, KIS_SERVICE, "a kisclient.KISClient")
    return client


def async_client_factory(ctx: JobContext) -> Callable[[], AsyncKISClient]:
    """``ctx.services.kis_async``: a zero-argument callable returning a new async client."""
    factory = ctx.services.kis_async
    if factory is None:
        raise _missing(
            ctx, KIS_ASYNC_SERVICE, "a zero-argument callable returning a new AsyncKISClient"
        )
    return _checked_factory(factory)


def _checked_factory(factory: Callable[[], Any]) -> Callable[[], AsyncKISClient]:
    from kisclient import AsyncKISClient  # noqa: PLC0415 - see the imports above

    def make() -> AsyncKISClient:
        client = factory()
        if not isinstance(client, AsyncKISClient):
            raise TypeError(
                f"ctx.services[{KIS_ASYNC_SERVICE!r}]() must return a kisclient.AsyncKISClient, "
                f"got {type(client).__name__}"
            )
        return client

    return make


def service_universe(ctx: JobContext) -> tuple[str, ...] | None:
    """``ctx.services.universe`` (a tuple of codes), or ``None`` when absent."""
    return ctx.services.universe
