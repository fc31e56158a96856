"""The KRX trading calendar: which days trade, and the regular session's times.

Source: KRX's published market closures, as ``holidays`` encodes them. Closed days are weekends
plus the weekday closures in :data:`EMBEDDED_CLOSURES` (generated once from ``holidays`` 0.109
``financial_holidays("XKRX")`` and frozen here), plus any user-supplied extra closures. The
table is the fast path for 2024–2027 (``holidays`` is not even imported) and the checked
reference: the tests compare it with ``holidays`` for every embedded year. Other years come from
``holidays``, a regular dependency of hantu-sched, imported lazily on first use; only a broken
installation without it raises :class:`CalendarNotCoveredError` for them.

Session times are rules of our own: the regular session is 09:00–15:30; the first trading day of
each year opens at 10:00 (close unchanged); the 수능 (CSAT) day shifts to 10:00–16:30; a
user-supplied special session overrides all of these (and can even open a listed closure).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import attrs

from ._constants import KST

__all__ = [
    "CSAT_DAYS",
    "EMBEDDED_CLOSURES",
    "EMBEDDED_YEARS",
    "CalendarNotCoveredError",
    "KRXCalendar",
    "Session",
]

_RAW_CLOSURES: dict[str, str] = {
    # 2024
    "2024-01-01": "신정연휴",
    "2024-02-09": "설날 전날",
    "2024-02-12": "설날 대체 휴일",
    "2024-03-01": "삼일절",
    "2024-04-10": "국회의원 선거일",
    "2024-05-01": "근로자의날",
    "2024-05-06": "어린이날 대체 휴일",
    "2024-05-15": "부처님오신날",
    "2024-06-06": "현충일",
    "2024-08-15": "광복절",
    "2024-09-16": "추석 전날",
    "2024-09-17": "추석",
    "2024-09-18": "추석 다음날",
    "2024-10-01": "국군의 날",
    "2024-10-03": "개천절",
    "2024-10-09": "한글날",
    "2024-12-25": "기독탄신일",
    "2024-12-31": "연말휴장일",
    # 2025
    "2025-01-01": "신정연휴",
    "2025-01-27": "임시공휴일",
    "2025-01-28": "설날 전날",
    "2025-01-29": "설날",
    "2025-01-30": "설날 다음날",
    "2025-03-03": "삼일절 대체 휴일",
    "2025-05-01": "근로자의날",
    "2025-05-05": "부처님오신날; 어린이날",
    "2025-05-06": "부처님오신날 대체 휴일; 어린이날 대체 휴일",
    "2025-06-03": "대통령 선거일",
    "2025-06-06": "현충일",
    "2025-08-15": "광복절",
    "2025-10-03": "개천절",
    "2025-10-06": "추석",
    "2025-10-07": "추석 다음날",
    "2025-10-08": "추석 대체 휴일",
    "2025-10-09": "한글날",
    "2025-12-25": "기독탄신일",
    "2025-12-31": "연말휴장일",
    # 2026
    "2026-01-01": "신정연휴",
    "2026-02-16": "설날 전날",
    "2026-02-17": "설날",
    "2026-02-18": "설날 다음날",
    "2026-03-02": "삼일절 대체 휴일",
    "2026-05-01": "노동절",
    "2026-05-05": "어린이날",
    "2026-05-25": "부처님오신날 대체 휴일",
    "2026-06-03": "지방선거일",
    "2026-07-17": "제헌절",
    "2026-08-17": "광복절 대체 휴일",
    "2026-09-24": "추석 전날",
    "2026-09-25": "추석",
    "2026-10-05": "개천절 대체 휴일",
    "2026-10-09": "한글날",
    "2026-12-25": "기독탄신일",
    "2026-12-31": "연말휴장일",
    # 2027
    "2027-01-01": "신정연휴",
    "2027-02-08": "설날 다음날",
    "2027-02-09": "설날 대체 휴일",
    "2027-03-01": "삼일절",
    "2027-05-03": "노동절 대체 휴일",
    "2027-05-05": "어린이날",
    "2027-05-13": "부처님오신날",
    "2027-07-19": "제헌절 대체 휴일",
    "2027-08-16": "광복절 대체 휴일",
    "2027-09-14": "추석 전날",
    "2027-09-15": "추석",
    "2027-09-16": "추석 다음날",
    "2027-10-04": "개천절 대체 휴일",
    "2027-10-11": "한글날 대체 휴일",
    "2027-12-27": "기독탄신일 대체 휴일",
    "2027-12-31": "연말휴장일",
}

#: Weekday KRX closures for :data:`EMBEDDED_YEARS`, date → Korean name (from ``holidays``).
EMBEDDED_CLOSURES: Mapping[dt.date, str] = MappingProxyType(
    {dt.date.fromisoformat(k): v for k, v in _RAW_CLOSURES.items()}
)
#: The years the embedded table covers completely.
EMBEDDED_YEARS: frozenset[int] = frozenset({2024, 2025, 2026, 2027})

#: 수능 (CSAT) days: the regular session runs 10:00–16:30. Announced ~2 years ahead; add later
#: dates through ``KRXCalendar(csat_days=...)``.
CSAT_DAYS: frozenset[dt.date] = frozenset(
    dt.date.fromisoformat(d)
    for d in (
        "2019-11-14",
        "2020-12-03",
        "2021-11-18",
        "2022-11-17",
        "2023-11-16",
        "2024-11-14",
        "2025-11-13",
        "2026-11-19",
    )
)

_REGULAR_OPEN = dt.time(9, 0)
_REGULAR_CLOSE = dt.time(15, 30)
_LATE_OPEN = dt.time(10, 0)
_CSAT_CLOSE = dt.time(16, 30)
_SEARCH_LIMIT = 30  # KRX never closes for more than ~10 consecutive days


class CalendarNotCoveredError(LookupError):
    """The calendar has no closure data for a year (off the table, ``holidays`` not usable)."""


@attrs.frozen
class Session:
    """A day's regular session: ``open`` and ``close`` are aware KST datetimes, open < close."""

    open: dt.datetime
    close: dt.datetime

    def __attrs_post_init__(self) -> None:
        if self.open.tzinfo is None or self.close.tzinfo is None:
            raise ValueError("session times must be timezone-aware")
        if not self.open < self.close:
            raise ValueError(f"session opens at {self.open} but closes at {self.close}")

    @property
    def date(self) -> dt.date:
        """The trading date (KST) of this session."""
        return self.open.astimezone(KST).date()

    def __contains__(self, when: object) -> bool:
        return isinstance(when, dt.datetime) and self.open <= when < self.close


