"""The ``performance`` job: metrics from the stored balance snapshots, one report per day.

Reads every ``balance_snapshot`` record dated on or before the trading date (oldest first),
takes ``net_assets`` (``total_value`` when ``net_assets`` is missing or zero) as the account
value, drops unusable snapshots (non-positive or malformed, with a warning) and computes
:func:`~hantu_sched.pipeline._metrics.compute_metrics` with hantu_sched's ``RISK_FREE_RATE``.
With fewer than two snapshots it still reports what can be computed (see ``_metrics``): the
job never fails for lack of history.

The report is written atomically (temporary file, fsync, rename, directory fsync) to
``<data_dir>/reports/performance_<YYYY-MM-DD>.json`` and stored as the ``performance`` record
(key: the ISO trading date). Running it again the same day rewrites the same report.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Final

import attrs

from .._constants import RISK_FREE_RATE
from .._events import PerformanceSummary
from .._files import atomic_write_bytes
from .._jobs import JobContext
from ._config import PipelineConfig
from ._metrics import compute_metrics
from ._services import RECORD_BALANCE_SNAPSHOT, RECORD_PERFORMANCE

__all__ = ["REPORT_DIR", "PerformanceJob", "account_series", "report_path", "write_json_atomic"]

#: Reports live in ``<data_dir>/reports``.
REPORT_DIR: Final = "reports"


def report_path(data_dir: pathlib.Path, date_iso: str) -> pathlib.Path:
    """``<data_dir>/reports/performance_<date>.json``."""
    return data_dir / REPORT_DIR / f"performance_{date_iso}.json"


def write_json_atomic(path: pathlib.Path, document: Any) -> None:
    """Write *document* as JSON to *path*: a reader sees the old file or the new, never a torn
    one (temporary file in the same directory, fsync, rename, directory fsync)."""
    body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, body.encode())


def _value_of(snapshot: Any) -> float | None:
    if not isinstance(snapshot, dict):
        return None
    for field in ("net_assets", "total_value"):
        value = snapshot.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value) and value > 0:
            return float(value)
    return None


def account_series(
    snapshots: dict[str, Any], until: str, since: str | None = None
) -> tuple[list[str], list[float], list[str]]:
    """The account-value series of the ``balance_snapshot`` records *snapshots* (key: ISO
    date) dated in ``[since, until]`` (no lower bound without *since*), oldest first: (dates,
    values, dates of unusable snapshots that were left out). When the first of them is the
    earliest snapshot of all, the previous close it carries (``previous_date``,
    ``previous_total``) comes first, so a one-day history has a return. The performance job and
    the HTML report both read the account this way."""
    dates: list[str] = []
    values: list[float] = []
    ignored: list[str] = []
    for key in sorted(snapshots):
        if key > until or (since is not None and key < since):
            continue
        value = _value_of(snapshots[key])
        if value is None:
            ignored.append(key)
            continue
        dates.append(key)
        values.append(value)
    if dates and dates[0] == min(snapshots):
        base = _previous_close(snapshots[dates[0]])
        if base is not None and base[0] < dates[0]:
            dates.insert(0, base[0])
            values.insert(0, base[1])
    return dates, values, ignored


def _previous_close(snapshot: dict[str, Any]) -> tuple[str, float] | None:
    """The previous close a snapshot carries (date, total assets), if usable: it starts the
    series when no earlier snapshot exists, so a history's first day has a return too."""
    date = snapshot.get("previous_date")
    value = snapshot.get("previous_total")
    if not isinstance(date, str) or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (math.isfinite(value) and value > 0):
        return None
    return date, float(value)


@attrs.frozen
class PerformanceJob:
    """The ``performance`` job (see the module docstring)."""

    config: PipelineConfig = attrs.field(factory=PipelineConfig)

    def __call__(self, ctx: JobContext) -> None:
        log = ctx.logger
        date = ctx.trading_date.isoformat()
        dates, values, ignored = account_series(
            ctx.storage.list_records(RECORD_BALANCE_SNAPSHOT), date
        )
        for key in ignored:
            log.warning("balance snapshot of %s has no positive account value; ignored", key)
        metrics = compute_metrics(values, RISK_FREE_RATE)
        report = {
            "date": date,
            "generated_at": ctx.clock.now().isoformat(),
            "snapshots": len(values),
            "first_date": dates[0] if dates else None,
            "last_date": dates[-1] if dates else None,
            "start_value": values[0] if values else None,
            "end_value": values[-1] if values else None,
            "has_snapshot_for_date": bool(dates) and dates[-1] == date,
            **metrics.to_dict(),
        }
        path = report_path(ctx.data_dir, date)
        write_json_atomic(path, report)
        ctx.storage.put_record(RECORD_PERFORMANCE, date, report)
        ctx.emit(PerformanceSummary(ctx.trading_date, report))
        if not report["has_snapshot_for_date"]:
            log.warning("no balance snapshot for %s: the report covers earlier days only", date)
        log.info(
            "performance %s over %d snapshot(s): daily %s, cumulative %s, volatility %s, "
            "Sharpe %s, max drawdown %s -> %s",
            date,
            len(values),
            _pct(metrics.daily_return),
            _pct(metrics.cumulative_return),
            _pct(metrics.volatility),
            "n/a" if metrics.sharpe_ratio is None else f"{metrics.sharpe_ratio:.2f}",
            _pct(metrics.max_drawdown),
            path.name,
        )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"
