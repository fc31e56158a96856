"""The order lifecycle's round trips (issue 12): requests per operation and time per operation.

Against the fake KIS on loopback (a real HTTP server in this process's threads, limits off), a
real account: for each operation, the requests the server saw (goal: revise = 1 when the caller
holds the order, 2 when only the order number is known) and the median wall time of N runs.

Usage: python benchmarks/bench_orders.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from kisclient import KISClient
from kisclient.testing import FakeKIS, FakeKISServer
from kisclient.testing._universe import round_to_tick


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def measure(fake: FakeKIS, action: Callable[[], Any], runs: int) -> tuple[int, float]:
    """Requests one *action* costs (the same every run, checked) and its median milliseconds."""
    costs, times = set(), []
    for _ in range(runs):
        before = fake.stats.requests()
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
        costs.add(fake.stats.requests() - before)
    assert len(costs) == 1, f"the request count varied: {sorted(costs)}"
    return costs.pop(), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    fake = FakeKIS(seed=5, rate_limits={"real": None, "paper": None})
    fake.set_market_open(True)
    app = fake.add_app(env="real")
    code = "005930"
    price = fake.price_of(code)
    low = round_to_tick(price * 0.8, "stock")  # a limit that never fills: the order stays open
    lower = round_to_tick(price * 0.75, "stock")
    rows: dict[str, tuple[int, float]] = {}
    with FakeKISServer(fake) as server, tempfile.TemporaryDirectory() as state, KISClient(
        app.app_key, app.app_secret, account=app.account, base_url=server.base_url("real"),
        state_dir=state, rate_limits=[],
    ) as kis:  # fmt: skip
        kis.get_price(code)  # the token, outside the timed part
        held = [kis.order_cash("buy", code, 10, low) for _ in range(args.runs * 4)]
        orders = iter(held)
        rows["order_cash (limit)"] = measure(
            fake, lambda: kis.order_cash("buy", code, 1, low), args.runs
        )
        rows["revise_order, order held"] = measure(
            fake, lambda: kis.revise_order(next(orders), price=lower), args.runs
        )
        rows["revise_order, number only"] = measure(
            fake, lambda: kis.revise_order(next(orders).order_no, price=lower), args.runs
        )
        rows["cancel_order, order held, 3 of 10"] = measure(
            fake, lambda: kis.cancel_order(next(orders), qty=3), args.runs
        )
        rows["cancel_order, number only, all"] = measure(
            fake, lambda: kis.cancel_order(next(orders).order_no), args.runs
        )
        rows["get_pending_orders"] = measure(fake, kis.get_pending_orders, args.runs)
        pending = len(kis.get_pending_orders())
    print(f"# order lifecycle ({machine()}), {args.runs} runs each, loopback, limits off")
    print(f"{'operation':40} {'requests':>8} {'median ms':>10}")
    for name, (requests, ms) in rows.items():
        print(f"{name:40} {requests:>8} {ms:>10.2f}")
    print(f"(open orders at the end: {pending}; get_pending_orders pages 50 rows a request)")
    held_cost = rows["revise_order, order held"][0]
    by_number = rows["revise_order, number only"][0]
    print(f"goal: revise = 1 request held ({held_cost}), 2 by number ({by_number})")
    print(json.dumps({"machine": machine(), **{k: list(v) for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
