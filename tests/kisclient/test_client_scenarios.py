"""The client scenarios, each run against both shells (``[sync]`` and ``[async]``).

Every client behaviour that is not about sync/async mechanics lives here and runs through the
fake KIS server against :class:`~kisclient.KISClient` and :class:`~kisclient.AsyncKISClient`
alike (see ``client_shells`` for the driver). Shell-specific mechanics are elsewhere: async
concurrency and cancellation in ``test_client_async.py``, a sync client shared by threads in
``test_client_sync.py``, signature parity and the two shells sharing one token and one rate
budget in ``test_client_shells.py``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import math
import pathlib
import sys
from pathlib import Path

import pytest

from kis_support import SESSION_TIME, make_fake
from kisclient import (
    AsyncKISClient,
    AuthError,
    BadRequest,
    Balance,
    ConfigurationError,
    EndpointUnavailable,
    FakeClock,
    GatewayError,
    InvalidStockCode,
    KISClient,
    KISError,
    MarketClosed,
    OrderOutcomeUnknown,
    RateLimited,
    ReconcileOutcome,
    RetryBudgetExhausted,
    RetryPolicy,
    Window,
    WrongEnvironment,
)
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, FakeKISServer, Fault, FaultKind

sys.path.append(str(Path(__file__).parent))
from client_shells import SHELLS, ClientDriver, Shell

PRICE_PATH = ENDPOINTS["inquire_price"].path
ORDER_PATH = ENDPOINTS["order_cash"].path


@pytest.fixture(params=SHELLS, name="shell")
def _shell(request: pytest.FixtureRequest) -> Shell:
    """Each scenario once with the sync client and once with the async one."""
    kind = request.param
    assert kind in SHELLS
    return Shell(kind)


def kis_holdings(fake: FakeKIS, app_key: str) -> dict[str, int]:
    """The fake's non-zero holdings of *app_key*."""
    return {code: qty for code, qty in fake.holdings(app_key).items() if qty}


def test_driver_covers_the_public_surface(shell: Shell, tmp_path: pathlib.Path) -> None:
    # a member added to the clients must be added to the driver too, or it escapes the suite
    public = {name for name in dir(KISClient) if not name.startswith("_")}
    driven = {name for name in dir(ClientDriver) if not name.startswith("_")}
    # from_env is Shell.from_env; stream() has its own two-shell suite (test_stream.py)
    public -= {"from_env", "stream"}
    assert public <= driven
    for name in public:
        member = inspect.getattr_static(KISClient, name)
        twin = inspect.getattr_static(ClientDriver, name)
        if isinstance(member, property):
            assert isinstance(twin, property), name
        else:
            assert list(inspect.signature(member).parameters) == list(
                inspect.signature(twin).parameters
            ), name
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        assert kis.kind == shell.kind
        assert type(kis.client) is (KISClient if shell.kind == "sync" else AsyncKISClient)


# --- quotes ---


