"""Async-only mechanics: a batch's concurrent requests, and cancelling a batch.

Everything the two clients share is in ``test_client_scenarios.py``, run against both shells.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from kis_support import async_client, make_fake
from kisclient._config import ENDPOINTS
from kisclient.testing import Fault

PRICE_PATH = ENDPOINTS["inquire_price"].path


async def test_rate_bursts_spread_over_concurrent_requests_are_absorbed(
    tmp_path: pathlib.Path,
) -> None:
    # Ten EGW00201 answers in a row land on several in-flight requests, so the default policy
    # (five attempts a call) absorbs them all; a one-at-a-time client needs more attempts
    # (test_client_scenarios.py::test_rate_bursts_in_a_batch_are_absorbed).
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
