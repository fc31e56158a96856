"""The async client through the fake KIS server: batches, faults, cancellation, parity."""

from __future__ import annotations

import asyncio
import inspect
import pathlib
import threading

import pytest

from kis_support import async_client, make_fake, sync_client
from kisclient import (
    AsyncKISClient,
    InvalidStockCode,
    KISClient,
    KISError,
    OrderOutcomeUnknown,
    ReconcileOutcome,
    SystemClock,
    Window,
    WrongEnvironment,
)
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, FakeKISServer, Fault

PRICE_PATH = ENDPOINTS["inquire_price"].path


def _public(cls: type) -> dict[str, object]:
    """Every public member, inherited ones included, as defined (not bound)."""
    return {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }


def test_public_signatures_match() -> None:
    sync_members = _public(KISClient)
    async_members = _public(AsyncKISClient)
    assert sorted(sync_members) == sorted(async_members)
    for name, member in sync_members.items():
        twin = async_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        if isinstance(member, classmethod):
            assert isinstance(twin, classmethod), name
            continue
        assert callable(member) and callable(twin)
        sync_sig, async_sig = inspect.signature(member), inspect.signature(twin)
        sync_params = [(p.name, p.kind, p.default) for p in sync_sig.parameters.values()]
        async_params = [(p.name, p.kind, p.default) for p in async_sig.parameters.values()]
        assert sync_params == async_params, name
        if name == "paginate":
            assert inspect.isasyncgenfunction(twin), name
        else:
            assert inspect.iscoroutinefunction(twin), name
    init_sync = [
        (p.name, p.kind, p.default)
        for p in inspect.signature(KISClient.__init__).parameters.values()
    ]
    init_async = [
        (p.name, p.kind, p.default)
        for p in inspect.signature(AsyncKISClient.__init__).parameters.values()
    ]
    assert [p for p in init_sync if p[0] != "transport"] == [
        p for p in init_async if p[0] != "transport"
    ]


