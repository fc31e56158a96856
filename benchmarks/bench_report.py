"""Report benchmark: the HTML page for a 20-trading-day simulated range.

(a) the range itself: ``simulate_range`` over 20 consecutive KRX trading days from 2026-06-01
    (closed days skipped), killed at 06:00:20 and 11:00 every day (wall time, for the record)
(b) report generation in-process (``write_report``: read the journal, render, write the page),
    median of N runs: goal <= 2 s
(c) ``python -m hantu_sched report --from D1 --to D2`` in a fresh interpreter (imports
    included), median of 3 runs: reported alongside (b)
(d) the page's size: goal <= 1 MB (1,048,576 bytes)

Usage: python benchmarks/bench_report.py [--days N] [--universe N] [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hantu_sched import KRXCalendar  # noqa: E402
from hantu_sched._report import write_report  # noqa: E402
from hantu_sched._simulate import simulate_range  # noqa: E402

START = dt.date(2026, 6, 1)
GOAL_S = 2.0
GOAL_BYTES = 1024 * 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20, help="trading days (default 20)")
    parser.add_argument("--universe", type=int, default=300, help="codes listed (default 300)")
    parser.add_argument("--runs", type=int, default=7, help="report runs (default 7)")
    args = parser.parse_args()
    calendar = KRXCalendar()
    days = [START if calendar.is_trading_day(START) else calendar.next_trading_day(START)]
    while len(days) < args.days:
        days.append(calendar.next_trading_day(days[-1]))
    first, last = days[0], days[-1]
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        data_dir = pathlib.Path(tmp) / "data"
        result = simulate_range(first, last, data_dir, universe_size=args.universe,
                                restart_at=[dt.time(6, 0, 20), dt.time(11, 0)])  # fmt: skip
        if not result.complete or len(result.trading_days) != args.days:
            print(f"the simulated range did not end complete: {result}", file=sys.stderr)
            return 1
        times, size = [], 0
        for _ in range(args.runs):
            start = time.perf_counter()
            path, data, size = write_report(data_dir, first, last, since=first)
            times.append(time.perf_counter() - start)
        attempts = sum(len(d.attempts) for d in data.days)
        orders = sum(len(d.orders) for d in data.days)
        cli = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "hantu_sched", "report", "--data-dir", str(data_dir),
                 "--from", str(first), "--to", str(last), "--output", str(path)],
                env=_env(), check=True, capture_output=True,
            )  # fmt: skip
            cli.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"machine: {machine()}")
    print(
        f"(a) simulated range {first} to {last}: {len(result.days)} calendar days, "
        f"{len(result.trading_days)} trading days, {result.restarts} crashes recovered, "
        f"{result.orders} orders, universe {args.universe}: {result.wall_seconds:.1f} s wall"
    )
    print(
        f"(b) report generation (in-process, median of {args.runs}): {median * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); goal <= {GOAL_S:.0f} s: "
        f"{'met' if median <= GOAL_S else 'MISSED'}"
    )
    print(f"(c) `python -m hantu_sched report` (fresh interpreter, median of 3): "
          f"{statistics.median(cli) * 1000:.0f} ms")  # fmt: skip
    print(
        f"(d) page size: {size:,} bytes ({size / 1024:.0f} KiB) for {attempts} attempts and "
        f"{orders} orders; goal <= 1 MB: {'met' if size <= GOAL_BYTES else 'MISSED'}"
    )
    return 0 if median <= GOAL_S and size <= GOAL_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
