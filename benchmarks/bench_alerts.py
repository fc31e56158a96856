"""Alerts and metrics benchmark: does telemetry slow a simulated day?

A simulated day (``simulate_day`` in process: the default pipeline against the in-process fake,
one restart at 11:00) is timed with telemetry off (plain hooks) and on (every client observed,
every scheduler event counted, the textfile written, alerts delivered to a loopback webhook that
takes ``--receiver-delay`` seconds to answer each POST). Runs alternate off/on; the figures are
the medians and their ratio. The time ``Telemetry.close`` then spends delivering what is still
queued is reported apart (it is after the day, at exit).

Usage: python benchmarks/bench_alerts.py [--runs N] [--universe N] [--receiver-delay S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hantu_sched import KST, FakeClock  # noqa: E402
from hantu_sched._alerts import AlertDispatcher  # noqa: E402
from hantu_sched._notifiers import WebhookNotifier  # noqa: E402
from hantu_sched._prometheus import Metrics  # noqa: E402
from hantu_sched._simulate import SimHooks, TelemetryHooks, simulate_day  # noqa: E402
from hantu_sched._telemetry import Telemetry  # noqa: E402
from kisclient import AdmissionWaited, RequestObserved  # noqa: E402

DAY = dt.date(2026, 6, 4)


class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.2
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        time.sleep(self.delay_s)  # a slow receiver (benchmark only)
        type(self).posts += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


EVENTS: list[float] = []


def one_day(tmp: pathlib.Path, universe: int, url: str | None) -> tuple[float, float, bool]:
    """(day seconds, close seconds, complete) of one simulated day; telemetry on iff *url*
    (then the number of client events observed is appended to :data:`EVENTS`)."""
    data_dir = tmp / f"sim-{time.perf_counter_ns()}"
    hooks: SimHooks = SimHooks()
    telemetry: Telemetry | None = None
    if url is not None:
        alerts = AlertDispatcher([WebhookNotifier(url)], rate_per_minute=1000)
        metrics = Metrics(alerts)
        telemetry = Telemetry(
            clock=FakeClock(dt.datetime.combine(DAY, dt.time(5, 30), KST)),
            alerts=alerts,
            metrics=metrics,
            textfile=data_dir / "metrics" / "hantu_sched.prom",
        ).start()
        hooks = TelemetryHooks(telemetry)
    start = time.perf_counter()
    result = simulate_day(DAY, data_dir, restart_at=[dt.time(11, 0)], universe_size=universe,
                          hooks=hooks)  # fmt: skip
    day = time.perf_counter() - start
    start = time.perf_counter()
    if telemetry is not None:
        telemetry.close()
        registry = telemetry.metrics.registry if telemetry.metrics else None
        if registry is not None:
            requests = sum(
                s.value
                for family in registry.collect()
                if family.name == "kis_requests"
                for s in family.samples
                if s.name == "kis_requests_total"
            )
            waits = sum(
                s.value
                for family in registry.collect()
                if family.name == "kis_limiter_wait_seconds"
                for s in family.samples
                if s.name.endswith("_count")
            )
            EVENTS.append(requests + waits)
    return day, time.perf_counter() - start, result.complete


def per_event_cost(n: int = 200_000) -> tuple[float, float]:
    """Microseconds per observed request (metrics + the alert check) and per limiter wait."""
    telemetry = Telemetry(clock=FakeClock(dt.datetime(2026, 6, 4, tzinfo=KST)), metrics=Metrics())
    request = RequestObserved("account", "/uapi/x", "T", 1, 200, "ok")
    wait = AdmissionWaited("account", 0.01)
    start = time.perf_counter()
    for _ in range(n):
        telemetry.observe(request)
    per_request = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        telemetry.observe(wait)
    return per_request, (time.perf_counter() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--universe", type=int, default=300)
    parser.add_argument("--receiver-delay", type=float, default=0.2)
    args = parser.parse_args()
    _Slow.delay_s = args.receiver_delay
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    off: list[float] = []
    on: list[float] = []
    closes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        one_day(pathlib.Path(tmp), args.universe, None)  # warm-up (imports, caches)
        for run in range(args.runs):
            for telemetry in (False, True) if run % 2 == 0 else (True, False):  # no order bias
                day, close, complete = one_day(
                    pathlib.Path(tmp), args.universe, url if telemetry else None
                )
                assert complete
                if telemetry:
                    on.append(day)
                    closes.append(close)
                else:
                    off.append(day)
    server.shutdown()
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    print(f"simulated day, universe {args.universe}, restart 11:00, {args.runs} runs each")
    print(f"  telemetry off: median {m_off:.3f} s  (min {min(off):.3f}, max {max(off):.3f})")
    print(f"  telemetry on:  median {m_on:.3f} s  (min {min(on):.3f}, max {max(on):.3f})")
    print(f"  ratio on/off: {m_on / m_off:.3f} (of the minima: {min(on) / min(off):.3f})")
    print(f"  close (deliver what is queued, receiver {args.receiver_delay:g} s/POST): median "
          f"{statistics.median(closes):.3f} s; {_Slow.posts} alerts delivered in all")  # fmt: skip
    per_request, per_wait = per_event_cost()
    print(f"  observer cost: {per_request:.2f} us per request event, {per_wait:.2f} us per "
          "limiter-wait event (metrics on, alerts checked)")  # fmt: skip
    events = statistics.median(EVENTS)
    cost_ms = events * max(per_request, per_wait) / 1000
    print(f"  client events per day: {events:.0f} -> at most {cost_ms:.1f} ms of observer work "
          f"({cost_ms / 1000 / m_off:.2%} of the day)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
