"""Client benchmarks against the loopback fake KIS server (127.0.0.1 only; bounded; stops itself).

The server runs in its own process (``python -m kisclient.testing serve``), as the real gateway is
not in the client's process; its ``STATS`` line gives the EGW00201 count and the busiest second.

(a) 360 quotes at 18/s, sync client, server limit 18/s: elapsed ÷ (360/18), goal ≤ 1.03, 0 EGW00201
(b) per-request overhead vs raw httpx.Client on the same server, limits off: goal ≤ 1.3×
(c) token issuances when 8 processes start cold on one state_dir: goal exactly 1
(d) 2,000 quotes at 18/s, async client per-code: elapsed ÷ (2000/18), goal ≤ 1.03, 0 EGW00201
(e) limits off: async client throughput vs httpx.AsyncClient + asyncio.gather: goal ≥ 0.8×
(f) the same 2,000 codes through the 30-code endpoint on real: calls and elapsed

Usage: python benchmarks/bench_client.py [--quick]   (--quick shrinks every count for a smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import attrs
import httpx

from kisclient import AsyncKISClient, KISClient
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "kisclient" / "client_worker.py"
PRICE = ENDPOINTS["inquire_price"]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@attrs.frozen
class Served:
    """A fake KIS server in its own process (as the real gateway is not in ours)."""

    base_url: str
    app_key: str
    app_secret: str
    account: str
    stats: dict[str, Any] = attrs.field(factory=dict)


@contextlib.contextmanager
def served(*, limit: int, universe: int = 300) -> Iterator[Served]:
    """Run ``python -m kisclient.testing serve`` on loopback; ``.stats`` is filled at exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [
        sys.executable,
        "-m",
        "kisclient.testing",
        "serve",
        "--port",
        "0",
        "--real-limit",
        str(limit),
        "--universe",
        str(universe),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(11)]
    values = dict(line.split("=", 1) for line in lines[2:])
    server = Served(
        values["KIS_BASE_URL"],
        values["KIS_APP_KEY"],
        values["KIS_APP_SECRET"],
        values["KIS_ACCOUNT"],
    )
    try:
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        tail = proc.stdout.read().strip().splitlines()
        proc.wait(timeout=30)
        proc.stdout.close()
        stats = json.loads(tail[-1].removeprefix("STATS ")) if tail else {}
        server.stats.update(stats.get("apps", {}).get("real", {}))


def universe(count: int) -> list[str]:
    """The first *count* codes the fake lists (the same seed as the served fake)."""
    return FakeKIS(universe_size=max(count, 300)).universe[:count]


def rate_run(count: int) -> tuple[float, Served]:
    codes = universe(count)
    with (
        served(limit=18, universe=max(count, 300)) as server,
        tempfile.TemporaryDirectory() as state,
        KISClient(
            server.app_key, server.app_secret, base_url=server.base_url, state_dir=state
        ) as kis,
    ):
        kis.get_price(codes[0])  # the token is issued outside the timed part
        started = time.perf_counter()
        for code in codes:
            kis.get_price(code)
        elapsed = time.perf_counter() - started
    return elapsed, server


def price_headers(kis: KISClient | AsyncKISClient, token: str, server: Served) -> dict[str, str]:
    return {
        "authorization": token,
        "appkey": server.app_key,
        "appsecret": server.app_secret,
        "tr_id": PRICE.tr_id(kis.environment),
        "custtype": "P",
    }


def overhead_run(count: int, repeats: int) -> tuple[float, float]:
    code = universe(1)[0]
    ours: list[float] = []
    raw: list[float] = []
    with (
        served(limit=0) as server,
        tempfile.TemporaryDirectory() as state,
        KISClient(
            server.app_key,
            server.app_secret,
            base_url=server.base_url,
            state_dir=state,
            rate_limits=[],
        ) as kis,
    ):
        kis.get_price(code)
        headers = price_headers(kis, kis._tokens.get().authorization, server)
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
        with httpx.Client() as plain:
            url = server.base_url + PRICE.path
            for _ in range(repeats):
                started = time.perf_counter()
                for _ in range(count):
                    plain.get(url, params=params, headers=headers).json()
                raw.append((time.perf_counter() - started) / count)
                started = time.perf_counter()
                for _ in range(count):
                    kis.get_price(code)
                ours.append((time.perf_counter() - started) / count)
    return statistics.median(ours), statistics.median(raw)


def cold_processes(n: int) -> int:
    with served(limit=18) as server, tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ,
            "KIS_APP_KEY": server.app_key,
            "KIS_APP_SECRET": server.app_secret,
            "KIS_BASE_URL": server.base_url,
            "KIS_STATE_DIR": state,
            "PYTHONPATH": str(ROOT / "src"),
        }
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "005930"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for _ in range(n)
        ]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            proc.communicate(timeout=120)
    return int(server.stats["token_issuances"])


