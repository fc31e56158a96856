"""Alerts (issue 15): the channels against loopback receivers, delivery off the scheduler's path
(bounded queue, retries with backoff, per-channel rate limit, on a fake clock), the events that
alert, and their configuration (secrets from the environment or the credentials file only).

The receivers are real servers on 127.0.0.1: an ``http.server`` that records every POST (and can
fail the first N), and an SMTP server (``aiosmtpd``). Nothing of ours is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import pathlib
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from hantu_sched import (
    KST,
    FakeClock,
    IntegratedScheduler,
    JobContext,
    JobKey,
    MemoryStorage,
    SchedulerConfig,
)
from hantu_sched._alerts import AlertDispatcher, alert_for
from hantu_sched._events import (
    CrashRecovered,
    DayEnded,
    Event,
    JobFinished,
    OrderOutcomeUnknownSeen,
    OrderReconciled,
    PerformanceSummary,
)
from hantu_sched._notifiers import (
    Alert,
    EmailNotifier,
    SlackNotifier,
    TelegramNotifier,
    WebhookNotifier,
    slack_payload,
    telegram_payload,
)
from hantu_sched._settings import SettingsError, load_settings
from hantu_sched._simulate import SimClock, TelemetryHooks, simulate_day
from hantu_sched._telemetry import Telemetry, load_alert_secrets, make_channels
from hantu_sched._telemetry_config import ALERT_KINDS, AlertSecrets
from hantu_sched.testing import CrashingClock, JobLog, SimulatedCrash, make_test_jobs
from kisclient import (
    ClientEvent,
    KISClient,
    RequestObserved,
    StreamObserved,
    StreamSlotBusy,
)
from kisclient._stream_lease import StreamLease
from kisclient.testing import FakeKIS, Fault

DAY = dt.date(2026, 9, 28)
T0 = dt.datetime(2026, 9, 28, 11, 0, tzinfo=KST)
BOT_TOKEN = "123456:SECRET-bot-token-xyz"


def _alert(n: int = 1, severity: str = "critical", kind: str = "job_failed") -> Alert:
    return Alert(kind, severity, f"alert {n}", "trading failed: <RuntimeError> & more", T0,
                 {"date": DAY.isoformat()})  # fmt: skip


# --- loopback receivers ------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every POST (path, JSON body); the first
    *fail_first* requests get *fail_status* (with *retry_after*, if given)."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        retry_after: float | None = None,
        answer: dict[str, Any] | None = None,
    ) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.posts.append((self.path, json.loads(body)))
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                payload = json.dumps(answer if answer is not None else {"ok": True}).encode()
                self.send_response(fail_status if failing else 200)
                if failing and retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: object, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = data.login == b"ops" and data.password == b"smtp-secret"
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    port = _free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield box, port
    controller.stop()


def _dispatcher(*channels: Any, clock: FakeClock | None = None, **kw: Any) -> AlertDispatcher:
    return AlertDispatcher(list(channels), clock=clock or FakeClock(T0), **kw)


# --- channels ---------------------------------------------------------------------------------


def test_webhook_posts_the_alert_as_json(receiver: Receiver) -> None:
    alerts = _dispatcher(WebhookNotifier(receiver.url + "/hook/s3cret")).start()
    assert alerts.submit(_alert())
    assert alerts.flush(timeout=10)
    alerts.close()
    [(path, body)] = receiver.posts
    assert path == "/hook/s3cret"
    assert body == {
        "source": "hantu_sched",
        "kind": "job_failed",
        "severity": "critical",
        "title": "alert 1",
        "text": "trading failed: <RuntimeError> & more",
        "at": T0.isoformat(),
        "fields": {"date": "2026-09-28"},
    }
    assert alerts.stats()["webhook"].sent == 1


def test_telegram_calls_send_message_and_never_logs_the_token(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = TelegramNotifier(BOT_TOKEN, "-100123", base_url=receiver.url)
    alerts = _dispatcher(notifier).start()
    alerts.submit(_alert())
    assert alerts.flush(timeout=10)
    alerts.close()
    [(path, body)] = receiver.posts
    assert path == f"/bot{BOT_TOKEN}/sendMessage"
    assert body["chat_id"] == "-100123"
    assert body["parse_mode"] == "HTML"
    assert "<b>alert 1</b>" in body["text"]
    assert "&lt;RuntimeError&gt; &amp; more" in body["text"]  # escaped for HTML mode
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log...
    assert BOT_TOKEN not in caplog.text  # ...with the token redacted
    assert BOT_TOKEN not in repr(notifier)


def test_telegram_that_does_not_say_ok_is_a_failure() -> None:
    server = Receiver(answer={"ok": False, "description": "chat not found"})
    try:
        alerts = _dispatcher(TelegramNotifier(BOT_TOKEN, "1", base_url=server.url)).start()
        alerts.submit(_alert())
        assert alerts.flush(timeout=10)
        alerts.close()
        assert len(server.posts) == 1  # not retried: the answer says it will not work
        assert alerts.stats()["telegram"].failed == 1
    finally:
        server.close()


def test_slack_posts_an_incoming_webhook_payload(receiver: Receiver) -> None:
    alerts = _dispatcher(SlackNotifier(receiver.url + "/services/T/B/X")).start()
    alerts.submit(_alert(severity="warning"))
    assert alerts.flush(timeout=10)
    alerts.close()
    [(path, body)] = receiver.posts
    assert path == "/services/T/B/X"
    assert body == slack_payload(_alert(severity="warning"))
    assert body["text"].startswith("⚠️ alert 1")
    assert "&lt;RuntimeError&gt; &amp; more" in body["text"]
    assert body["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*⚠️ alert 1*"},
    }
    assert body["blocks"][2]["fields"] == [{"type": "mrkdwn", "text": "*date*\n2026-09-28"}]


def test_email_goes_through_a_loopback_smtp_server_with_login(
    smtp: tuple[_Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    box, port = smtp
    notifier = EmailNotifier(
        "127.0.0.1", port, ("ops@example.com", "cto@example.com"), "bot@example.com",
        security="none", user="ops", password="smtp-secret",
    )  # fmt: skip
    alerts = _dispatcher(notifier).start()
    alerts.submit(_alert())
    assert alerts.flush(timeout=10)
    alerts.close()
    assert box.logins == [(b"ops", b"smtp-secret")]
    [envelope] = box.envelopes
    assert envelope.mail_from == "bot@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "cto@example.com"]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[hantu_sched] CRITICAL: alert 1"
    assert "trading failed: <RuntimeError> & more" in message.get_payload()
    assert "smtp-secret" not in repr(notifier) + caplog.text


def test_email_with_a_refused_login_fails_without_retrying(smtp: tuple[_Mailbox, int]) -> None:
    box, port = smtp
    notifier = EmailNotifier(
        "127.0.0.1", port, ("ops@example.com",), "bot@example.com", security="none",
        user="ops", password="wrong",
    )  # fmt: skip
    alerts = _dispatcher(notifier, max_attempts=5).start()
    alerts.submit(_alert())
    assert alerts.flush(timeout=10)
    alerts.close()
    assert box.logins and all(login == (b"ops", b"wrong") for login in box.logins)
    assert box.envelopes == []
    stats = alerts.stats()["email"]
    assert (stats.failed, stats.retried) == (1, 0)


def test_telegram_payload_is_capped_at_the_bot_api_limit() -> None:
    long = attrs.evolve(_alert(), text="x" * 5000)
    assert len(telegram_payload(long, "1")["text"]) == 4096


# --- delivery: retries, backoff, rate limit, bounded queue ----------------------------------------


def test_a_receiver_failing_twice_gets_the_alert_on_the_third_attempt() -> None:
    server = Receiver(fail_first=2)
    clock = FakeClock(T0)
    try:
        alerts = _dispatcher(WebhookNotifier(server.url), clock=clock, backoff_s=2.0).start()
        before = clock.monotonic()
        alerts.submit(_alert())
        assert alerts.flush(timeout=10)
        alerts.close()
    finally:
        server.close()
    assert len(server.posts) == 3
    stats = alerts.stats()["webhook"]
    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)
    assert clock.monotonic() - before == pytest.approx(2.0 + 4.0)  # doubling backoff


def test_retry_after_is_honoured() -> None:
    server = Receiver(fail_first=1, fail_status=429, retry_after=30)
    clock = FakeClock(T0)
    try:
        alerts = _dispatcher(WebhookNotifier(server.url), clock=clock, backoff_s=1.0).start()
        before = clock.monotonic()
        alerts.submit(_alert())
        assert alerts.flush(timeout=10)
        alerts.close()
    finally:
        server.close()
    assert len(server.posts) == 2
    assert clock.monotonic() - before == pytest.approx(30.0)


def test_a_receiver_that_keeps_failing_is_given_up_after_max_attempts() -> None:
    server = Receiver(fail_first=100)
    try:
        alerts = _dispatcher(WebhookNotifier(server.url), max_attempts=3).start()
        alerts.submit(_alert())
        assert alerts.flush(timeout=10)
        alerts.close()
    finally:
        server.close()
    assert len(server.posts) == 3
    assert alerts.stats()["webhook"].failed == 1


def test_a_client_error_is_not_retried() -> None:
    server = Receiver(fail_first=1, fail_status=400)
    try:
        alerts = _dispatcher(WebhookNotifier(server.url), max_attempts=5).start()
        alerts.submit(_alert())
        assert alerts.flush(timeout=10)
        alerts.close()
    finally:
        server.close()
    assert len(server.posts) == 1
    assert alerts.stats()["webhook"].failed == 1


def test_each_channel_is_rate_limited(receiver: Receiver) -> None:
    clock = FakeClock(T0)
    alerts = _dispatcher(WebhookNotifier(receiver.url), clock=clock, rate_per_minute=2).start()
    before = clock.monotonic()
    for n in range(5):
        alerts.submit(_alert(n))
    assert alerts.flush(timeout=10)
    alerts.close()
    assert [body["title"] for _, body in receiver.posts] == [f"alert {n}" for n in range(5)]
    # a burst of 2, then one every 30 s on the delivery clock
    assert clock.monotonic() - before == pytest.approx(3 * 30.0)


def test_a_full_queue_drops_the_oldest_and_counts_it(receiver: Receiver) -> None:
    alerts = _dispatcher(WebhookNotifier(receiver.url), queue_size=3)
    for n in range(5):  # not started yet: nothing is delivered while we fill the queue
        assert alerts.submit(_alert(n))
    assert alerts.stats()["webhook"].dropped == 2
    alerts.start()
    assert alerts.flush(timeout=10)
    alerts.close()
    assert [body["title"] for _, body in receiver.posts] == ["alert 2", "alert 3", "alert 4"]


def test_a_dead_channel_does_not_hold_up_another(receiver: Receiver) -> None:
    dead = WebhookNotifier(f"http://127.0.0.1:{_free_port()}/nobody")
    clock = FakeClock(T0)
    alerts = _dispatcher(dead, SlackNotifier(receiver.url), clock=clock, max_attempts=3).start()
    alerts.submit(_alert())
    assert alerts.flush(timeout=10)
    alerts.close()
    stats = alerts.stats()
    assert stats["slack"].sent == 1
    assert (stats["webhook"].failed, stats["webhook"].retried) == (1, 2)


def test_filters_by_kind_and_severity(receiver: Receiver) -> None:
    alerts = _dispatcher(
        WebhookNotifier(receiver.url), kinds=("job_failed", "performance"), min_severity="warning"
    ).start()
    assert alerts.submit(_alert(1))
    assert not alerts.submit(_alert(2, kind="crash_recovered", severity="warning"))
    assert not alerts.submit(_alert(3, kind="performance", severity="info"))
    assert alerts.flush(timeout=10)
    alerts.close()
    assert [body["title"] for _, body in receiver.posts] == ["alert 1"]


# --- which events alert ---------------------------------------------------------------------


def test_alert_for_each_event_kind() -> None:
    key = JobKey("trading", DAY)
    cases: dict[str, Event | ClientEvent] = {
        "job_failed": JobFinished(key, 2, "failed", T0, T0, "RuntimeError: boom"),
        "day_incomplete": DayEnded(DAY, ("trading", "market_close"), T0),
        "crash_recovered": CrashRecovered(key, "reconcile", "the last run never finished", T0),
        "order_outcome_unknown": OrderOutcomeUnknownSeen(DAY, "005930", "buy", 3, "bad", T0),
        "order_reconciled": OrderReconciled(DAY, "005930", "buy", "absent", "not found", T0),
        "token_refused": RequestObserved("account", "/oauth2/tokenP", "", 1, 403, "EGW00133"),
        "stream_slot_locked": StreamObserved("slot_busy"),
        "performance": PerformanceSummary(DAY, {"daily_return": 0.0123, "end_value": 1.0}),
    }
    assert sorted(cases) == sorted(ALERT_KINDS)
    made: dict[str, Alert] = {}
    for kind, event in cases.items():
        alert = alert_for(event, T0)
        assert alert is not None and alert.kind == kind, kind
        made[kind] = alert
    assert made["job_failed"].title == "trading failed (attempt 2)"
    assert made["job_failed"].severity == "critical"
    assert "trading, market_close" in made["day_incomplete"].text
    assert "1.23%" in made["performance"].text
    assert made["order_reconciled"].severity == "warning"
    # what does not alert
    assert alert_for(JobFinished(key, 1, "done", T0, T0), T0) is None
    assert alert_for(DayEnded(DAY, (), T0), T0) is None
    assert alert_for(RequestObserved("account", "/oauth2/tokenP", "", 1, 200, "ok"), T0) is None
    assert alert_for(RequestObserved("account", "/x", "T", 1, 500, "http_500"), T0) is None
    no_answer = RequestObserved("account", "/oauth2/tokenP", "", 1, None, "transport")
    assert alert_for(no_answer, T0) is None  # a network problem, not a refusal
    assert alert_for(StreamObserved("reconnected"), T0) is None


def test_a_failing_job_and_the_incomplete_day_alert(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    """Screening fails every attempt, so the day ends incomplete; a restart at 10:00 while
    nothing runs is no crash to recover. The receiver hears of each failure and of the day's
    end, once, from the second scheduler."""

    def failing(name: str, job: Any) -> Any:
        def run(ctx: JobContext) -> None:
            if name == "screening":
                raise RuntimeError("universe file missing")
            job(ctx)

        return run

    alerts = _dispatcher(WebhookNotifier(receiver.url), rate_per_minute=1000)
    telemetry = Telemetry(clock=FakeClock(T0), alerts=alerts).start()
    storage = MemoryStorage()
    clock = CrashingClock(dt.datetime(2026, 9, 28, 5, 30, tzinfo=KST))
    end = dt.datetime(2026, 9, 29, 0, 0, tzinfo=KST)
    jobs = make_test_jobs(JobLog(), wrap=failing)
    config = SchedulerConfig()
    clock.crash_at = dt.datetime(2026, 9, 28, 10, 0, tzinfo=KST)
    first = IntegratedScheduler(config, storage, clock, jobs, data_dir=tmp_path,
                                events=telemetry.emit)  # fmt: skip
    with pytest.raises(SimulatedCrash):
        first.run(until=end)
    second = IntegratedScheduler(config, storage, clock, jobs, data_dir=tmp_path,
                                 events=telemetry.emit)  # fmt: skip
    second.run(until=end)
    telemetry.close()
    kinds = [body["kind"] for _, body in receiver.posts]
    assert kinds.count("job_failed") == 3  # screening's three attempts
    assert all("universe file missing" in b["text"] for _, b in receiver.posts[:3])
    assert kinds.count("crash_recovered") == 0  # nothing ran: selection/trading never started
    assert kinds[-1] == "day_incomplete"
    assert "screening" in receiver.posts[-1][1]["text"]


def test_a_crash_mid_job_alerts_its_recovery(receiver: Receiver, tmp_path: pathlib.Path) -> None:
    alerts = _dispatcher(WebhookNotifier(receiver.url), rate_per_minute=1000)
    telemetry = Telemetry(clock=FakeClock(T0), alerts=alerts).start()
    storage = MemoryStorage()
    clock = CrashingClock(dt.datetime(2026, 9, 28, 5, 30, tzinfo=KST))
    clock.crash_at = dt.datetime(2026, 9, 28, 11, 0, tzinfo=KST)
    end = dt.datetime(2026, 9, 29, 0, 0, tzinfo=KST)
    jobs = make_test_jobs(JobLog())
    first = IntegratedScheduler(SchedulerConfig(), storage, clock, jobs, data_dir=tmp_path,
                                events=telemetry.emit)  # fmt: skip
    with pytest.raises(SimulatedCrash):
        first.run(until=end)
    second = IntegratedScheduler(SchedulerConfig(), storage, clock, jobs, data_dir=tmp_path,
                                 events=telemetry.emit)  # fmt: skip
    second.run(until=end)
    telemetry.close()
    bodies = [body for _, body in receiver.posts]
    assert [b["kind"] for b in bodies] == ["crash_recovered"]  # a complete day: nothing else
    assert bodies[0]["title"] == "recovered trading after a crash: reconcile"


def test_a_raising_sink_never_stops_the_day(tmp_path: pathlib.Path) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("sink bug")

    storage = MemoryStorage()
    clock = FakeClock(dt.datetime(2026, 9, 28, 5, 30, tzinfo=KST))
    scheduler = IntegratedScheduler(SchedulerConfig(), storage, clock, make_test_jobs(JobLog()),
                                    data_dir=tmp_path, events=broken)  # fmt: skip
    scheduler.run(until=dt.datetime(2026, 9, 29, 0, 0, tzinfo=KST))
    assert {r.state.value for r in storage.list_jobs(DAY)} == {"done"}


# --- configuration ------------------------------------------------------------------------------


def _toml(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "hantu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_alert_and_metrics_settings_load_from_toml_and_env(tmp_path: pathlib.Path) -> None:
    config = _toml(
        tmp_path,
        '[alerts]\nevents = ["job_failed", "day_incomplete"]\nmin_severity = "WARNING"\n'
        'telegram_chat_id = "-100"\nsmtp_host = "127.0.0.1"\nemail_to = ["a@b.c"]\n'
        "[metrics]\nhttp_port = 9108\n",
    )
    settings = load_settings(config, {"HANTU_ALERT_RATE_PER_MINUTE": "6"})
    t = settings.telemetry
    assert t.alert_events == ("job_failed", "day_incomplete")
    assert t.alert_min_severity == "warning"
    assert t.alert_rate_per_minute == 6.0
    assert (t.telegram_chat_id, t.smtp_host, t.email_to) == ("-100", "127.0.0.1", ("a@b.c",))
    assert t.metrics_http_port == 9108
    assert t.textfile(settings.data_dir) == settings.data_dir / "metrics" / "hantu_sched.prom"


@pytest.mark.parametrize("key", ["telegram_bot_token", "webhook_url", "smtp_password"])
def test_alert_secrets_in_the_toml_file_are_refused(tmp_path: pathlib.Path, key: str) -> None:
    config = _toml(tmp_path, f'[alerts]\n{key} = "x"\n')
    with pytest.raises(SettingsError, match="never read from the configuration file"):
        load_settings(config, {})


def test_bad_alert_settings_are_one_line_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SettingsError, match=r"alerts\.events"):
        load_settings(_toml(tmp_path, '[alerts]\nevents = ["job_failed", "nope"]\n'), {})
    with pytest.raises(SettingsError, match=r"alerts\.min_severity"):
        load_settings(None, {"HANTU_ALERT_MIN_SEVERITY": "loud"})


def test_secrets_come_from_the_environment_then_the_credentials_file(
    tmp_path: pathlib.Path,
) -> None:
    creds = tmp_path / "creds.env"
    creds.write_text(
        f"KIS_APP_KEY=k\nKIS_APP_SECRET=s\nHANTU_ALERT_TELEGRAM_BOT_TOKEN={BOT_TOKEN}\n"
        "HANTU_ALERT_WEBHOOK_URL=http://127.0.0.1:1/from-file\n",
        encoding="utf-8",
    )
    creds.chmod(0o600)
    environ = {"HANTU_ALERT_WEBHOOK_URL": "http://127.0.0.1:1/from-env"}
    secrets = load_alert_secrets(creds, environ)
    assert secrets.telegram_bot_token == BOT_TOKEN
    assert secrets.webhook_url == "http://127.0.0.1:1/from-env"  # the environment wins
    assert BOT_TOKEN not in repr(secrets)
    settings = load_settings(
        _toml(tmp_path, '[alerts]\ntelegram_chat_id = "-1"\n'),
        {"HANTU_CREDENTIALS_FILE": str(creds)},
    )
    names = [c.name for c in make_channels(settings.telemetry, secrets)]
    assert names == ["webhook", "telegram"]
    assert make_channels(settings.telemetry, AlertSecrets()) == []


# --- end to end: the real client and a simulated day --------------------------------------------


def test_a_refused_token_alerts_even_when_the_retry_succeeds(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    clock = FakeClock(T0)
    fake = FakeKIS(clock=clock)
    fake.faults.add(Fault("http_5xx_envelope", path="/oauth2/tokenP", status=403, code="EGW00133"))
    app = fake.add_app()
    alerts = _dispatcher(WebhookNotifier(receiver.url))
    telemetry = Telemetry(clock=clock, alerts=alerts).start()
    with KISClient(
        app.app_key, app.app_secret, account=app.account, state_dir=tmp_path / "state",
        transport=fake.transport(), clock=clock, observer=telemetry.observe,
    ) as kis:  # fmt: skip
        assert kis.get_price("005930").price > 0  # the token manager waits out EGW00133
    telemetry.close()
    [(_, body)] = receiver.posts
    assert body["kind"] == "token_refused"
    assert body["fields"] == {"route": "account", "outcome": "EGW00133"}
    assert app.app_secret not in json.dumps(body) and app.app_key not in json.dumps(body)


def test_a_locked_stream_slot_alerts(receiver: Receiver, tmp_path: pathlib.Path) -> None:
    clock = FakeClock(T0)
    fake = FakeKIS(clock=clock)
    app = fake.add_app()
    alerts = _dispatcher(WebhookNotifier(receiver.url))
    telemetry = Telemetry(clock=clock, alerts=alerts).start()
    with KISClient(
        app.app_key, app.app_secret, account=app.account, state_dir=tmp_path / "state",
        transport=fake.transport(), clock=clock, observer=telemetry.observe,
        ws_url="ws://127.0.0.1:9", hts_id="hts1",
    ) as kis:  # fmt: skip
        holder = StreamLease(tmp_path / "state", kis.environment, app.app_key)
        holder.acquire()
        try:
            with pytest.raises(StreamSlotBusy), kis.stream():
                pass
        finally:
            holder.release()
    telemetry.close()
    assert [body["kind"] for _, body in receiver.posts] == ["stream_slot_locked"]


class _Faulty(TelemetryHooks):
    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        fake = super().make_fake(clock, seed, universe_size)
        fake.faults.add(Fault("malformed_json", path="/uapi/domestic-stock/v1/trading/order-cash"))
        return fake


def test_a_simulated_day_alerts_the_unknown_order_the_recovery_and_the_summary(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    alerts = _dispatcher(WebhookNotifier(receiver.url), rate_per_minute=1000)
    telemetry = Telemetry(clock=FakeClock(T0), alerts=alerts).start()
    result = simulate_day(
        dt.date(2026, 6, 4), tmp_path / "sim", restart_at=[dt.time(11, 0)], universe_size=40,
        hooks=_Faulty(telemetry),
    )  # fmt: skip
    telemetry.close()
    assert result.complete
    bodies = [body for _, body in receiver.posts]
    assert [b["kind"] for b in bodies] == [
        "order_outcome_unknown",
        "order_reconciled",
        "crash_recovered",
        "performance",
    ]
    unknown, reconciled, recovered, performance = bodies
    assert unknown["severity"] == "critical" and unknown["fields"]["side"] == "buy"
    assert reconciled["fields"]["result"] == "found" and reconciled["severity"] == "info"
    assert reconciled["fields"]["code"] == unknown["fields"]["code"]
    assert recovered["title"] == "recovered trading after a crash: reconcile"
    assert recovered["at"].startswith("2026-06-04T11:00")  # stamped on the simulated clock
    assert performance["title"] == "performance 2026-06-04"
