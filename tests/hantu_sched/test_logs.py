"""``run``'s log lines: the recovery plan and every decision as readable rows (the rows of
``recover --dry-run``), and ``--log-format json``: one JSON object per line."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import pathlib

import pytest

from daemon_support import PaperDaemon
from hantu_sched import KST, FakeClock, JobKey, SQLiteStorage
from hantu_sched._cli import main
from hantu_sched._journal import Journal
from hantu_sched._logs import JsonFormatter, TextFormatter, log_formatter
from kisclient.testing import FakeKIS

DAY = dt.date(2026, 6, 4)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")) or name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))


def test_run_logs_its_plan_and_decisions_as_readable_rows(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="hantu_sched")
    clock = FakeClock(dt.datetime(2026, 6, 4, 6, 20, tzinfo=KST))
    daemon = PaperDaemon.create(tmp_path, FakeKIS(clock=clock, seed=2, universe_size=20))
    (tmp_path / "d").mkdir()
    storage = SQLiteStorage(tmp_path / "d")  # a crash at 06:00 left screening running
    Journal(storage, who=(1, "a")).start(JobKey("screening", DAY), clock.now(), "due")
    storage.close()
    assert daemon.run(clock, dt.datetime(2026, 6, 4, 6, 30, tzinfo=KST)) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "{'" in m or '{"' in m]  # no dict reprs
    plan = [m.removeprefix("recovery plan: ") for m in messages if m.startswith("recovery plan: ")]
    # the same rows `recover --dry-run` prints for the same evidence
    assert main(["recover", "--dry-run", "--now", "2026-06-04T06:20",
                 "--data-dir", str(tmp_path / "d")]) == 0  # fmt: skip
    # (by now screening ran again, so compare the rows that did not change: the waits)
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]
    assert plan[0] == (
        "run       screening        2026-06-04: due since 06:00; the last run never finished "
        "(journal: running, 1 attempt(s)): running again"
    )
    assert "wait      performance      2026-06-04 at 17:00: scheduled at 17:00" in plan
    assert "wait      performance      2026-06-04 at 17:00: scheduled at 17:00" in printed
    assert any(m.startswith("plan: run       screening        2026-06-04: due") for m in messages)
    with_action = [r for r in caplog.records if hasattr(r, "action")]
    assert len(with_action) >= len(plan)


def test_json_formatter_one_object_per_line() -> None:
    logger = logging.getLogger("hantu_sched.test_logs")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "done %s", ("screening@2026-06-04",), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {"ts", "level", "logger", "message"}
    assert line["message"] == "done screening@2026-06-04" and line["level"] == "INFO"
    assert dt.datetime.fromisoformat(line["ts"]).utcoffset() == dt.timedelta(hours=9)
    try:
        raise ValueError("multi\nline")
    except ValueError:
        import sys

        failed = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "x failed", (), sys.exc_info()
        )
    text = JsonFormatter().format(failed)
    assert "\n" not in text  # a traceback stays on its line
    assert "ValueError: multi\nline" in json.loads(text)["exc"]
    assert isinstance(log_formatter("text"), TextFormatter)
    with pytest.raises(ValueError, match="unknown log format"):
        log_formatter("xml")


def test_run_log_format_json_end_to_end(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeKIS(seed=1, universe_size=10)
    app = fake.add_app(env="paper")
    config = tmp_path / "c.toml"
    config.write_text("[kis]\nenv = 'paper'\nbase_url = 'http://127.0.0.1:9'\n")
    monkeypatch.setenv("KIS_APP_KEY", app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", app.app_secret)
    monkeypatch.setenv("KIS_ACCOUNT", app.account)
    # --until in the past: the daemon starts, logs its plan and stops before running anything
    argv = ["run", "--config", str(config), "--data-dir", str(tmp_path / "d"),
            "--until", "2020-01-01T00:00"]  # fmt: skip
    assert main([*argv, "--log-format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    plan = [line for line in lines if line["message"].startswith("recovery plan: ")]
    assert plan and all(set(line["action"]) >= {"kind", "job", "reason"} for line in plan)
    assert any(line["logger"] == "hantu_sched" for line in lines)  # the scheduler's own lines
    assert main([*argv]) == 0
    text = capsys.readouterr().err.splitlines()
    assert any(" INFO hantu_sched.runner: recovery plan: " in line for line in text)
    assert not any(line.startswith("{") for line in text)


def test_long_batches_draw_a_progress_bar_on_a_terminal_only() -> None:
    from rich.console import Console

    from hantu_sched._console import ProgressLogHandler, log_handler
    from hantu_sched.pipeline._screening import progress_logger

    logger = logging.getLogger("hantu_sched.screening.test_progress")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    handler = log_handler(TextFormatter(), terminal, bars=True)
    assert isinstance(handler, ProgressLogHandler)
    logger.addHandler(handler)
    try:
        logger.info("screening 40 codes")
        report = progress_logger(logger, "quotes")
        for done in range(1, 21):
            report(done, 40)
        assert handler._tasks  # a bar is up mid-batch
        for done in range(21, 41):
            report(done, 40)
        assert not handler._tasks and handler._bars is None  # and gone at the end
        logger.info("screening done")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = screen.getvalue()
    assert "screening 40 codes" in text and "screening done" in text
    assert "test_progress: quotes" in text  # the bar's label
    assert "quotes: 20/40 (50%)" not in text  # not a line every 10 %

    pipe = io.StringIO()
    plain = log_handler(TextFormatter(), Console(file=pipe, force_terminal=False), bars=True)
    assert not isinstance(plain, ProgressLogHandler)
    logger.addHandler(plain)
    try:
        report = progress_logger(logger, "quotes")
        for done in range(1, 41):
            report(done, 40)
    finally:
        logger.removeHandler(plain)
    assert pipe.getvalue().count("quotes: ") == 10 and "\x1b[" not in pipe.getvalue()
    line = json.loads(JsonFormatter().format(
        logger.makeRecord(logger.name, logging.INFO, __file__, 1, "quotes: 4/40 (10%)", (), None,
                          extra={"progress": {"label": "quotes", "done": 4, "total": 40}})
    ))  # fmt: skip
    assert line["progress"] == {"label": "quotes", "done": 4, "total": 40}


def test_simulate_log_format_json_puts_the_timeline_on_stdout_as_json_lines(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--date", "2026-06-04", "--universe", "20", "--restart-at", "11:00",
            "--log-format", "json", "--data-dir", str(tmp_path / "d")]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]  # every line is a JSON object
    assert {"ts", "kind", "unit", "text", "job", "batch", "attempt"} == set(events[0])
    kinds = [e["kind"] for e in events]
    assert {"start", "done", "killed", "crash", "reconcile", "reconciled"} <= set(kinds)
    trading = [e for e in events if e["job"] == "trading" and e["kind"] == "start"]
    assert [e["attempt"] for e in trading] == [1, 2]
    assert events[0]["ts"].startswith("2026-06-04T05:30:00+09:00")
    assert "day COMPLETE" in err and "simulating 2026-06-04" in err  # the human lines


def test_multi_day_simulate_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["simulate", "--from", "2026-06-05", "--to", "2026-06-07", "--universe", "20",
            "--quiet"]  # fmt: skip
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert main([*argv, "--data-dir", str(tmp_path / "a")]) == 0
    _, err = capsys.readouterr()
    assert "\x1b[" not in err and "simulating" not in err
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    assert main([*argv, "--data-dir", str(tmp_path / "b")]) == 0
    _, err = capsys.readouterr()
    assert "simulating" in err and "3/3" in err
