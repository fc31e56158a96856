"""Print live trades and your fill notices from KIS's WebSocket.

    python examples/live_trades_and_fills.py

Needs only kisclient (``pip install ./dists/kisclient``); it uses the public API alone.

It runs against the fake KIS server, REST and WebSocket, with no credentials. Against KIS, drop
the fake and build the client with ``KISClient.from_env()``. It reads ``KIS_WS_URL`` (the
environment's WebSocket by default) and ``KIS_HTS_ID`` (needed for fill notices). Only one
process per app key may hold the stream: see the guide's "Real-time streams".
"""

from __future__ import annotations

import tempfile

from kisclient import Fill, KISClient, StreamConnected, Trade
from kisclient.testing import FakeKIS, FakeWSServer

CODE = "005930"


def main() -> None:
    fake = FakeKIS(seed=3)
    fake.set_market_open(True)  # orders are accepted whatever the hour this example runs at
    app = fake.add_app(env="real")
    with (
        FakeWSServer(fake) as ws,
        KISClient(
            app.app_key,
            app.app_secret,
            account=app.account,
            state_dir=tempfile.mkdtemp(prefix="kis-example-"),
            transport=fake.transport(),
            ws_url=ws.url,
            hts_id=app.hts_id,
        ) as kis,
        kis.stream() as stream,
    ):
        stream.subscribe_trades([CODE])
        stream.subscribe_fills()
        ws.publish_trades(CODE, n=3, bundle=3)  # the fake's market: three trades in one frame
        kis.order_cash("buy", CODE, 10)  # an order: KIS notices its acceptance and its fill
        fills = 0
        for event in stream:
            if isinstance(event, StreamConnected):
                print(f"connected (attempt {event.attempt})")
            elif isinstance(event, Trade):
                print(f"trade {event.code} {event.volume} @ {event.price:,} at {event.time}")
            elif isinstance(event, Fill):
                what = "filled" if event.filled else "accepted"
                print(f"order {event.order_no} {what}: {event.side} {event.qty} x {event.code}")
                fills += event.filled
                if fills:
                    break


if __name__ == "__main__":
    main()
