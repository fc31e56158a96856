"""``python -m hantu_sched report``: one self-contained HTML page about a day or a range of days.

The page needs no network and no script: inline CSS, inline SVG (tooltips are SVG ``<title>``
elements). It shows

- the account over the snapshots: the equity curve (net assets at each close), the drawdown
  from the running peak, the daily returns, and the performance figures computed by
  :func:`hantu_sched.pipeline._metrics.compute_metrics` with :data:`~hantu_sched.RISK_FREE_RATE`
  (the same code and rate as the ``performance`` job, so for ``--date D`` the figures equal the
  day's ``performance`` record);
- for each day: the timeline on the session's clock (each unit's attempts as bars, crashes and
  failures marked at the end of their bar, recoveries — a resume, a reconcile or any later
  attempt — marked at the start of theirs, the calendar's regular session shaded, the day's
  orders as ticks), and the table of the day's orders and fills.

``--date D`` covers day *D* and the account over every snapshot up to *D* (as the performance
job does); ``--from D1 --to D2`` covers every day of the range and the account over the
snapshots in the range. Days the calendar closes and that have no journal rows are listed, not
drawn.

The journal is opened read-only (nothing is created or changed). Structure: :func:`load_report`
reads (the only I/O besides :func:`write_report`), :func:`render_report` is a pure function of
the loaded :class:`ReportData`, :func:`day_attempts` is the one place that reads attempts.
Elements carry ``data-*`` attributes (unit, attempt number, outcome, raw values) so tests and
tools can check the page against the journal.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ._calendar import KRXCalendar, Session
from ._constants import KST, RISK_FREE_RATE
from ._day import JOB_ORDER
from ._files import atomic_write_bytes
from ._journal import Attempt, AttemptOutcome, JobRecord, attempt_from_record
from ._storage import DEFAULT_DB_NAME, SQLiteStorage, Storage
from ._svg import Scale, bar_chart, element, esc, line_chart, svg
from ._version import __version__
from .pipeline._metrics import PerformanceMetrics, compute_metrics
from .pipeline._performance import REPORT_DIR, account_series
from .pipeline._services import (
    RECORD_BALANCE_SNAPSHOT,
    RECORD_ORDER,
    RECORD_PERFORMANCE,
    RECORD_SCREENING,
    RECORD_TRADING,
    RECORD_TRADING_RECONCILE,
)

__all__ = [
    "AccountView",
    "DayView",
    "OrderView",
    "ReportData",
    "ReportError",
    "day_attempts",
    "default_output",
    "latest_day",
    "load_report",
    "render_report",
    "write_report",
]

#: Longest range one page covers (a year of calendar days and then some).
MAX_DAYS: Final = 400


class ReportError(ValueError):
    """The report cannot be made (no journal, a bad range): one printable line."""


@attrs.frozen
class OrderView:
    """One order of the day, from its order record and what trading saw filled."""

    code: str
    name: str | None
    side: str
    quantity: int
    price: int | None
    status: str
    order_no: str | None
    at: dt.datetime | None
    filled: int | None
    error: str | None = None


@attrs.frozen
class DayView:
    """One day: its session (``None`` when closed), journal rows, attempts and orders."""

    date: dt.date
    session: Session | None
    closed_reason: str | None
    records: tuple[JobRecord, ...]
    attempts: tuple[Attempt, ...]
    orders: tuple[OrderView, ...]
    net_assets: float | None

    @property
    def units(self) -> list[str]:
        """Unit labels (``job`` or ``job[batch]``) in the day's order."""
        seen = {_label(r.key.job, r.key.batch): _rank(r.key.job, r.key.batch) for r in self.records}
        for a in self.attempts:
            seen.setdefault(_label(a.key.job, a.key.batch), _rank(a.key.job, a.key.batch))
        return sorted(seen, key=lambda label: seen[label])


@attrs.frozen
class AccountView:
    """The account series (one value per close, oldest first) and its figures."""

    dates: tuple[str, ...]
    values: tuple[float, ...]
    metrics: PerformanceMetrics
    ignored: tuple[str, ...] = ()

    @property
    def drawdowns(self) -> list[float]:
        """The fall from the running peak at each close, as a non-positive fraction."""
        peak, out = 0.0, []
        for value in self.values:
            peak = max(peak, value)
            out.append(value / peak - 1.0)
        return out


