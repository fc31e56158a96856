"""The no-I/O core: header building, attempt classification, retry policy, pagination."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kisclient import (
    AuthError,
    BadRequest,
    BusinessRejection,
    GatewayError,
    KISConnectionError,
    MarketClosed,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    TokenError,
    TokenIssueThrottled,
    WrongEnvironment,
)
from kisclient._codes import CODES, Kind
from kisclient._config import ENDPOINTS
from kisclient._core import (
    Attempt,
    Call,
    Phase,
    RetryBudget,
    RetryPolicy,
    attempt_from_exception,
    build_headers,
    classify,
    next_page,
)
from kisclient._errors import KISError

READ = Call(ENDPOINTS["inquire_price"], "FHKST01010100", params={"FID_INPUT_ISCD": "005930"})
ORDER = Call(
    ENDPOINTS["order_cash"],
    "TTTC0012U",
    body={"PDNO": "005930"},
    request={"side": "buy", "code": "005930", "qty": 1, "price": None, "tr_id": "TTTC0012U"},
)


def envelope(rt_cd: str, msg_cd: str, msg1: str = "msg") -> str:
    return json.dumps({"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1, "output": {}})


def responded(status: int, text: str | None) -> Attempt:
    return Attempt(number=1, phase=Phase.RESPONDED, status=status, text=text)


# (call, attempt, action, error class or None, refresh_token, penalize)
ROWS: list[tuple[str, Call, Attempt, str, type[KISError] | None, bool, bool]] = [
    ("read ok", READ, responded(200, envelope("0", "MCA00000")), "success", None, False, False),
    ("order ok", ORDER, responded(200, envelope("0", "APBK0013")), "success", None, False, False),
    (
        "token body without envelope",
        READ,
        responded(200, '{"access_token": "x"}'),
        "success",
        None,
        False,
        False,
    ),
    (
        "rate limit 500",
        READ,
        responded(500, envelope("1", "EGW00201")),
        "retry",
        RateLimited,
        False,
        True,
    ),
    (
        "rate limit 200 (reported once)",
        READ,
        responded(200, envelope("1", "EGW00201")),
        "retry",
        RateLimited,
        False,
        True,
    ),
    (
        "rate limit on order retries",
        ORDER,
        responded(500, envelope("1", "EGW00201")),
        "retry",
        RateLimited,
        False,
        True,
    ),
    (
        "expired token",
        READ,
        responded(500, envelope("1", "EGW00123")),
        "retry",
        TokenError,
        True,
        False,
    ),
    (
        "invalid token",
        READ,
        responded(500, envelope("1", "EGW00121")),
        "retry",
        TokenError,
        True,
        False,
    ),
    (
        "token not found",
        ORDER,
        responded(500, envelope("1", "EGW00122")),
        "retry",
        TokenError,
        True,
        False,
    ),
    (
        "token expired on order",
        ORDER,
        responded(200, envelope("1", "EGW00123")),
        "retry",
        TokenError,
        True,
        False,
    ),
    (
        "paper key on real host",
        READ,
        responded(500, envelope("1", "EGW02004")),
        "fail",
        WrongEnvironment,
        False,
        False,
    ),
    (
        "real TR on paper host",
        READ,
        responded(500, envelope("1", "EGW00213")),
        "fail",
        WrongEnvironment,
        False,
        False,
    ),
    (
        "no such service",
        READ,
        responded(200, envelope("1", "OPSQ0002")),
        "fail",
        WrongEnvironment,
        False,
        False,
    ),
    (
        "bad app key",
        READ,
        responded(500, envelope("1", "EGW00103")),
        "fail",
        AuthError,
        False,
        False,
    ),
    (
        "paper market closed",
        ORDER,
        responded(200, envelope("1", "40580000")),
        "fail",
        MarketClosed,
        False,
        False,
    ),
    (
        "business reject rt_cd 7",
        ORDER,
        responded(200, envelope("7", "APAC0081")),
        "fail",
        BusinessRejection,
        False,
        False,
    ),
    (
        "unknown code at 200",
        READ,
        responded(200, envelope("7", "ZZZZ9999")),
        "fail",
        BusinessRejection,
        False,
        False,
    ),
    (
        "unknown code at 500 read",
        READ,
        responded(500, envelope("1", "ZZZZ9999")),
        "retry",
        GatewayError,
        False,
        False,
    ),
    (
        "unknown code at 500 order",
        ORDER,
        responded(500, envelope("1", "ZZZZ9999")),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
    (
        "transient read",
        READ,
        responded(500, envelope("1", "EGW00202")),
        "retry",
        ServiceUnavailable,
        False,
        False,
    ),
    (
        "transient order at 500",
        ORDER,
        responded(500, envelope("1", "EGW00202")),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
    (
        "paper delay on order at 200",
        ORDER,
        responded(200, envelope("1", "90020000")),
        "fail",
        ServiceUnavailable,
        False,
        False,
    ),
    (
        "bare 500 read",
        READ,
        responded(500, "<html>oops</html>"),
        "retry",
        GatewayError,
        False,
        False,
    ),
    (
        "bare 502 order",
        ORDER,
        responded(502, "Bad Gateway"),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
    (
        "malformed json read",
        READ,
        responded(200, '{"rt_cd": "0", "out'),
        "retry",
        GatewayError,
        False,
        False,
    ),
    (
        "malformed json order",
        ORDER,
        responded(200, '{"rt_cd": "0"'),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
    ("empty 200 read", READ, responded(200, ""), "retry", GatewayError, False, False),
    ("404 without envelope", READ, responded(404, "not found"), "fail", BadRequest, False, False),
    (
        "400 with unknown code",
        READ,
        responded(400, envelope("1", "ZZZZ0000")),
        "fail",
        BadRequest,
        False,
        False,
    ),
    (
        "bad request code",
        READ,
        responded(500, envelope("1", "OPSQ9999")),
        "fail",
        BadRequest,
        False,
        False,
    ),
    (
        "token throttled shape",
        READ,
        responded(403, json.dumps({"error_code": "EGW00133", "error_description": "x"})),
        "retry",
        TokenIssueThrottled,
        False,
        False,
    ),
    (
        "bad secret shape",
        READ,
        responded(403, json.dumps({"error_code": "EGW00105", "error_description": "x"})),
        "fail",
        AuthError,
        False,
        False,
    ),
    (
        "unknown token error shape",
        READ,
        responded(403, json.dumps({"error_code": "EGW99999"})),
        "fail",
        AuthError,
        False,
        False,
    ),
    (
        "connect error read",
        READ,
        attempt_from_exception(1, httpx.ConnectError("refused")),
        "retry",
        KISConnectionError,
        False,
        False,
    ),
    (
        "connect error order retries",
        ORDER,
        attempt_from_exception(1, httpx.ConnectError("refused")),
        "retry",
        KISConnectionError,
        False,
        False,
    ),
    (
        "read timeout read",
        READ,
        attempt_from_exception(1, httpx.ReadTimeout("slow")),
        "retry",
        OutcomeUnknown,
        False,
        False,
    ),
    (
        "read timeout order",
        ORDER,
        attempt_from_exception(1, httpx.ReadTimeout("slow")),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
    (
        "dropped after send order",
        ORDER,
        attempt_from_exception(1, httpx.RemoteProtocolError("closed")),
        "fail",
        OrderOutcomeUnknown,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("call", "attempt", "action", "error", "refresh", "penalize"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_classification_table(
    call: Call,
    attempt: Attempt,
    action: str,
    error: type[KISError] | None,
    refresh: bool,
    penalize: bool,
) -> None:
    verdict = classify(call, attempt)
    assert verdict.action == action
    if error is None:
        assert verdict.error is None
        assert verdict.data is not None
    else:
        assert type(verdict.error) is error
    assert verdict.refresh_token is refresh
    assert (verdict.penalize_s > 0) is penalize


def test_errors_keep_codes_status_tr_id_and_body() -> None:
    text = envelope("1", "EGW00201", "초당 거래건수를 초과하였습니다.")
    verdict = classify(READ, responded(500, text))
    error = verdict.error
    assert error is not None
    assert (error.msg_cd, error.http_status, error.tr_id, error.raw_body) == (
        "EGW00201",
        500,
        "FHKST01010100",
        text,
    )
    assert "EGW00201" in str(error) and "HTTP 500" in str(error)
    assert error.raw_body is not None and error.raw_body not in repr(error)


def test_paper_messages_are_stripped() -> None:
    verdict = classify(
        ORDER, responded(200, envelope("1", "40580000", "모의투자 장종료 입니다.     "))
    )
    assert verdict.error is not None and verdict.error.msg1 == "모의투자 장종료 입니다."


def test_order_outcome_unknown_carries_the_request() -> None:
    verdict = classify(ORDER, attempt_from_exception(1, httpx.ReadTimeout("slow")))
    assert isinstance(verdict.error, OrderOutcomeUnknown)
    assert verdict.error.request["code"] == "005930"
    assert verdict.error.request["side"] == "buy"


def test_every_table_code_classifies_without_crashing() -> None:
    for code, info in CODES.items():
        for status in (200, 500):
            verdict = classify(READ, responded(status, envelope("1", code)))
            if info.kind is Kind.SUCCESS:
                assert verdict.action == "fail"  # a success code inside a failure envelope
            assert verdict.action in ("retry", "fail")
            assert verdict.error is not None and verdict.error.msg_cd == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.builds(
        lambda rt, cd, extra: json.dumps({"rt_cd": rt, "msg_cd": cd, **extra}),
        st.sampled_from(["0", "1", "7", "", None, 0]),
        st.sampled_from([*CODES, "", "ZZZ", None]),
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
    st.builds(lambda code: json.dumps({"error_code": code}), st.sampled_from([*CODES, "X"])),
    json_values.map(json.dumps),
)


@given(
    status=st.integers(min_value=100, max_value=599),
    body=bodies,
    is_order=st.booleans(),
    phase=st.sampled_from(list(Phase)),
)
def test_property_classification_is_total(
    status: int, body: str | None, is_order: bool, phase: Phase
) -> None:
    call = ORDER if is_order else READ
    error = {Phase.NOT_SENT: httpx.ConnectError("x"), Phase.MAYBE_SENT: httpx.ReadError("x")}.get(
        phase
    )
    attempt = Attempt(
        number=1,
        phase=phase,
        status=status if phase is Phase.RESPONDED else None,
        text=body if phase is Phase.RESPONDED else None,
        error=error,
    )
    verdict = classify(call, attempt)
    assert verdict.action in ("success", "retry", "fail")
    assert (verdict.error is None) == (verdict.action == "success")
    if is_order and verdict.action == "retry":
        # An order is only ever retried when it certainly did not reach the order engine.
        assert verdict.refresh_token or verdict.penalize_s > 0 or phase is Phase.NOT_SENT


def test_headers_are_rebuilt_from_the_token_and_caller_cannot_override_auth() -> None:
    headers = build_headers(READ, app_key="k", app_secret="s", authorization="Bearer t1")
    assert headers["authorization"] == "Bearer t1"
    assert headers["tr_id"] == "FHKST01010100"
    assert headers["custtype"] == "P"
    with pytest.raises(ValueError, match=r"(?i)authorization"):
        Call(ENDPOINTS["inquire_price"], "FHKST01010100", headers={"Authorization": "Bearer evil"})
    with pytest.raises(ValueError, match=r"(?i)appsecret"):
        Call(ENDPOINTS["inquire_price"], "FHKST01010100", headers={"AppSecret": "x"})
    with_cont = Call(
        ENDPOINTS["inquire_price"], "FHKST01010100", headers={"tr_cont": "N", "hashkey": "h"}
    )
    built = build_headers(with_cont, app_key="k", app_secret="s", authorization="Bearer t")
    assert built["tr_cont"] == "N" and built["hashkey"] == "h"


def test_token_endpoint_sends_credentials_in_body_only() -> None:
    token_call = Call(ENDPOINTS["token"], body={"appkey": "k"})
    headers = build_headers(token_call, app_key="k", app_secret="s", authorization=None)
    assert "appsecret" not in headers and "authorization" not in headers
    hashkey = build_headers(
        Call(ENDPOINTS["hashkey"], body={}), app_key="k", app_secret="s", authorization=None
    )
    assert hashkey["appkey"] == "k" and "authorization" not in hashkey


@pytest.mark.parametrize(
    ("tr_cont", "more"), [("F", True), ("M", True), ("D", False), ("E", False), ("", False)]
)
def test_next_page_follows_tr_cont_and_copies_cursors(tr_cont: str, more: bool) -> None:
    call = Call(
        ENDPOINTS["inquire_balance"],
        "TTTC8434R",
        params={"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""},
    )
    body: dict[str, Any] = {"ctx_area_fk100": "FK ", "ctx_area_nk100": "NK"}
    following = next_page(call, {"tr_cont": tr_cont}, body)
    if not more:
        assert following is None
        return
    assert following is not None
    assert following.headers["tr_cont"] == "N"
    assert following.params == {"CTX_AREA_FK100": "FK ", "CTX_AREA_NK100": "NK"}


def test_retry_delays_without_jitter_are_exponential_capped_and_respect_server_wait() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_cap_s=3.0, jitter=False)
    rng = random.Random(0)
    assert [policy.delay(n, 0.0, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, 1.5, rng) == 1.5


def test_full_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_cap_s=4.0)
    rng = random.Random(1)
    delays = [policy.delay(3, 0.0, rng) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100


def test_retry_budget_spends_and_refunds() -> None:
    budget = RetryBudget(capacity=10)
    assert budget.try_spend(5) and budget.try_spend(5)
    assert not budget.try_spend(5)
    assert budget.try_spend(0)
    for _ in range(20):
        budget.refund()
    assert budget.available == 10
