"""Shared helpers for tests that drive the real clients through the fake KIS server."""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

from kisclient import KST, AsyncKISClient, FakeClock, KISClient, RetryPolicy
from kisclient.testing import FakeApp, FakeKIS

#: A Thursday inside the regular session, so paper orders are accepted.
SESSION_TIME = dt.datetime(2026, 11, 26, 10, 0, tzinfo=KST)
NO_JITTER = RetryPolicy(jitter=False)


def make_fake(clock: FakeClock | None = None, **kwargs: Any) -> tuple[FakeKIS, FakeClock]:
    clock = clock or FakeClock(SESSION_TIME)
    return FakeKIS(clock=clock, seed=7, **kwargs), clock


def sync_client(
    fake: FakeKIS, app: FakeApp, clock: FakeClock, state_dir: pathlib.Path, **kwargs: Any
) -> KISClient:
    kwargs.setdefault("retry", NO_JITTER)
    return KISClient(
        app.app_key,
        app.app_secret,
        env=app.env,
        account=app.account,
        state_dir=state_dir,
        transport=fake.transport(),
        clock=clock,
        **kwargs,
    )


def async_client(
    fake: FakeKIS, app: FakeApp, clock: FakeClock, state_dir: pathlib.Path, **kwargs: Any
) -> AsyncKISClient:
    kwargs.setdefault("retry", NO_JITTER)
    return AsyncKISClient(
        app.app_key,
        app.app_secret,
        env=app.env,
        account=app.account,
        state_dir=state_dir,
        transport=fake.async_transport(),
        clock=clock,
        **kwargs,
    )
