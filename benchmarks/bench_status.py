"""``status`` on a journal with a year of history.

The journal holds every trading day of the year before the status date (about 245 days), each
with the day plan's eight units written through :class:`~hantu_sched._journal.Journal` as the
scheduler writes them: most units one attempt; ``trading`` crashed at 11:00 and was reconciled
and resumed (three attempts); ``market_close`` failed once and was retried (two attempts).

(a) ``status_report`` + ``format_status --history`` in-process, for the last day: median of N
(b) the whole command ``python -m hantu_sched status --history`` (a fresh interpreter:
    imports, settings, journal, calendar, token store): median wall and CPU time of N, after
    one unmeasured run that caches the bytecode (an installed package has it from pip)
Goal: (b) <= 200 ms. With ``--baseline-rev REV`` the same figures of the code at git revision
REV (extracted with ``git archive``, read-only) on the same journal; at the revision before
issue 15 it reads only the one-row-per-unit table, which is the baseline.

Usage: python benchmarks/bench_status.py [--runs N] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from _child_env import cached_bytecode_env

from hantu_sched import KST, Journal, KRXCalendar, SchedulerConfig, SQLiteStorage
from hantu_sched._day import build_day_plan

ROOT = pathlib.Path(__file__).resolve().parents[1]

STATUS_DAY = dt.date(2026, 11, 30)

#: Times one ``status`` in-process with the code on sys.path (old or new API) and prints the
#: median milliseconds of argv[3] runs.
_IN_PROCESS = """
import datetime as dt, inspect, pathlib, statistics, sys, time
from hantu_sched._inspect import format_status, status_report
from hantu_sched._settings import load_settings
data_dir, now = pathlib.Path(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])
runs = int(sys.argv[3])
settings = load_settings(None, {"KIS_STATE_DIR": str(data_dir / "state")}, data_dir=data_dir)
new = "history" in inspect.signature(format_status).parameters
times = []
for _ in range(runs):
    start = time.perf_counter()
    report = status_report(settings, now, now.date()) if new else status_report(settings, now)
    text = format_status(report, history=True) if new else format_status(report)
    times.append(time.perf_counter() - start)
print(statistics.median(times) * 1000, len(text.splitlines()))
"""


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


def build_journal(data_dir: pathlib.Path) -> tuple[int, int, int]:
    """Write a year of days; returns (days, job rows, attempt rows)."""
    calendar, config = KRXCalendar(), SchedulerConfig()
    days = list(calendar.trading_days(STATUS_DAY - dt.timedelta(days=364), STATUS_DAY))
    storage = SQLiteStorage(data_dir)
    # Building only: skip fsync per write (the scheduler keeps synchronous=FULL).
    storage._conn.execute("PRAGMA synchronous=OFF")
    try:
        for day in days:
            plan = build_day_plan(config, calendar, day)
            assert plan is not None
            first = Journal(storage, who=(1000, "bench"))
            for item in plan.jobs:
                key, start = item.key, item.start
                first.start(key, start, f"due since {start:%H:%M}")
                if key.job == "trading":
                    second = Journal(storage, who=(2000, "bench"))  # the 11:00 crash
                    second.needs_reconcile(key, at(day, "11:00"), "the last run never finished")
                    second.begin_reconcile(key, at(day, "11:00"), "reconcile before resuming")
                    second.pending(key, at(day, "11:00:01"), "reconciled")
                    second.start(key, at(day, "11:00:01"), "resuming", kind="resume")
                    second.done(key, item.deadline or at(day, "15:30"))
                    first = second
                elif key.job == "market_close":
                    first.fail(key, start + dt.timedelta(seconds=5), "RuntimeError: no statement")
                    first.start(key, start + dt.timedelta(minutes=1), "retry")
                    first.done(key, start + dt.timedelta(minutes=2))
                else:
                    first.done(key, start + dt.timedelta(minutes=1))
        jobs = storage._conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        attempts = storage._conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
    finally:
        storage.close()
    return len(days), int(jobs), int(attempts)


def _env(src: pathlib.Path, data_dir: pathlib.Path) -> dict[str, str]:
    """The command's environment, its bytecode cached beside the journal."""
    return cached_bytecode_env(
        data_dir.parent / "pycache", PYTHONPATH=str(src), KIS_STATE_DIR=str(data_dir / "state")
    )


def in_process(src: pathlib.Path, data_dir: pathlib.Path, runs: int) -> tuple[float, int]:
    now = at(STATUS_DAY, "18:00").isoformat()
    out = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS, str(data_dir), now, str(runs)],
        env=_env(src, data_dir), capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(
    src: pathlib.Path, data_dir: pathlib.Path, runs: int, history: bool
) -> tuple[float, float]:
    """Median wall and CPU (user + system) milliseconds of the whole command."""
    argv = [sys.executable, "-m", "hantu_sched", "status", "--data-dir", str(data_dir),
            "--now", at(STATUS_DAY, "18:00").isoformat()]  # fmt: skip
    if history:
        argv += ["--history", "--date", STATUS_DAY.isoformat()]
    subprocess.run(argv, env=_env(src, data_dir), capture_output=True, check=True)  # caches
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = _children_cpu(), time.perf_counter()
        subprocess.run(argv, env=_env(src, data_dir), capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def bare_start(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def extract(rev: str, into: pathlib.Path) -> pathlib.Path:
    """``git archive REV src`` unpacked into *into* (the repository is only read)."""
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline-rev", help="git revision to compare with (e.g. before #15)")
    args = parser.parse_args()
    print(f"# status benchmarks ({machine()})")
    figures: dict[str, object] = {"machine": machine(), "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        data_dir = pathlib.Path(tmp) / "year"
        data_dir.mkdir()
        started = time.perf_counter()
        days, jobs, attempts = build_journal(data_dir)
        size = (data_dir / "hantu_sched.sqlite3").stat().st_size
        print(
            f"journal: {days} trading days, {jobs} job rows, {attempts} attempt rows, "
            f"{size / 1e6:.1f} MB (built in {time.perf_counter() - started:.1f} s)"
        )
        figures.update(days=days, job_rows=jobs, attempt_rows=attempts, db_bytes=size)
        sources = {"current": ROOT / "src"}
        if args.baseline_rev:
            sources["baseline"] = extract(args.baseline_rev, pathlib.Path(tmp) / "base")
        bare = bare_start(args.runs)
        print(f"bare interpreter start: {bare:.0f} ms (median of {args.runs})")
        figures["bare_start_ms"] = round(bare, 1)
        for name, src in sources.items():
            ms, lines = in_process(src, data_dir, args.runs)
            print(
                f"(a) {name}: status_report + format_status in-process: {ms:.1f} ms ({lines} lines)"
            )
            history = name == "current"
            wall, cpu = command(src, data_dir, args.runs, history)
            flag = " --history" if history else ""
            print(
                f"(b) {name}: `python -m hantu_sched status{flag}`: {wall:.0f} ms wall, "
                f"{cpu:.0f} ms CPU (goal <= 200 ms)"
            )
            figures[f"{name}_in_process_ms"] = round(ms, 1)
            figures[f"{name}_command_ms"] = round(wall, 1)
            figures[f"{name}_command_cpu_ms"] = round(cpu, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
