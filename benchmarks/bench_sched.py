"""Scheduler benchmarks: a simulated day's memory and wall time, and import times.

(a) peak RSS of ``python -m hantu_sched simulate`` with a 2,500-code universe and two restarts
    (11:00, 16:00), run in a child process and read with getrusage(RUSAGE_CHILDREN):
    goal <= 100 MB (the systemd unit's MemoryMax is 800 MB)
(b) wall time of that day (the child's elapsed time)
(c) start-up cost of using ``kisclient`` (``KISClient``), ``hantu_sched``
    (``IntegratedScheduler``) and ``hantu_sched.pipeline`` (``default_jobs``): a fresh
    ``python -c "from x import y"`` minus a bare ``python -c pass``, median of N runs, bytecode
    cached (as an installed package has it)

Usage: python benchmarks/bench_sched.py [--quick] [--universe N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _child_env import cached_bytecode_env

ROOT = pathlib.Path(__file__).resolve().parents[1]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


_PYCACHE = tempfile.TemporaryDirectory(prefix="bench-sched-pycache-")


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return cached_bytecode_env(_PYCACHE.name, PYTHONPATH=path)


def simulated_day(universe: int) -> tuple[float, float, int, str]:
    """Run one simulated day in a child; return (peak RSS MB, wall s, exit code, summary)."""
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        argv = [
            sys.executable,
            "-m",
            "hantu_sched",
            "simulate",
            "--date",
            "2026-06-04",
            "--universe",
            str(universe),
            "--restart-at",
            "11:00",
            "--restart-at",
            "16:00",
            "--quiet",
            "--data-dir",
            str(pathlib.Path(tmp) / "sim"),
        ]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=_env(), check=False)
        wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS
    summary = next((ln for ln in proc.stdout.splitlines() if ln.startswith("day ")), proc.stderr)
    return peak_kb * 1024 / scale / 1024, wall, proc.returncode, summary


#: What a program using each part pays at start-up: the packages load their names on first use
#: (PEP 562), so ``import kisclient`` alone costs almost nothing; these import what is used.
IMPORTS = {
    "kisclient": "from kisclient import KISClient",
    "hantu_sched": "from hantu_sched import IntegratedScheduler",
    "hantu_sched.pipeline": "from hantu_sched.pipeline import default_jobs",
}


def import_time(statement: str, runs: int) -> float:
    """Median seconds of *statement* in a fresh interpreter (bytecode cached, after one
    unmeasured run), minus a bare start."""

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=_env(), check=True)
        return time.perf_counter() - start

    once(statement)  # caches the bytecode
    bare = statistics.median(once("pass") for _ in range(runs))
    full = statistics.median(once(statement) for _ in range(runs))
    return max(full - bare, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="300 codes, 3 import runs")
    parser.add_argument("--universe", type=int, default=2500)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    universe = 300 if args.quick else args.universe
    runs = 3 if args.quick else args.runs
    print(f"# scheduler benchmarks ({machine()})")
    peak, wall, code, summary = simulated_day(universe)
    print(
        f"(a) simulated day, {universe} codes, 2 restarts: peak RSS {peak:.1f} MB "
        f"(goal <= 100 MB; MemoryMax 800 MB)"
    )
    print(f"(b) wall time of that day: {wall:.2f} s (exit {code}: {summary.strip()})")
    figures: dict[str, object] = {
        "machine": machine(),
        "universe": universe,
        "peak_rss_mb": round(peak, 1),
        "day_wall_s": round(wall, 2),
    }
    for module, statement in IMPORTS.items():
        seconds = import_time(statement, runs)
        figures[f"import_{module}_ms"] = round(seconds * 1000, 1)
        print(f"(c) `{statement}`: {seconds * 1000:.0f} ms (median of {runs}, minus bare start)")
    print(json.dumps(figures))
    if code != 0:
        sys.exit(f"the simulated day did not end complete (exit {code})")


if __name__ == "__main__":
    main()
