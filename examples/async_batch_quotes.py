"""Quote many codes at once with the async client and show a progress bar.

    python examples/async_batch_quotes.py [N]

Needs only kisclient (``pip install ./dists/kisclient``); it uses the public API alone.

Against the in-process fake KIS server (no credentials needed); the 30-code endpoint is used on
the real environment, so N quotes take about N/30 calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from kisclient import AsyncKISClient
from kisclient.testing import FakeKIS


def progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stdout.write("\n")
    sys.stdout.flush()


async def main(count: int) -> None:
    fake = FakeKIS(seed=2, universe_size=max(count, 300))
    app = fake.add_app(env="real")
    codes = [*fake.universe[:count], "NOT-A-CODE"]
    async with AsyncKISClient(
        app.app_key,
        app.app_secret,
        env="real",
        state_dir=tempfile.mkdtemp(prefix="kis-example-"),
        transport=fake.async_transport(),
    ) as kis:
        batch = await kis.get_prices(codes, progress=progress_bar)
    failed = sorted(batch.failed)
    print(f"{len(batch.succeeded)} quotes in {batch.requests} requests; failed: {failed}")
    top = sorted(batch.succeeded.values(), key=lambda q: q.traded_value, reverse=True)[:3]
    for quote in top:
        print(
            f"  {quote.code} {quote.name}: {quote.price:,} KRW, traded {quote.traded_value:,} KRW"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 120))
