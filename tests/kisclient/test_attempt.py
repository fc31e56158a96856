"""The attempt flow: the pure retry decision, the code table the classifier reads, the shared
retry budget under real threads, and what the flow makes of the real client's failures (through
the fake KIS): a refused token connection, an unreadable success, short tracebacks, the
effective target in the log, and every request counted in a batch."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import random
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import kisclient
from kis_support import async_client, make_fake, sync_client
from kisclient import (
    GatewayError,
    KISConnectionError,
    KISError,
    OrderOutcomeUnknown,
    ReconcileOutcome,
    RetryPolicy,
)
from kisclient._attempt import retry_delay
from kisclient._codes import CODES, Kind
from kisclient._config import ENDPOINTS
from kisclient._core import Attempt, Call, Phase, RetryBudget, Verdict, classify
from kisclient.testing import FakeKIS, Fault

PRICE_PATH = ENDPOINTS["inquire_price"].path
ORDER_PATH = ENDPOINTS["order_cash"].path
BALANCE_PATH = ENDPOINTS["inquire_balance"].path
TOKEN_PATH = ENDPOINTS["token"].path
PACKAGE = pathlib.Path(kisclient.__file__).resolve().parent

READ = Call(ENDPOINTS["inquire_price"], "FHKST01010100", params={"FID_INPUT_ISCD": "005930"})


# --- the pure retry decision ---------------------------------------------------------------------


def _retry(wait_s: float = 0.0, *, refresh: bool = False) -> Verdict:
    return Verdict("retry", error=GatewayError("x"), wait_s=wait_s, refresh_token=refresh)


def test_retry_delay_stops_after_max_attempts_and_at_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=3, deadline_s=10.0, backoff_base_s=0.2, jitter=False)
    rng = random.Random(0)
    assert retry_delay(policy, 1, _retry(), 0.0, rng) == pytest.approx(0.2)
    assert retry_delay(policy, 2, _retry(), 0.0, rng) == pytest.approx(0.4)
    assert retry_delay(policy, 3, _retry(), 0.0, rng) is None
    assert retry_delay(policy, 1, _retry(), 10.0, rng) is None
    # a refused token is not the call's fault: retried past the deadline, without waiting
    assert retry_delay(policy, 1, _retry(refresh=True), 12.0, rng) == 0.0


def test_retry_delay_honours_the_code_wait_and_cuts_it_to_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=5, deadline_s=10.0, backoff_base_s=0.2, jitter=False)
    rng = random.Random(0)
    assert retry_delay(policy, 1, _retry(1.0), 0.0, rng) == pytest.approx(1.0)
    assert retry_delay(policy, 1, _retry(60.0), 7.5, rng) == pytest.approx(2.5)


# --- the classifier applies the table users see --------------------------------------------------


@pytest.mark.parametrize("info", list(CODES.values()), ids=list(CODES))
def test_a_read_is_retried_exactly_when_its_code_says_retryable(info: Any) -> None:
    body = json.dumps({"rt_cd": "1", "msg_cd": info.code, "msg1": info.message, "output": {}})
    verdict = classify(READ, Attempt(number=1, phase=Phase.RESPONDED, status=200, text=body))
    assert (verdict.action == "retry") is info.retryable
    if info.kind is Kind.RATE_LIMITED:
        assert verdict.penalize_s == info.wait_s  # the limiter holds, for every caller
    elif verdict.action == "retry":
        assert verdict.wait_s == info.wait_s


def test_token_throttling_is_retryable_after_its_minute() -> None:
    info = kisclient.lookup_code("EGW00133")
    assert info is not None and info.retryable and info.wait_s == 60.0
    body = json.dumps({"error_code": "EGW00133", "error_description": info.message})
    token_call = Call(ENDPOINTS["token"], body={"grant_type": "client_credentials"})
    verdict = classify(token_call, Attempt(1, Phase.RESPONDED, status=403, text=body))
    assert verdict.action == "retry" and verdict.wait_s == 60.0
    assert isinstance(verdict.error, kisclient.TokenIssueThrottled)


# --- the retry budget is shared by threads -------------------------------------------------------


def _spend_from_threads(budget: RetryBudget) -> int:
    spent = [0] * 8
    start = threading.Barrier(8)

    def spend(index: int) -> None:
        start.wait()
        for _ in range(1000):
            if budget.try_spend(1):
                spent[index] += 1
            budget.refund(0)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(spent)


def test_retry_budget_is_exact_under_real_threads() -> None:
    # Without its lock the budget over-spends in about every other round here.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for _ in range(5):
            budget = RetryBudget(capacity=4000)
            assert _spend_from_threads(budget) == 4000
            assert budget.available == 0
    finally:
        sys.setswitchinterval(interval)


def test_a_success_refunds_what_its_retries_cost(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path, retry_budget=100) as kis:
        kis.get_price("005930")
        fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=2))
        kis.get_price("000660")  # two retries of a bare 5xx, 5 each, then a success
        assert kis._budget.available == 100
        fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=5))
        with pytest.raises(GatewayError):
            kis.get_price("005930")
        assert kis._budget.available == 80  # four retries spent, nothing refunded


# --- a refused connection on the token endpoint --------------------------------------------------


def test_first_call_survives_a_refused_token_connection(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault(kind="connect_error", path=TOKEN_PATH, times=2))
    with sync_client(fake, app, clock, tmp_path) as kis:
        started = clock.monotonic()
        quote = kis.get_price("005930")
        waited = clock.monotonic() - started
    assert quote.code == "005930"
    assert kis.token_issuances == 1 and fake.stats.token_issuances(app.app_key) == 1
    # nothing was sent, so no 1-per-minute wait: two short retry waits only
    assert waited < 5.0


async def test_first_async_call_survives_a_refused_token_connection(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    fake.faults.add(Fault(kind="connect_error", path=TOKEN_PATH, times=1))
    async with async_client(fake, app, clock, tmp_path) as kis:
        started = clock.monotonic()
        balance = await kis.get_balance()
        waited = clock.monotonic() - started
    assert balance is not None
    assert fake.stats.token_issuances(app.app_key) == 1
    assert waited < 5.0


def test_a_token_endpoint_that_stays_unreachable_is_not_sent(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault(kind="connect_error", path=TOKEN_PATH, times=100))
    with sync_client(fake, app, clock, tmp_path) as kis, pytest.raises(KISConnectionError) as info:
        kis.get_price("005930")
    assert isinstance(info.value, kisclient.RequestNotSent)
    assert info.value.attempts == 5
    assert fake.stats.requests(path=PRICE_PATH) == 0
    assert fake.stats.token_issuances(app.app_key) == 0


# --- an answer that cannot be read is still a KISError -------------------------------------------


class Rewriting(httpx.BaseTransport):
    """The fake's own transport, with the JSON answers of one path rewritten on the way back
    (the fake processes the request exactly as before: an order executes)."""

    def __init__(self, fake: FakeKIS, path: str, rewrite: Callable[[dict[str, Any]], None]) -> None:
        self._inner = fake.transport()
        self._path = path
        self._rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path != self._path:
            return response
        body = json.loads(response.read())
        self._rewrite(body)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, json=body)


def _drop_order_number(body: dict[str, Any]) -> None:
    body["output"] = {}


def test_an_accepted_order_without_an_order_number_is_an_unknown_outcome(
    tmp_path: pathlib.Path,
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    transport = Rewriting(fake, ORDER_PATH, _drop_order_number)
    with kisclient.KISClient(
        app.app_key,
        app.app_secret,
        env="real",
        account=app.account,
        state_dir=tmp_path,
        transport=transport,
        clock=clock,
    ) as kis:
        with pytest.raises(KISError) as info:
            kis.order_cash("buy", "005930", 3, 70000)
        error = info.value
        assert isinstance(error, OrderOutcomeUnknown)
        assert not isinstance(error, ValueError)
        assert error.request["code"] == "005930" and error.request["sent_at"]
        assert error.http_status == 200
        answer = kis.reconcile_order(error, wait=False)
    assert answer.outcome is ReconcileOutcome.FOUND
    assert answer.order is not None and answer.order.quantity == 3


def test_a_read_whose_success_cannot_be_read_is_a_gateway_error(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")

    def drop_summary(body: dict[str, Any]) -> None:
        body["output2"] = []

    transport = Rewriting(fake, BALANCE_PATH, drop_summary)
    with (
        kisclient.KISClient(
            app.app_key,
            app.app_secret,
            account=app.account,
            state_dir=tmp_path,
            transport=transport,
            clock=clock,
        ) as kis,
        pytest.raises(KISError) as info,
    ):
        kis.get_balance()
    assert type(info.value) is GatewayError
    assert "could not" not in str(info.value) and "unexpected answer" in str(info.value)


# --- tracebacks: the user's call, the client method, the raise -----------------------------------


def _frames_in_kisclient(error: BaseException) -> list[str]:
    frames = traceback.extract_tb(error.__traceback__)
    return [f.name for f in frames if pathlib.Path(f.filename).resolve().is_relative_to(PACKAGE)]


def test_a_failing_call_has_a_short_traceback(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=100))
    with sync_client(fake, app, clock, tmp_path) as kis, pytest.raises(GatewayError) as info:
        kis.get_price("005930")
    assert info.value.attempts == 5
    assert _frames_in_kisclient(info.value) == ["get_price", "_run"]
    assert info.value.__cause__ is None and info.value.__context__ is None


async def test_a_failing_async_call_has_a_short_traceback(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=100))
    async with async_client(fake, app, clock, tmp_path) as kis:
        with pytest.raises(GatewayError) as info:
            await kis.get_price("005930")
    assert _frames_in_kisclient(info.value) == ["get_price", "_run"]


def test_an_escape_hatch_failure_has_a_short_traceback(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=100))
    with sync_client(fake, app, clock, tmp_path) as kis, pytest.raises(GatewayError) as info:
        kis.request("GET", PRICE_PATH, tr_id="FHKST01010100", params={"FID_INPUT_ISCD": "005930"})
    assert len(_frames_in_kisclient(info.value)) <= 2


# --- the effective target is logged once ---------------------------------------------------------


def test_the_client_logs_its_effective_target_not_secrets(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    with caplog.at_level(logging.INFO, logger="kisclient"), sync_client(fake, app, clock, tmp_path):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "kisclient"]
    target = [line for line in lines if line.startswith("kisclient: env paper")]
    assert len(target) == 1
    assert (
        kisclient.default_base_url("paper") in target[0] and "transport FakeTransport" in target[0]
    )
    assert "nominal" in target[0]
    for line in lines:
        assert app.app_key not in line and app.app_secret not in line


def test_without_a_custom_transport_the_target_is_logged_at_debug(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="kisclient"):
        kisclient.KISClient("key", "secret", env="paper", state_dir=tmp_path).close()
    (record,) = [r for r in caplog.records if r.getMessage().startswith("kisclient: env")]
    assert record.levelno == logging.DEBUG
    assert "openapivts.koreainvestment.com" in record.getMessage()


# --- a batch counts every request it sent --------------------------------------------------------


def test_a_batch_counts_retries_and_failed_requests(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=2))
    with sync_client(fake, app, clock, tmp_path) as kis:
        kis.get_balance()  # the token first, so only quotes are counted
        before = fake.stats.requests(path=PRICE_PATH)
        batch = kis.get_prices(["005930", "000660", "12"])
    sent = fake.stats.requests(path=PRICE_PATH) - before
    assert batch.requests == sent == 4
    assert set(batch.succeeded) == {"005930", "000660"}
    failure = batch.failed["12"]
    assert isinstance(failure, kisclient.InvalidStockCode)


async def test_an_async_batch_failure_is_a_kis_error_and_counted(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=100))
    async with async_client(fake, app, clock, tmp_path, retry_budget=1000) as kis:
        await kis.get_balance()
        batch = await kis.get_prices(["005930"])
    assert isinstance(batch.failed["005930"], KISError)
    assert batch.requests == 5


def test_both_shells_are_driven_by_one_attempt_flow() -> None:
    # the shells only perform effects: no retry loop of their own
    for module in ("_client.py", "_async_client.py"):
        source = (PACKAGE / module).read_text(encoding="utf-8")
        assert "classify(" not in source and "retry_delay(" not in source
        assert "tenacity" not in source
    assert asyncio.iscoroutinefunction(kisclient.AsyncKISClient._send)
