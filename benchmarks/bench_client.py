"""Client benchmarks against the loopback fake KIS server (127.0.0.1 only; bounded; stops itself).

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
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from kisclient import AsyncKISClient, KISClient, SystemClock
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, FakeKISServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "kisclient" / "client_worker.py"
PRICE = ENDPOINTS["inquire_price"]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def rate_run(count: int) -> tuple[float, int]:
    fake = FakeKIS(seed=1, clock=SystemClock(), universe_size=max(count, 300))
    app = fake.add_app(env="real")
    codes = fake.universe[:count]
    with (
        FakeKISServer(fake) as server,
        tempfile.TemporaryDirectory() as state,
        KISClient(
            app.app_key, app.app_secret, base_url=server.base_url("real"), state_dir=state
        ) as kis,
    ):
        kis.get_price(codes[0])  # the token is issued outside the timed part
        started = time.perf_counter()
        for code in codes:
            kis.get_price(code)
        elapsed = time.perf_counter() - started
    return elapsed, fake.stats.rate_limited(app.app_key)


def overhead_run(count: int, repeats: int) -> tuple[float, float]:
    fake = FakeKIS(seed=2, clock=SystemClock(), rate_limits={"real": 0, "paper": 0})
    app = fake.add_app(env="real")
    code = fake.universe[0]
    ours: list[float] = []
    raw: list[float] = []
    with (
        FakeKISServer(fake) as server,
        tempfile.TemporaryDirectory() as state,
        KISClient(
            app.app_key,
            app.app_secret,
            base_url=server.base_url("real"),
            state_dir=state,
            rate_limits=[],
        ) as kis,
    ):
        kis.get_price(code)
        token = kis._tokens.get().authorization  # the same token for the raw baseline
        headers = {
            "authorization": token,
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": PRICE.tr_id(kis.environment),
            "custtype": "P",
        }
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
        with httpx.Client() as plain:
            url = server.base_url("real") + PRICE.path
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
    fake = FakeKIS(seed=3, clock=SystemClock())
    app = fake.add_app(env="real")
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ,
            "KIS_APP_KEY": app.app_key,
            "KIS_APP_SECRET": app.app_secret,
            "KIS_BASE_URL": server.base_url("real"),
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
        return fake.stats.token_issuances(app.app_key)


async def async_rate_run(count: int) -> tuple[float, int, int]:
    fake = FakeKIS(seed=4, clock=SystemClock(), universe_size=max(count, 300))
    app = fake.add_app(env="real")
    codes = fake.universe[:count]
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as state:
        async with AsyncKISClient(
            app.app_key, app.app_secret, base_url=server.base_url("real"), state_dir=state
        ) as kis:
            await kis.get_price(codes[0])
            started = time.perf_counter()
            batch = await kis.get_prices(codes, multi=False, concurrency=8)
            elapsed = time.perf_counter() - started
    return elapsed, fake.stats.rate_limited(app.app_key), len(batch.succeeded)


async def async_throughput(count: int, repeats: int) -> tuple[float, float]:
    fake = FakeKIS(
        seed=5,
        clock=SystemClock(),
        rate_limits={"real": 0, "paper": 0},
        universe_size=max(count, 300),
    )
    app = fake.add_app(env="real")
    codes = fake.universe[:count]
    ours: list[float] = []
    raw: list[float] = []
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as state:
        async with AsyncKISClient(
            app.app_key,
            app.app_secret,
            base_url=server.base_url("real"),
            state_dir=state,
            rate_limits=[],
        ) as kis:
            await kis.get_price(codes[0])
            token = (await kis._tokens.aget()).authorization
            headers = {
                "authorization": token,
                "appkey": app.app_key,
                "appsecret": app.app_secret,
                "tr_id": PRICE.tr_id(kis.environment),
                "custtype": "P",
            }
            url = server.base_url("real") + PRICE.path
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(limits=limits) as plain:
                semaphore = asyncio.Semaphore(8)

                async def one(code: str) -> None:
                    async with semaphore:
                        (
                            await plain.get(
                                url,
                                params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code},
                                headers=headers,
                            )
                        ).json()

                for _ in range(repeats):
                    started = time.perf_counter()
                    await asyncio.gather(*(one(c) for c in codes))
                    raw.append(count / (time.perf_counter() - started))
                    started = time.perf_counter()
                    await kis.get_prices(codes, multi=False, concurrency=8)
                    ours.append(count / (time.perf_counter() - started))
    return statistics.median(ours), statistics.median(raw)


async def multiprice_run(count: int) -> tuple[int, float, int]:
    fake = FakeKIS(seed=6, clock=SystemClock(), universe_size=max(count, 300))
    app = fake.add_app(env="real")
    codes = fake.universe[:count]
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as state:
        async with AsyncKISClient(
            app.app_key, app.app_secret, base_url=server.base_url("real"), state_dir=state
        ) as kis:
            started = time.perf_counter()
            batch = await kis.get_prices(codes)
            elapsed = time.perf_counter() - started
    calls = fake.stats.requests(path=ENDPOINTS["intstock_multprice"].path)
    return calls, elapsed, len(batch.succeeded)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    print(f"# client benchmarks ({machine()})")

    n = 54 if quick else 360
    elapsed, limited = rate_run(n)
    ratio = elapsed / (n / 18)
    print(f"(a) {n} quotes at 18/s (sync): {elapsed:.2f} s, ratio {ratio:.3f} (goal <= 1.03)")
    print(f"    EGW00201 answers: {limited} (goal 0)")

    ours, raw = overhead_run(50 if quick else 500, 3 if quick else 7)
    print(f"(b) per request, limits off: client {ours * 1e3:.3f} ms, raw httpx {raw * 1e3:.3f} ms")
    print(f"    ratio {ours / raw:.2f} (goal <= 1.3)")

    print(f"(c) token issuances, 8 processes cold: {cold_processes(8)} (goal 1)")

    n = 90 if quick else 2000
    elapsed, limited, ok = asyncio.run(async_rate_run(n))
    ratio = elapsed / (n / 18)
    print(
        f"(d) {n} quotes at 18/s (async, per code): {elapsed:.2f} s,"
        f" ratio {ratio:.3f} (goal <= 1.03)"
    )
    print(f"    EGW00201 answers: {limited} (goal 0), quotes received: {ok}")

    ours, raw = asyncio.run(async_throughput(200 if quick else 2000, 3 if quick else 5))
    print(f"(e) async throughput, limits off: client {ours:.0f}/s, httpx+gather {raw:.0f}/s")
    print(f"    ratio {ours / raw:.2f} (goal >= 0.8)")

    calls, elapsed, ok = asyncio.run(multiprice_run(300 if quick else 2000))
    print(f"(f) {ok} codes through the 30-code endpoint: {calls} calls, {elapsed:.2f} s")
    print(json.dumps({"machine": machine()}))


if __name__ == "__main__":
    main()
