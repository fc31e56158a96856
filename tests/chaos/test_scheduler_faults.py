"""Issue 9: scheduler faults, one regression test (or a few) per item.

Real processes where the item is about processes (item 4: two schedulers in separate processes
on one data directory; item 7: a job that kills its process; item 14: SIGKILL), the fake KIS
where the item is about trading, and injected clocks throughout: nothing waits on wall time
except for another process to report (bounded by a timeout).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import pathlib
import re
import signal
from collections.abc import Iterator
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import pytest

from daemon_support import PaperDaemon
from fs_support import read_only
from hantu_sched import (
    KST,
    FakeClock,
    IntegratedScheduler,
    JobKey,
    JobState,
    SchedulerConfig,
    SQLiteStorage,
)
from hantu_sched._cli import main
from hantu_sched._jobs import Job, JobContext
from hantu_sched._lock import LOCK_NAME, SchedulerAlreadyRunningError
from hantu_sched._storage import DEFAULT_DB_NAME, DeposedError
from hantu_sched.testing import CrashingClock, JobLog, SimulatedCrash, make_test_jobs
from kisclient.testing import FakeKIS, FakeKISServer

DAY = dt.date(2026, 6, 4)  # a normal Thursday session, 09:00-15:30
TIMEOUT = 60.0  # bound on waiting for a child process to report (never reached when healthy)


def at(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


def _ctx() -> SpawnContext:
    return multiprocessing.get_context("spawn")


# --- child-process entry points (module level: spawn pickles them by name) --------------------


def _blocking_scheduler(
    data_dir: str, started: Event, release: Event, report: Queue[Any], until: str
) -> None:
    """A scheduler whose screening job signals *started*, then blocks until *release*."""
    log = JobLog()

    def wrap(name: str, job: Job) -> Job:
        if name != "screening":
            return job

        def blocking(ctx: JobContext) -> None:
            started.set()
            release.wait(TIMEOUT)
            job(ctx)

        return blocking

    storage = SQLiteStorage(data_dir)
    scheduler = IntegratedScheduler(
        SchedulerConfig(),
        storage,
        FakeClock(at("05:59")),
        make_test_jobs(log, wrap=wrap),
        data_dir=data_dir,
    )
    try:
        scheduler.run(until=dt.datetime.fromisoformat(until))
    except DeposedError as exc:
        report.put(("deposed", str(exc), [(e.kind, e.job, e.batch) for e in log.events]))
    else:
        report.put(("ran", "", [(e.kind, e.job, e.batch) for e in log.events]))
    finally:
        storage.close()


def _second_scheduler(data_dir: str, report: Queue[Any]) -> None:
    """A second scheduler on the same directory: reports whether it was refused or ran."""
    log = JobLog()
    storage = SQLiteStorage(data_dir)
    scheduler = IntegratedScheduler(
        SchedulerConfig(), storage, FakeClock(at("05:59")), make_test_jobs(log), data_dir=data_dir
    )
    try:
        scheduler.run(until=at("07:00"))
    except SchedulerAlreadyRunningError as exc:
        report.put(("refused", str(exc), []))
    else:
        report.put(("ran", "", [(e.kind, e.job, e.batch) for e in log.events]))
    finally:
        storage.close()


def _killing_scheduler(data_dir: str) -> None:
    """A scheduler whose screening job kills its own process, like the OOM killer would."""

    def wrap(name: str, job: Job) -> Job:
        if name != "screening":
            return job

        def oom(ctx: JobContext) -> None:
            os._exit(137)

        return oom

    storage = SQLiteStorage(data_dir)
    scheduler = IntegratedScheduler(
        SchedulerConfig(),
        storage,
        FakeClock(at("06:30")),
        make_test_jobs(wrap=wrap),
        data_dir=data_dir,
    )
    scheduler.run(until=at("06:45"))
    storage.close()


@contextlib.contextmanager
def _child(target: Any, *args: Any) -> Iterator[multiprocessing.process.BaseProcess]:
    proc = _ctx().Process(target=target, args=args, daemon=True)
    proc.start()
    try:
        yield proc
    finally:
        proc.join(TIMEOUT)
        if proc.is_alive():  # pragma: no cover - only on a hung child
            proc.kill()
            proc.join()


# --- item 4: one scheduler per data directory, even without the lock file ----------------------


def test_item_4_deleting_the_lock_file_does_not_let_a_second_run_start(
    tmp_path: pathlib.Path,
) -> None:
    """A runs a job, the lock file is deleted, scheduler B (another process) is refused."""
    ctx = _ctx()
    started, release = ctx.Event(), ctx.Event()
    report_a: Queue[Any] = ctx.Queue()
    report_b: Queue[Any] = ctx.Queue()
    with _child(
        _blocking_scheduler, str(tmp_path), started, release, report_a, at("06:30").isoformat()
    ):
        assert started.wait(TIMEOUT), "scheduler A never started screening"
        (tmp_path / LOCK_NAME).unlink()  # an operator "cleaning up"
        with _child(_second_scheduler, str(tmp_path), report_b):
            outcome, message, events = report_b.get(timeout=TIMEOUT)
        release.set()
        outcome_a, _, events_a = report_a.get(timeout=TIMEOUT)
    assert (outcome, events) == ("refused", []), message
    assert "already running" in message
    assert outcome_a == "ran"
    assert events_a.count(("end", "screening", None)) == 1
    storage = SQLiteStorage(tmp_path)
    try:
        record = storage.get_job(JobKey("screening", DAY))
    finally:
        storage.close()
    assert record is not None and record.state is JobState.DONE and record.attempts == 1


def test_item_4_a_deposed_instance_stops_without_recording_or_running_more(
    tmp_path: pathlib.Path,
) -> None:
    """A second instance claims the data while A runs a job: A's next write is refused, A stops."""
    ctx = _ctx()
    started, release = ctx.Event(), ctx.Event()
    report: Queue[Any] = ctx.Queue()
    with _child(
        _blocking_scheduler, str(tmp_path), started, release, report, at("09:30").isoformat()
    ):
        assert started.wait(TIMEOUT), "scheduler A never started screening"
        intruder = SQLiteStorage(tmp_path)  # stands for an instance that got past the lock
        epoch = intruder.claim("intruder", at("06:00"))
        release.set()
        outcome, message, events = report.get(timeout=TIMEOUT)
    try:
        record = intruder.get_job(JobKey("screening", DAY))
        batches = [r for r in intruder.list_jobs(DAY) if r.key.job == "selection"]
    finally:
        intruder.close()
    assert epoch == 2
    assert outcome == "deposed", events
    assert "deposed" in message and "intruder" in message
    assert [e for e in events if e[0] == "start" and e[1] != "screening"] == []
    assert record is not None and record.state is JobState.RUNNING  # A's "done" was refused
    assert batches == []


