"""What "never twice" costs: reconciling an order whose answer was lost.

Each scenario places one paper buy through the real sync client against the in-process fake
KIS on a fake clock (so the virtual seconds are exact), loses its answer, and reconciles it with
``reconcile_order`` (default settle window 60 s, client timeout 10 s):

(a) slow gateway: the answer takes 30 s (3x the timeout); the order lands after the client gave
    up. Baseline in the same run: the old rule, one look-up right after the timeout, which
    does not see the order yet, says "absent" and resends: two orders at the fake.
(b) the same with the fake's clock 5 min ahead of the client's (a skewed host).
(c) lost before it arrived (connection closed unprocessed): certain absence only after the
    settle window.
(d) answered normally: one request, nothing to reconcile (the cost of the happy path).

For each: the verdict, look-ups, requests sent, virtual seconds until the verdict, orders at the
fake once every late order has landed (1; 0 for (c); the old rule's 2 is the bug), and the real
time per scenario (median of N runs).

Usage: python benchmarks/bench_reconcile.py [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

from kisclient import KST, FakeClock, KISClient, OrderOutcomeUnknown
from kisclient.testing import FakeKIS, Fault, OffsetClock

START = dt.datetime(2026, 11, 26, 10, 0, tzinfo=KST)
CODE = "005930"
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def scenario(fault: Fault | None, skew_s: float, *, old_rule: bool = False) -> dict[str, object]:
    """Run one lost order end to end; return the figures."""
    clock = FakeClock(START)
    fake = FakeKIS(clock=OffsetClock(clock, skew_s) if skew_s else clock, seed=3)
    app = fake.add_app("paper")
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as state:
        kis = KISClient(
            app.app_key,
            app.app_secret,
            env="paper",
            account=app.account,
            state_dir=state,
            transport=fake.transport(),
            clock=clock,
        )
        with kis:
            kis.get_balance()  # token and a first Date header, as any trading run has
            before = fake.stats.requests()
            if fault is not None:
                fake.faults.add(fault)
            started = clock.monotonic()
            try:
                kis.order_cash("buy", CODE, 1, None)
            except OrderOutcomeUnknown as unknown:
                if old_rule:
                    seen = [o for o in kis.get_daily_orders() if o.code == CODE]
                    verdict = "found" if seen else "absent: resent"
                    lookups = 1
                    if not seen:
                        kis.order_cash("buy", CODE, 1, None)
                else:
                    answer = kis.reconcile_order(unknown)
                    verdict, lookups = answer.outcome.value, answer.lookups
            else:
                verdict, lookups = "answered", 0
            waited = clock.monotonic() - started
            requests = fake.stats.requests() - before
            clock.sleep(120.0)  # long enough for any late order to land before counting
            orders = len(fake.orders(app.app_key))
    return {
        "verdict": verdict,
        "lookups": lookups,
        "requests": requests,
        "virtual_s": waited,
        "orders": orders,
    }


def timed(run: Callable[[], dict[str, object]], runs: int) -> tuple[dict[str, object], float]:
    """The figures of the last run and the median real milliseconds per run."""
    times = []
    figures: dict[str, object] = {}
    for _ in range(runs):
        began = time.perf_counter()
        figures = run()
        times.append((time.perf_counter() - began) * 1000)
    return figures, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    slow = Fault("latency", path=ORDER_PATH, delay_s=30.0)
    lost = Fault("drop_before", path=ORDER_PATH)
    # (label, run, orders the fake must hold once every late order has landed)
    rows: list[tuple[str, Callable[[], dict[str, object]], int]] = [
        (
            "(a) old rule: one look-up after the timeout",
            lambda: scenario(slow, 0, old_rule=True),
            2,
        ),
        ("(a) slow gateway, 30 s answer", lambda: scenario(slow, 0), 1),
        ("(b) slow gateway, KIS clock 5 min ahead", lambda: scenario(slow, 300), 1),
        ("(c) lost before arriving", lambda: scenario(lost, 0), 0),
        ("(d) answered normally", lambda: scenario(None, 0), 1),
    ]
    print(f"bench_reconcile on {machine()}, median of {args.runs} runs")
    print("| scenario | verdict | look-ups | requests | virtual s | orders at fake | real ms |")
    print("|---|---|---|---|---|---|---|")
    failed = False
    for label, run, expected_orders in rows:
        figures, real_ms = timed(run, args.runs)
        print(
            f"| {label} | {figures['verdict']} | {figures['lookups']} | {figures['requests']} | "
            f"{float(str(figures['virtual_s'])):.1f} | {figures['orders']} | {real_ms:.1f} |"
        )
        if figures["orders"] != expected_orders:
            failed = True
    if failed:
        print("FAILED: an order count is not what the scenario allows")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
