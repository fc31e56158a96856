"""``status`` with the attempt history: the last attempt, ``--history``, ``--json``, ``--date``,
and the coloured terminal table (plain text when stdout is not a terminal)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pathlib
import sqlite3

import pytest
from rich.console import Console

from hantu_sched import KST, JobKey, SQLiteStorage
from hantu_sched._cli import main
from hantu_sched._console import print_status, progress, render_status
from hantu_sched._inspect import status_report
from hantu_sched._journal import Journal
from hantu_sched._settings import load_settings

DAY = dt.date(2026, 6, 4)
ESC = "\x1b["


def at(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")) or name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("NO_COLOR", raising=False)  # rich honours it; these tests check colours
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A journal of 2026-06-04: screening done; trading started at 09:00 by pid 1 on host a,
    which crashed; pid 2 on host b reconciled and resumed it at 11:00; market_close failed."""
    path = tmp_path / "d"
    path.mkdir()
    storage = SQLiteStorage(path)
    try:
        first = Journal(storage, who=(1, "a"))
        first.start(JobKey("screening", DAY), at("06:00"), "due since 06:00")
        first.done(JobKey("screening", DAY), at("06:01"))
        first.start(JobKey("trading", DAY), at("09:00"), "due since 09:00")
        second = Journal(storage, who=(2, "b"))
        trading = JobKey("trading", DAY)
        second.needs_reconcile(trading, at("11:00"), "the last run never finished")
        second.begin_reconcile(trading, at("11:00"), "reconcile orders and positions")
        second.pending(trading, at("11:00:01"), "reconciled at 11:00:01")
        second.start(trading, at("11:00:01"), "reconciled: resuming", kind="resume")
        second.done(trading, at("15:30"))
        second.start(JobKey("market_close", DAY), at("16:00"), "due since 16:00")
        second.fail(JobKey("market_close", DAY), at("16:00:05"), "RuntimeError: no statement")
    finally:
        storage.close()
    return path


def _status(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["status", *argv]) == 0
    return capsys.readouterr().out


def test_status_shows_the_last_attempt_and_history_shows_all(
    capsys: pytest.CaptureFixture[str], data_dir: pathlib.Path
) -> None:
    args = ("--data-dir", str(data_dir), "--now", "2026-06-04T18:00")
    out = _status(capsys, *args)
    assert ESC not in out  # not a terminal: plain text
    trading = next(line for line in out.splitlines() if line.lstrip().startswith("trading"))
    assert trading.split()[:3] == ["trading", "done", "2"]
    assert "11:00:01 15:30:00 resume by pid 2 on b" in trading
    assert "#1 run" not in out
    failed = next(line for line in out.splitlines() if line.lstrip().startswith("market_close"))
    assert "failed" in failed and "error: RuntimeError: no statement" in failed

    out = _status(capsys, *args, "--history")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    start = lines.index(next(line for line in lines if line.startswith("trading")))
    history = lines[start + 1 : start + 4]
    assert history[0].startswith("#1 run crashed 09:00:00 --:--:-- pid 1 on a")
    assert (
        "error: pid 1 on a ended while it ran; found by recovery at 2026-06-04T11:00:00"
        in (history[0])
    )
    assert history[1].startswith("#2 reconcile done 11:00:00 11:00:01 pid 2 on b")
    assert "decision: reconcile orders and positions" in history[1]
    assert history[2].startswith("#3 resume done 11:00:01 15:30:00 pid 2 on b")
    assert "#1 run failed 16:00:00 16:00:05" in " ".join(out.split())


def test_status_json_has_every_attempt(
    capsys: pytest.CaptureFixture[str], data_dir: pathlib.Path
) -> None:
    out = _status(capsys, "--json", "--data-dir", str(data_dir), "--now", "2026-06-04T18:00")
    jobs = {(j["job"], j["batch"]): j for j in json.loads(out)["jobs"]}
    trading = jobs[("trading", None)]
    assert [
        (a["number"], a["kind"], a["outcome"], a["pid"], a["host"]) for a in trading["history"]
    ] == [
        (1, "run", "crashed", 1, "a"),
        (2, "reconcile", "done", 2, "b"),
        (3, "resume", "done", 2, "b"),
    ]
    assert trading["history"][0]["started_at"] == "2026-06-04T09:00:00+09:00"
    assert trading["history"][0]["finished_at"] is None
    assert trading["last_attempt"] == trading["history"][-1]
    assert (
        jobs[("selection", "1")]["history"] == []
        and jobs[("selection", "1")]["last_attempt"] is None
    )


