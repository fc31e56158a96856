"""PostgreSQL storage benchmarks (issue 17).

(a) takeover time: two scheduler processes (``IntegratedScheduler`` with quick test jobs, the
    system clock, ``standby=True``) share a deployment in a local PostgreSQL (fsync on); the
    leader is SIGKILLed and the time until the standby logs that it leads is measured
    (goal: <= lease + 5 s). Lease 5 s by default (``--lease``), ``--runs`` kills.
(b) journal write latency: ``put_job`` (one row and one attempt, one committed transaction)
    on loopback PostgreSQL (fsync on, fenced by a held lease) vs SQLite (WAL,
    ``synchronous=FULL``, fenced by an owner epoch), p50 and p99 over ``--writes`` writes.

The server is the ``pgserver`` wheel's PostgreSQL 16 started as in the tests
(tests/pg_support.py). Usage: python benchmarks/bench_pg.py [--quick] [--lease S] [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from hantu_sched import KST, JobKey, JobRecord, JobState, SQLiteStorage, SystemClock  # noqa: E402
from hantu_sched._journal import Attempt  # noqa: E402
from hantu_sched._pg_storage import PostgresStorage  # noqa: E402
from hantu_sched._storage import Storage  # noqa: E402
from pg_support import PgServer  # noqa: E402

#: The child: one scheduler host on the shared deployment; prints LEADING when it leads.
_CHILD = """
import datetime as dt, logging, sys, time
sys.path[:0] = [{src!r}]
from hantu_sched import IntegratedScheduler, SchedulerConfig, SystemClock
from hantu_sched._pg_storage import PostgresStorage
from hantu_sched.testing import make_test_jobs

class Mark(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("scheduler started"):
            print("LEADING", time.time(), flush=True)

log = logging.getLogger("bench"); log.setLevel(logging.INFO); log.addHandler(Mark())
clock = SystemClock(max_step=0.05)
storage = PostgresStorage({url!r}, deployment="bench", clock=clock, lease_s={lease})
IntegratedScheduler(SchedulerConfig(), storage, clock, make_test_jobs(), data_dir=sys.argv[1],
                    logger=log, standby=True).run()
"""


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _child(script: str, data_dir: pathlib.Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _leading_at(proc: subprocess.Popen[str], timeout: float) -> float:
    """The wall time *proc* printed LEADING (waits up to *timeout* seconds)."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("LEADING"):
            return float(line.split()[1])
        if not line and proc.poll() is not None:
            raise RuntimeError("the scheduler exited before leading")
    raise RuntimeError(f"no LEADING within {timeout:g} s")


def takeover(server: PgServer, lease: float, runs: int, work: pathlib.Path) -> list[float]:
    """Seconds from SIGKILL of the leader to the standby leading, *runs* times."""
    url = server.url(server.fresh_database())
    script = _CHILD.format(src=str(ROOT / "src"), url=url, lease=lease)
    times = []
    rng = random.Random(17)
    children = [_child(script, work / "h0")]
    try:
        _leading_at(children[0], 60)
        for run in range(runs):
            children.append(_child(script, work / f"h{run + 1}"))
            # the standby is up and waiting; kill at a random phase of the renewal period
            time.sleep(max(1.0, lease / 2) + rng.uniform(0, lease / 3))
            killed = time.time()
            children[-2].send_signal(signal.SIGKILL)
            children[-2].wait()
            times.append(_leading_at(children[-1], lease + 60) - killed)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
    return times


def _writes(storage: Storage, n: int) -> list[float]:
    day = dt.date(2026, 9, 28)
    start = dt.datetime.combine(day, dt.time(9), KST)
    samples = []
    for i in range(n):
        key = JobKey("selection", day, str(i % 50))
        record = JobRecord(key, JobState.RUNNING, i + 1, start, start)
        attempt = Attempt(key, i + 1, "run", start, pid=1, host="bench")
        t0 = time.perf_counter()
        storage.put_job(record, [attempt])
        samples.append(time.perf_counter() - t0)
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def write_latency(server: PgServer, n: int, work: pathlib.Path) -> dict[str, dict[str, float]]:
    now = SystemClock().now()
    pg = PostgresStorage(server.url(server.fresh_database()), lease_s=3600)
    pg.claim("bench", now)
    sqlite = SQLiteStorage(work / "journal")
    sqlite.claim("bench", now)
    out = {}
    try:
        for name, storage in (("postgresql", pg), ("sqlite", sqlite)):
            _writes(storage, min(50, n))  # warm-up
            samples = _writes(storage, n)
            out[name] = {
                "p50_ms": round(_pct(samples, 0.50), 3),
                "p99_ms": round(_pct(samples, 0.99), 3),
                "mean_ms": round(statistics.fmean(samples) * 1000, 3),
            }
    finally:
        pg.close()
        sqlite.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 kills, 300 writes")
    parser.add_argument("--lease", type=float, default=5.0, help="lease seconds (default 5)")
    parser.add_argument("--runs", type=int, default=5, help="leader kills (default 5)")
    parser.add_argument("--writes", type=int, default=2000, help="writes per store")
    args = parser.parse_args()
    runs, writes = (2, 300) if args.quick else (args.runs, args.writes)
    server = PgServer(fsync=True)
    try:
        server.start()
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp)
            latency = write_latency(server, writes, work)
            times = takeover(server, args.lease, runs, work)
    finally:
        server.destroy()
    result = {
        "machine": machine(),
        "lease_s": args.lease,
        "takeover_s": [round(t, 2) for t in times],
        "takeover_median_s": round(statistics.median(times), 2),
        "takeover_max_s": round(max(times), 2),
        "takeover_goal_s": args.lease + 5,
        "journal_write": latency,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
