"""Sync-only mechanics: one blocking client shared by several threads.

Everything the two clients share is in ``test_client_scenarios.py``, run against both shells.
"""

from __future__ import annotations

import pathlib
import threading

from kis_support import make_fake, sync_client
from kisclient import PriceBatch
from kisclient._config import ENDPOINTS

PRICE_PATH = ENDPOINTS["inquire_price"].path


def test_one_client_shared_by_threads_issues_one_token(tmp_path: pathlib.Path) -> None:
    fake, clock = make_fake()
    app = fake.add_app(env="real")
    groups = [fake.universe[i * 10 : (i + 1) * 10] for i in range(4)]
    batches: list[PriceBatch] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(groups))

    def work(codes: list[str]) -> None:
        try:
            barrier.wait(timeout=10)  # every thread's first call races for the one token
            batches.append(kis.get_prices(codes, multi=False))
        except BaseException as exc:
            errors.append(exc)

    with sync_client(fake, app, clock, tmp_path) as kis:
        threads = [threading.Thread(target=work, args=(codes,)) for codes in groups]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert kis.token_issuances == 1
    assert not errors
    got = {code: quote.price for batch in batches for code, quote in batch.succeeded.items()}
    assert got == {code: fake.price_of(code) for codes in groups for code in codes}
    assert not any(batch.failed for batch in batches)
    assert fake.stats.token_issuances(app.app_key) == 1
    # one inquire-price per code (a genuine EGW00201 from thread hops on a fake clock, retried,
    # aside)
    assert fake.stats.requests(path=PRICE_PATH) - fake.stats.rate_limited(app.app_key) == 40
