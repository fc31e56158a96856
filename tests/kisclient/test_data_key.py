"""A paper account with a real data key: market data on the real host with the real key's token
and 18/s budget, the account and orders on paper at 1/s (issue 12)."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from kis_support import async_client, make_fake, sync_client
from kisclient import ConfigurationError, KISClient
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer

PRICE = ENDPOINTS["inquire_price"].path
MULTI = ENDPOINTS["intstock_multprice"].path


def _apps(fake: FakeKIS) -> tuple[FakeApp, FakeApp]:
    return fake.add_app(env="paper"), fake.add_app(env="real")


def test_quotes_go_to_the_real_host_with_the_data_key_and_orders_stay_on_paper(
    tmp_path: pathlib.Path,
) -> None:
    fake, clock = make_fake()
    paper, real = _apps(fake)
    codes = fake.universe[:60]
    with sync_client(
        fake, paper, clock, tmp_path, data_key=real.app_key, data_secret=real.app_secret
    ) as kis:
        started = clock.monotonic()
        batch = kis.get_prices(codes)
        quoting = clock.monotonic() - started
        kis.order_cash("buy", codes[0], 1, fake.price_of(codes[0]))
        assert kis.token_issuances == 2  # one per key
    assert len(batch.succeeded) == 60 and not batch.failed
    # The 30-code endpoint is real-only: with the data key a paper client has it.
    assert fake.stats.requests(MULTI) == 2
    assert quoting < 1.0  # two real-host calls, not 60 paper calls at 1/s
    assert fake.stats.token_issuances(real.app_key) == 1
    assert fake.stats.token_issuances(paper.app_key) == 1
    assert [o.code for o in fake.orders(paper.app_key)] == [codes[0]]
    assert fake.orders(real.app_key) == []
    # each key keeps its own token store in the state directory
    assert len(list(tmp_path.glob("real-*/token.json"))) == 1
    assert len(list(tmp_path.glob("paper-*/token.json"))) == 1


def test_without_a_data_key_paper_quotes_pay_the_paper_limit(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    paper, _ = _apps(fake)
    codes = fake.universe[:10]
    with sync_client(fake, paper, clock, tmp_path) as kis:
        started = clock.monotonic()
        batch = kis.get_prices(codes)
        elapsed = clock.monotonic() - started
    assert len(batch.succeeded) == 10
    assert fake.stats.requests(MULTI) == 0  # not on paper
    assert fake.stats.requests(PRICE) == 10
    assert elapsed >= 9.0  # 1/s on the fake clock


def test_the_async_client_routes_the_same_way(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    paper, real = _apps(fake)

    async def main() -> None:
        async with async_client(
            fake, paper, clock, tmp_path, data_key=real.app_key, data_secret=real.app_secret
        ) as kis:
            quote = await kis.get_price("005930")
            balance = await kis.get_balance()
            assert quote.price == fake.price_of("005930")
            assert balance.summary.cash == fake.cash(paper.app_key)

    asyncio.run(main())
    assert fake.stats.token_issuances(real.app_key) == 1
    assert fake.stats.token_issuances(paper.app_key) == 1


def test_over_loopback_each_key_talks_to_its_own_host(tmp_path: pathlib.Path) -> None:
    fake = FakeKIS(seed=7)  # on the system clock, as the client is
    paper, real = _apps(fake)
    with FakeKISServer(fake) as server:
        base = f"http://127.0.0.1:{server.port}"
        with KISClient(
            paper.app_key,
            paper.app_secret,
            env="paper",
            account=paper.account,
            base_url=f"{base}/paper",
            state_dir=tmp_path,
            data_key=real.app_key,
            data_secret=real.app_secret,
            data_base_url=base,
        ) as kis:
            assert kis.get_price("005930").price == fake.price_of("005930")
            assert kis.get_balance().summary.cash == fake.cash(paper.app_key)
    assert fake.stats.token_issuances(real.app_key) == 1
    assert fake.stats.token_issuances(paper.app_key) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_key": "k"}, "go together"),
        ({"data_secret": "s"}, "go together"),
        ({"data_key": " k", "data_secret": "s"}, "whitespace"),
        ({"data_base_url": "http://x"}, "needs data_key"),
        ({"data_key": "k", "data_secret": "s", "data_base_url": "ftp://x"}, "http"),
    ],
)
def test_bad_data_key_arguments_are_refused(
    tmp_path: pathlib.Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        KISClient("key", "secret", env="paper", state_dir=tmp_path, **kwargs)


def test_from_env_reads_the_data_key_and_never_shows_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIS_APP_KEY", "paper-key")
    monkeypatch.setenv("KIS_APP_SECRET", "paper-secret")
    monkeypatch.setenv("KIS_ENV", "paper")
    monkeypatch.setenv("KIS_DATA_APP_KEY", "real-data-key")
    monkeypatch.setenv("KIS_DATA_APP_SECRET", "real-data-secret")
    with KISClient.from_env(state_dir=tmp_path) as kis:
        assert kis._settings.data_key == "real-data-key"
        shown = repr(kis) + repr(kis._settings) + repr(kis._data_route)
    assert "real-data-key" not in shown and "real-data-secret" not in shown
