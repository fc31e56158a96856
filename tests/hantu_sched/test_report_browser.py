"""The report in a real headless Chromium (Debian's package, driven over DevTools): the page
renders, its SVG has one bar per attempt of every unit, nothing is logged as an error, and a
screenshot of it lands in pytest's tmp_path (never in the repository)."""

from __future__ import annotations

import collections
import pathlib
from collections.abc import Iterator

import pytest

from browser_support import HeadlessChromium
from hantu_sched import SQLiteStorage
from hantu_sched._report import write_report
from report_support import FIRST, LAST, simulated_range


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """(data directory after the simulated range, the range's report page)."""
    root = tmp_path_factory.mktemp("browser")
    result = simulated_range(root)
    assert result.complete
    path, _, _ = write_report(result.data_dir, FIRST, LAST, since=FIRST)
    return result.data_dir, path


@pytest.fixture
def browser(tmp_path: pathlib.Path) -> Iterator[HeadlessChromium]:
    with HeadlessChromium(tmp_path / "profile") as chromium:
        yield chromium


def test_page_renders_with_a_bar_per_attempt_and_no_errors(
    page: tuple[pathlib.Path, pathlib.Path], browser: HeadlessChromium, tmp_path: pathlib.Path
) -> None:
    data_dir, path = page
    browser.open(path.as_uri())
    assert browser.evaluate("document.readyState") == "complete"
    assert browser.evaluate("document.title") == f"hantu_sched report {FIRST} to {LAST}"
    # Open every day (a multi-day page folds all but the last) so each bar is laid out.
    browser.evaluate("document.querySelectorAll('details.day').forEach(d => d.open = true)")
    bars = browser.evaluate(
        """[...document.querySelectorAll('svg.timeline rect.attempt')].map(r => {
             const box = r.getBoundingClientRect();
             return [r.closest('details').dataset.date, r.dataset.unit, r.dataset.outcome,
                     box.width, box.height];
           })"""
    )
    storage = SQLiteStorage(data_dir, read_only=True)
    try:
        expected: collections.Counter[tuple[str, str]] = collections.Counter()
        crashed = 0
        for offset in range((LAST - FIRST).days + 1):
            day = FIRST.fromordinal(FIRST.toordinal() + offset)
            for attempt in storage.list_attempts(day):
                label = attempt.key.job + (f"[{attempt.key.batch}]" if attempt.key.batch else "")
                expected[(day.isoformat(), label)] += 1
                crashed += attempt.outcome.value == "crashed"
    finally:
        storage.close()
    drawn = collections.Counter((date, unit) for date, unit, _, _, _ in bars)
    assert drawn == expected
    assert crashed == 6  # killed mid-screening and mid-trading on each of the three days
    assert sum(1 for _, _, outcome, _, _ in bars if outcome == "crashed") == crashed
    # Every bar is really drawn: laid out with a visible size.
    assert all(width >= 1 and height >= 1 for _, _, _, width, height in bars), bars
    shaded = browser.evaluate("document.querySelectorAll('svg.timeline rect.session').length")
    assert shaded == 3
    marks = browser.evaluate(
        "[document.querySelectorAll('.marker.crash').length,"
        " document.querySelectorAll('#equity circle.equity-point').length,"
        " document.querySelectorAll('#returns rect.return').length,"
        " document.querySelector('#equity svg').getBoundingClientRect().width]"
    )
    assert marks[:3] == [crashed, 4, 3]  # 3 closes and the previous close before the first
    assert marks[3] > 500
    assert browser.errors == []
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(shot[16:20], "big")
    height = int.from_bytes(shot[20:24], "big")
    assert width >= 1000
    assert height > 1400  # the whole page, beyond the first screen


def test_the_harness_reports_console_errors(
    browser: HeadlessChromium, tmp_path: pathlib.Path
) -> None:
    # The "no errors" assertion above can fail: a page that logs an error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><title>x</title><script>console.error('boom'); undefined_name();</script>",
        encoding="utf-8",
    )
    browser.open(bad.as_uri())
    errors = browser.errors
    assert any("console.error: boom" in e for e in errors), errors
    assert any(e.startswith("exception:") for e in errors), errors