def _holidays_closures(year: int) -> dict[dt.date, str]:
    try:
        import holidays  # noqa: PLC0415 - a dependency, imported only for years off the table
    except ImportError as exc:
        raise CalendarNotCoveredError(
            f"KRX closures for {year} are not in the embedded table "
            f"({min(EMBEDDED_YEARS)}–{max(EMBEDDED_YEARS)}) and the 'holidays' package, a "
            "dependency of hantu-sched, cannot be imported: reinstall hantu-sched (it brings "
            "holidays) or pass the year's closures as extra_closures"
        ) from exc
    table = holidays.financial_holidays("XKRX", years=year, language="ko")
    return {d: str(name) for d, name in table.items() if d.weekday() < 5}


class KRXCalendar:
    """KRX trading days and regular session times.

    Args:
        extra_closures: additional closed dates (e.g. a newly announced 임시공휴일), optionally
            with a reason: an iterable of dates or a mapping date → reason.
        special_sessions: date → (open, close) local KST times overriding every rule for that
            date; it makes the date a trading day even if it is otherwise closed.
        csat_days: 수능 days (default :data:`CSAT_DAYS`).
        use_holidays: use ``holidays`` for years outside the table (``False``: such years need
            *covered_years*).
        covered_years: extra years to treat as fully described by *extra_closures* (no fallback).

    Contract: ``is_trading_day(d)`` is True iff ``session(d)`` is not None. Queries for a year
    neither embedded, listed in *covered_years*, nor available from ``holidays`` raise
    :class:`CalendarNotCoveredError`.
    """

    def __init__(
        self,
        *,
        extra_closures: Iterable[dt.date] | Mapping[dt.date, str] = (),
        special_sessions: Mapping[dt.date, tuple[dt.time, dt.time]] | None = None,
        csat_days: Iterable[dt.date] | None = None,
        use_holidays: bool = True,
        covered_years: Iterable[int] = (),
    ) -> None:
        if isinstance(extra_closures, Mapping):
            self._extra: dict[dt.date, str] = dict(extra_closures)
        else:
            self._extra = dict.fromkeys(extra_closures, "extra closure (configuration)")
        self._special = dict(special_sessions or {})
        clash = set(self._extra) & set(self._special)
        if clash:
            raise ValueError(f"dates both closed and given a special session: {sorted(clash)}")
        for day, (opening, closing) in self._special.items():
            if not opening < closing:
                raise ValueError(f"special session on {day} opens at {opening} after {closing}")
        self._csat = frozenset(CSAT_DAYS if csat_days is None else csat_days)
        self._use_holidays = use_holidays
        self._covered = frozenset(covered_years)
        self._years: dict[int, Mapping[dt.date, str]] = {}

    def _closures(self, year: int) -> Mapping[dt.date, str]:
        cached = self._years.get(year)
        if cached is None:
            if year in EMBEDDED_YEARS:
                base = {d: n for d, n in EMBEDDED_CLOSURES.items() if d.year == year}
            elif year in self._covered:
                base = {}
            elif self._use_holidays:
                base = _holidays_closures(year)
            else:
                raise CalendarNotCoveredError(
                    f"KRX closures for {year} are not in the embedded table "
                    f"({min(EMBEDDED_YEARS)}–{max(EMBEDDED_YEARS)}) and the holidays fallback is "
                    "disabled: pass the year's closures as extra_closures and covered_years"
                )
            base.update({d: n for d, n in self._extra.items() if d.year == year})
            cached = self._years[year] = MappingProxyType(base)
        return cached

    def closure_reason(self, day: dt.date) -> str | None:
        """Why *day* is closed (``None`` if it trades), e.g. ``"weekend (Saturday)"``."""
        if day in self._special:
            return None
        if day.weekday() >= 5:
            return f"weekend ({day.strftime('%A')})"
        name = self._closures(day.year).get(day)
        return None if name is None else f"KRX holiday ({name})"

    def is_trading_day(self, day: dt.date) -> bool:
        """True if KRX's regular session trades on *day*."""
        return self.closure_reason(day) is None

    def session(self, day: dt.date) -> Session | None:
        """The regular session of *day* as aware KST datetimes, or ``None`` if closed."""
        if isinstance(day, dt.datetime):
            raise TypeError("session() takes a date, not a datetime")
        special = self._special.get(day)
        if special is not None:
            opening, closing = special
        elif not self.is_trading_day(day):
            return None
        elif day in self._csat:
            opening, closing = _LATE_OPEN, _CSAT_CLOSE
        elif self._is_first_trading_day_of_year(day):
            opening, closing = _LATE_OPEN, _REGULAR_CLOSE
        else:
            opening, closing = _REGULAR_OPEN, _REGULAR_CLOSE
        return Session(
            dt.datetime.combine(day, opening, KST), dt.datetime.combine(day, closing, KST)
        )

    def _is_first_trading_day_of_year(self, day: dt.date) -> bool:
        probe = dt.date(day.year, 1, 1)
        while probe < day:
            if self.is_trading_day(probe):
                return False
            probe += dt.timedelta(days=1)
        return True

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day strictly after *day*."""
        return self._step(day, 1)

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before *day*."""
        return self._step(day, -1)

    def _step(self, day: dt.date, direction: int) -> dt.date:
        probe = day
        for _ in range(_SEARCH_LIMIT):
            probe += dt.timedelta(days=direction)
            if self.is_trading_day(probe):
                return probe
        raise CalendarNotCoveredError(f"no trading day within {_SEARCH_LIMIT} days of {day}")

    def trading_days(self, start: dt.date, end: dt.date) -> Iterator[dt.date]:
        """Trading days in the closed interval [start, end], ascending."""
        probe = start
        while probe <= end:
            if self.is_trading_day(probe):
                yield probe
            probe += dt.timedelta(days=1)

    def __repr__(self) -> str:
        return (
            f"KRXCalendar(extra_closures={len(self._extra)}, "
            f"special_sessions={len(self._special)}, use_holidays={self._use_holidays})"
        )
