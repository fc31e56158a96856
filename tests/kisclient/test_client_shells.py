"""The two shells side by side: the same public surface, one token and one rate budget.

Everything the two clients do alike is in ``test_client_scenarios.py``, run against both.
"""

from __future__ import annotations

import asyncio
import inspect
import pathlib
import sys
import threading
from pathlib import Path

import pytest

from kis_support import make_fake
from kisclient import AsyncKISClient, KISClient, SystemClock, Window
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeKIS, FakeKISServer

sys.path.append(str(Path(__file__).parent))
from client_shells import Shell, ShellKind

PRICE_PATH = ENDPOINTS["inquire_price"].path


def _public(cls: type) -> dict[str, object]:
    """Every public member, inherited ones included, as defined (not bound)."""
    return {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }


def test_public_signatures_match(tmp_path: pathlib.Path) -> None:
    sync_members = _public(KISClient)
    async_members = _public(AsyncKISClient)
    assert sorted(sync_members) == sorted(async_members)
    fake = FakeKIS()
    app = fake.add_app()
    sync_client = KISClient(
        app.app_key, app.app_secret, account=app.account, transport=fake.transport(),
        state_dir=tmp_path,
    )  # fmt: skip
    async_client = AsyncKISClient(
        app.app_key, app.app_secret, account=app.account, transport=fake.async_transport(),
        state_dir=tmp_path,
    )  # fmt: skip
    for name, member in sync_members.items():
        twin = async_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        if isinstance(member, classmethod):
            assert isinstance(twin, classmethod), name
            continue
        assert callable(member) and callable(twin)
        # as bound on an instance: the same parameters, blocking on one, awaitable on the other
        bound, bound_twin = getattr(sync_client, name), getattr(async_client, name)
        assert bound.__name__ == bound_twin.__name__ == name
        sync_sig, async_sig = inspect.signature(bound), inspect.signature(bound_twin)
        sync_params = [(p.name, p.kind, p.default) for p in sync_sig.parameters.values()]
        async_params = [(p.name, p.kind, p.default) for p in async_sig.parameters.values()]
        assert sync_params == async_params, name
        assert sync_params[:1] != [("self", inspect.Parameter.POSITIONAL_OR_KEYWORD, None)]
        assert not inspect.iscoroutinefunction(bound), name
        if name == "stream":  # the shell's stream (a context manager): see test_stream.py
            continue
        if name == "paginate":
            assert inspect.isasyncgenfunction(bound_twin), name
        else:
            assert inspect.iscoroutinefunction(bound_twin), name
        assert bound.__doc__, name
        assert bound.__doc__ == bound_twin.__doc__ or name == "close", name
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


def test_a_public_method_called_on_the_class_behaves_as_a_function(tmp_path: Path) -> None:
    fake = FakeKIS()
    app = fake.add_app()
    with KISClient(
        app.app_key, app.app_secret, transport=fake.transport(), state_dir=tmp_path
    ) as kis:
        quote = KISClient.get_price(kis, "005930")
        assert quote.price == fake.price_of("005930")
        assert list(inspect.signature(KISClient.get_price).parameters) == [
            "self",
            "code",
            "with_name",
        ]
        assert "get_price" in repr(KISClient.get_price)


@pytest.mark.parametrize(("first", "second"), [("sync", "async"), ("async", "sync")])
def test_one_state_dir_shares_the_token_between_shells(
    tmp_path: pathlib.Path, first: ShellKind, second: ShellKind
) -> None:
    # sync and async clients on one state_dir share the token: no second issuance
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    with Shell(first).connect(fake, app, clock, tmp_path) as kis:
        kis.get_price("005930")
    with Shell(second).connect(fake, app, clock, tmp_path) as other:
        other.get_price("000660")
        assert other.token_issuances == 0
    assert fake.stats.token_issuances(app.app_key) == 1


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
