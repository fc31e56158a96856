"""Paper account with a real data key: the quote screen of 2,500 codes (issue 12).

(a) With the data key: ``get_prices`` of 2,500 codes for a paper client whose market data goes to
    the real host with a real key (18/s), over loopback to ``python -m kisclient.testing serve``
    (real limit 18/s, paper limit 1/s) in its own process: wall time (goal ≤ 6 s), calls, and
    EGW00201 answers per key (goal 0 on both).
(b) Without it, the same 2,500 codes on paper: the client's own limiter and the fake's 1/s
    window on a fake clock (virtual seconds: the run takes a second of wall time, the figure is
    what the day would cost), and a 15-code sample in real time over loopback confirming the
    rate the virtual figure assumes.

Usage: python benchmarks/bench_data_key.py [--codes N] [--sample N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from kisclient import FakeClock, KISClient
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS

ROOT = pathlib.Path(__file__).resolve().parents[1]
MULTI = ENDPOINTS["intstock_multprice"].path
PRICE = ENDPOINTS["inquire_price"].path


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@contextlib.contextmanager
def served(universe: int) -> Iterator[dict[str, Any]]:
    """The fake in its own process (real 18/s, paper 1/s); the dict gains ``"stats"`` at exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [
        sys.executable, "-m", "kisclient.testing", "serve", "--port", "0",
        "--real-limit", "18", "--paper-limit", "1", "--universe", str(universe),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    values: dict[str, Any] = {}
    while "KIS_PAPER_HTS_ID" not in values:
        line = proc.stdout.readline().strip()
        if "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    try:
        yield values
    finally:
        proc.send_signal(signal.SIGTERM)
        tail = proc.stdout.read().strip().splitlines()
        proc.wait(timeout=30)
        proc.stdout.close()
        values["stats"] = json.loads(tail[-1].removeprefix("STATS ")) if tail else {}


def with_data_key(codes: list[str], server: dict[str, Any], state: str) -> tuple[float, int]:
    with KISClient(
        server["KIS_PAPER_APP_KEY"],
        server["KIS_PAPER_APP_SECRET"],
        env="paper",
        account=server["KIS_PAPER_ACCOUNT"],
        base_url=server["KIS_PAPER_BASE_URL"],
        state_dir=state,
        data_key=server["KIS_APP_KEY"],
        data_secret=server["KIS_APP_SECRET"],
        data_base_url=server["KIS_BASE_URL"],
    ) as kis:
        kis.get_price(codes[0])  # the data key's token is issued outside the timed part
        kis.get_balance()  # and the paper key's
        started = time.perf_counter()
        batch = kis.get_prices(codes)
        elapsed = time.perf_counter() - started
    assert len(batch.succeeded) == len(codes), batch.failed
    return elapsed, batch.requests


def paper_sample(codes: list[str], server: dict[str, Any], state: str) -> float:
    """Seconds per quote on paper without a data key, real time over loopback."""
    with KISClient(
        server["KIS_PAPER_APP_KEY"],
        server["KIS_PAPER_APP_SECRET"],
        env="paper",
        base_url=server["KIS_PAPER_BASE_URL"],
        state_dir=state,
    ) as kis:
        kis.get_price(codes[0])
        started = time.perf_counter()
        batch = kis.get_prices(codes[1:])
        elapsed = time.perf_counter() - started
    assert len(batch.succeeded) == len(codes) - 1, batch.failed
    return elapsed / (len(codes) - 1)


def without_data_key_virtual(codes: list[str]) -> tuple[float, float, int, int]:
    """The paper screen on a fake clock: virtual seconds, wall seconds, calls, EGW00201."""
    clock = FakeClock()
    fake = FakeKIS(clock=clock, universe_size=len(codes), rate_limits={"paper": 1, "real": 18})
    app = fake.add_app(env="paper")
    with tempfile.TemporaryDirectory() as state, KISClient(
        app.app_key, app.app_secret, env="paper", state_dir=state,
        transport=fake.transport(), clock=clock,
    ) as kis:  # fmt: skip
        wall = time.perf_counter()
        started = clock.monotonic()
        batch = kis.get_prices(codes)
        virtual = clock.monotonic() - started
        wall = time.perf_counter() - wall
    assert len(batch.succeeded) == len(codes), batch.failed
    return virtual, wall, batch.requests, fake.stats.rate_limited(app.app_key)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=2500)
    parser.add_argument("--sample", type=int, default=16)
    args = parser.parse_args()
    codes = FakeKIS(universe_size=args.codes).universe[: args.codes]
    print(f"# data-key benchmark ({machine()}), {len(codes)} codes")
    with tempfile.TemporaryDirectory() as state, served(len(codes)) as server:
        elapsed, calls = with_data_key(codes, server, state)
        print(f"(a) with a real data key: {elapsed:.2f} s, {calls} calls (goal <= 6 s)", flush=True)
        per_quote = paper_sample(codes[: args.sample], server, state)
    apps = server["stats"].get("apps", {})
    limited = {env: apps.get(env, {}).get("rate_limited", 0) for env in ("real", "paper")}
    print(
        f"    EGW00201 answers: real key {limited['real']}, paper key {limited['paper']} (goal 0)"
    )
    virtual, wall, paper_calls, paper_limited = without_data_key_virtual(codes)
    print(
        f"(b) without it, on paper: {virtual:.0f} s on the fake clock ({paper_calls} calls, "
        f"{paper_limited} EGW00201; {wall:.1f} s of wall time to simulate); real-time sample: "
        f"{per_quote:.3f} s per quote -> {per_quote * len(codes):.0f} s for {len(codes)} codes"
    )
    print(f"    ratio: {virtual / elapsed:.0f}x faster with the data key")
    print(
        json.dumps(
            {
                "machine": machine(),
                "codes": len(codes),
                "with_data_key_s": round(elapsed, 2),
                "with_data_key_calls": calls,
                "egw00201": limited,
                "paper_virtual_s": round(virtual, 1),
                "paper_calls": paper_calls,
                "paper_sample_s_per_quote": round(per_quote, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