@attrs.frozen
class ReportData:
    """Everything the page shows (see :func:`load_report`)."""

    first: dt.date
    last: dt.date
    data_dir: str
    generated_at: dt.datetime
    days: tuple[DayView, ...]
    account: AccountView


def _label(job: str, batch: str | None) -> str:
    return job if batch is None else f"{job}[{batch}]"


def _rank(job: str, batch: str | None) -> tuple[int, str, str]:
    order = JOB_ORDER.index(job) if job in JOB_ORDER else len(JOB_ORDER)
    return (order, job, (batch or "").zfill(8))


# --- reading ----------------------------------------------------------------------------------


def day_attempts(storage: Storage, day: dt.date, records: Sequence[JobRecord]) -> list[Attempt]:
    """Every attempt of *day*: the journal's history, plus — for a unit that has a started row
    but no history (a journal written before attempts were kept) — the one attempt its row
    still tells of. Ordered by unit, then attempt number."""
    attempts = list(storage.list_attempts(day))
    known = {(a.key.job, a.key.batch) for a in attempts}
    for record in records:
        if (record.key.job, record.key.batch) not in known:
            derived = attempt_from_record(record)
            if derived is not None:
                attempts.append(derived)
    return sorted(attempts, key=lambda a: (*_rank(a.key.job, a.key.batch), a.number))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=KST)


def _fills(trading: Any, reconcile: Any) -> dict[str, int]:
    """Quantity seen filled per order number: the trading run's notices and polls, and what a
    reconcile found (the largest of them)."""
    filled: dict[str, int] = {}

    def note(order_no: Any, qty: Any) -> None:
        if isinstance(order_no, str) and _int(qty) is not None:
            filled[order_no] = max(filled.get(order_no, 0), int(qty))

    if isinstance(trading, dict):
        for field in ("polled_fills", "notice_fills"):
            seen = trading.get(field)
            if isinstance(seen, dict):
                for order_no, qty in seen.items():
                    note(order_no, qty)
    if isinstance(reconcile, dict) and isinstance(reconcile.get("orders"), list):
        for row in reconcile["orders"]:
            if isinstance(row, dict):
                note(row.get("order_no"), row.get("filled_quantity"))
    return filled


def _orders(
    day: dt.date, records: dict[str, Any], fills: dict[str, int], names: dict[str, str]
) -> list[OrderView]:
    prefix = f"{day.isoformat()}/"
    out = []
    for key, record in records.items():
        if not key.startswith(prefix) or not isinstance(record, dict):
            continue
        code = str(record.get("code") or key[len(prefix) :])
        order_no = record.get("order_no")
        order_no = str(order_no) if order_no else None
        out.append(
            OrderView(
                code=code,
                name=names.get(code),
                side=str(record.get("side") or "buy"),
                quantity=_int(record.get("quantity")) or 0,
                price=_int(record.get("price")),
                status=str(record.get("status") or "?"),
                order_no=order_no,
                at=_when(record.get("intent_at")),
                filled=fills.get(order_no) if order_no else None,
                error=None if record.get("error") is None else str(record.get("error")),
            )
        )
    return sorted(out, key=lambda o: (o.at or dt.datetime.max.replace(tzinfo=KST), o.code))


