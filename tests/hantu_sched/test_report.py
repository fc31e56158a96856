"""The report page's content, parsed with html.parser: sections, one bar per attempt, the
orders and fills, and figures that equal the performance code's over the balance snapshots.
The page is checked in a real browser by test_report_browser.py."""

from __future__ import annotations

import collections
import datetime as dt
import os
import pathlib
import stat
import sys

import pytest

from hantu_sched import KST, RISK_FREE_RATE, JobKey, JobRecord, JobState, SQLiteStorage
from hantu_sched._cli import main
from hantu_sched._report import default_output, latest_day, load_report, render_report
from hantu_sched._svg import Scale, bar_chart, nice_ticks
from hantu_sched.pipeline._metrics import compute_metrics
from report_support import FIRST, LAST, Element, parse_page, simulated_range

NOW = dt.datetime(2026, 6, 9, 8, 0, tzinfo=KST)
TRADING_DAYS = ["2026-06-04", "2026-06-05", "2026-06-08"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    result = simulated_range(tmp_path_factory.mktemp("report"))
    assert result.complete
    return result.data_dir


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")) or name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
            monkeypatch.delenv(name)


def _page(data_dir: pathlib.Path, first: dt.date, last: dt.date, since: dt.date | None) -> str:
    return render_report(load_report(data_dir, first, last, since=since, now=NOW))


def _label(job: str, batch: str | None) -> str:
    return job if batch is None else f"{job}[{batch}]"


def _figures(elements: list[Element]) -> dict[str, str]:
    out = {}
    for e in elements:
        if e.tag == "td" and "data-value" in e.attrs:
            row = e.within("tr")
            assert row is not None and e.within("table", id="figures") is not None
            out[row["data-key"]] = e.attrs["data-value"]
    return out


def test_range_page_has_every_section_and_a_bar_per_attempt(data_dir: pathlib.Path) -> None:
    page = _page(data_dir, FIRST, LAST, FIRST)
    elements = parse_page(page)
    ids = {e.attrs["id"] for e in elements if "id" in e.attrs}
    assert {"account", "figures", "equity", "drawdown", "returns", "days"} <= ids
    days = [e.attrs["data-date"] for e in elements if e.tag == "details"]
    assert days == TRADING_DAYS  # the weekend is listed, not drawn
    assert "closed, nothing ran: 2026-06-06 (weekend (Saturday)), 2026-06-07" in page
    bars = [e for e in elements if e.tag == "rect" and "attempt" in e.classes()]
    drawn: collections.Counter[tuple[str, str]] = collections.Counter()
    for bar in bars:
        day = bar.within("details")
        assert day is not None
        drawn[(day["data-date"], bar.attrs["data-unit"])] += 1
    storage = SQLiteStorage(data_dir, read_only=True)
    try:
        attempts = [
            a for d in TRADING_DAYS for a in storage.list_attempts(dt.date.fromisoformat(d))
        ]
    finally:
        storage.close()
    expected = collections.Counter(
        (a.key.trading_date.isoformat(), _label(a.key.job, a.key.batch)) for a in attempts
    )
    assert drawn == expected
    crashed = [a for a in attempts if a.outcome.value == "crashed"]
    assert len(crashed) == 6  # mid-screening and mid-trading, each day
    crosses = [e for e in elements if e.tag == "path" and {"marker", "crash"} <= e.classes()]
    assert len(crosses) == len(crashed)
    recoveries = [a for a in attempts if a.kind != "run" or a.number > 1]
    triangles = [e for e in elements if e.tag == "path" and "recovery" in e.classes()]
    assert len(triangles) == len(recoveries) >= 9  # retry screening, reconcile + resume trading
    assert sum(1 for e in elements if e.tag == "rect" and "session" in e.classes()) == 3
    sessions = [e for e in elements if e.tag == "rect" and "session" in e.classes()]
    assert sessions[0].attrs["data-open"] == "2026-06-04T09:00:00+09:00"
    assert sessions[0].attrs["data-close"] == "2026-06-04T15:30:00+09:00"


def test_range_figures_equal_the_performance_code_and_record(data_dir: pathlib.Path) -> None:
    storage = SQLiteStorage(data_dir, read_only=True)
    try:
        snapshots = storage.list_records("balance_snapshot")
        performance = storage.get_record("performance", LAST.isoformat())
        assert isinstance(performance, dict)
    finally:
        storage.close()
    # The previous close of the first day (the starting capital), then each close.
    values = [float(snapshots[TRADING_DAYS[0]]["previous_total"])]
    values += [float(snapshots[d]["net_assets"]) for d in TRADING_DAYS]
    assert len(set(values)) == 4  # prices move: the account is worth something else each close
    metrics = compute_metrics(values, RISK_FREE_RATE)
    elements = parse_page(_page(data_dir, FIRST, LAST, FIRST))
    figures = _figures(elements)
    for key in ("cumulative_return", "daily_return", "volatility", "sharpe_ratio", "max_drawdown"):
        assert figures[key] == repr(getattr(metrics, key)), key
        assert figures[key] == repr(performance[key]), key  # the performance job's own figures
    assert figures["risk_free_rate"] == repr(RISK_FREE_RATE)
    assert figures["observations"] == "4"
    assert figures["start_value"] == repr(values[0])
    assert figures["end_value"] == repr(values[-1])
    points = [e for e in elements if e.tag == "circle" and "equity-point" in e.classes()]
    assert [float(p.attrs["data-value"]) for p in points] == values
    bars = [e for e in elements if e.tag == "rect" and "return" in e.classes()]
    assert [float(b.attrs["data-value"]) for b in bars] == list(metrics.daily_returns)
    assert [("up" in b.classes()) for b in bars] == [r >= 0 for r in metrics.daily_returns]
    drawdowns = [e for e in elements if e.tag == "circle" and "drawdown-point" in e.classes()]
    peaks = [max(values[: i + 1]) for i in range(len(values))]
    assert [float(d.attrs["data-value"]) for d in drawdowns] == pytest.approx(
        [v / p - 1 for v, p in zip(values, peaks, strict=True)]
    )
    assert -min(float(d.attrs["data-value"]) for d in drawdowns) == pytest.approx(
        metrics.max_drawdown
    )


def test_one_day_page_covers_the_account_up_to_that_day(data_dir: pathlib.Path) -> None:
    day = dt.date(2026, 6, 5)
    elements = parse_page(_page(data_dir, day, day, None))
    assert [e.attrs["data-date"] for e in elements if e.tag == "details"] == ["2026-06-05"]
    figures = _figures(elements)
    storage = SQLiteStorage(data_dir, read_only=True)
    try:
        performance = storage.get_record("performance", day.isoformat())
        assert isinstance(performance, dict)
    finally:
        storage.close()
    assert figures["observations"] == "3" == str(performance["observations"])
    assert figures["cumulative_return"] == repr(performance["cumulative_return"])


def test_orders_and_fills_of_the_day(data_dir: pathlib.Path) -> None:
    storage = SQLiteStorage(data_dir, read_only=True)
    try:
        orders = {
            k.split("/", 1)[1]: v
            for k, v in storage.list_records("order").items()
            if k.startswith("2026-06-04/")
        }
        trading = storage.get_record("trading", "2026-06-04")
        assert isinstance(trading, dict)
    finally:
        storage.close()
    assert len(orders) >= 5
    elements = parse_page(_page(data_dir, FIRST, FIRST, None))
    rows = [e for e in elements if e.tag == "tr" and "order" in e.classes()]
    assert {r.attrs["data-code"] for r in rows} == set(orders)
    fills = trading["polled_fills"] | trading["notice_fills"]
    for row in rows:
        record = orders[row.attrs["data-code"]]
        assert row.attrs["data-quantity"] == str(record["quantity"])
        assert row.attrs["data-filled"] == str(fills[record["order_no"]])
    ticks = [e for e in elements if e.tag == "line" and "order-tick" in e.classes()]
    assert len(ticks) == len(orders)


def test_page_is_self_contained_and_escapes_text(tmp_path: pathlib.Path) -> None:
    # A journal with a failed attempt whose error text is markup, written without history
    # rows (a journal from before attempts were kept): its one attempt comes from the row.
    day = dt.date(2026, 6, 4)
    storage = SQLiteStorage(tmp_path)
    at = dt.datetime(2026, 6, 4, 6, 0, tzinfo=KST)
    storage.put_job(
        JobRecord(JobKey("screening", day), JobState.FAILED, 1, at, at,
                  at + dt.timedelta(minutes=3), error="<script>alert(1)</script> & more")
    )  # fmt: skip
    storage.close()
    page = _page(tmp_path, day, day, None)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    elements = parse_page(page)
    assert not [e for e in elements if e.tag in ("script", "link", "img", "iframe", "object")]
    assert not [e for e in elements if "src" in e.attrs or "href" in e.attrs]
    urls = [v for e in elements for v in e.attrs.values() if "://" in v]
    assert set(urls) == {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched
    bars = [e for e in elements if e.tag == "rect" and "attempt" in e.classes()]
    assert [(b.attrs["data-unit"], b.attrs["data-outcome"]) for b in bars] == [
        ("screening", "failed")
    ]
    assert [e for e in elements if e.tag == "path" and {"marker", "failed"} <= e.classes()]
    figures = _figures(elements)
    assert figures["observations"] == "0"
    assert figures["sharpe_ratio"] == ""  # no snapshot: nothing to compute, and it says n/a


def test_cli_report_writes_the_page_and_prints_its_path(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "range.html"
    argv = ["report", "--data-dir", str(data_dir), "--from", str(FIRST), "--to", str(LAST),
            "--output", str(target), "--now", "2026-06-09T08:00:00+09:00"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == str(target)
    assert out[0].startswith(f"report for {FIRST} to {LAST}: ")
    assert "4 close(s) on the equity curve" in out[0]
    assert target.read_text(encoding="utf-8") == _page(data_dir, FIRST, LAST, FIRST)
    # Without --date: the latest day of the journal, written under the data directory.
    assert latest_day(data_dir, dt.date(2026, 12, 1)) == LAST
    before = default_output(data_dir, LAST, LAST)
    assert main(["report", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(before)
    assert before.is_file()


def test_cli_report_open_prints_the_address_and_asks_the_browser(
    data_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text(
        f"import sys, pathlib\npathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    target = tmp_path / "day.html"
    argv = ["report", "--data-dir", str(data_dir), "--date", "2026-06-05", "--output", str(target)]
    # No browser configured and no display: the address is printed, nothing is started.
    assert main([*argv, "--open"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == target.resolve().as_uri()
    assert not opened.exists()
    monkeypatch.setenv("BROWSER", f"{sys.executable} {script} %s")
    assert main([*argv, "--open"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == target.resolve().as_uri()
    assert opened.read_text() == target.resolve().as_uri()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--from", "2026-06-04"], "--from and --to go together"),
        (
            ["--date", "2026-06-04", "--from", "2026-06-04", "--to", "2026-06-05"],
            "one or the other",
        ),
        (["--from", "2026-06-05", "--to", "2026-06-04"], "--to 2026-06-04 is before --from"),
        (["--from", "2024-01-01", "--to", "2026-06-04"], "at most 400 days"),
    ],
)
def test_cli_report_bad_arguments_are_one_line(
    argv: list[str], fragment: str, data_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--data-dir", str(data_dir), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_cli_report_without_a_journal_is_one_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--data-dir", str(tmp_path), "--date", "2026-06-04"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no journal at" in err[0], err
    assert not list(tmp_path.iterdir())  # nothing created


def test_svg_scales_ticks_and_empty_charts() -> None:
    assert nice_ticks(0.0, 1.0, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(98.3e6, 102.1e6) == [99e6, 100e6, 101e6, 102e6]
    assert nice_ticks(-0.004, 0.009) == [0.0, 0.005]  # steps of 1, 2 or 5 x 10^k only
    assert nice_ticks(-0.041, 0.0) == [-0.04, -0.03, -0.02, -0.01, 0.0]
    assert nice_ticks(5.0, 5.0) == [5.0]
    assert Scale(0, 10, 100, 200)(2.5) == 125.0
    assert Scale(0, 10, 200, 100)(10) == 100.0  # an inverted pixel axis (y grows downwards)
    assert Scale(3, 3, 100, 200)(3) == 150.0
    empty = parse_page(bar_chart([], [], label="daily returns", fmt=str, bar_class="r", titles=[]))
    assert [e.tag for e in empty] == ["svg", "title", "text"]
    assert "".join(empty[2].text) == "no daily returns yet"
