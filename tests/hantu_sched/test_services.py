"""Typed services: ``ctx.services.kis`` is a KISClient; the older ``ctx.services["kis"]`` still
works; wrong objects are refused when the scheduler is built, not halfway through the day."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
from typing import Any

import pytest

from hantu_sched import (
    KST,
    Credentials,
    FakeClock,
    IntegratedScheduler,
    JobContext,
    JobState,
    KISTarget,
    SchedulerConfig,
    Services,
    SQLiteStorage,
    build_services,
)
from hantu_sched.pipeline import PipelineConfig, default_jobs
from kisclient import AsyncKISClient, Env, KISClient
from kisclient.testing import FakeKIS
from redis_support import RedisServer

DAY = dt.date(2026, 6, 4)


def _services(
    fake: FakeKIS, clock: FakeClock, state: pathlib.Path, **extra: Any
) -> tuple[Services, str]:
    app = fake.add_app(env="paper")
    services = build_services(
        KISTarget(Env.PAPER, state_dir=state),
        Credentials(app.app_key, app.app_secret, app.account, "test"),
        clock,
        transport=fake.transport(),
        async_transport=fake.async_transport(),
        universe=fake.universe[:20],
        extra=extra,
    )
    return services, app.app_key


def test_build_services_gives_typed_clients_on_the_target(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime.combine(DAY, dt.time(10), KST))
    fake = FakeKIS(clock=clock, seed=3)
    services, key = _services(fake, clock, tmp_path / "state", note="hello")
    try:
        assert isinstance(services.kis, KISClient)
        assert services.kis.env == "paper"
        assert services.kis.get_price(fake.universe[0]).code == fake.universe[0]
        assert services.kis_async is not None
        made = services.kis_async()
        assert isinstance(made, AsyncKISClient) and made is not services.kis_async()
        assert services.universe == tuple(fake.universe[:20])
        assert services.extra == {"note": "hello"}
        assert fake.stats.token_issuances(key) == 1
    finally:
        services.close()


def test_services_are_also_a_read_only_mapping(tmp_path: pathlib.Path) -> None:
    clock = FakeClock(dt.datetime.combine(DAY, dt.time(10), KST))
    services, _ = _services(FakeKIS(clock=clock, seed=3), clock, tmp_path / "s", note=1)
    try:
        assert services["kis"] is services.kis
        assert services["kis_async"] is services.kis_async
        assert services["universe"] == services.universe
        assert services["note"] == 1
        assert sorted(services) == ["kis", "kis_async", "note", "universe"]
        assert services.get("missing") is None
        assert "kis" not in Services() and len(Services()) == 0
        with pytest.raises(KeyError):
            Services()["kis"]
    finally:
        services.close()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"kis": object()}, "Services.kis must be a kisclient.KISClient, got object"),
        ({"kis_async": 42}, "Services.kis_async must be a zero-argument callable"),
        ({"universe": "005930"}, "Services.universe must be a list of codes, got str"),
    ],
)
def test_wrong_services_are_refused_when_the_scheduler_is_built(
    given: dict[str, Any], message: str, tmp_path: pathlib.Path
) -> None:
    storage = SQLiteStorage(tmp_path)
    try:
        with pytest.raises(TypeError, match=message):
            IntegratedScheduler(
                SchedulerConfig(),
                storage,
                FakeClock(),
                default_jobs(),
                data_dir=tmp_path,
                services=given,
            )
    finally:
        storage.close()


def test_extra_cannot_shadow_a_typed_service() -> None:
    with pytest.raises(ValueError, match="must not use the typed names"):
        Services(extra={"kis": None})


def test_old_and_typed_access_run_a_whole_day(tmp_path: pathlib.Path) -> None:
    """A custom screening written against ``ctx.services["kis"]`` and one using
    ``ctx.services.kis`` see the same client; the day completes with the default pipeline."""
    clock = FakeClock(dt.datetime.combine(DAY, dt.time(5, 30), KST))
    fake = FakeKIS(clock=clock, seed=1)
    services, _ = _services(fake, clock, tmp_path / "state")
    seen: list[object] = []

    def screening(ctx: JobContext) -> None:
        old_style = ctx.services["kis"]
        assert ctx.services.kis is not None
        seen.extend([old_style, ctx.services.kis])
        codes = [c for c in fake.universe[:6] if ctx.services.kis.get_price(c).price > 0]
        ctx.storage.put_watchlist(ctx.trading_date, {"codes": codes})

    jobs = default_jobs(PipelineConfig(top_n=2))
    jobs.register("screening", screening)
    (tmp_path / "d").mkdir()
    storage = SQLiteStorage(tmp_path / "d")
    try:
        scheduler = IntegratedScheduler(
            SchedulerConfig(), storage, clock, jobs, data_dir=tmp_path / "d", services=services
        )
        scheduler.run(until=dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), KST))
        records = storage.list_jobs(DAY)
    finally:
        storage.close()
        services.close()
    assert seen == [services.kis, services.kis]
    assert len(records) == 8 and all(r.state is JobState.DONE for r in records), records


def test_simulate_hands_jobs_typed_services(tmp_path: pathlib.Path) -> None:
    """Every scheduler instance of a simulated day (one restart) gets a paper KISClient, an
    async factory and the fake server's universe as typed attributes."""
    from hantu_sched._simulate import simulate_day

    seen: list[tuple[str, bool, int]] = []

    def screening(ctx: JobContext) -> None:
        kis, make_async, universe = ctx.services.kis, ctx.services.kis_async, ctx.services.universe
        assert kis is not None and make_async is not None and universe is not None
        seen.append((kis.env, callable(make_async), len(universe)))
        ctx.storage.put_watchlist(ctx.trading_date, {"codes": list(universe[:5])})

    def make_jobs() -> Any:
        jobs = default_jobs(PipelineConfig(trading_mode="paper", top_n=2))
        jobs.register("screening", screening)
        return jobs

    result = simulate_day(
        DAY, tmp_path / "sim", restart_at=[dt.time(6, 0, 30)], universe_size=25, make_jobs=make_jobs
    )
    assert result.complete and result.restarts == 1
    assert seen and all(entry == ("paper", True, 25) for entry in seen), seen


