"""Shared harness for the pipeline tests: real JobContexts, real clients, the in-process fake.

Every job runs with a real :class:`~hantu_sched.JobContext` on :class:`~hantu_sched.MemoryStorage`
and a :class:`~hantu_sched.BatchStore` in ``tmp_path``, a :class:`~hantu_sched.FakeClock` shared
by the scheduler side, the clients and the fake KIS server, and real ``KISClient`` /
``AsyncKISClient`` instances talking to :class:`kisclient.testing.FakeKIS` in process.
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from hantu_sched import (
    KST,
    BatchStore,
    FakeClock,
    JobContext,
    JobKey,
    KRXCalendar,
    MemoryStorage,
    Session,
    Storage,
)
from hantu_sched.pipeline import KIS_ASYNC_SERVICE, KIS_SERVICE, UNIVERSE_SERVICE
from kisclient import AsyncKISClient, KISClient, RetryPolicy
from kisclient.testing import FakeApp, FakeKIS, FakeWSServer, OffsetClock

#: A Thursday, a regular 09:00-15:30 KRX session.
DAY = dt.date(2026, 11, 26)
NO_JITTER = RetryPolicy(jitter=False)


def at(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    """*hhmm* on *day* in KST."""
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


def session_of(day: dt.date = DAY) -> Session:
    session = KRXCalendar().session(day)
    assert session is not None
    return session


@attrs.define
class Harness:
    """One fake KIS, one app, one sync client, one storage, one data directory."""

    fake: FakeKIS
    clock: FakeClock
    app: FakeApp
    kis: KISClient
    storage: Storage
    data_dir: pathlib.Path
    batch_ids: tuple[str, ...] = ("1", "2", "3")
    stop: threading.Event = attrs.field(factory=threading.Event)
    extra_services: dict[str, Any] = attrs.field(factory=dict)
    ws: FakeWSServer | None = None

    def async_client(self) -> AsyncKISClient:
        return AsyncKISClient(
            self.app.app_key,
            self.app.app_secret,
            env=self.app.env,
            account=self.app.account,
            state_dir=self.data_dir / "kis-state",
            transport=self.fake.async_transport(),
            clock=self.clock,
            rate_limits=[],
            retry=NO_JITTER,
        )

    def services(self) -> dict[str, Any]:
        return {
            KIS_SERVICE: self.kis,
            KIS_ASYNC_SERVICE: self.async_client,
            **self.extra_services,
        }

    def ctx(
        self,
        job: str,
        batch: str | None = None,
        *,
        resume: bool = False,
        attempt: int = 1,
        day: dt.date = DAY,
        services: Mapping[str, Any] | None = None,
    ) -> JobContext:
        return JobContext(
            key=JobKey(job, day, batch),
            session=session_of(day),
            storage=self.storage,
            clock=self.clock,
            data_dir=self.data_dir,
            batches=BatchStore(self.data_dir),
            logger=logging.getLogger(f"test.pipeline.{job}"),
            stop=self.stop,
            batch_ids=self.batch_ids,
            attempt=attempt,
            resume=resume,
            services=self.services() if services is None else services,
        )

    def record(self, kind: str, key: str | None = None) -> Any:
        """The stored record (*kind*, *key* or today's date); it must exist."""
        found = self.storage.get_record(kind, key or DAY.isoformat())
        assert found is not None, f"no {kind} record for {key or DAY.isoformat()}"
        return found

    def watchlist(self) -> Any:
        """Today's stored watchlist; it must exist."""
        found = self.storage.get_watchlist(DAY)
        assert found is not None, "no watchlist stored"
        return found

    def order_codes(self) -> list[str]:
        """Codes of every order the fake accepted for this app, oldest first."""
        return [o.code for o in self.fake.orders(self.app.app_key)]

    def close(self) -> None:
        self.kis.close()
        if self.ws is not None:
            self.ws.close()


def make_harness(
    tmp_path: pathlib.Path,
    *,
    env: str = "paper",
    start: dt.datetime | None = None,
    clock: FakeClock | None = None,
    storage: Storage | None = None,
    universe: bool = True,
    universe_size: int = 120,
    kis_offset_s: float = 0.0,
    stream: bool = False,
    hts_id: bool = True,
) -> Harness:
    """A paper (or real) account on the fake; *kis_offset_s* sets KIS's clock that many seconds
    ahead of this host's (negative: behind). With *stream*, a fake WebSocket is started for the
    client's stream (``harness.ws``; the client gets the app's HTS id unless *hts_id* is
    false)."""
    clock = clock or FakeClock(start or at("10:00"))
    fake = FakeKIS(
        clock=OffsetClock(clock, kis_offset_s) if kis_offset_s else clock,
        seed=11,
        universe_size=universe_size,
        rate_limits={"real": None, "paper": None},
    )
    app = fake.add_app(env=env)
    ws = FakeWSServer(fake, env=env).start() if stream else None
    kis = KISClient(
        app.app_key,
        app.app_secret,
        env=app.env,
        account=app.account,
        state_dir=tmp_path / "kis-state",
        transport=fake.transport(),
        clock=clock,
        rate_limits=[],
        retry=NO_JITTER,
        ws_url=ws.url if ws is not None else None,
        hts_id=app.hts_id if hts_id else None,
    )
    harness = Harness(fake, clock, app, kis, storage or MemoryStorage(), tmp_path, ws=ws)
    if universe:
        harness.extra_services[UNIVERSE_SERVICE] = fake.universe
    return harness


def tradable_stocks(fake: FakeKIS, count: int, *, max_price: int = 400_000) -> list[str]:
    """*count* plain, tradable stocks (not halted, no warning) priced under *max_price*."""
    found = []
    for code in fake.universe:
        listing = fake.listing(code)
        if listing.kind != "stock" or listing.halted or listing.warning != "00":
            continue
        if 1000 <= fake.price_of(code) <= max_price:
            found.append(code)
        if len(found) == count:
            return found
    raise AssertionError(f"only {len(found)} tradable stocks in the fake universe")


def put_selection(
    storage: Storage, batch_ids: tuple[str, ...], codes: list[str], day: dt.date = DAY
) -> None:
    """Selection rows for *codes*, spread over *batch_ids*, scores descending in list order."""
    rows: dict[str, list[dict[str, Any]]] = {b: [] for b in batch_ids}
    for index, code in enumerate(codes):
        item = {"code": code, "score": 1.0 - index / 100, "close": 0, "avg_volume": 0}
        rows[batch_ids[index % len(batch_ids)]].append(item)
    for batch, items in rows.items():
        storage.put_selection(day, batch, items)
