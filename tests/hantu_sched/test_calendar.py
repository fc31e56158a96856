"""KRXCalendar against every KRX closure of 2025-2027 (the market operator's published lists,
as holidays 0.109 ``financial_holidays("XKRX")`` gives them) and 2028-2030 through holidays."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hantu_sched import KST, CalendarNotCoveredError, KRXCalendar, Session
from hantu_sched._calendar import CSAT_DAYS, EMBEDDED_CLOSURES, EMBEDDED_YEARS

D = dt.date

# Weekday closures from holidays 0.109 financial_holidays("XKRX"), checked against KRX's lists.
FACTS_CLOSURES = {
    2025: "01-01 01-27 01-28 01-29 01-30 03-03 05-01 05-05 05-06 06-03 06-06 08-15 10-03 10-06 "
    "10-07 10-08 10-09 12-25 12-31",
    2026: "01-01 02-16 02-17 02-18 03-02 05-01 05-05 05-25 06-03 07-17 08-17 09-24 09-25 10-05 "
    "10-09 12-25 12-31",
    2027: "01-01 02-08 02-09 03-01 05-03 05-05 05-13 07-19 08-16 09-14 09-15 09-16 10-04 10-11 "
    "12-27 12-31",
}


def facts(year: int) -> set[dt.date]:
    return {D.fromisoformat(f"{year}-{md}") for md in FACTS_CLOSURES[year].split()}


@pytest.fixture(scope="module")
def cal() -> KRXCalendar:
    return KRXCalendar()


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_embedded_table_equals_facts_file(year: int) -> None:
    assert {d for d in EMBEDDED_CLOSURES if d.year == year} == facts(year)


@pytest.mark.parametrize("year", sorted(EMBEDDED_YEARS))
def test_embedded_table_equals_holidays_xkrx(year: int) -> None:
    """The embedded table is the checked reference: holidays (a dependency) agrees with it."""
    import holidays

    generated = {d for d in holidays.financial_holidays("XKRX", years=year) if d.weekday() < 5}
    assert {d for d in EMBEDDED_CLOSURES if d.year == year} == generated


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_every_weekday_matches_facts(cal: KRXCalendar, year: int) -> None:
    closed = facts(year)
    day = D(year, 1, 1)
    while day.year == year:
        expected = day.weekday() < 5 and day not in closed
        assert cal.is_trading_day(day) is expected, day
        assert (cal.session(day) is not None) is expected, day
        day += dt.timedelta(days=1)


@pytest.mark.parametrize(
    "day",
    [
        D(2025, 1, 27),
        D(2025, 5, 1),
        D(2025, 5, 6),
        D(2025, 6, 3),
        D(2025, 10, 8),
        D(2025, 12, 31),
        D(2026, 3, 2),
        D(2026, 5, 1),
        D(2026, 5, 25),
        D(2026, 6, 3),
        D(2026, 7, 17),
        D(2026, 8, 17),
        D(2026, 9, 24),
        D(2026, 9, 25),
        D(2026, 10, 5),
        D(2026, 10, 9),
        D(2026, 12, 31),
        D(2027, 5, 3),
        D(2027, 7, 19),
        D(2027, 12, 27),
        D(2024, 10, 1),
        D(2024, 12, 31),
        D(2024, 4, 10),
    ],
)
def test_named_closures(cal: KRXCalendar, day: dt.date) -> None:
    assert not cal.is_trading_day(day)
    assert cal.session(day) is None
    reason = cal.closure_reason(day)
    assert reason is not None
    assert reason.startswith("KRX holiday")


def test_weekend_reason(cal: KRXCalendar) -> None:
    assert cal.closure_reason(D(2026, 9, 26)) == "weekend (Saturday)"
    assert cal.closure_reason(D(2026, 9, 28)) is None


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), KST)


@pytest.mark.parametrize(
    ("day", "opening", "closing"),
    [
        (D(2026, 9, 28), (9, 0), (15, 30)),  # after 추석, normal day
        (D(2026, 1, 2), (10, 0), (15, 30)),  # first trading day of 2026
        (D(2025, 1, 2), (10, 0), (15, 30)),
        (D(2024, 1, 2), (10, 0), (15, 30)),
        (D(2027, 1, 4), (10, 0), (15, 30)),  # Jan 1 Fri closed, 2-3 weekend
        (D(2026, 11, 19), (10, 0), (16, 30)),  # 수능
        (D(2025, 11, 13), (10, 0), (16, 30)),
        (D(2024, 11, 14), (10, 0), (16, 30)),
        (D(2026, 12, 30), (9, 0), (15, 30)),  # last session of 2026
    ],
)
def test_session_times(
    cal: KRXCalendar, day: dt.date, opening: tuple[int, int], closing: tuple[int, int]
) -> None:
    session = cal.session(day)
    assert session == Session(at(day, *opening), at(day, *closing))
    assert session is not None
    assert session.open.utcoffset() == dt.timedelta(hours=9)
    assert session.date == day


def test_csat_dates_from_facts() -> None:
    assert D(2026, 11, 19) in CSAT_DAYS
    assert {d.year for d in CSAT_DAYS} == set(range(2019, 2027))


def test_next_and_previous_trading_day(cal: KRXCalendar) -> None:
    assert cal.next_trading_day(D(2026, 9, 23)) == D(2026, 9, 28)
    assert cal.previous_trading_day(D(2026, 9, 28)) == D(2026, 9, 23)
    assert cal.previous_trading_day(D(2027, 1, 4)) == D(2026, 12, 30)
    assert cal.next_trading_day(D(2026, 6, 2)) == D(2026, 6, 4)
    assert list(cal.trading_days(D(2026, 7, 16), D(2026, 7, 20))) == [
        D(2026, 7, 16),
        D(2026, 7, 20),
    ]


def test_extra_closure_and_special_session() -> None:
    cal = KRXCalendar(
        extra_closures={D(2026, 10, 1): "임시공휴일"},
        special_sessions={D(2026, 7, 17): (dt.time(10), dt.time(14))},
    )
    assert not cal.is_trading_day(D(2026, 10, 1))
    assert cal.closure_reason(D(2026, 10, 1)) == "KRX holiday (임시공휴일)"
    assert cal.session(D(2026, 7, 17)) == Session(at(D(2026, 7, 17), 10), at(D(2026, 7, 17), 14))
    plain = KRXCalendar(extra_closures=[D(2026, 10, 2)])
    assert not plain.is_trading_day(D(2026, 10, 2))


def test_extra_closure_can_move_the_first_day_open() -> None:
    cal = KRXCalendar(extra_closures=[D(2026, 1, 2)])
    assert cal.session(D(2026, 1, 5)) == Session(at(D(2026, 1, 5), 10), at(D(2026, 1, 5), 15, 30))


def test_conflicting_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="both closed"):
        KRXCalendar(
            extra_closures=[D(2026, 7, 20)],
            special_sessions={D(2026, 7, 20): (dt.time(9), dt.time(15))},
        )
    with pytest.raises(ValueError, match="opens at"):
        KRXCalendar(special_sessions={D(2026, 7, 20): (dt.time(15), dt.time(9))})


def test_uncovered_year_without_holidays_is_a_clear_error() -> None:
    cal = KRXCalendar(use_holidays=False)
    with pytest.raises(CalendarNotCoveredError, match="2030"):
        cal.is_trading_day(D(2030, 3, 4))
    covered = KRXCalendar(use_holidays=False, covered_years=[2030], extra_closures=[D(2030, 3, 4)])
    assert not covered.is_trading_day(D(2030, 3, 4))
    assert covered.is_trading_day(D(2030, 3, 5))


def test_holidays_fallback_for_other_years() -> None:
    cal = KRXCalendar()
    assert not cal.is_trading_day(D(2023, 12, 29))  # year-end closure
    assert cal.is_trading_day(D(2023, 12, 28))
    assert cal.session(D(2023, 11, 16)) == Session(
        at(D(2023, 11, 16), 10), at(D(2023, 11, 16), 16, 30)
    )


def test_session_rejects_datetime(cal: KRXCalendar) -> None:
    with pytest.raises(TypeError):
        cal.session(dt.datetime(2026, 9, 28, 9, tzinfo=KST))


def test_holidays_is_imported_lazily_and_errors_clearly_without_it() -> None:
    code = (
        "import sys, datetime as dt\n"
        "sys.modules['holidays'] = None  # simulate 'not installed'\n"
        "from hantu_sched import KRXCalendar, CalendarNotCoveredError\n"
        "cal = KRXCalendar()\n"
        "assert cal.is_trading_day(dt.date(2026, 6, 4))\n"
        "try:\n"
        "    cal.is_trading_day(dt.date(2031, 1, 6))\n"
        "except CalendarNotCoveredError as exc:\n"
        "    assert 'reinstall hantu-sched' in str(exc), exc\n"
        "    print('clear-error')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clear-error"


def test_importing_the_package_does_not_import_holidays() -> None:
    code = "import sys, hantu_sched; print('holidays' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert result.stdout.strip() == "False"


@given(st.dates(D(2024, 1, 1), D(2027, 12, 31)))
def test_property_session_consistency(day: dt.date) -> None:
    cal = KRXCalendar()
    session = cal.session(day)
    assert (session is not None) is cal.is_trading_day(day)
    if session is None:
        assert cal.closure_reason(day)
        return
    assert session.open.time() in (dt.time(9), dt.time(10))
    assert session.close.time() in (dt.time(15, 30), dt.time(16, 30))
    assert cal.previous_trading_day(cal.next_trading_day(day)) == day


# --- 2028-2030: past the embedded table, through holidays (a regular dependency) -------------

#: Closures that do not depend on a holidays release: fixed-date holidays on weekdays, the
#: year-end closure, the lunar 설날/추석/부처님오신날 days and 대체 휴일. Election days are left
#: out: their dates are set by law nearer the time and differ between holidays releases.
LATER_CLOSURES = {
    2028: "01-26 01-27 01-28 03-01 05-01 05-02 05-05 06-06 07-17 08-15 10-02 10-03 10-04 10-05 "
    "10-09 12-25 12-29",
    2029: "01-01 02-12 02-13 02-14 03-01 05-01 05-07 05-21 06-06 07-17 08-15 09-21 09-24 10-03 "
    "10-09 12-25 12-31",
    2030: "01-01 02-04 02-05 03-01 05-01 05-06 05-09 06-06 07-17 08-15 09-11 09-12 09-13 10-03 "
    "10-09 12-25 12-31",
}


@pytest.mark.parametrize("year", [2028, 2029, 2030])
def test_years_past_the_embedded_table_work(cal: KRXCalendar, year: int) -> None:
    assert year not in EMBEDDED_YEARS
    closed = {D.fromisoformat(f"{year}-{md}") for md in LATER_CLOSURES[year].split()}
    for day in closed:
        assert not cal.is_trading_day(day), day
        reason = cal.closure_reason(day)
        assert reason is not None
        assert reason.startswith("KRX holiday"), day
    days = list(cal.trading_days(D(year, 1, 1), D(year, 12, 31)))
    weekdays = sum(
        1
        for n in range(366)
        if (d := D(year, 1, 1) + dt.timedelta(n)).year == year and d.weekday() < 5
    )
    # Every listed closure is off the trading days, and at most a few more (elections) are.
    assert not closed & set(days)
    assert weekdays - len(closed) - 3 <= len(days) <= weekdays - len(closed)
    for day in days:
        session = cal.session(day)
        assert session is not None
        assert session.date == day


def test_2028_to_2030_sessions_and_steps(cal: KRXCalendar) -> None:
    # 2028-01-01 is a Saturday: the first session is Monday 3 January, opening at 10:00.
    assert cal.session(D(2028, 1, 3)) == Session(at(D(2028, 1, 3), 10), at(D(2028, 1, 3), 15, 30))
    assert cal.session(D(2028, 1, 4)) == Session(at(D(2028, 1, 4), 9), at(D(2028, 1, 4), 15, 30))
    # From the last embedded day into 2028, and across 추석 2028 (2-5 October, 9 October).
    assert cal.next_trading_day(D(2027, 12, 30)) == D(2028, 1, 3)
    assert cal.previous_trading_day(D(2028, 1, 3)) == D(2027, 12, 30)
    assert cal.next_trading_day(D(2028, 9, 29)) == D(2028, 10, 6)
    assert cal.next_trading_day(D(2028, 10, 6)) == D(2028, 10, 10)
    assert cal.previous_trading_day(D(2031, 1, 2)) == D(2030, 12, 30)


def test_holidays_declared_as_a_regular_dependency() -> None:
    """hantu-sched requires holidays (no optional extra): the 2028 dates above work anywhere."""
    import pathlib
    import tomllib

    pyproject = pathlib.Path(__file__).parents[2] / "dists" / "hantu_sched" / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert any(r.startswith("holidays>=") for r in project["dependencies"])
    assert "calendar" not in project.get("optional-dependencies", {})
