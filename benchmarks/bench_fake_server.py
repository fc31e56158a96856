"""Requests per second of the fake KIS loopback server (inquire-price, limits off, keep-alive).

Run: ``python benchmarks/bench_fake_server.py [N]`` (default 2000 requests). Stops by itself.
"""

from __future__ import annotations

import sys
import time

import httpx

from kisclient._config import ENDPOINTS, Env
from kisclient.testing import FakeKIS, FakeKISServer


def main(count: int = 2000) -> float:
    """Send *count* inquire-price requests over one keep-alive connection; return requests/s."""
    fake = FakeKIS(rate_limits={"real": None, "paper": None})
    app = fake.add_app("real")
    endpoint = ENDPOINTS["inquire_price"]
    with (
        FakeKISServer(fake) as server,
        httpx.Client(base_url=server.base_url(), timeout=10) as http,
    ):
        token = http.post(
            ENDPOINTS["token"].path,
            json={
                "grant_type": "client_credentials",
                "appkey": app.app_key,
                "appsecret": app.app_secret,
            },
        ).json()["access_token"]
        headers = {
            "authorization": f"Bearer {token}",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": endpoint.tr_id(Env.REAL),
        }
        codes = fake.universe
        start = time.perf_counter()
        for i in range(count):
            params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": codes[i % len(codes)]}
            response = http.get(endpoint.path, params=params, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"unexpected HTTP {response.status_code}")
        elapsed = time.perf_counter() - start
    rate = count / elapsed
    print(f"{count} requests in {elapsed:.2f} s: {rate:.0f} requests/s")
    return rate


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