def _names(snapshots: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for snapshot in snapshots.values():
        holdings = snapshot.get("holdings") if isinstance(snapshot, dict) else None
        for holding in holdings if isinstance(holdings, list) else ():
            if isinstance(holding, dict) and holding.get("code") and holding.get("name"):
                names[str(holding["code"])] = str(holding["name"])
    return names


def latest_day(data_dir: pathlib.Path, today: dt.date) -> dt.date:
    """The day a report shows by default: *today* if the journal has rows for it, else the
    latest day the pipeline left a record of (screening, orders, balance snapshot,
    performance), else *today*."""
    path = data_dir / DEFAULT_DB_NAME
    if not path.exists():
        return today
    storage = SQLiteStorage(path, read_only=True)
    try:
        if storage.list_jobs(today):
            return today
        keys = [
            key[:10]
            for kind in (
                RECORD_SCREENING,
                RECORD_ORDER,
                RECORD_BALANCE_SNAPSHOT,
                RECORD_PERFORMANCE,
            )
            for key in storage.list_records(kind)
        ]
    finally:
        storage.close()
    days = []
    for key in keys:
        try:
            days.append(dt.date.fromisoformat(key))
        except ValueError:
            continue
    return max(days, default=today)


def load_report(
    data_dir: pathlib.Path,
    first: dt.date,
    last: dt.date,
    *,
    calendar: KRXCalendar | None = None,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ReportData:
    """Read the journal of *data_dir* (read-only) for the days ``[first, last]``; the account
    series covers the snapshots dated in ``[since, last]`` (all up to *last* without *since*).
    Raises :class:`ReportError` if there is no journal or the range is bad."""
    if last < first:
        raise ReportError(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days; {first} to {last} is longer")
    path = data_dir / DEFAULT_DB_NAME
    if not path.exists():
        raise ReportError(f"no journal at {path}: nothing to report (is --data-dir right?)")
    calendar = calendar or KRXCalendar()
    storage = SQLiteStorage(path, read_only=True)
    try:
        snapshots = storage.list_records(RECORD_BALANCE_SNAPSHOT)
        order_records = storage.list_records(RECORD_ORDER)
        trading = storage.list_records(RECORD_TRADING)
        reconciles = storage.list_records(RECORD_TRADING_RECONCILE)
        names = _names(snapshots)
        days = []
        for offset in range((last - first).days + 1):
            day = first + dt.timedelta(days=offset)
            iso = day.isoformat()
            records = storage.list_jobs(day)
            fills = _fills(trading.get(iso), reconciles.get(iso))
            snapshot = snapshots.get(iso)
            worth = _int(snapshot.get("net_assets")) if isinstance(snapshot, dict) else None
            days.append(
                DayView(
                    date=day,
                    session=calendar.session(day),
                    closed_reason=calendar.closure_reason(day),
                    records=tuple(records),
                    attempts=tuple(day_attempts(storage, day, records)),
                    orders=tuple(_orders(day, order_records, fills, names)),
                    net_assets=None if worth is None else float(worth),
                )
            )
    finally:
        storage.close()
    dates, values, ignored = account_series(
        snapshots, last.isoformat(), None if since is None else since.isoformat()
    )
    account = AccountView(
        tuple(dates), tuple(values), compute_metrics(values, RISK_FREE_RATE), tuple(ignored)
    )
    return ReportData(
        first=first,
        last=last,
        data_dir=str(data_dir),
        generated_at=now or dt.datetime.now(KST),
        days=tuple(days),
        account=account,
    )


# --- the day's timeline ---------------------------------------------------------------------------

_TL_WIDTH, _TL_LABELS, _TL_RIGHT, _TL_ROW, _TL_TOP = 960, 128, 16, 24, 26


def _hm(moment: dt.datetime | None, seconds: bool = True) -> str:
    if moment is None:
        return "--:--"
    return f"{moment.astimezone(KST):%H:%M:%S}" if seconds else f"{moment.astimezone(KST):%H:%M}"


def _attempt_end(
    attempt: Attempt, following: Attempt | None, record: JobRecord | None, now: dt.datetime
) -> tuple[dt.datetime, bool]:
    """Where *attempt*'s bar ends, and whether that end is known. A crashed attempt's end is
    not recorded: its bar runs to the unit's next attempt (when recovery took over), else to
    the row's last update, else (still running) to *now*."""
    if attempt.finished_at is not None:
        return attempt.finished_at, True
    candidates = [following.started_at] if following is not None else []
    if not candidates and record is not None and record.updated_at is not None:
        candidates.append(record.updated_at)
    if not candidates and attempt.outcome is AttemptOutcome.RUNNING:
        candidates.append(now)
    end = min(candidates) if candidates else attempt.started_at
    return max(end, attempt.started_at), False


def _is_recovery(attempt: Attempt) -> bool:
    return attempt.kind != "run" or attempt.number > 1


def _attempt_title(attempt: Attempt, end: dt.datetime, known: bool) -> str:
    label = _label(attempt.key.job, attempt.key.batch)
    until = _hm(end) if known else f"{_hm(end)}?"
    text = f"{label} attempt {attempt.number} ({attempt.kind}): {_hm(attempt.started_at)}–{until}, "
    text += attempt.outcome.value
    if attempt.decision:
        text += f"\ndecision: {attempt.decision}"
    if attempt.error:
        text += f"\n{attempt.error}"
    if attempt.pid is not None:
        text += f"\npid {attempt.pid} on {attempt.host}"
    return text


def _axis(day: DayView, ends: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
    moments = [a.started_at for a in day.attempts] + list(ends)
    moments += [o.at for o in day.orders if o.at is not None]
    if day.session is not None:
        moments += [day.session.open, day.session.close]
    base = dt.datetime.combine(day.date, dt.time(0), KST)
    if not moments:
        return base + dt.timedelta(hours=6), base + dt.timedelta(hours=18)
    lo = min(m.astimezone(KST) for m in moments).replace(minute=0, second=0, microsecond=0)
    hi = max(m.astimezone(KST) for m in moments)
    top = hi.replace(minute=0, second=0, microsecond=0)
    if top < hi:
        top += dt.timedelta(hours=1)
    if top - lo < dt.timedelta(hours=2):
        top = lo + dt.timedelta(hours=2)
    return lo, top


_Span = tuple[int, Attempt, dt.datetime, bool]


def _spans(day: DayView, units: Sequence[str], now: dt.datetime) -> list[_Span]:
    """(row, attempt, end of its bar, whether that end is known) for every attempt."""
    by_unit: dict[str, list[Attempt]] = {u: [] for u in units}
    for attempt in day.attempts:
        by_unit[_label(attempt.key.job, attempt.key.batch)].append(attempt)
    records = {_label(r.key.job, r.key.batch): r for r in day.records}
    spans: list[_Span] = []
    for row, unit in enumerate(units):
        attempts = sorted(by_unit[unit], key=lambda a: a.number)
        for index, attempt in enumerate(attempts):
            following = attempts[index + 1] if index + 1 < len(attempts) else None
            end, known = _attempt_end(attempt, following, records.get(unit), now)
            spans.append((row, attempt, end, known))
    return spans


def _clock_marks(day: DayView, lo: dt.datetime, hi: dt.datetime, x: Scale, height: int) -> str:
    """The session's shading and the hour lines with their labels."""
    parts: list[str] = []
    if day.session is not None:
        left, right = x(day.session.open.timestamp()), x(day.session.close.timestamp())
        title = (
            f"regular session {_hm(day.session.open, False)}–{_hm(day.session.close, False)} KST"
        )
        parts.append(element("rect", {"class": "session", "x": left, "y": _TL_TOP - 4,
                                      "width": right - left, "height": height - _TL_TOP,
                                      "data-open": day.session.open.isoformat(),
                                      "data-close": day.session.close.isoformat()},
                             f"<title>{esc(title)}</title>"))  # fmt: skip
    hours = int((hi - lo).total_seconds() // 3600)
    step = 1 if hours <= 14 else 2
    for hour in range(0, hours + 1, step):
        tick = lo + dt.timedelta(hours=hour)
        at = x(tick.timestamp())
        parts.append(element("line", {"class": "hour", "x1": at, "x2": at, "y1": _TL_TOP - 6,
                                      "y2": height - 4}))  # fmt: skip
        parts.append(element("text", {"class": "axis", "x": at, "y": 14, "text-anchor": "middle"},
                             f"{tick:%H:%M}"))  # fmt: skip
    return "".join(parts)


def _row_label(row: int, text: str) -> str:
    middle = _TL_TOP + row * _TL_ROW + _TL_ROW / 2
    return element("text", {"class": "unit", "x": _TL_LABELS - 8, "y": middle + 4,
                            "text-anchor": "end"}, esc(text))  # fmt: skip


def _attempt_marks(span: _Span, x: Scale) -> str:
    """An attempt's bar, and its recovery and crash/failure markers."""
    row, attempt, end, known = span
    top = _TL_TOP + row * _TL_ROW + 5
    left = x(attempt.started_at.timestamp())
    width = max(x(end.timestamp()) - left, 2.0)
    title = f"<title>{esc(_attempt_title(attempt, end, known))}</title>"
    unit = _label(attempt.key.job, attempt.key.batch)
    css = f"attempt {attempt.outcome.value}" + ("" if known else " open-end")
    parts = [element("rect", {"class": css, "x": left, "y": top, "width": width,
                              "height": _TL_ROW - 10, "rx": 2, "data-unit": unit,
                              "data-attempt": attempt.number, "data-kind": attempt.kind,
                              "data-outcome": attempt.outcome.value}, title)]  # fmt: skip
    middle = top + (_TL_ROW - 10) / 2
    if _is_recovery(attempt):
        tri = f"M{left:.1f},{middle:.1f} l-6,-6 l0,12 Z"
        parts.append(element("path", {"class": "marker recovery", "d": tri,
                                      "data-unit": unit, "data-attempt": attempt.number},
                             f"<title>recovery: {esc(attempt.kind)} "
                             f"{esc(attempt.decision or '')}</title>"))  # fmt: skip
    if attempt.outcome in (AttemptOutcome.CRASHED, AttemptOutcome.FAILED):
        right = left + width
        cross = (f"M{right - 5:.1f},{middle - 5:.1f} l10,10 "
                 f"M{right - 5:.1f},{middle + 5:.1f} l10,-10")  # fmt: skip
        what = "crash" if attempt.outcome is AttemptOutcome.CRASHED else "failed"
        parts.append(element("path", {"class": f"marker {what}", "d": cross,
                                      "data-unit": unit, "data-attempt": attempt.number},
                             f"<title>{what}: {esc(attempt.error or '')}</title>"))  # fmt: skip
    return "".join(parts)


def _order_marks(day: DayView, row: int, x: Scale) -> str:
    middle = _TL_TOP + row * _TL_ROW + _TL_ROW / 2
    parts = [_row_label(row, "orders")]
    for order in day.orders:
        if order.at is None:
            continue
        at = x(order.at.timestamp())
        title = f"{_hm(order.at)} {order.side} {order.code} × {order.quantity}: {order.status}"
        parts.append(element("line", {"class": "order-tick", "x1": at, "x2": at,
                                      "y1": middle - 7, "y2": middle + 7,
                                      "data-code": order.code},
                             f"<title>{esc(title)}</title>"))  # fmt: skip
    return "".join(parts)


def timeline_svg(day: DayView, now: dt.datetime) -> str:
    """The day's timeline (see the module docstring): one row per unit, plus an orders row.
    Each attempt is one ``rect.attempt`` with ``data-unit``, ``data-attempt``, ``data-kind``
    and ``data-outcome``."""
    units = day.units
    spans = _spans(day, units, now)
    lo, hi = _axis(day, [end for _, _, end, _ in spans])
    rows = len(units) + (1 if day.orders else 0)
    height = _TL_TOP + max(rows, 1) * _TL_ROW + 8
    x = Scale(lo.timestamp(), hi.timestamp(), _TL_LABELS, _TL_WIDTH - _TL_RIGHT)
    parts = [_clock_marks(day, lo, hi, x, height)]
    parts += [_row_label(row, unit) for row, unit in enumerate(units)]
    parts += [_attempt_marks(span, x) for span in spans]
    if day.orders:
        parts.append(_order_marks(day, len(units), x))
    label = f"timeline of {day.date}: {len(day.attempts)} attempt(s) of {len(units)} unit(s)"
    return svg(_TL_WIDTH, height, label, "".join(parts), css_class="timeline")


# --- the page -------------------------------------------------------------------------------------


def _pct(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2%}" if sign else f"{value:.2%}"


def _krw(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} KRW"


def _millions(value: float) -> str:
    return f"{value / 1e6:,.1f}M"


def _figures(account: AccountView) -> str:
    m = account.metrics
    rows: list[tuple[str, str, Any, str]] = [
        ("observations", "closes (balance snapshots)", m.observations, str(m.observations)),
        ("first_date", "first close", account.dates[0] if account.dates else None,
         account.dates[0] if account.dates else "n/a"),
        ("last_date", "last close", account.dates[-1] if account.dates else None,
         account.dates[-1] if account.dates else "n/a"),
        ("start_value", "net assets at the first close",
         account.values[0] if account.values else None,
         _krw(account.values[0] if account.values else None)),
        ("end_value", "net assets at the last close",
         account.values[-1] if account.values else None,
         _krw(account.values[-1] if account.values else None)),
        ("cumulative_return", "cumulative return", m.cumulative_return,
         _pct(m.cumulative_return, True)),
        ("daily_return", "last daily return", m.daily_return, _pct(m.daily_return, True)),
        ("volatility", "volatility (annualised)", m.volatility, _pct(m.volatility)),
        ("sharpe_ratio", f"Sharpe ratio (risk-free {m.risk_free_rate:.2%} a year)",
         m.sharpe_ratio, "n/a" if m.sharpe_ratio is None else f"{m.sharpe_ratio:.2f}"),
        ("max_drawdown", "maximum drawdown", m.max_drawdown, _pct(m.max_drawdown)),
        ("risk_free_rate", "risk-free rate (RISK_FREE_RATE)", m.risk_free_rate,
         _pct(m.risk_free_rate)),
    ]  # fmt: skip
    body = "".join(
        f'<tr data-key="{key}"><th>{esc(name)}</th>'
        f'<td data-value="{esc("" if raw is None else repr(raw))}">{esc(shown)}</td></tr>'
        for key, name, raw, shown in rows
    )
    return f'<table id="figures" class="figures">{body}</table>'


def _account_section(account: AccountView) -> str:
    dates = [d[5:] for d in account.dates]  # MM-DD
    values = list(account.values)
    parts = ['<section id="account"><h2>Account</h2>', _figures(account)]
    if account.ignored:
        parts.append(
            f"<p class='note'>snapshots left out (no positive account value): "
            f"{esc(', '.join(account.ignored))}</p>"
        )
    equity_titles = [f"{d}: {_krw(v)}" for d, v in zip(account.dates, values, strict=True)]
    parts.append('<figure id="equity"><figcaption>Equity: net assets at each close</figcaption>')
    parts.append(line_chart(dates, values, label="equity curve", fmt=_millions,
                            point_class="equity-point", titles=equity_titles))  # fmt: skip
    parts.append("</figure>")
    drawdowns = account.drawdowns
    dd_titles = [
        f"{d}: {_pct(v)} from the peak" for d, v in zip(account.dates, drawdowns, strict=True)
    ]
    parts.append('<figure id="drawdown"><figcaption>Drawdown from the running peak</figcaption>')
    parts.append(line_chart(dates, drawdowns, label="drawdown", fmt=lambda v: f"{v:.1%}",
                            point_class="drawdown-point", titles=dd_titles,
                            fill_to_zero=True))  # fmt: skip
    parts.append("</figure>")
    returns = list(account.metrics.daily_returns)
    ret_dates = list(account.dates[1:])
    ret_titles = [f"{d}: {_pct(r, True)}" for d, r in zip(ret_dates, returns, strict=True)]
    parts.append(
        '<figure id="returns"><figcaption>Daily returns (close to close; '
        '<span class="up">red: up</span>, <span class="down">blue: down</span>, '
        "as KRX quotes them)</figcaption>"
    )
    parts.append(bar_chart([d[5:] for d in ret_dates], returns, label="daily returns",
                           fmt=lambda v: f"{v:.1%}", bar_class="return",
                           titles=ret_titles))  # fmt: skip
    parts.append("</figure></section>")
    return "".join(parts)


def _orders_table(day: DayView) -> str:
    if not day.orders:
        return "<p class='note'>no orders this day</p>"
    head = (
        "<tr><th>time</th><th>code</th><th>name</th><th>side</th><th>quantity</th>"
        "<th>limit</th><th>status</th><th>order no</th><th>filled</th></tr>"
    )
    rows = []
    for o in day.orders:
        filled = "n/a" if o.filled is None else f"{o.filled:,}"
        full = o.filled is not None and o.filled >= o.quantity > 0
        css = "filled" if full else ("partial" if o.filled else "unfilled")
        rows.append(
            f'<tr class="order {css}" data-code="{esc(o.code)}" data-quantity="{o.quantity}" '
            f'data-filled="{"" if o.filled is None else o.filled}">'
            f"<td>{_hm(o.at)}</td><td>{esc(o.code)}</td><td>{esc(o.name or '')}</td>"
            f"<td>{esc(o.side)}</td><td class='num'>{o.quantity:,}</td>"
            f"<td class='num'>{'market' if o.price is None else f'{o.price:,}'}</td>"
            f"<td>{esc(o.status)}{' — ' + esc(o.error) if o.error else ''}</td>"
            f"<td>{esc(o.order_no or '')}</td><td class='num'>{filled}</td></tr>"
        )
    filled_orders = sum(1 for o in day.orders if o.filled)
    caption = f"{len(day.orders)} order(s), {filled_orders} with fills"
    return f'<table class="orders"><caption>{esc(caption)}</caption>{head}{"".join(rows)}</table>'


def _day_summary(day: DayView, previous: float | None) -> str:
    outcomes: dict[str, int] = {}
    for attempt in day.attempts:
        outcomes[attempt.outcome.value] = outcomes.get(attempt.outcome.value, 0) + 1
    done = sum(1 for r in day.records if r.state.value == "done")
    recoveries = sum(1 for a in day.attempts if _is_recovery(a))
    text = (
        f"{done}/{len(day.records)} unit(s) done; {len(day.attempts)} attempt(s)"
        + "".join(f", {n} {k}" for k, n in sorted(outcomes.items()))
        + f"; {recoveries} recovery attempt(s); {len(day.orders)} order(s)"
    )
    if day.net_assets is not None:
        text += f"; net assets at the close {_krw(day.net_assets)}"
        if previous:
            text += f" ({_pct(day.net_assets / previous - 1.0, True)} on the previous close)"
    return f"<p class='summary'>{esc(text)}</p>"


_LEGEND: Final = (
    "<p class='legend'><span class='sw done'></span>done <span class='sw failed'></span>failed "
    "<span class='sw crashed'></span>crashed (✕; its end is when recovery took over) "
    "<span class='sw interrupted'></span>interrupted <span class='sw running'></span>running "
    "<span class='sw session'></span>regular session · ◀ a recovery attempt (resume, reconcile "
    "or a retry) · | an order</p>"
)


def _day_section(day: DayView, now: dt.datetime, previous: float | None, *, open_: bool) -> str:
    if day.session is not None:
        hours = f"session {_hm(day.session.open, False)}–{_hm(day.session.close, False)} KST"
    else:
        hours = f"closed ({day.closed_reason or 'no session'})"
    title = f"{day.date} ({day.date:%A}) — {hours}"
    body = [_day_summary(day, previous)]
    if day.attempts or day.orders:
        body.append(timeline_svg(day, now))
    else:
        body.append("<p class='note'>no attempts recorded this day</p>")
    body.append(_orders_table(day))
    return (
        f'<details class="day" id="day-{day.date}" data-date="{day.date}"'
        f"{' open' if open_ else ''}><summary><h3>{esc(title)}</h3>"
        f"<span class='brief'>{esc(_brief(day, previous))}</span></summary>"
        f"{''.join(body)}</details>"
    )


def _brief(day: DayView, previous: float | None) -> str:
    """The folded day's one-line gist: units done, crashes and failures, orders, the close."""
    done = sum(1 for r in day.records if r.state.value == "done")
    parts = [f"{done}/{len(day.records)} done"]
    for outcome in (AttemptOutcome.CRASHED, AttemptOutcome.FAILED):
        count = sum(1 for a in day.attempts if a.outcome is outcome)
        if count:
            parts.append(f"{count} {outcome.value}")
    parts.append(f"{len(day.orders)} order(s)")
    if day.net_assets is not None:
        change = f" ({_pct(day.net_assets / previous - 1.0, True)})" if previous else ""
        parts.append(f"close {_millions(day.net_assets)} KRW{change}")
    return " · ".join(parts)


_CSS: Final = """
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",
sans-serif;color:#1c2430;background:#fafbfc}
body{max-width:1000px;margin:0 auto;padding:16px 20px 48px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.2rem;border-bottom:1px solid #d0d7de;
padding-bottom:4px;margin-top:1.6em}h3{display:inline;font-size:1rem;margin:0}
.meta,.note,.legend{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;margin:8px 0;font-size:.85rem}
th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;color:#57606a;padding:4px 0}
.figures th{font-weight:normal;color:#57606a}.figures td{font-variant-numeric:tabular-nums}
figure{margin:12px 0}figcaption{font-size:.85rem;color:#57606a;margin-bottom:2px}
svg{width:100%;height:auto;display:block;background:#fff;border:1px solid #eaeef2}
svg text{font-size:11px;fill:#57606a}svg text.unit{fill:#1c2430}
.grid,.hour{stroke:#eaeef2}.zero{stroke:#8c959f}
.line{fill:none;stroke:#0969da;stroke-width:2}.area{fill:#cf222e22;stroke:none}
#drawdown .line{stroke:#cf222e}
.equity-point{fill:#0969da}.drawdown-point{fill:#cf222e}
.return.up,span.up{fill:#cf222e;color:#cf222e}.return.down,span.down{fill:#0969da;color:#0969da}
.session{fill:#ddf4ff}
.attempt.done{fill:#2da44e}.attempt.failed{fill:#d1242f}.attempt.crashed{fill:#bf8700}
.attempt.interrupted{fill:#8c959f}.attempt.running{fill:#0969da}.open-end{opacity:.75}
.marker.crash,.marker.failed{stroke:#a40e26;stroke-width:2.5;fill:none}
.marker.recovery{fill:#8250df}
.order-tick{stroke:#1c2430;stroke-width:1.5}
.sw{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;border-radius:2px}
.sw.done{background:#2da44e}.sw.failed{background:#d1242f}.sw.crashed{background:#bf8700}
.sw.interrupted{background:#8c959f}.sw.running{background:#0969da}.sw.session{background:#ddf4ff;
border:1px solid #b6e3ff}
details.day{margin:10px 0;padding:6px 10px;background:#fff;border:1px solid #eaeef2;
border-radius:6px}summary{cursor:pointer}
tr.order.unfilled td{color:#9a6700}
.brief{color:#57606a;font-size:.85rem;margin-left:12px}
"""


def render_report(data: ReportData) -> str:
    """The whole page (see the module docstring): a pure function of *data*."""
    span = str(data.first) if data.first == data.last else f"{data.first} to {data.last}"
    shown = [d for d in data.days if d.session is not None or d.records or d.attempts]
    closed = [d for d in data.days if d not in shown]
    head = (
        f"<header><h1>hantu_sched report: {esc(span)}</h1><p class='meta'>generated "
        f"{data.generated_at.astimezone(KST):%Y-%m-%d %H:%M:%S} KST by hantu_sched "
        f"{esc(__version__)} from {esc(data.data_dir)}; account figures over the closes "
        f"{esc(data.account.dates[0] if data.account.dates else '—')} to "
        f"{esc(data.account.dates[-1] if data.account.dates else '—')}</p></header>"
    )
    days = [f'<section id="days"><h2>{"Day" if len(shown) == 1 else "Days"}</h2>', _LEGEND]
    previous: float | None = None
    values = dict(zip(data.account.dates, data.account.values, strict=True))
    earlier = [v for d, v in values.items() if d < str(data.first)]
    previous = earlier[-1] if earlier else None
    for index, day in enumerate(shown):
        days.append(_day_section(day, data.generated_at, previous, open_=index == len(shown) - 1))
        if day.net_assets is not None:
            previous = day.net_assets
    if not shown:
        days.append("<p class='note'>no trading day and no journal rows in this range</p>")
    if closed:
        listed = ", ".join(f"{d.date} ({d.closed_reason or 'closed'})" for d in closed)
        days.append(f"<p class='note closed'>closed, nothing ran: {esc(listed)}</p>")
    days.append("</section>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>hantu_sched report {esc(span)}</title><style>{_CSS}</style></head><body>"
        f"{head}{_account_section(data.account)}{''.join(days)}</body></html>\n"
    )


# --- writing --------------------------------------------------------------------------------------


def default_output(data_dir: pathlib.Path, first: dt.date, last: dt.date) -> pathlib.Path:
    """``<data_dir>/reports/report_<D>.html`` or ``report_<D1>_to_<D2>.html``."""
    name = f"report_{first}.html" if first == last else f"report_{first}_to_{last}.html"
    return data_dir / REPORT_DIR / name


def write_report(
    data_dir: pathlib.Path,
    first: dt.date,
    last: dt.date,
    *,
    output: pathlib.Path | None = None,
    calendar: KRXCalendar | None = None,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
) -> tuple[pathlib.Path, ReportData, int]:
    """Load, render and write the page atomically to *output* (default
    :func:`default_output`); returns (path, the data shown, bytes written)."""
    data = load_report(data_dir, first, last, calendar=calendar, since=since, now=now)
    body = render_report(data).encode()
    path = output or default_output(data_dir, first, last)
    atomic_write_bytes(path, body)
    return path, data, len(body)