async def async_rate_run(count: int) -> tuple[float, Served, int]:
    codes = universe(count)
    with (
        served(limit=18, universe=max(count, 300)) as server,
        tempfile.TemporaryDirectory() as state,
    ):
        async with AsyncKISClient(
            server.app_key, server.app_secret, base_url=server.base_url, state_dir=state
        ) as kis:
            await kis.get_price(codes[0])
            started = time.perf_counter()
            batch = await kis.get_prices(codes, multi=False, concurrency=8)
            elapsed = time.perf_counter() - started
    return elapsed, server, len(batch.succeeded)


async def async_throughput(count: int, repeats: int) -> tuple[float, float]:
    codes = universe(count)
    ours: list[float] = []
    raw: list[float] = []
    with (
        served(limit=0, universe=max(count, 300)) as server,
        tempfile.TemporaryDirectory() as state,
    ):
        async with AsyncKISClient(
            server.app_key,
            server.app_secret,
            base_url=server.base_url,
            state_dir=state,
            rate_limits=[],
        ) as kis:
            await kis.get_price(codes[0])
            headers = price_headers(kis, (await kis._tokens.aget()).authorization, server)
            url = server.base_url + PRICE.path
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) as plain:
                semaphore = asyncio.Semaphore(8)

                async def one(code: str) -> None:
                    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
                    async with semaphore:
                        (await plain.get(url, params=params, headers=headers)).json()

                for _ in range(repeats):
                    started = time.perf_counter()
                    await asyncio.gather(*(one(c) for c in codes))
                    raw.append(count / (time.perf_counter() - started))
                    started = time.perf_counter()
                    await kis.get_prices(codes, multi=False, concurrency=8)
                    ours.append(count / (time.perf_counter() - started))
    return statistics.median(ours), statistics.median(raw)


async def multiprice_run(count: int) -> tuple[int, float, int, Served]:
    codes = universe(count)
    with (
        served(limit=18, universe=max(count, 300)) as server,
        tempfile.TemporaryDirectory() as state,
    ):
        async with AsyncKISClient(
            server.app_key, server.app_secret, base_url=server.base_url, state_dir=state
        ) as kis:
            await kis.get_price(codes[0])
            started = time.perf_counter()
            batch = await kis.get_prices(codes)
            elapsed = time.perf_counter() - started
    return batch.requests, elapsed, len(batch.succeeded), server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    print(f"# client benchmarks ({machine()})")

    n = 54 if quick else 360
    elapsed, server = rate_run(n)
    ratio = elapsed / (n / 18)
    print(f"(a) {n} quotes at 18/s (sync): {elapsed:.2f} s, ratio {ratio:.3f} (goal <= 1.03)")
    print(
        f"    server: EGW00201 answers {server.stats['rate_limited']} (goal 0), "
        f"busiest second {server.stats['max_in_any_second']}"
    )

    ours, raw = overhead_run(50 if quick else 500, 3 if quick else 7)
    print(f"(b) per request, limits off: client {ours * 1e3:.3f} ms, raw httpx {raw * 1e3:.3f} ms")
    print(f"    ratio {ours / raw:.2f} (goal <= 1.3)")

    print(f"(c) token issuances, 8 processes cold: {cold_processes(8)} (goal 1)")

    n = 90 if quick else 2000
    elapsed, server, ok = asyncio.run(async_rate_run(n))
    ratio = elapsed / (n / 18)
    print(
        f"(d) {n} quotes at 18/s (async, per code): {elapsed:.2f} s,"
        f" ratio {ratio:.3f} (goal <= 1.03)"
    )
    print(
        f"    server: EGW00201 answers {server.stats['rate_limited']} (goal 0), "
        f"busiest second {server.stats['max_in_any_second']}; quotes received: {ok}"
    )

    ours, raw = asyncio.run(async_throughput(200 if quick else 2000, 3 if quick else 5))
    print(f"(e) async throughput, limits off: client {ours:.0f}/s, httpx+gather {raw:.0f}/s")
    print(f"    ratio {ours / raw:.2f} (goal >= 0.8)")

    calls, elapsed, ok, server = asyncio.run(multiprice_run(300 if quick else 2000))
    print(
        f"(f) {ok} codes through the 30-code endpoint: {calls} calls, {elapsed:.2f} s, "
        f"server EGW00201 answers {server.stats['rate_limited']}"
    )
    print(json.dumps({"machine": machine()}))


if __name__ == "__main__":
    main()