async def test_batch_success_per_code_on_paper_and_multi_on_real(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake(rate_limits={"real": 18, "paper": 5})
    real, paper = fake.add_app(env="real"), fake.add_app(env="paper")
    codes = fake.universe[:40]
    async with async_client(fake, real, clock, tmp_path) as kis:
        multi = await kis.get_prices(codes)
    async with async_client(fake, paper, clock, tmp_path, rate_limits=None) as kis:
        single = await kis.get_prices(codes[:10])
    assert {c: q.price for c, q in multi.succeeded.items()} == {c: fake.price_of(c) for c in codes}
    assert fake.stats.requests(path=ENDPOINTS["intstock_multprice"].path) == 2
    assert len(single.succeeded) == 10
    # one inquire-price per code (EGW00201 answers, retried, aside)
    assert fake.stats.requests(path=PRICE_PATH) - fake.stats.rate_limited(paper.app_key) == 10


async def test_partial_failure_never_aborts_the_batch(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:20]
    fake.faults.add(Fault("http_5xx_envelope", path=PRICE_PATH, code="EGW00205", times=3))
    async with async_client(fake, app, clock, tmp_path) as kis:
        batch = await kis.get_prices([*codes, "bad!", codes[1]], multi=False, concurrency=4)
    assert set(batch.succeeded) | set(batch.failed) == {*codes, "bad!"}
    assert isinstance(batch.failed.pop("bad!"), InvalidStockCode)
    assert len(batch.failed) == 3
    assert all(isinstance(e, WrongEnvironment) for e in batch.failed.values())
    assert all(q.price == fake.price_of(c) for c, q in batch.succeeded.items())


async def test_rate_bursts_are_absorbed(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("rate_burst", path=PRICE_PATH, times=10))
    async with async_client(fake, app, clock, tmp_path) as kis:
        batch = await kis.get_prices(fake.universe[:30], multi=False)
    assert len(batch.succeeded) == 30 and not batch.failed
    assert all(q.price == fake.price_of(c) for c, q in batch.succeeded.items())
    # the ten injected EGW00201 answers were all retried (worker-thread hops under a fake clock
    # can add a genuine one on a busy machine, which is retried the same way)
    assert fake.stats.rate_limited(app.app_key) >= 10


async def test_revoked_token_mid_batch_causes_exactly_one_reissue(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")

    def progress(done: int, total: int) -> None:
        if done == 10:
            fake.revoke_all_tokens()

    async with async_client(fake, app, clock, tmp_path) as kis:
        batch = await kis.get_prices(
            fake.universe[:40], multi=False, concurrency=8, progress=progress
        )
        assert kis.token_issuances == 2
    assert len(batch.succeeded) == 40
    assert fake.stats.token_issuances(app.app_key) == 2


async def test_5xx_storm_every_code_settles_correctly(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:60]
    fake.faults.add(Fault("http_5xx_bare", path=PRICE_PATH, times=70))
    fake.faults.add(Fault("http_5xx_envelope", path=PRICE_PATH, code="EGW00202", times=20))
    async with async_client(fake, app, clock, tmp_path, retry_budget=10_000) as kis:
        batch = await kis.get_prices(codes, multi=False, concurrency=6)
    assert set(batch.succeeded) | set(batch.failed) == set(codes)
    assert not set(batch.succeeded) & set(batch.failed)
    for code, quote in batch.succeeded.items():
        assert quote.price == fake.price_of(code)
    assert all(isinstance(e, KISError) for e in batch.failed.values())


async def test_cancelling_a_batch_leaves_no_tasks(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="paper")  # 1 request per second: the batch takes a while
    async with async_client(fake, app, clock, tmp_path) as kis:
        started = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done >= 3:
                started.set()

        task = asyncio.create_task(
            kis.get_prices(fake.universe[:50], concurrency=5, progress=progress)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()
        requests_at_cancel = fake.stats.requests(path=PRICE_PATH)
        # the client still works after the cancellation: nothing is held
        quote = await kis.get_price(fake.universe[0])
    assert quote.price == fake.price_of(fake.universe[0])
    assert requests_at_cancel < 50


async def test_cache_first_lookup_counts_hits(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    codes = fake.universe[:10]
    async with async_client(fake, app, clock, tmp_path, quote_cache_ttl=30.0) as kis:
        await kis.get_prices(codes, multi=False)
        again = await kis.get_prices(codes, multi=False)
        assert kis.quote_cache.hits == 10
    assert len(again.succeeded) == 10
    assert fake.stats.requests(path=PRICE_PATH) == 10


async def test_async_order_safety_and_reconcile(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    fake.faults.add(Fault("drop_after", path=ENDPOINTS["order_cash"].path))
    async with async_client(fake, app, clock, tmp_path) as kis:
        with pytest.raises(OrderOutcomeUnknown) as info:
            await kis.order_cash("buy", "005930", 4)
        found = await kis.reconcile_order(info.value)
        balance = await kis.get_balance()
    assert found.outcome is ReconcileOutcome.FOUND
    assert found.order is not None and found.order.quantity == 4
    assert len(fake.orders(app.app_key)) == 1
    assert {h.code for h in balance.holdings} == {"005930"}


async def test_loopback_async_batch(tmp_path: pathlib.Path) -> None:
    fake = FakeKIS(seed=3, rate_limits={"real": 0, "paper": 0})
    app = fake.add_app(env="real")
    with FakeKISServer(fake) as server:
        async with AsyncKISClient(
            app.app_key,
            app.app_secret,
            env="real",
            base_url=server.base_url("real"),
            state_dir=tmp_path,
            rate_limits=[],
        ) as kis:
            batch = await kis.get_prices(fake.universe[:25], multi=False, concurrency=5)
    assert {c: q.price for c, q in batch.succeeded.items()} == {
        c: fake.price_of(c) for c in fake.universe[:25]
    }


@pytest.mark.loopback
def test_sync_and_async_clients_in_one_process_share_one_budget(tmp_path: pathlib.Path) -> None:
    # Clients allow 15/s, the server 18/s: one shared budget stays under 18 with room for the
    # arrival jitter of a busy machine; two separate budgets would send about 30/s.
    limits = [Window(15, 1.0)]
    fake = FakeKIS(seed=4, clock=SystemClock())
    app = fake.add_app(env="real")
    codes = fake.universe[:27]
    with FakeKISServer(fake) as server:
        base = server.base_url("real")
        errors: list[BaseException] = []

        def run_sync() -> None:
            try:
                with KISClient(
                    app.app_key,
                    app.app_secret,
                    base_url=base,
                    state_dir=tmp_path,
                    rate_limits=limits,
                ) as kis:
                    kis.get_prices(codes, multi=False)
            except BaseException as exc:
                errors.append(exc)

        async def run_async() -> int:
            async with AsyncKISClient(
                app.app_key, app.app_secret, base_url=base, state_dir=tmp_path, rate_limits=limits
            ) as kis:
                batch = await kis.get_prices(codes, multi=False, concurrency=4)
            return len(batch.succeeded)

        thread = threading.Thread(target=run_sync)
        thread.start()
        got = asyncio.run(run_async())
        thread.join()
    assert not errors
    assert got == len(codes)
    assert fake.stats.requests(path=PRICE_PATH) == 2 * len(codes)
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18
    assert fake.stats.token_issuances(app.app_key) == 1


def test_sync_client_fixture_helper_is_reused(tmp_path: pathlib.Path) -> None:
    # sync and async clients on one state_dir share the token: no second issuance
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with sync_client(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")

    async def main() -> int:
        async with async_client(fake, app, clock, tmp_path) as akis:
            await akis.get_price("000660")
            return akis.token_issuances

    assert asyncio.run(main()) == 0
    assert fake.stats.token_issuances(app.app_key) == 1
