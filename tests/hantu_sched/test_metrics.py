"""Metrics (issue 15): kisclient's observer seam, the Prometheus textfile and endpoint, and a
simulated day whose counters match what the fake KIS server saw.

Everything runs against the in-process fake (``kisclient.testing``) on fake clocks; the HTTP
endpoint is a real server on 127.0.0.1 scraped with httpx; every scrape is parsed with
``prometheus_client.parser``.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import stat
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_support import PaperDaemon
from hantu_sched import KST, FakeClock, JobKey
from hantu_sched._events import DayEnded, JobFinished, OrdersTallied
from hantu_sched._prometheus import Metrics
from hantu_sched._simulate import SimClock, TelemetryHooks, simulate_day
from hantu_sched._telemetry import Telemetry, build_telemetry
from hantu_sched._telemetry_config import TelemetryConfig
from kisclient import (
    AdmissionWaited,
    ClientEvent,
    KISClient,
    RequestObserved,
    StreamObserved,
    StreamSlotBusy,
)
from kisclient._stream_lease import StreamLease
from kisclient.testing import FakeKIS, Fault

DAY = dt.date(2026, 6, 4)  # a Thursday, a normal trading day
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
TOKEN = "/oauth2/tokenP"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) → value."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of *name*'s samples whose labels include *labels*."""
    return sum(
        value
        for (sample, have), value in samples.items()
        if sample == name and set(labels.items()) <= set(have)
    )


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {
        dict(have)[label] for (sample, have) in samples if sample == name and label in dict(have)
    }


# --- the observer seam in kisclient ---------------------------------------------------------------


