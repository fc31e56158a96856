"""Phase 1, ``screening``: quote the universe, keep the tradable, liquid codes, store the watchlist.

Quotes come from the async client (``ctx.services["kis_async"]``) inside ``asyncio.run``, so the
job must be called from a thread without a running event loop (the scheduler's thread is one).
Two passes keep it cheap on the real environment:

1. every code through ``get_prices`` (the 30-code multi-price endpoint where it exists), then
   the price-range and traded-value filters;
2. the multi-price endpoint carries no market-warning code or halt flag (its quotes have
   ``market_warning == ""``), so the survivors that lack them are quoted again one by one
   (``multi=False``) before the warning and halt filters. On paper every quote is per-code
   already and the second pass is empty. (Give the async client no quote cache, its default,
   or the second pass may be answered from the first pass's quotes.)

A code whose quote failed in either pass is left out (and counted as failed). The watchlist is
stored with ``ctx.storage.put_watchlist(date, payload)`` where ``payload`` is
``{"codes": [...], "quotes": {code: {price, traded_value, volume, name}}, ...}``; codes keep
the universe's order. Counts go to the log and to the ``screening`` record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from kisclient import PriceBatch, Quote, normalize_code

from .._jobs import JobContext
from ._config import PipelineConfig
from ._services import RECORD_SCREENING, async_client_factory, service_universe

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import AsyncKISClient

__all__ = ["ScreeningJob", "progress_logger", "watchlist_codes"]


def progress_logger(
    logger: logging.Logger, label: str, steps: int = 10
) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that logs each time another 1/*steps* of the work
    (10 % by default) is done, and once at the end. Each record carries
    ``extra={"progress": {"label", "done", "total"}}``: ``run`` draws it as a progress bar on a
    terminal, and ``--log-format json`` has it as the ``progress`` key."""
    last = [0]

    def progress(done: int, total: int) -> None:
        if total <= 0:
            return
        bucket = min(done, total) * steps // total
        if bucket > last[0]:
            last[0] = bucket
            logger.info(
                "%s: %d/%d (%d%%)", label, done, total, 100 * done // total,
                extra={"progress": {"label": label, "done": done, "total": total}},
            )  # fmt: skip

    return progress


def watchlist_codes(payload: Any) -> list[str]:
    """The codes of a stored watchlist: ``{"codes": [...]}`` (this pipeline) or a plain list
    (e.g. a replacement screening job). Duplicates are dropped, order kept."""
    raw = payload.get("codes") if isinstance(payload, dict) else payload
    if not isinstance(raw, list):
        raise ValueError(f"unrecognised watchlist payload: {type(payload).__name__}")
    seen: dict[str, None] = {}
    for code in raw:
        seen.setdefault(str(code), None)
    return list(seen)


def _bare(code: str) -> str:
    """The key ``get_prices`` files *code* under (its 6-character form), or *code* if invalid."""
    try:
        return normalize_code(code).code
    except ValueError:
        return code


@attrs.frozen
class _Counts:
    scanned: int = 0
    failed: int = 0
    price: int = 0
    traded_value: int = 0
    warning: int = 0
    halted: int = 0