def test_status_date_defaults_to_today_and_shows_any_day(
    capsys: pytest.CaptureFixture[str], data_dir: pathlib.Path
) -> None:
    # The next morning, without --date: today's (empty) day, not the 4th's.
    out = _status(capsys, "--json", "--data-dir", str(data_dir), "--now", "2026-06-05T08:00")
    report = json.loads(out)
    assert report["trading_date"] == "2026-06-05"
    assert {j["state"] for j in report["jobs"]} == {"not-started"}
    assert [e["job"] for e in report["recent_errors"]] == ["market_close"]  # the last 7 days
    out = _status(
        capsys, "--json", "--data-dir", str(data_dir), "--now", "2026-06-05T08:00",
        "--date", "2026-06-04",
    )  # fmt: skip
    report = json.loads(out)
    assert report["trading_date"] == "2026-06-04"
    assert report["session"]["open"] == "2026-06-04T09:00:00+09:00"
    assert {j["job"]: j["state"] for j in report["jobs"]}["trading"] == "done"
    assert main(["status", "--date", "2026-13-01", "--data-dir", str(data_dir)]) == 2


def test_status_on_a_terminal_is_a_coloured_table(
    capsys: pytest.CaptureFixture[str], data_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(None, {}, data_dir=data_dir)
    report = status_report(settings, at("18:00"), DAY)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, color_system="standard", width=160)
    render_status(report, console, history=True)
    text = screen.getvalue()
    assert ESC in text
    assert "\x1b[1;31mcrashed" in text  # a crash in bold red
    assert "\x1b[32mdone" in text  # done in green
    assert "\x1b[1;31mfailed" in text
    plain = Console(file=io.StringIO(), force_terminal=False, width=160)
    print_status(report, plain, history=True)
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    assert ESC not in out and "#1 run" in out and "crashed" in out
    # Through the command line: rich sees a terminal when FORCE_COLOR says so.
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = _status(capsys, "--data-dir", str(data_dir), "--now", "2026-06-04T18:00", "--history")
    assert ESC in out and "crashed" in out


def test_progress_bar_only_on_a_terminal() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    with progress(3, "simulating", terminal) as advance:
        for day in ("06-03", "06-04", "06-05"):
            advance(day)
    assert "simulating" in screen.getvalue() and "3/3" in screen.getvalue()
    pipe = io.StringIO()
    with progress(3, "simulating", Console(file=pipe, force_terminal=False)) as advance:
        advance("06-03")
    assert pipe.getvalue() == ""


def test_status_of_a_journal_from_before_the_history_leaves_it_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    db = data_dir / "hantu_sched.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE jobs (job TEXT NOT NULL, trading_date TEXT NOT NULL, batch TEXT NOT NULL, "
        "data TEXT NOT NULL, PRIMARY KEY (job, trading_date, batch))"
    )
    row = {
        "job": "trading", "trading_date": "2026-06-04", "batch": None, "state": "running",
        "attempts": 1, "updated_at": "2026-06-04T11:00:01+09:00",
        "started_at": "2026-06-04T11:00:01+09:00", "finished_at": None, "error": None,
        "note": "resuming",
    }  # fmt: skip
    conn.execute("INSERT INTO jobs VALUES ('trading', '2026-06-04', '', ?)", (json.dumps(row),))
    conn.commit()
    conn.close()
    before = db.read_bytes()
    out = _status(capsys, "--json", "--data-dir", str(data_dir), "--now", "2026-06-04T12:00")
    trading = {j["job"]: j for j in json.loads(out)["jobs"]}["trading"]
    assert trading["stale"] is True
    assert [(a["number"], a["outcome"], a["pid"], a["decision"]) for a in trading["history"]] == [
        (1, "running", None, "resuming")
    ]
    assert db.read_bytes() == before
