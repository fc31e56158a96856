"""The runner in-process through ``main([...])``: commands, JSON shapes and every error path."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from daemon_support import PaperDaemon
from hantu_sched import KST, FakeClock, JobState, SQLiteStorage
from hantu_sched._cli import main
from hantu_sched._settings import load_credentials, load_settings
from kisclient.testing import FakeKIS, FakeKISServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 6, 4)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A data directory after a simulated day with a crash mid-trading."""
    data_dir = tmp_path_factory.mktemp("sim") / "data"
    assert (
        main(
            [
                "simulate",
                "--date",
                "2026-06-04",
                "--universe",
                "60",
                "--quiet",
                "--restart-at",
                "11:00",
                "--data-dir",
                str(data_dir),
            ]
        )
        == 0
    )
    return data_dir


# --- simulate -----------------------------------------------------------------------------------


def test_simulate_prints_timeline_and_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, err = _run(
        capsys,
        "simulate",
        "--date",
        "2026-06-04",
        "--universe",
        "60",
        "--restart-at",
        "09:00,11:00",
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert code == 0, out + err
    assert "restarts at 09:00, 11:00" in out
    assert "09:00:00  scheduler        *** scheduler #1 KILLED" in out
    assert "plan run: due since 09:00; selection complete" in out
    assert "day COMPLETE: 8/8 units done, 2 crash(es) recovered" in out


def test_simulate_default_data_dir_and_date(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "simulate", "--universe", "30", "--quiet")
    assert code == 0, out
    (made,) = (tmp_path / "data").iterdir()
    assert made.name.startswith("simulate-")
    day = dt.date.fromisoformat(made.name.removeprefix("simulate-"))
    assert day > dt.datetime.now(KST).date()
    assert f"data dir data/simulate-{day}" in out


def test_simulate_closed_day_exits_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, _ = _run(capsys, "simulate", "--date", "2026-06-06", "--data-dir", str(tmp_path))
    assert code == 0
    assert "2026-06-06 is not a trading day (weekend (Saturday)): nothing ran" in out


def test_simulate_incomplete_day_exits_one(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "c.toml"
    # len(ctx) raises TypeError: a job that always fails, by import path.
    config.write_text('[jobs]\nperformance = "builtins:len"\n')
    code, out, _ = _run(
        capsys,
        "simulate",
        "--date",
        "2026-06-04",
        "--universe",
        "30",
        "--quiet",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert code == 1
    assert "day INCOMPLETE: 7/8 units done" in out
    assert "not done: performance" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["simulate", "--date", "2026-13-01"], ["--date", "'2026-13-01' is not a date"]),
        (["simulate", "--date", "tomorrow"], ["is not a date (YYYY-MM-DD)"]),
        (["simulate", "--restart-at", "25:00"], ["'25:00' is not a time"]),
        (["simulate", "--universe", "0"], ["'0' is not a positive integer"]),
        (
            ["simulate", "--date", "2026-06-04", "--restart-at", "04:00"],
            ["--restart-at 04:00 is outside the simulated day"],
        ),
        (["recover", "--dry-run", "--now", "yesterday"], ["not an ISO-8601 date-time"]),
        (["status", "--now", "2026-06-04 25:00"], ["not an ISO-8601 date-time"]),
        (["recover"], ["recover only previews (use --dry-run)"]),
        (["run"], ["missing credential(s) KIS_APP_KEY, KIS_APP_SECRET"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["run", "--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
    ],
)
def test_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    argv: list[str],
    fragments: list[str],
) -> None:
    code, _, err = _run(
        capsys, *argv, *(["--data-dir", str(tmp_path / "d")] if len(argv) > 1 else [])
    )
    assert code == 2
    _one_error_line(err, *fragments)


CONFIG_ERRORS = [
    ("[jobs]\nscreenin = 'x.y:z'\n", "unknown job 'screenin' in [jobs]"),
    ("[jobs]\nscreening = 'no_such_module_xyz:job'\n", "cannot import 'no_such_module_xyz'"),
    ("[jobs]\nscreening = 'json:no_such_callable'\n", "'json' has no attribute"),
    ("[jobs]\nscreening = 'json'\n", "must look like 'package.module:callable'"),
    ("[scheduler]\nbatch_ids = []\n", "scheduler.batch_ids must be a non-empty list"),
    ("[scheduler]\nbatch_ids = ['a b']\n", "invalid batch id"),
    ("[scheduler.times]\nscreening = '6 o clock'\n", "scheduler.times.screening"),
    ("[scheduler.times]\nlunch = '12:00'\n", "unknown job 'lunch'"),
    ("[scheduler]\nincomplete_selection = 'maybe'\n", "complete-first, skip-trading"),
    ("[pipeline]\ntop_n = 0\n", "PipelineConfig.top_n must be an integer >= 1"),
    ("[pipeline]\nmomentum = 3\n", "unknown pipeline setting(s): momentum"),
    ("[pipeline]\ntrading_mode = 'live'\n", "allow_live"),
    ("[pipeline]\ntrading_mode = 'paper'\n", "needs kis.env = 'paper'"),
    ("[kis]\napp_key = 'k'\n", "credentials are never read from the configuration file"),
    ("[kis]\nenv = 'demo'\n", "kis.env must be 'real' or 'paper', got 'demo'"),
    ("[kis]\nbase_url = 'ftp://x'\n", "kis.base_url must be a URL starting with http"),
    ("[calendar]\nextra_closures = ['2026-02-30']\n", "extra_closures must be a list of dates"),
    ("surprise = 1\n", "unknown setting(s) surprise in the top level"),
    ("log_level = 'LOUD'\n", "log_level must be"),
    ("[scheduler\n", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "fragment"), CONFIG_ERRORS)
@pytest.mark.parametrize("command", ["simulate", "status", "run"])
def test_bad_configuration_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    text: str,
    fragment: str,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    monkeypatch.setenv("HANTU_CONFIG", str(config))
    monkeypatch.setenv("KIS_APP_KEY", "key")
    monkeypatch.setenv("KIS_APP_SECRET", "secret")
    code, _, err = _run(capsys, command, "--data-dir", str(tmp_path / "d"))
    assert code == 2
    _one_error_line(err, fragment)


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    code, _, err = _run(capsys, "status", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    _one_error_line(err, "nope.toml' does not exist")


# --- credentials --------------------------------------------------------------------------------


def test_credentials_file_must_be_private(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials.env"
    creds.write_text("KIS_APP_KEY=key\nKIS_APP_SECRET=secret\n")
    creds.chmod(0o644)
    monkeypatch.setenv("HANTU_CREDENTIALS_FILE", str(creds))
    code, _, err = _run(capsys, "run", "--data-dir", str(tmp_path / "d"))
    assert code == 2
    _one_error_line(err, "refusing credentials file", "mode 0644", "chmod 600")


def test_credentials_from_private_file_and_environment(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials.env"
    creds.write_text("# comment\nKIS_APP_KEY=filekey\nexport KIS_APP_SECRET='filesecret'\n")
    creds.chmod(0o400)
    settings = load_settings(environ={"HANTU_CREDENTIALS_FILE": str(creds)})
    loaded = load_credentials(settings, {"KIS_ACCOUNT": "12345678-01"})
    assert loaded is not None
    assert (loaded.app_key, loaded.app_secret, loaded.account) == (
        "filekey",
        "filesecret",
        "12345678-01",
    )
    assert "filesecret" not in repr(loaded)
    env_only = load_credentials(settings, {"KIS_APP_KEY": "k", "KIS_APP_SECRET": "s"})
    assert env_only is not None and env_only.source == "environment"
    creds.chmod(0o600)
    creds.write_text("KIS_APP_KEY=k\nPASSWORD=hunter2\n")
    with pytest.raises(ValueError, match="line 2: expected one of"):
        load_credentials(settings, {})


# --- status / recover ---------------------------------------------------------------------------


def test_status_json_shape(
    capsys: pytest.CaptureFixture[str], simulated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIS_ENV", "paper")
    monkeypatch.setenv("KIS_STATE_DIR", str(simulated / "kis-state"))
    code, out, _ = _run(
        capsys,
        "status",
        "--json",
        "--now",
        "2026-06-04T12:00:00+09:00",
        "--data-dir",
        str(simulated),
    )
    assert code == 0
    report = json.loads(out)
    assert set(report) == {
        "now",
        "data_dir",
        "scheduler",
        "journal",
        "journal_problem",
        "trading_date",
        "session",
        "closed_reason",
        "jobs",
        "batches",
        "leadership",
        "token",
        "recent_errors",
    }
    assert report["leadership"] is None  # one host, SQLite: nobody to lead
    assert report["session"] == {
        "open": "2026-06-04T09:00:00+09:00",
        "close": "2026-06-04T15:30:00+09:00",
    }
    assert report["closed_reason"] is None
    jobs = {(j["job"], j["batch"]): j for j in report["jobs"]}
    assert len(jobs) == 8
    assert all(j["state"] == "done" for j in jobs.values())
    assert jobs[("trading", None)]["attempts"] == 2
    assert {"planned_start", "started_at", "finished_at", "attempts", "error"} <= set(
        jobs[("screening", None)]
    )
    assert report["batches"] == {str(i): "valid" for i in range(1, 5)}
    token = report["token"]
    assert token["state"] == "valid"  # read from the store without credentials
    assert token["expires_at"].startswith("2026-06-05T")
    assert report["recent_errors"] == []


def test_status_text_on_a_closed_day_without_journal(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, _ = _run(capsys, "status", "--now", "2026-06-06T10:00", "--data-dir", str(tmp_path))
    assert code == 0
    assert "2026-06-06: KRX closed (weekend (Saturday))" in out
    assert "journal: none yet" in out
    assert "token: none" in out
    assert not (tmp_path / "hantu_sched.sqlite3").exists()  # a read never creates a journal


def test_status_lists_recent_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[jobs]\nmarket_close = "builtins:len"\n')
    data_dir = tmp_path / "d"
    assert (
        main(
            [
                "simulate",
                "--date",
                "2026-06-04",
                "--universe",
                "30",
                "--quiet",
                "--config",
                str(config),
                "--data-dir",
                str(data_dir),
            ]
        )
        == 1
    )
    capsys.readouterr()
    code, out, _ = _run(
        capsys, "status", "--json", "--now", "2026-06-04T23:00", "--data-dir", str(data_dir)
    )
    assert code == 0
    errors = json.loads(out)["recent_errors"]
    assert [(e["job"], e["state"], e["attempts"]) for e in errors] == [
        ("market_close", "failed", 3)
    ]
    assert "TypeError" in errors[0]["error"]


def test_recover_dry_run_json(capsys: pytest.CaptureFixture[str], simulated: pathlib.Path) -> None:
    # Mid-afternoon of the simulated day: everything done is skipped with its reason.
    code, out, _ = _run(
        capsys,
        "recover",
        "--dry-run",
        "--json",
        "--now",
        "2026-06-04T16:30",
        "--data-dir",
        str(simulated),
    )
    assert code == 0
    actions = json.loads(out)
    assert isinstance(actions, list) and len(actions) == 8
    for action in actions:
        assert {"job", "reason", "kind", "batch", "trading_date", "at"} <= set(action)
        assert action["kind"] == "skip" and "never run twice" in action["reason"]
    # The next trading day: screening due, the rest waiting, nothing caught up.
    code, out, _ = _run(
        capsys,
        "recover",
        "--dry-run",
        "--json",
        "--now",
        "2026-06-05T06:30",
        "--data-dir",
        str(simulated),
    )
    kinds = {(a["job"], a["batch"]): a["kind"] for a in json.loads(out)}
    assert kinds[("screening", None)] == "run"
    assert kinds[("trading", None)] == "wait"


def test_recover_dry_run_text_after_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    storage = SQLiteStorage(tmp_path / "hantu_sched.sqlite3")
    from hantu_sched import JobKey, Journal

    journal = Journal(storage)
    journal.start(JobKey("screening", DAY), dt.datetime(2026, 6, 4, 6, 0, tzinfo=KST))
    storage.close()
    code, out, _ = _run(
        capsys, "recover", "--dry-run", "--now", "2026-06-04T06:20", "--data-dir", str(tmp_path)
    )
    assert code == 0
    assert (
        "run       screening        2026-06-04: due since 06:00; the last run never finished" in out
    )
    assert "wait      performance      2026-06-04 at 17:00: scheduled at 17:00" in out
    after = SQLiteStorage(tmp_path / "hantu_sched.sqlite3")
    try:
        record = after.get_job(JobKey("screening", DAY))
        assert record is not None and record.state is JobState.RUNNING  # dry run: untouched
    finally:
        after.close()


# --- doctor -------------------------------------------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[tuple[FakeKIS, FakeKISServer]]:
    fake = FakeKIS(seed=5)
    with FakeKISServer(fake) as server:
        yield fake, server


def test_doctor_all_ok_against_loopback(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeKISServer],
) -> None:
    fake, server = loopback
    app = fake.add_app(env="paper")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "d").mkdir()
    monkeypatch.setenv("KIS_ENV", "paper")
    monkeypatch.setenv("KIS_BASE_URL", server.base_url("paper"))
    monkeypatch.setenv("KIS_APP_KEY", app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", app.app_secret)
    monkeypatch.setenv("KIS_ACCOUNT", app.account)
    monkeypatch.setenv("HANTU_PIPELINE_UNIVERSE", str(tmp_path / "universe.txt"))
    (tmp_path / "universe.txt").write_text("005930 000660  # two codes\n")
    code, out, _ = _run(capsys, "doctor", "--data-dir", str(tmp_path / "d"), "--timeout", "2")
    assert code == 0, out
    lines = out.splitlines()
    names = [line.split()[1] for line in lines[:-1]]
    assert names == [
        "config",
        "jobs",
        "credentials",
        "data_dir",
        "journal",
        "state_dir",
        "token",
        "clock",
        "calendar",
        "base_url",
    ]
    assert all(line.startswith(("OK", "WARN")) for line in lines[:-1])
    assert f"127.0.0.1:{server.paper_port}" in out and "reachable" in out
    assert "universe 2 codes" in out
    assert "the gateway (from" in out  # measured against the fake's HTTP Date header
    assert lines[-1] == "10 checks: 0 failed, 0 warnings"


def test_doctor_fails_on_open_state_dir_unreachable_url_and_missing_credentials(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    with FakeKISServer(FakeKIS()) as server:
        closed_url = server.base_url()
    monkeypatch.setenv("KIS_BASE_URL", closed_url)  # the port is released: nobody listens
    code, out, _ = _run(capsys, "doctor", "--data-dir", str(tmp_path), "--timeout", "1")
    assert code == 1
    fails = {line.split()[1] for line in out.splitlines() if line.startswith("FAIL")}
    assert fails == {"credentials", "state_dir", "base_url"}
    assert "chmod 700" in out


def test_doctor_reports_bad_configuration(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[pipeline]\ntop_n = -1\n")
    code, out, _ = _run(capsys, "doctor", "--config", str(config))
    assert code == 1
    assert out.startswith("FAIL  config")


# --- run ----------------------------------------------------------------------------------------


def test_run_daemon_runs_a_whole_day_on_a_fake_clock(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime(2026, 6, 4, 5, 30, tzinfo=KST))
    fake = FakeKIS(clock=clock, seed=2, universe_size=40)
    code = PaperDaemon.create(tmp_path, fake).run(clock, dt.datetime(2026, 6, 5, 0, 0, tzinfo=KST))
    assert code == 0
    storage = SQLiteStorage(tmp_path / "d" / "hantu_sched.sqlite3")
    try:
        records = storage.list_jobs(DAY)
    finally:
        storage.close()
    assert len(records) == 8 and all(r.state is JobState.DONE for r in records)
    assert fake.orders(fake.apps[0].app_key)


def test_run_stops_gracefully_on_sigterm(tmp_path: pathlib.Path) -> None:
    fake = FakeKIS(seed=4, universe_size=20)
    app = fake.add_app(env="paper")
    config = tmp_path / "c.toml"
    config.write_text(
        f"[kis]\nenv = 'paper'\n[pipeline]\nuniverse = {json.dumps(fake.universe[:5])}\n"
    )
    with FakeKISServer(fake) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
            KIS_APP_KEY=app.app_key,
            KIS_APP_SECRET=app.app_secret,
            KIS_ACCOUNT=app.account,
            KIS_BASE_URL=server.base_url("paper"),
            KIS_STATE_DIR=str(tmp_path / "state"),
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hantu_sched",
                "run",
                "--data-dir",
                str(tmp_path / "d"),
                "--config",
                str(config),
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if "scheduler started" in line or not line:
                break
        proc.send_signal(signal.SIGTERM)
        try:
            _, rest = proc.communicate(timeout=30)
        finally:
            proc.kill()
    log = "".join(seen) + rest
    assert proc.returncode == 0, log
    assert "signal SIGTERM received: stopping gracefully" in log
    assert "scheduler stopped" in log
    assert "+09:00" in log.splitlines()[0]  # log timestamps are KST
    assert "Traceback" not in log