# --- item 7: a job that kills its process is not retried for ever ---------------------------------


def test_item_7_a_job_that_kills_its_process_gives_up_after_max_attempts(
    tmp_path: pathlib.Path,
) -> None:
    """Screening kills its process (exit 137) at every start: the 4th start gives up, recorded."""
    codes = []
    for _ in range(5):  # a supervisor restarting the service
        with _child(_killing_scheduler, str(tmp_path)) as proc:
            pass
        codes.append(proc.exitcode)
        if proc.exitcode == 0:
            break
    assert codes == [137, 137, 137, 0]
    storage = SQLiteStorage(tmp_path)
    try:
        record = storage.get_job(JobKey("screening", DAY))
    finally:
        storage.close()
    assert record is not None
    assert record.state is JobState.SKIPPED and record.attempts == 3
    assert record.note is not None and "gave up: 3/3 attempts" in record.note
    assert "the process died" in record.note


# --- item 8: recovery adopts what the next job reads ---------------------------------------------


def _journal(data_dir: pathlib.Path) -> dict[str, Any]:
    storage = SQLiteStorage(data_dir)
    try:
        return {
            r.key.job + (f"[{r.key.batch}]" if r.key.batch else ""): r
            for r in storage.list_jobs(DAY)
        }
    finally:
        storage.close()


def test_item_8_lost_journal_with_valid_batch_files_still_trades(tmp_path: pathlib.Path) -> None:
    """The journal database is lost after the selection; the batch files alone carry the day."""
    clock = FakeClock(at("05:30"))
    fake = FakeKIS(clock=clock, seed=3, universe_size=40)
    daemon = PaperDaemon.create(tmp_path, fake)
    daemon.run(clock, at("08:30"))
    data = tmp_path / "d"
    assert len(list((data / "daily_selection").glob("batch_*.json"))) == 4
    for name in (DEFAULT_DB_NAME, DEFAULT_DB_NAME + "-wal", DEFAULT_DB_NAME + "-shm"):
        (data / name).unlink(missing_ok=True)  # the journal database is lost
    daemon.run(clock, at("00:00", DAY + dt.timedelta(days=1)))
    journal = _journal(data)
    assert journal["trading"].state is JobState.DONE, journal["trading"]
    assert journal["trading"].attempts == 1
    assert all(r.state is JobState.DONE for r in journal.values()), journal
    assert fake.orders(daemon.credentials.app_key)


# --- item 10: a corrupt journal is one line everywhere, and kept ---------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KIS_ENV", "paper")
    monkeypatch.setenv("KIS_APP_KEY", "k" * 36)
    monkeypatch.setenv("KIS_APP_SECRET", "s" * 180)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KIS_BASE_URL", "http://127.0.0.1:9")
    data = tmp_path / "d"
    data.mkdir()
    return data