def _client(fake: FakeKIS, tmp_path: pathlib.Path, observer: object, **kw: object) -> KISClient:
    app = fake.add_app()
    return KISClient(
        app.app_key,
        app.app_secret,
        account=app.account,
        state_dir=tmp_path / "state",
        transport=fake.transport(),
        clock=fake.clock,
        observer=observer,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_observer_sees_every_request_admission_and_token(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime(2026, 6, 4, 10, 0, tzinfo=KST))
    fake = FakeKIS(clock=clock)
    fake.faults.add(Fault("rate_burst", path=PRICE, times=2))
    seen: list[ClientEvent] = []
    with _client(fake, tmp_path, seen.append) as kis:
        kis.get_price("005930")
        kis.get_price("000660")
    requests = [e for e in seen if isinstance(e, RequestObserved)]
    assert [(e.path, e.outcome, e.attempt) for e in requests] == [
        (TOKEN, "ok", 1),
        (PRICE, "EGW00201", 1),
        (PRICE, "EGW00201", 2),
        (PRICE, "ok", 3),
        (PRICE, "ok", 1),
    ]
    assert all(e.route == "account" and e.status == 200 for e in requests if e.ok)
    assert fake.stats.requests() == len(requests)
    waits = [e for e in seen if isinstance(e, AdmissionWaited)]
    assert len(waits) == 4  # every data attempt is admitted; the token call is not limited
    assert all(w.seconds >= 0 for w in waits)


def test_a_failing_observer_changes_nothing(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime(2026, 6, 4, 10, 0, tzinfo=KST))
    fake = FakeKIS(clock=clock)

    def broken(event: ClientEvent) -> None:
        raise RuntimeError("observer bug")

    with _client(fake, tmp_path, broken) as kis:
        assert kis.get_price("005930").price > 0


def test_observer_reports_a_locked_stream_slot(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime(2026, 6, 4, 10, 0, tzinfo=KST))
    fake = FakeKIS(clock=clock)
    seen: list[ClientEvent] = []
    with _client(fake, tmp_path, seen.append, ws_url="ws://127.0.0.1:9", hts_id="hts1") as kis:
        settings = kis._settings
        holder = StreamLease(settings.state_dir, settings.env, settings.app_key)
        holder.acquire()
        try:
            with pytest.raises(StreamSlotBusy), kis.stream():
                pass
        finally:
            holder.release()
    assert StreamObserved("slot_busy") in seen


# --- the metrics ----------------------------------------------------------------------------------


def test_metrics_count_client_and_scheduler_events() -> None:
    metrics = Metrics()
    metrics.observe(RequestObserved("account", PRICE, "FHKST01010100", 1, 200, "EGW00201"))
    metrics.observe(RequestObserved("account", PRICE, "FHKST01010100", 2, 200, "ok"))
    metrics.observe(RequestObserved("data", TOKEN, "", 1, 403, "EGW00133"))
    metrics.observe(AdmissionWaited("account", 0.25))
    metrics.observe(StreamObserved("reconnected"))
    metrics.observe(StreamObserved("dropped", 7))
    start = dt.datetime(2026, 6, 4, 9, 0, tzinfo=KST)
    key = JobKey("trading", DAY)
    metrics.record(JobFinished(key, 1, "failed", start, start + dt.timedelta(minutes=5), "boom"))
    metrics.record(OrdersTallied(DAY, {"sent": 3, "unknown": 1}, {"1": 10, "2": 0}))
    metrics.record(OrdersTallied(DAY, {"sent": 4}, {"1": 10, "2": 5}))
    metrics.record(DayEnded(DAY, ("trading",), start))
    s = parse(metrics.render().decode())
    assert total(s, "kis_requests_total") == 3
    assert total(s, "kis_requests_total", endpoint=PRICE, outcome="ok") == 1
    assert total(s, "kis_rate_limited_total") == 1
    assert total(s, "kis_token_issuances_total") == 0
    assert total(s, "kis_token_refusals_total", route="data", outcome="EGW00133") == 1
    assert total(s, "kis_limiter_wait_seconds_sum") == 0.25
    assert total(s, "kis_limiter_wait_seconds_count") == 1
    assert total(s, "kis_stream_events_total", kind="reconnected") == 1
    assert total(s, "kis_stream_dropped_events_total") == 7
    assert total(s, "hantu_job_runs_total", job="trading", state="failed") == 1
    assert total(s, "hantu_job_duration_seconds_sum", job="trading") == 300
    assert total(s, "hantu_job_last_state", job="trading", state="failed") == 1
    assert total(s, "hantu_job_last_state", job="trading", state="done") == 0
    assert total(s, "hantu_orders", status="sent") == 4
    assert total(s, "hantu_orders", status="unknown") == 0  # gone from the latest tally
    assert total(s, "hantu_filled_orders") == 2
    assert total(s, "hantu_filled_quantity") == 15
    assert total(s, "hantu_days_ended_total", complete="false") == 1
    assert total(s, "hantu_day_units_not_done") == 1


def test_textfile_is_written_atomically_and_readable_by_node_exporter(
    tmp_path: pathlib.Path,
) -> None:
    metrics = Metrics()
    metrics.observe(RequestObserved("account", PRICE, "FHKST01010100", 1, 200, "ok"))
    path = tmp_path / "textfile" / "hantu_sched.prom"
    metrics.write_textfile(path)
    metrics.observe(RequestObserved("account", PRICE, "FHKST01010100", 1, 200, "ok"))
    metrics.write_textfile(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["hantu_sched.prom"]  # no temp left
    samples = parse(path.read_text())
    assert total(samples, "kis_requests_total") == 2
    assert total(samples, "hantu_metrics_written_timestamp_seconds") > 0


def test_http_endpoint_serves_the_same_metrics_on_loopback(tmp_path: pathlib.Path) -> None:
    config = TelemetryConfig(metrics_http_port=0)
    telemetry = build_telemetry(config, tmp_path, FakeClock(dt.datetime(2026, 6, 4, tzinfo=KST)))
    assert telemetry.metrics is not None
    port = telemetry.metrics.serve(0)
    try:
        telemetry.observe(RequestObserved("account", ORDER, "TTTC0012U", 1, 200, "ok"))
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        scraped = parse(answer.text)
        assert total(scraped, "kis_requests_total", endpoint=ORDER) == 1
    finally:
        telemetry.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


# --- a simulated day ------------------------------------------------------------------------------


class _Recording(TelemetryHooks):
    """The telemetry hooks, keeping the fake server and adding its faults."""

    def __init__(self, telemetry: Telemetry, faults: Iterable[Fault]) -> None:
        super().__init__(telemetry)
        self.faults = list(faults)
        self.fake: FakeKIS | None = None

    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        fake = super().make_fake(clock, seed, universe_size)
        for fault in self.faults:
            fake.faults.add(fault)
        self.fake = fake
        return fake


def test_a_simulated_day_counts_what_the_fake_saw(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "sim"
    textfile = tmp_path / "textfile" / "hantu_sched.prom"
    telemetry = build_telemetry(
        TelemetryConfig(), data_dir, FakeClock(dt.datetime(2026, 6, 4, tzinfo=KST)),
        textfile=textfile,
    )  # fmt: skip
    hooks = _Recording(
        telemetry,
        [Fault("rate_burst", path=PRICE, times=3), Fault("malformed_json", path=ORDER, times=1)],
    )
    with telemetry:
        result = simulate_day(
            DAY, data_dir, restart_at=[dt.time(11, 0)], universe_size=60, hooks=hooks
        )
    assert result.complete
    fake = hooks.fake
    assert fake is not None
    app_key = next(iter(fake._core.accounts))
    s = parse(textfile.read_text())
    # every request that reached the fake was counted, endpoint by endpoint
    assert total(s, "kis_requests_total") == fake.stats.requests() > 0
    for endpoint in label_values(s, "kis_requests_total", "endpoint"):
        assert total(s, "kis_requests_total", endpoint=endpoint) == fake.stats.requests(
            path=endpoint
        ), endpoint
    assert total(s, "kis_rate_limited_total") == fake.stats.rate_limited() == 3
    assert total(s, "kis_requests_total", endpoint=TOKEN) == fake.stats.token_calls(app_key)
    assert total(s, "kis_token_issuances_total") == fake.stats.token_issuances(app_key) >= 1
    assert total(s, "kis_limiter_wait_seconds_count") > 0
    # the orders of the day, the unknown one reconciled (it executed before its answer spoiled)
    placed = len(fake.orders(app_key))
    assert placed > 0
    assert total(s, "hantu_orders") == placed
    assert total(s, "hantu_order_outcome_unknown_total") == 1
    assert total(s, "hantu_orders_reconciled_total", result="found") == 1
    assert total(s, "hantu_filled_orders") > 0
    # the jobs: every unit done once, the crash at 11:00 recovered by a reconcile of trading
    assert total(s, "hantu_job_runs_total", job="screening", state="done") == 1
    assert total(s, "hantu_job_runs_total", job="selection", state="done") == 4
    assert total(s, "hantu_job_runs_total", job="trading", state="reconciled") == 1
    assert total(s, "hantu_job_runs_total", job="trading", state="done") == 1
    assert total(s, "hantu_job_runs_total", job="performance", state="done") == 1
    assert total(s, "hantu_crash_recoveries_total", job="trading") == result.restarts == 1
    assert total(s, "hantu_days_ended_total", complete="true") == 1
    assert total(s, "hantu_day_units_not_done") == 0


# --- the daemon -----------------------------------------------------------------------------------


def test_run_writes_the_textfile_and_sends_alerts(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` (run_daemon) for a whole day on a fake clock: the textfile in the data directory
    counts what the fake saw, and the configured webhook got the day's performance alert."""
    posts: list[dict[str, object]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    monkeypatch.setenv("HANTU_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/h")
    try:
        clock = FakeClock(dt.datetime(2026, 6, 4, 5, 30, tzinfo=KST))
        fake = FakeKIS(clock=clock, seed=3, universe_size=40)
        daemon = PaperDaemon.create(tmp_path, fake)
        assert daemon.run(clock, dt.datetime(2026, 6, 5, 0, 0, tzinfo=KST)) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    textfile = tmp_path / "d" / "metrics" / "hantu_sched.prom"
    s = parse(textfile.read_text())
    assert total(s, "kis_requests_total") == fake.stats.requests() > 0
    assert total(s, "hantu_days_ended_total", complete="true") == 1
    assert total(s, "hantu_job_runs_total", state="done") == 8
    assert total(s, "hantu_alerts_sent_total", channel="webhook") == len(posts) == 1
    assert posts[0]["kind"] == "performance"