def test_get_price_returns_the_fake_price_with_one_issuance(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        quote = kis.get_price("005930")
        again = kis.get_price("A005930")
    assert quote.code == "005930"
    assert quote.price == fake.price_of("005930") == again.price
    assert fake.stats.token_issuances(app.app_key) == 1


def test_invalid_code_sends_nothing(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis, pytest.raises(InvalidStockCode):
        kis.get_price("00593o")
    assert fake.stats.requests(path=PRICE_PATH) == 0


def test_get_prices_uses_the_30_code_endpoint_on_real(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:95]
    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices([*codes, codes[0], "ABCDEF"])
    assert set(batch.succeeded) == set(codes)
    assert all(batch.succeeded[c].price == fake.price_of(c) for c in codes)
    assert list(batch.failed) == ["ABCDEF"]
    assert isinstance(batch.failed["ABCDEF"], InvalidStockCode)
    assert fake.stats.requests(path=ENDPOINTS["intstock_multprice"].path) == math.ceil(95 / 30)
    assert fake.stats.requests(path=PRICE_PATH) == 0


def test_get_prices_per_code_on_paper_with_progress(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    codes = fake.universe[:5]
    seen: list[tuple[int, int]] = []
    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices(codes, progress=lambda done, total: seen.append((done, total)))
        with pytest.raises(EndpointUnavailable):
            kis.get_prices(codes, multi=True)
    assert len(batch.succeeded) == 5 and not batch.failed
    assert fake.stats.requests(path=PRICE_PATH) == 5
    assert seen[-1] == (5, 5)
    # paper allows 1 request per second: five quotes take at least four seconds of fake time
    assert batch.elapsed_s >= 4.0
    assert fake.stats.rate_limited(app.app_key) == 0


def test_batch_per_code_on_paper_and_multi_on_real(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake(rate_limits={"real": 18, "paper": 5})
    real, paper = fake.add_app(env="real"), fake.add_app(env="paper")
    codes = fake.universe[:40]
    with shell.connect(fake, real, clock, tmp_path) as kis:
        multi = kis.get_prices(codes)
    with shell.connect(fake, paper, clock, tmp_path, rate_limits=None) as kis:
        single = kis.get_prices(codes[:10])
    assert {c: q.price for c, q in multi.succeeded.items()} == {c: fake.price_of(c) for c in codes}
    assert fake.stats.requests(path=ENDPOINTS["intstock_multprice"].path) == 2
    assert len(single.succeeded) == 10
    # one inquire-price per code (EGW00201 answers, retried, aside)
    assert fake.stats.requests(path=PRICE_PATH) - fake.stats.rate_limited(paper.app_key) == 10


@pytest.mark.parametrize("multi", [True, False])
def test_an_unlisted_code_fails_alone_either_way(
    shell: Shell, tmp_path: pathlib.Path, multi: bool
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    unlisted = "999990"
    assert unlisted not in fake.universe
    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices(["005930", unlisted], multi=multi)
    assert list(batch.succeeded) == ["005930"]
    assert isinstance(batch.failed[unlisted], BadRequest)


def test_partial_failure_never_aborts_the_batch(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:20]
    fake.faults.add(Fault("http_5xx_envelope", path=PRICE_PATH, code="EGW00205", times=3))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices([*codes, "bad!", codes[1]], multi=False, concurrency=4)
    assert set(batch.succeeded) | set(batch.failed) == {*codes, "bad!"}
    assert isinstance(batch.failed.pop("bad!"), InvalidStockCode)
    assert len(batch.failed) == 3
    assert all(isinstance(e, WrongEnvironment) for e in batch.failed.values())
    assert all(q.price == fake.price_of(c) for c, q in batch.succeeded.items())
    # PriceBatch.requests counts every request sent, the failed ones included
    assert batch.requests == fake.stats.requests(path=PRICE_PATH) == len(codes)


def test_5xx_storm_every_code_settles_correctly(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:60]
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=70))
    fake.faults.add(Fault("http_5xx_envelope", path=PRICE_PATH, code="EGW00202", times=20))
    with shell.connect(fake, app, clock, tmp_path, retry_budget=10_000) as kis:
        batch = kis.get_prices(codes, multi=False, concurrency=6)
    assert set(batch.succeeded) | set(batch.failed) == set(codes)
    assert not set(batch.succeeded) & set(batch.failed)
    for code, quote in batch.succeeded.items():
        assert quote.price == fake.price_of(code)
    assert all(isinstance(e, KISError) for e in batch.failed.values())
    # PriceBatch.requests counts every request sent: the 90 that met a fault (no code succeeds
    # before they are spent) and one answered request per code that succeeded
    assert batch.requests == fake.stats.requests(path=PRICE_PATH) == len(batch.succeeded) + 90


@pytest.mark.loopback
def test_loopback_batch(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake = FakeKIS(seed=3, rate_limits={"real": 0, "paper": 0})
    app = fake.add_app(env="real")
    with (
        FakeKISServer(fake) as server,
        shell.open(
            app.app_key,
            app.app_secret,
            env="real",
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
        ) as kis,
    ):
        batch = kis.get_prices(fake.universe[:25], multi=False, concurrency=5)
    assert {c: q.price for c, q in batch.succeeded.items()} == {
        c: fake.price_of(c) for c in fake.universe[:25]
    }


# --- the quote cache ---


def test_quote_cache_answers_before_the_network(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path, quote_cache_ttl=5.0) as kis:
        kis.get_price("005930")
        kis.get_price("005930")
        clock.advance(6)
        kis.get_price("005930")
        assert (kis.quote_cache.hits, kis.quote_cache.misses) == (1, 2)
    assert fake.stats.requests(path=PRICE_PATH) == 2


def test_cached_quotes_age_across_batches(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path, quote_cache_ttl=5.0) as kis:
        kis.get_prices(["005930"], multi=False)
        clock.advance(3)
        kis.get_prices(["005930"], multi=False)  # a hit: it must not make the entry younger
        clock.advance(3)
        kis.get_prices(["005930"], multi=False)  # six seconds after the fetch: a miss
        assert (kis.quote_cache.hits, kis.quote_cache.misses) == (1, 2)
    assert fake.stats.requests(path=PRICE_PATH) == 2


def test_cache_first_lookup_counts_hits(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:10]
    with shell.connect(fake, app, clock, tmp_path, quote_cache_ttl=30.0) as kis:
        kis.get_prices(codes, multi=False)
        again = kis.get_prices(codes, multi=False)
        assert kis.quote_cache.hits == 10
    assert len(again.succeeded) == 10
    assert fake.stats.requests(path=PRICE_PATH) == 10


# --- daily prices and the balance ---


def test_daily_prices_page_past_100_rows(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    start, end = dt.date(2025, 11, 1), dt.date(2026, 11, 25)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        bars = kis.get_daily_prices("005930", start, end)
    dates = [b.date for b in bars]
    assert dates == sorted(set(dates))
    assert dates[0] >= start and dates[-1] <= end
    assert len(bars) > 250  # about a year of weekdays: needs three calls of at most 100 rows
    assert fake.stats.requests(path=ENDPOINTS["inquire_daily_itemchartprice"].path) >= 3


def test_empty_balance_is_not_a_failure(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        balance = kis.get_balance()
    assert isinstance(balance, Balance)
    assert balance.is_empty
    assert balance.summary.cash > 0


@pytest.mark.parametrize(("env", "page"), [("real", 50), ("paper", 20)])
def test_balance_reads_every_page(
    shell: Shell, tmp_path: pathlib.Path, env: str, page: int
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env=env)
    holdings = {code: i + 1 for i, code in enumerate(fake.universe[: page * 2 + 3])}
    fake.seed_holdings(app.app_key, holdings)
    with shell.connect(fake, app, clock, tmp_path) as kis:
        balance = kis.get_balance()
    assert {h.code: h.quantity for h in balance.holdings} == holdings
    assert fake.stats.requests(path=ENDPOINTS["inquire_balance"].path) == 3


def test_failed_balance_raises_instead_of_returning_empty(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=ENDPOINTS["inquire_balance"].path, times=50))
    with shell.connect(fake, app, clock, tmp_path) as kis, pytest.raises(GatewayError):
        kis.get_balance()


# --- retries, budgets and rate limits ---


def test_bounded_retries_with_exact_delays(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=50))
    policy = RetryPolicy(max_attempts=4, backoff_base_s=0.2, jitter=False)
    with shell.connect(fake, app, clock, tmp_path, retry=policy) as kis:
        kis.get_balance()  # warm the token so only retry sleeps are recorded
        clock.sleeps.clear()
        with pytest.raises(GatewayError) as info:
            kis.get_price("005930")
    assert info.value.attempts == 4
    assert fake.stats.requests(path=PRICE_PATH) == 4
    assert clock.sleeps == [0.5, 0.5, 0.8]


def test_retry_budget_stops_a_retry_storm(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=1000))
    with shell.connect(fake, app, clock, tmp_path, retry_budget=12) as kis:
        errors = []
        for _ in range(4):
            with pytest.raises((GatewayError, RetryBudgetExhausted)) as info:
                kis.get_price("005930")
            errors.append(type(info.value))
    assert RetryBudgetExhausted in errors
    assert fake.stats.requests(path=PRICE_PATH) < 4 * 5


def test_rate_burst_is_retried_and_tightens_the_limiter(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("rate_burst", path=PRICE_PATH, times=2))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        quote = kis.get_price("005930")
    assert quote.price == fake.price_of("005930")
    assert fake.stats.requests(path=PRICE_PATH) == 3
    assert sum(clock.sleeps) >= 1.0  # the limiter held back after each EGW00201


def test_rate_bursts_in_a_batch_are_absorbed(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("rate_burst", path=PRICE_PATH, times=10))
    # A sync client sends one request at a time, so all ten EGW00201 answers may land on one
    # code: give every call the attempts to outlast them (test_client_async.py has the default
    # policy absorbing them across concurrent requests).
    policy = RetryPolicy(max_attempts=11, jitter=False)
    with shell.connect(fake, app, clock, tmp_path, retry=policy) as kis:
        batch = kis.get_prices(fake.universe[:30], multi=False)
    assert len(batch.succeeded) == 30 and not batch.failed
    assert all(q.price == fake.price_of(c) for c, q in batch.succeeded.items())
    # the ten injected EGW00201 answers were all retried (worker-thread hops under a fake clock
    # can add a genuine one on a busy machine, which is retried the same way)
    assert fake.stats.rate_limited(app.app_key) >= 10
    # PriceBatch.requests counts every request sent, the rate-limited ones included
    assert batch.requests == fake.stats.requests(path=PRICE_PATH)
    assert batch.requests == 30 + fake.stats.rate_limited(app.app_key)


def test_consecutive_rate_bursts_exhaust_the_attempts_of_one_call(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("rate_burst", path=PRICE_PATH, times=5))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        with pytest.raises(RateLimited) as info:
            kis.get_price("005930")
        quote = kis.get_price("005930")  # the next call gets through
    assert info.value.msg_cd == "EGW00201" and info.value.attempts == 5
    assert quote.price == fake.price_of("005930")
    assert fake.stats.requests(path=PRICE_PATH) == 6


def test_client_limiter_keeps_the_server_window(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices(fake.universe[:60], multi=False)
    assert len(batch.succeeded) == 60
    # nothing failed, so one request per code under either count of PriceBatch.requests
    assert batch.requests == fake.stats.requests(path=PRICE_PATH) == 60
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18


def test_conservative_profile_and_custom_windows(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path, rate_limits=[Window(2, 1.0)]) as kis:
        kis.get_prices(fake.universe[:6], multi=False)
    assert fake.stats.max_in_any_second(app.app_key) <= 2


# --- tokens and authentication ---


def test_revoked_token_mid_session_is_reissued_once(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")
        clock.advance(5)
        fake.revoke_all_tokens()
        quote = kis.get_price("000660")
        assert kis.token_issuances == 2
    assert quote.price == fake.price_of("000660")
    assert fake.stats.token_issuances(app.app_key) == 2


def test_revoked_token_mid_batch_causes_exactly_one_reissue(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")

    def progress(done: int, total: int) -> None:
        if done == 10:
            fake.revoke_all_tokens()

    with shell.connect(fake, app, clock, tmp_path) as kis:
        batch = kis.get_prices(fake.universe[:40], multi=False, concurrency=8, progress=progress)
        assert kis.token_issuances == 2
    assert len(batch.succeeded) == 40
    assert fake.stats.token_issuances(app.app_key) == 2


def test_restart_reuses_the_stored_token(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")
    with shell.connect(fake, app, clock, tmp_path) as again:
        again.get_price("005930")
        assert again.token_issuances == 0
    assert fake.stats.token_issuances(app.app_key) == 1


def test_bad_secret_is_an_auth_error_without_retries(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    kis = shell.open(app.app_key, "x" * 180, env="real", state_dir=tmp_path, fake=fake, clock=clock)
    with kis, pytest.raises(AuthError) as info:
        kis.get_price("005930")
    assert info.value.msg_cd == "EGW00105"
    assert fake.stats.requests(path=PRICE_PATH) == 0


def test_paper_key_on_real_host_is_wrong_environment(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    paper = fake.add_app(env="paper")
    real_host_client = shell.open(
        paper.app_key, paper.app_secret, env="real", state_dir=tmp_path, fake=fake, clock=clock
    )
    with real_host_client, pytest.raises((WrongEnvironment, AuthError)):
        real_host_client.get_price("005930")


def test_revoke_hashkey_and_token_expiry(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        assert kis.token_expires_at() is None
        kis.get_price("005930")
        expires = kis.token_expires_at()
        assert expires is not None
        assert (
            clock.now() + dt.timedelta(hours=23) < expires <= clock.now() + dt.timedelta(hours=24)
        )
        digest = kis.hashkey({"CANO": "12345678", "PDNO": "005930"})
        assert len(digest) == 64
        int(digest, 16)
        kis.revoke()
        assert kis.token_expires_at() is None
        clock.advance(61)  # KIS issues at most one token a minute
        kis.get_price("005930")
        assert kis.token_issuances == 2
    assert fake.stats.token_issuances(app.app_key) == 2


# --- orders ---


def test_order_succeeds_once(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        result = kis.order_cash("buy", "005930", 3)
        orders = kis.get_daily_orders()
    assert result.order_no
    assert [o.order_no for o in orders] == [result.order_no]
    assert len(fake.orders(app.app_key)) == 1


def test_paper_order_after_hours_is_market_closed(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake(FakeClock(SESSION_TIME.replace(hour=16)))
    app = fake.add_app(env="paper")
    with shell.connect(fake, app, clock, tmp_path) as kis, pytest.raises(MarketClosed):
        kis.order_cash("buy", "005930", 1, price=fake.price_of("005930"))
    assert fake.orders(app.app_key) == []


@pytest.mark.parametrize("kind", ["drop_after", "read_timeout", "malformed_json", "truncated_json"])
def test_ambiguous_order_failures_are_not_resent_and_reconcile_finds_the_order(
    shell: Shell, tmp_path: pathlib.Path, kind: FaultKind
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault(kind, path=ORDER_PATH))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        with pytest.raises(OrderOutcomeUnknown) as info:
            kis.order_cash("buy", "005930", 2)
        assert info.value.request["code"] == "005930"
        found = kis.reconcile_order(info.value)
    assert len(fake.orders(app.app_key)) == 1  # executed once, never resent
    assert found.outcome is ReconcileOutcome.FOUND and found.lookups == 1
    assert found.order is not None and found.order.quantity == 2 and found.order.side == "buy"


def test_lost_order_answer_reconciles_and_the_balance_shows_it(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        with pytest.raises(OrderOutcomeUnknown) as info:
            kis.order_cash("buy", "005930", 4)
        found = kis.reconcile_order(info.value)
        balance = kis.get_balance()
    assert found.outcome is ReconcileOutcome.FOUND
    assert found.order is not None and found.order.quantity == 4
    assert len(fake.orders(app.app_key)) == 1
    assert {h.code for h in balance.holdings} == {"005930"}


@pytest.mark.parametrize("kind", ["drop_before", "http_5xx_bare"])
def test_unprocessed_ambiguous_order_reconciles_to_none(
    shell: Shell, tmp_path: pathlib.Path, kind: FaultKind
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault(kind, path=ORDER_PATH))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        with pytest.raises(OrderOutcomeUnknown) as info:
            kis.order_cash("sell", "005930", 1, price=70000)
        sent = clock.time()
        answer = kis.reconcile_order(info.value)
        # Absent only once the settle window (60 s) has passed, looked up on the client's clock.
        assert answer.outcome is ReconcileOutcome.ABSENT and answer.lookups > 1
        assert clock.time() - sent >= 60
    assert fake.orders(app.app_key) == []
    assert fake.stats.requests(path=ORDER_PATH) == 1


@pytest.mark.parametrize("kind", ["connect_error", "rate_burst"])
def test_orders_that_never_arrived_are_retried_once_more(
    shell: Shell, tmp_path: pathlib.Path, kind: FaultKind
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault(kind, path=ORDER_PATH))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        result = kis.order_cash("buy", "005930", 1)
    assert [o.order_no for o in fake.orders(app.app_key)] == [result.order_no]


def test_order_with_a_revoked_token_is_sent_once_after_reissue(
    shell: Shell, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with shell.connect(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")
        fake.revoke_all_tokens()
        kis.order_cash("buy", "005930", 1)
    assert len(fake.orders(app.app_key)) == 1
    assert fake.stats.token_issuances(app.app_key) == 2


def test_cancel_a_resting_limit_order(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    low = fake.price_of("005930") * 8 // 10 // 1000 * 1000  # below the market, inside the limits
    with shell.connect(fake, app, clock, tmp_path) as kis:
        placed = kis.order_cash("buy", "005930", 1, price=low)
        [resting] = [o for o in kis.get_daily_orders() if o.order_no == placed.order_no]
        assert resting.remaining_quantity == 1
        assert resting.filled_quantity == 0
        kis.cancel_order(resting)
        [after] = [o for o in kis.get_daily_orders() if o.order_no == placed.order_no]
    assert after.remaining_quantity == 0
    assert after.filled_quantity == 0
    assert kis_holdings(fake, app.app_key) == {}


# --- the escape hatch ---


def test_escape_hatch_and_pagination(shell: Shell, tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.seed_holdings(app.app_key, dict.fromkeys(fake.universe[:120], 1))
    cano, product = app.account.split("-")
    params = {
        "CANO": cano,
        "ACNT_PRDT_CD": product,
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }
    with shell.connect(fake, app, clock, tmp_path) as kis:
        one = kis.request(
            "GET",
            PRICE_PATH,
            tr_id=ENDPOINTS["inquire_price"].tr_id(kis.environment),
            params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"},
        )
        pages = kis.paginate(
            "GET",
            ENDPOINTS["inquire_balance"].path,
            tr_id=ENDPOINTS["inquire_balance"].tr_id(kis.environment),
            params=params,
        )
        with pytest.raises(ValueError, match=r"(?i)authorization"):
            kis.request("GET", PRICE_PATH, headers={"Authorization": "Bearer x"})
    assert int(one.data["output"]["stck_prpr"]) == fake.price_of("005930")
    assert len(pages) == 3
    assert sum(len(p.data["output1"]) for p in pages) == 120


# --- configuration and secrets ---


def test_from_env_names_what_is_missing(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="KIS_APP_KEY, KIS_APP_SECRET"):
        shell.from_env()


def test_from_env_builds_a_working_client(
    shell: Shell, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")
    monkeypatch.setenv("KIS_APP_KEY", app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", app.app_secret)
    monkeypatch.setenv("KIS_ENV", "paper")
    monkeypatch.setenv("KIS_ACCOUNT", app.account)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path))
    with shell.from_env(fake, clock=clock) as kis:
        assert kis.env == "paper"
        assert kis.get_balance().is_empty


def test_no_secret_reaches_logs_reprs_or_errors(
    shell: Shell, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("drop_after", path=ORDER_PATH))
    with shell.connect(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")
        fake.revoke_all_tokens()
        kis.get_price("005930")
        with pytest.raises(OrderOutcomeUnknown) as info:
            kis.order_cash("buy", "005930", 1)
        texts = [
            caplog.text,
            repr(kis.client),
            str(info.value),
            repr(info.value),
            repr(kis.account),
            str(info.value.request),
        ]
    token_file = next(tmp_path.rglob("token.json")).read_text()
    secrets = [app.app_key, app.app_secret, app.account, app.account.replace("-", "")]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert app.app_secret not in token_file


def test_state_dir_default_and_bad_arguments(shell: Shell, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigurationError):
        shell.open("", "secret")
    with pytest.raises(ConfigurationError, match="whitespace"):
        shell.open("key", "secret\n")
    with pytest.raises(ConfigurationError, match="env"):
        shell.open("key", "secret", env="prod-ish")
    with (
        shell.open("key", "secret", state_dir=tmp_path) as kis,
        pytest.raises(ConfigurationError, match="account"),
    ):
        kis.get_balance()
