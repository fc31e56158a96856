"""Fixtures for the fake KIS server's own tests (``fake_`` prefix avoids clashes).

A ``conftest.py`` here would clash with the suite's root ``conftest`` module (mypy sees two
modules named ``conftest``), so test modules import the fixtures from this module instead: the
fixture functions have private Python names and public fixture names (``name=``), so importing
them does not shadow test parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from kisclient._clock import FakeClock
from kisclient._config import ENDPOINTS, KST, Env, Side, env_settings
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer

#: Thursday 2026-11-26 10:00 KST: inside the regular session.
FAKE_SESSION = dt.datetime(2026, 11, 26, 10, 0, tzinfo=KST)


class FakeHarness:
    """Talks to a FakeKIS either in-process or through the loopback server."""

    def __init__(self, fake: FakeKIS, server: FakeKISServer | None) -> None:
        self.fake = fake
        self.server = server
        self.mode = "loopback" if server else "inprocess"
        self._clients: dict[str, httpx.Client] = {}
        self._tokens: dict[str, str] = {}
        #: Advance a FakeClock by one second before each paper data call (paper allows 1/s).
        self.pace_paper = True

    def base_url(self, env: Env | str) -> str:
        if self.server is not None:
            return self.server.base_url(env)
        return env_settings(env).base_url

    def client(self, env: Env | str = "real") -> httpx.Client:
        """A client for *env*, reused across calls (keep-alive on loopback)."""
        key = str(Env(env).value if isinstance(env, Env) else env)
        if key not in self._clients:
            if self.server is not None:
                client = httpx.Client(base_url=self.base_url(env), timeout=5.0)
            else:
                client = httpx.Client(base_url=self.base_url(env), transport=self.fake.transport())
            self._clients[key] = client
        return self._clients[key]

    def issue(self, app: FakeApp, env: str | None = None) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
        }
        return self.client(env or app.env).post(ENDPOINTS["token"].path, json=body)

    def token(self, app: FakeApp) -> str:
        if app.app_key not in self._tokens:
            response = self.issue(app)
            assert response.status_code == 200, response.text
            self._tokens[app.app_key] = response.json()["access_token"]
        return self._tokens[app.app_key]

    def headers(self, app: FakeApp, tr_id: str, token: str | None = None) -> dict[str, str]:
        return {
            "authorization": f"Bearer {token or self.token(app)}",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": tr_id,
            "custtype": "P",
        }

    def call(
        self,
        app: FakeApp,
        name: str,
        params: Mapping[str, str] | None = None,
        *,
        side: Side | None = None,
        tr_id: str | None = None,
        env: str | None = None,
        json: Any = None,
        extra: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Call endpoint *name* with *app*'s credentials and its env's tr_id (or *tr_id*)."""
        endpoint = ENDPOINTS[name]
        env_name = env or app.env
        if tr_id is None:
            tr_id = endpoint.tr_id(Env(env_name), side)
        headers = {**self.headers(app, tr_id), **(extra or {})}
        if self.pace_paper and env_name == "paper" and isinstance(self.fake.clock, FakeClock):
            self.fake.clock.advance(1.0)
        client = self.client(env_name)
        if endpoint.method == "GET":
            return client.get(endpoint.path, params=dict(params or {}), headers=headers)
        return client.post(endpoint.path, json=json, headers=headers)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(name="fake_clock")
def _fake_clock() -> FakeClock:
    return FakeClock(FAKE_SESSION)


@pytest.fixture(name="fake_kis")
def _fake_kis(fake_clock: FakeClock) -> FakeKIS:
    return FakeKIS(clock=fake_clock, seed=7)


@pytest.fixture(name="fake_inprocess")
def _fake_inprocess(fake_kis: FakeKIS) -> Iterator[FakeHarness]:
    harness = FakeHarness(fake_kis, None)
    yield harness
    harness.close()


@pytest.fixture(name="fake_harness", params=["inprocess", "loopback"])
def _fake_harness(request: pytest.FixtureRequest, fake_kis: FakeKIS) -> Iterator[FakeHarness]:
    """The same fake, reached in-process and over a loopback HTTP server."""
    if request.param == "inprocess":
        harness = FakeHarness(fake_kis, None)
        yield harness
        harness.close()
        return
    with FakeKISServer(fake_kis, port=0) as server:
        harness = FakeHarness(fake_kis, server)
        yield harness
        harness.close()