@pytest.mark.parametrize("module", ["_cli", "_simulate"])
def test_run_and_simulate_build_clients_only_through_build_services(module: str) -> None:
    """Neither runner path constructs a client itself: both call build_services."""
    import ast
    import importlib

    source = pathlib.Path(importlib.import_module(f"hantu_sched.{module}").__file__ or "")
    calls = {
        node.func.id
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "build_services" in calls
    assert not calls & {"KISClient", "AsyncKISClient"}


def test_a_shared_state_url_reaches_every_client(tmp_path: pathlib.Path) -> None:
    """``kis.shared_state`` (KIS_SHARED_STATE) puts the sync client and every async client on
    the same real Redis: one token issuance between them, though each has its own state dir."""
    clock = FakeClock(dt.datetime.combine(DAY, dt.time(10), KST))
    fake = FakeKIS(clock=clock, seed=4)
    app = fake.add_app(env="paper")
    with RedisServer(tmp_path / "redis") as redis:
        target = KISTarget(Env.PAPER, state_dir=tmp_path / "state", shared_state=redis.url)
        assert redis.url not in repr(target)  # the URL may carry a password
        services = build_services(
            target,
            Credentials(app.app_key, app.app_secret, app.account, "test"),
            clock,
            transport=fake.transport(),
            async_transport=fake.async_transport(),
        )
        try:
            assert services.kis is not None and services.kis_async is not None
            assert services.kis.shared_state_status.backend == "redis"
            services.kis.get_price(fake.universe[0])

            async def one_quote() -> str:
                async with services.kis_async() as kis:  # type: ignore[misc]
                    assert kis.shared_state_status.backend == "redis"
                    return (await kis.get_price(fake.universe[1])).code

            assert asyncio.run(one_quote()) == fake.universe[1]
        finally:
            services.close()
        assert fake.stats.token_issuances(app.app_key) == 1
