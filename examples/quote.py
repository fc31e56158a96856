"""Fetch one quote.

    python examples/quote.py [CODE]

Needs only kisclient (``pip install ./dists/kisclient``); it uses the public API alone.

With KIS_APP_KEY/KIS_APP_SECRET set it asks the real KIS API; otherwise it starts the in-process
fake KIS server, so it runs anywhere with no credentials and no network.
"""

from __future__ import annotations

import os
import sys
import tempfile

from kisclient import KISClient
from kisclient.testing import FakeKIS


def make_client() -> KISClient:
    if os.environ.get("KIS_APP_KEY"):
        return KISClient.from_env()
    fake = FakeKIS(seed=1)
    app = fake.add_app(env="real")
    return KISClient(
        app.app_key,
        app.app_secret,
        env="real",
        account=app.account,
        state_dir=tempfile.mkdtemp(prefix="kis-example-"),
        transport=fake.transport(),
    )


def main() -> None:
    code = sys.argv[1] if len(sys.argv) > 1 else "005930"
    with make_client() as kis:
        quote = kis.get_price(code)
    print(f"{quote.code}: {quote.price:,} KRW ({quote.change_rate:+}%), volume {quote.volume:,}")


if __name__ == "__main__":
    main()
