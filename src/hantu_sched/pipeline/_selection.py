"""Phase 2, ``selection``: score the watchlist in batches; the final selection is the top N.

Batch *i* of the configured ``ctx.batch_ids`` (n of them) takes ``codes[i::n]`` of the stored
watchlist (:func:`split_batch`), so the batches are disjoint, their union is the watchlist, and
re-running a batch gives the same codes. For each code the daily bars of the
``config.bars_window_days`` calendar days before the trading date are fetched with
``ctx.services["kis"].get_daily_prices``; only bars dated before the trading date count.

Score (:func:`score_bars`): the ``momentum_days``-day return, ``close[-1] / close[-1 - m] - 1``,
kept only if the average volume of the last ``m`` bars is at least ``min_avg_volume``. A code
with too few bars, a failed request, or too little volume is left out (and counted in the log).

Each batch publishes ``[{"code", "score", "close", "avg_volume", "bar_date"}, ...]`` (best score
first) with ``ctx.publish_batch``: the atomic batch file and the storage selection row. When the
last configured batch lands, the final selection (:func:`rank_selection`: scores above
``min_score``, best ``top_n`` across every batch, ties by code) is stored as the
``final_selection`` record; trading recomputes it from the selection rows anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kisclient import DailyBar, KISError

from .._jobs import JobContext
from ._config import PipelineConfig
from ._screening import watchlist_codes
from ._services import RECORD_FINAL_SELECTION, sync_client

__all__ = ["SelectionJob", "rank_selection", "score_bars", "split_batch"]


def split_batch(codes: Sequence[str], batch_ids: Sequence[str], batch_id: str) -> list[str]:
    """The codes of *batch_id*: ``codes[i::n]`` for its index *i* among the *n* batch ids."""
    if batch_id not in batch_ids:
        raise ValueError(
            f"batch {batch_id!r} is not one of the configured batches {list(batch_ids)}"
        )
    return list(codes[batch_ids.index(batch_id) :: len(batch_ids)])


def score_bars(
    bars: Sequence[DailyBar], momentum_days: int, min_avg_volume: int
) -> dict[str, Any] | None:
    """The selection item for *bars* (oldest first), or ``None`` when there are fewer than
    ``momentum_days + 1`` bars, a non-positive close, or too little average volume."""
    if len(bars) < momentum_days + 1:
        return None
    last, base = bars[-1].close, bars[-1 - momentum_days].close
    if last <= 0 or base <= 0:
        return None
    window = bars[-momentum_days:]
    avg_volume = sum(b.volume for b in window) / len(window)
    if avg_volume < min_avg_volume:
        return None
    return {
        "score": last / base - 1.0,
        "close": last,
        "avg_volume": round(avg_volume),
        "bar_date": bars[-1].date.isoformat(),
    }


def _score_of(item: Any) -> float | None:
    if not isinstance(item, dict) or not isinstance(item.get("code"), str):
        return None
    score = item.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return float(score)


def rank_selection(
    rows: Mapping[str, Any], top_n: int, min_score: float = 0.0
) -> list[dict[str, Any]]:
    """The final selection from selection rows (batch id → list of items): items whose score is
    above *min_score*, best first (ties by code), one per code, at most *top_n*. Malformed items
    are ignored."""
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for items in rows.values():
        for item in items if isinstance(items, list) else ():
            score = _score_of(item)
            if score is None or score <= min_score:
                continue
            code = item["code"]
            if code not in best or score > best[code][0]:
                best[code] = (score, dict(item))
    ranked = sorted(best.values(), key=lambda pair: (-pair[0], pair[1]["code"]))
    return [item for _, item in ranked[:top_n]]


@attrs.frozen
class SelectionJob:
    """The ``selection`` job, run once per batch id (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        batch_id = ctx.batch_id
        if batch_id is None:
            raise ValueError(f"{ctx.key}: selection runs per batch, but no batch id was given")
        batch_ids = ctx.batch_ids or (batch_id,)
        payload = ctx.storage.get_watchlist(ctx.trading_date)
        if payload is None:
            raise RuntimeError(
                f"no watchlist is stored for {ctx.trading_date}: screening must run first"
            )
        mine = split_batch(watchlist_codes(payload), batch_ids, batch_id)
        kis = sync_client(ctx)
        cfg = self.config
        end = ctx.trading_date - dt.timedelta(days=1)
        start = ctx.trading_date - dt.timedelta(days=cfg.bars_window_days)
        log = ctx.logger
        log.info("batch %s: scoring %d codes (bars %s..%s)", batch_id, len(mine), start, end)
        items: list[dict[str, Any]] = []
        failed = unscored = 0
        for code in mine:
            ctx.check_stop()
            try:
                bars = kis.get_daily_prices(code, start, end)
            except (KISError, ValueError) as exc:
                failed += 1
                log.warning("batch %s: no bars for %s: %s", batch_id, code, exc)
                continue
            usable = [b for b in bars if b.date < ctx.trading_date]
            scored = score_bars(usable, cfg.momentum_days, cfg.min_avg_volume)
            if scored is None:
                unscored += 1
                continue
            items.append({"code": code, **scored})
        if mine and failed == len(mine):
            raise RuntimeError(f"batch {batch_id}: daily bars failed for all {failed} codes")
        items.sort(key=lambda item: (-item["score"], item["code"]))
        path = ctx.publish_batch(items)
        log.info(
            "batch %s: %d scored, %d without enough bars or volume, %d failed -> %s",
            batch_id,
            len(items),
            unscored,
            failed,
            path.name,
        )
        rows = ctx.storage.get_selection(ctx.trading_date)
        if all(b in rows for b in batch_ids):
            final = rank_selection({b: rows[b] for b in batch_ids}, cfg.top_n, cfg.min_score)
            ctx.storage.put_record(
                RECORD_FINAL_SELECTION,
                ctx.trading_date.isoformat(),
                {"batches": list(batch_ids), "top_n": cfg.top_n, "items": final},
            )
            log.info(
                "final selection (%d of top %d): %s",
                len(final),
                cfg.top_n,
                ", ".join(i["code"] for i in final) or "none",
            )