PAST = "2000-01-03T00:00+09:00"  # `run --until` this stops before the first step


def test_item_10_corrupt_journal_is_reported_in_one_line_and_kept(
    cli_env: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status/recover read around a corrupt journal, run refuses it, doctor fails it."""
    db = cli_env / DEFAULT_DB_NAME
    garbage = b"this is not a SQLite database\x00\xff" * 64
    db.write_bytes(garbage)
    now = "2026-06-04T10:00+09:00"
    assert main(["status", "--data-dir", str(cli_env), "--now", now]) == 0
    out, err = capsys.readouterr()
    assert "journal: UNREADABLE" in out and "corrupt" in out and err == ""
    assert main(["recover", "--dry-run", "--data-dir", str(cli_env), "--now", now]) == 0
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "corrupt" in err
    assert "recovery plan" in out
    assert main(["run", "--data-dir", str(cli_env), "--until", PAST]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("hantu_sched: error: journal") and len(err.splitlines()) == 1
    assert "--set-aside-corrupt-journal" in err
    assert db.read_bytes() == garbage  # never moved or overwritten without being asked
    assert main(["doctor", "--data-dir", str(cli_env), "--timeout", "0.2"]) == 1
    out, _ = capsys.readouterr()
    assert any(line.startswith("FAIL") and "journal" in line for line in out.splitlines())
    assert db.read_bytes() == garbage


def test_item_10_run_sets_a_corrupt_journal_aside_only_when_asked(
    cli_env: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --set-aside-corrupt-journal` renames it to a timestamped .corrupt file and starts."""
    db = cli_env / DEFAULT_DB_NAME
    db.write_bytes(b"garbage" * 100)
    code = main(["run", "--data-dir", str(cli_env), "--until", PAST, "--set-aside-corrupt-journal"])
    assert code == 0, capsys.readouterr().err
    kept = list(cli_env.glob(f"{DEFAULT_DB_NAME}.*.corrupt"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"garbage" * 100
    SQLiteStorage(db).close()  # a fresh, valid journal


def test_item_10_read_only_data_dir_is_one_line(
    cli_env: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only data directory: status reports, run refuses with one line (exit 2)."""
    SQLiteStorage(cli_env / DEFAULT_DB_NAME).close()
    with read_only(cli_env):
        assert main(["status", "--data-dir", str(cli_env)]) == 0
        capsys.readouterr()
        assert main(["run", "--data-dir", str(cli_env), "--until", PAST]) == 2
        _, err = capsys.readouterr()
        assert err.startswith("hantu_sched: error:") and len(err.splitlines()) == 1, err


def test_item_10_unusable_data_dir_is_one_line(
    cli_env: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data directory is a file: status still reports, run refuses with one line (exit 2)."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert main(["status", "--data-dir", str(not_a_dir), "--now", PAST]) == 0
    capsys.readouterr()
    assert main(["run", "--data-dir", str(not_a_dir), "--until", PAST]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("hantu_sched: error:") and len(err.splitlines()) == 1, err
    assert str(not_a_dir) in err


# --- item 13: bad configurations are one line and exit 2 ----------------------------------------


BAD_CONFIGS = [
    ("binary-toml", {}, "config"),
    ("interval-inf", {"HANTU_BATCH_INTERVAL_MINUTES": "inf"}, "batch_interval_minutes"),
    ("interval-1e308", {"HANTU_BATCH_INTERVAL_MINUTES": "1e308"}, "batch_interval_minutes"),
    ("binary-credentials", {}, "credentials file"),
    ("account-short", {"KIS_ACCOUNT": "1234"}, "KIS_ACCOUNT"),
    ("account-long", {"KIS_ACCOUNT": "98765432-011"}, "KIS_ACCOUNT"),
    ("state-dir-file", {}, "state_dir"),
    ("60-batches", {"HANTU_BATCH_COUNT": "60"}, "could never complete before the open"),
    ("1e6-batches", {"HANTU_BATCH_COUNT": "1000000"}, "at most 100"),
]


@pytest.mark.parametrize(("case", "env", "fragment"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_item_13_bad_configuration_is_one_line_and_exit_2(
    case: str,
    env: dict[str, str],
    fragment: str,
    cli_env: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each bad configuration stops `run` with one line on stderr and exit 2, never a trace."""
    args = ["run", "--data-dir", str(cli_env), "--until", PAST]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if case == "binary-toml":
        (tmp_path / "c.toml").write_bytes(bytes(range(256)))
        args += ["--config", str(tmp_path / "c.toml")]
    if case == "binary-credentials":
        monkeypatch.delenv("KIS_APP_KEY")
        secret_file = tmp_path / "creds.env"
        secret_file.write_bytes(b"KIS_APP_KEY=\xff\xfe\x00secret\n")
        secret_file.chmod(0o600)
        monkeypatch.setenv("HANTU_CREDENTIALS_FILE", str(secret_file))
    if case == "state-dir-file":
        (tmp_path / "state-file").write_text("not a directory")
        monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state-file"))
    assert main(args) == 2
    _, err = capsys.readouterr()
    assert err.startswith("hantu_sched: error:"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert fragment in err
    assert "98765432" not in err and "secret" not in err and "s" * 20 not in err


def test_item_13_doctor_fails_a_batch_schedule_that_cannot_finish_before_the_open(
    cli_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor reports the 60-batch schedule as a failed config check (exit 1), in one line."""
    monkeypatch.setenv("HANTU_BATCH_COUNT", "60")
    assert main(["doctor", "--data-dir", str(cli_env)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("FAIL  config")
    assert "could never complete before the open" in out


# --- item 14: the close, and a killed scheduler -------------------------------------------------


def test_item_14_crash_at_the_close_finishes_trading_done_at_close(tmp_path: pathlib.Path) -> None:
    """Crash at 15:29:59 while trading holds; restart at 15:30:00: reconciled, done at close."""
    clock = CrashingClock(at("05:30"), crash_at=at("15:29:59"))
    fake = FakeKIS(clock=clock, seed=2, universe_size=40)
    daemon = PaperDaemon.create(tmp_path, fake)
    with pytest.raises(SimulatedCrash):
        daemon.run(clock, at("00:00", DAY + dt.timedelta(days=1)))
    placed = len(fake.orders(daemon.credentials.app_key))
    assert placed > 0
    assert _journal(tmp_path / "d")["trading"].state is JobState.RUNNING
    clock.set(at("15:30:00"))
    daemon.run(clock, at("00:00", DAY + dt.timedelta(days=1)))
    journal = _journal(tmp_path / "d")
    trading = journal["trading"]
    assert trading.state is JobState.DONE, trading
    assert trading.note is not None and "done at close" in trading.note
    assert all(r.state is JobState.DONE for r in journal.values()), journal  # day complete
    assert len(fake.orders(daemon.credentials.app_key)) == placed  # the reconciler sent nothing


def test_item_14_status_after_sigkill_says_not_running_with_the_stale_pid(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the scheduler mid-job: status and doctor name the pid as a stale record."""
    ctx = _ctx()
    started, release = ctx.Event(), ctx.Event()
    report: Queue[Any] = ctx.Queue()
    with _child(
        _blocking_scheduler, str(tmp_path), started, release, report, at("06:30").isoformat()
    ) as proc:
        assert started.wait(TIMEOUT), "the scheduler never started screening"
        pid = proc.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))
    now = at("06:10").isoformat()
    assert main(["status", "--data-dir", str(tmp_path), "--now", now]) == 0
    out, _ = capsys.readouterr()
    assert f"scheduler: not running (stale record of pid {pid})" in out
    assert "stale" in next(line for line in out.splitlines() if "screening" in line)
    assert main(["doctor", "--data-dir", str(tmp_path), "--timeout", "0.2"]) in (0, 1)
    out, _ = capsys.readouterr()
    data_line = next(line for line in out.splitlines() if " data_dir " in f" {line} ")
    assert f"not running (stale record of pid {pid})" in data_line


# --- item 3: doctor measures the clock against the gateway ---------------------------------------


@pytest.mark.parametrize(("skew", "verdict"), [(0, "OK"), (20, "WARN"), (-120, "FAIL")])
def test_item_3_doctor_measures_the_clock_offset_against_the_gateway(
    skew: int,
    verdict: str,
    cli_env: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The gateway's HTTP Date runs *skew* s off our clock: doctor says OK, WARN or FAIL."""
    gateway_clock = FakeClock(dt.datetime.now(KST) + dt.timedelta(seconds=skew))
    fake = FakeKIS(clock=gateway_clock, seed=1)
    with FakeKISServer(fake) as server:
        monkeypatch.setenv("KIS_BASE_URL", server.base_url("paper"))
        main(["doctor", "--data-dir", str(cli_env), "--timeout", "2"])
    out, _ = capsys.readouterr()
    line = next(line for line in out.splitlines() if line.split()[1] == "clock")
    assert line.startswith(verdict), line
    assert "the gateway (from" in line  # measured, not the system clock against itself
    if skew:
        # The gateway's clock is frozen while ours runs on, so the measured figure can only grow
        # with the time the test takes; it is read from the line, not matched as text.
        figure = re.search(r"(\d+(?:\.\d+)?) ?s", line.split("clock", 1)[1])
        assert figure is not None, line
        measured = float(figure.group(1))
        assert abs(skew) - 1 <= measured <= abs(skew) + 30, line
        assert ("behind" if skew > 0 else "ahead of") in line