@attrs.frozen
class ScreeningJob:
    """The ``screening`` job (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        ctx.check_stop()
        factory = async_client_factory(ctx)
        log = ctx.logger
        ranked = asyncio.run(self._ranked(factory, log)) if self.config.universe_rankings else ()
        universe = self._universe(ctx, ranked)
        log.info("screening %d codes for %s", len(universe), ctx.trading_date)
        first, second = asyncio.run(self._fetch(factory, universe, log))
        ctx.check_stop()
        kept, counts = self._filter(universe, first, second)
        payload = {
            "trading_date": ctx.trading_date.isoformat(),
            "generated_at": ctx.clock.now().isoformat(),
            "codes": [q.code for q in kept],
            "quotes": {
                q.code: {
                    "name": q.name,
                    "price": q.price,
                    "traded_value": q.traded_value,
                    "volume": q.volume,
                }
                for q in kept
            },
        }
        stats = {**attrs.asdict(counts), "kept": len(kept)}
        ctx.storage.put_record(RECORD_SCREENING, ctx.trading_date.isoformat(), stats)
        ctx.storage.put_watchlist(ctx.trading_date, payload)
        log.info(
            "screening done: scanned %d, failed %d, kept %d (dropped: price %d, traded value %d, "
            "warning %d, halted %d)",
            counts.scanned,
            counts.failed,
            len(kept),
            counts.price,
            counts.traded_value,
            counts.warning,
            counts.halted,
        )

    async def _ranked(
        self, factory: Callable[[], AsyncKISClient], log: logging.Logger
    ) -> tuple[str, ...]:
        """The codes of the configured KIS rankings, in ranking order."""
        async with factory() as client:
            calls = {
                "volume": client.get_volume_rank,
                "market-cap": client.get_market_cap_rank,
                "fluctuation": client.get_fluctuation_rank,
            }
            codes: list[str] = []
            for name in self.config.universe_rankings:
                ranked = await calls[name]()
                log.info("ranking %s: %d codes", name, len(ranked))
                codes += [r.code for r in ranked]
        return tuple(codes)

    def _universe(self, ctx: JobContext, ranked: tuple[str, ...] = ()) -> tuple[str, ...]:
        codes = self.config.universe_codes()
        if codes is None and not ranked:
            codes = service_universe(ctx)
        if codes is None and not ranked:
            raise RuntimeError(
                "screening has no universe: set PipelineConfig.universe (a list of codes or a "
                "file of codes), universe_rankings, or provide ctx.services['universe']"
            )
        unique = tuple(dict.fromkeys((*(codes or ()), *ranked)))
        if not unique:
            raise RuntimeError("screening's universe is empty")
        return unique

    def _passes_price(self, quote: Quote) -> bool:
        high = self.config.max_price
        return quote.price >= self.config.min_price and (high is None or quote.price <= high)

    def _needs_flags(self) -> bool:
        return self.config.exclude_warnings or self.config.exclude_halted

    async def _fetch(
        self, factory: Callable[[], AsyncKISClient], universe: Sequence[str], log: logging.Logger
    ) -> tuple[PriceBatch, PriceBatch | None]:
        concurrency = self.config.screening_concurrency
        async with factory() as client:
            first = await client.get_prices(
                universe, concurrency=concurrency, progress=progress_logger(log, "quotes")
            )
            unknown = [
                q.code
                for q in first.succeeded.values()
                if self._passes_price(q)
                and q.traded_value >= self.config.min_traded_value
                and q.market_warning == ""
            ]
            if not unknown or not self._needs_flags():
                return first, None
            log.info("fetching warning/halt flags of %d candidates one by one", len(unknown))
            second = await client.get_prices(
                unknown,
                multi=False,
                concurrency=concurrency,
                progress=progress_logger(log, "flags"),
            )
            return first, second

    def _filter(
        self, universe: Iterable[str], first: PriceBatch, second: PriceBatch | None
    ) -> tuple[list[Quote], _Counts]:
        cfg = self.config
        kept: list[Quote] = []
        counts = {
            "scanned": 0,
            "failed": 0,
            "price": 0,
            "traded_value": 0,
            "warning": 0,
            "halted": 0,
        }
        for code in universe:
            counts["scanned"] += 1
            quote = first.succeeded.get(_bare(code))
            if quote is None:
                counts["failed"] += 1
                continue
            if not self._passes_price(quote):
                counts["price"] += 1
                continue
            if quote.traded_value < cfg.min_traded_value:
                counts["traded_value"] += 1
                continue
            if second is not None and quote.market_warning == "":
                detailed = second.succeeded.get(quote.code)
                if detailed is None:
                    counts["failed"] += 1
                    continue
                quote = detailed
            if cfg.exclude_warnings and quote.market_warning not in ("00", ""):
                counts["warning"] += 1
                continue
            if cfg.exclude_halted and quote.halted:
                counts["halted"] += 1
                continue
            kept.append(quote)
        return kept, _Counts(**counts)
