"""Real-time stream benchmarks against the loopback fake KIS WebSocket (127.0.0.1 only; bounded;
stops itself). Issue 11.

The fake (:class:`~kisclient.testing.FakeWSServer`) runs in this process, on its own event loop
in a daemon thread, so server and client share the interpreter (and the GIL) as they do in the
test suite; every figure is compared with a baseline on the same server in the same run.

(1) parse + deliver throughput: ``ws.blast`` of N trade records of one code, 10 per frame, to a
    stream subscribed to that code; the consumer ``recv``s every one (``queue_size`` above N, so
    nothing is dropped). Baseline: a bare ``websockets`` asyncio client on the same server with
    the same subscribe message that only splits each frame (``text.split("|", 3)``) and counts
    its records. Median of R runs, bare / async / sync interleaved. Goals: async client
    >= 0.5x the bare client, and >= 50,000 records/s; the sync shell for information. Measured
    both ways the async client delivers trades: one ``Trade`` event per record, and one
    ``TradeBatch`` per frame (``trade_batches=True``; the consumer sums every price and volume).
(2) latency from the fake's send to the consumer's ``recv``: ``latency_probe=True`` puts
    ``time.perf_counter_ns()`` into each trade record (field 47) just before the frame is handed
    to the socket; ``start_feed`` at 2,000 records/s, one record per frame, for S seconds (the
    first 0.5 s not counted). p50 / p99 / max. Goal: p99 <= 5 ms (async; the sync shell too).
(3) C forced abnormal disconnects (``drop_all``: TCP aborted, no close frame) with a 2 s slot
    hold, ``reconnect_initial=1``, ``reconnect_max=4``: 5 trade codes and the fill notices.
    After each resume: registrations at the server vs those wanted (lost: goal 0), OPSP0002
    duplicates (goal 0), OPSP8996 answers per hold (goal <= 3), a trade of each code delivered
    after the resume (goal every cycle), time from the drop to the resume. The fake's PINGPONG
    comes every 1 s (KIS: about 10 s) and each cycle waits for one echo on the resumed session,
    so every drop hits a session the client knows was working (its backoff starts afresh, as
    after a drop in a long-lived session).
(4) memory: one stream with 41 trade subscriptions over M records (``ws.blast`` over the 41
    codes, 10 per frame, in chunks of 1,000 per code so the fake never holds many prebuilt
    frames), default ``queue_size``, the consumer reading as fast as it can. RSS (VmRSS of this
    process, server included) after 100,000 records and at the end. Goal: growth <= 5 MB.

Usage: python benchmarks/bench_stream.py [--quick] [--runs R] [--records N] [--seconds S]
       [--cycles C] [--memory-records M] [--parts 1234]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import pathlib
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, Protocol

import attrs
from websockets.asyncio.client import connect

from kisclient import (
    AsyncKISClient,
    KISClient,
    Stream,
    StreamResubscribed,
    SubscriptionRefused,
    Trade,
    TradeBatch,
)
from kisclient._stream_protocol import TRADE_FIELDS
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer, FakeWSServer

BUNDLE = 10
PROBE_FIELD = "field_47"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load() -> str:
    """The 1/5/15-minute load averages (other work on the machine moves every figure)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_kib() -> int:
    """This process's resident set (VmRSS), in KiB."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def median_of(values: list[float]) -> float:
    return statistics.median(values)


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile *p* (0..100) of already sorted values."""
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@attrs.define
class Env:
    """One fake KIS (REST in-process) with its WebSocket server and one app."""

    fake: FakeKIS
    app: FakeApp
    ws: FakeWSServer
    state_dir: str

    def sync_client(self) -> KISClient:
        return KISClient(
            self.app.app_key,
            self.app.app_secret,
            account=self.app.account,
            transport=self.fake.transport(),
            state_dir=self.state_dir,
            ws_url=self.ws.url,
            hts_id=self.app.hts_id,
        )

    def async_client(self) -> AsyncKISClient:
        return AsyncKISClient(
            self.app.app_key,
            self.app.app_secret,
            account=self.app.account,
            transport=self.fake.async_transport(),
            state_dir=self.state_dir,
            ws_url=self.ws.url,
            hts_id=self.app.hts_id,
        )


@contextlib.contextmanager
def environment(**ws_options: Any) -> Iterator[Env]:
    fake = FakeKIS()
    app = fake.add_app()
    with (
        FakeWSServer(fake, **ws_options) as ws,
        tempfile.TemporaryDirectory(prefix="bench-stream-") as state,
    ):
        yield Env(fake, app, ws, state)


class Blaster(Protocol):
    """What the throughput measures need of a fake WebSocket server."""

    @property
    def url(self) -> str: ...

    def blast(self, code: str, records: int, bundle: int = 1) -> int: ...


class Source(Protocol):
    """A fake KIS the throughput measures run against: in this process or in another."""

    @property
    def ws(self) -> Blaster: ...

    def async_client(self) -> AsyncKISClient: ...

    def sync_client(self) -> KISClient: ...


def _fake_process(conn: Connection) -> None:
    """The body of the separate fake's process: REST and WebSocket fakes on loopback ports, then
    commands from *conn* (``("blast", code, n, bundle)``, ``("approval_key",)``, ``None`` to
    end), each answered on *conn*."""
    fake = FakeKIS()
    app = fake.add_app()
    with FakeKISServer(fake) as http, FakeWSServer(fake) as ws:
        conn.send(
            {
                "base_url": http.base_url(),
                "ws_url": ws.url,
                "app_key": app.app_key,
                "app_secret": app.app_secret,
                "account": app.account,
                "hts_id": app.hts_id,
                "code": fake.universe[0],
            }
        )
        while (command := conn.recv()) is not None:
            if command[0] == "blast":
                conn.send(ws.blast(*command[1:]))
            else:
                conn.send(fake.approval_keys(app.app_key)[-1].value)


class RemoteWS:
    """The fake WebSocket server of :func:`_fake_process`, driven over a pipe."""

    def __init__(self, conn: Connection, url: str) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.url = url

    def call(self, *command: Any) -> Any:
        with self._lock:
            self._conn.send(command)
            return self._conn.recv()

    def blast(self, code: str, records: int, bundle: int = 1) -> int:
        return int(self.call("blast", code, records, bundle))


@attrs.define
class RemoteEnv:
    """A fake KIS in its own process (its own interpreter and GIL, as KIS is on its own
    machine), with one app; clients reach it over loopback HTTP and WebSocket."""

    ws: RemoteWS
    info: dict[str, str]
    state_dir: str

    @property
    def code(self) -> str:
        return self.info["code"]

    def approval_key(self) -> str:
        return str(self.ws.call("approval_key"))

    def _options(self) -> dict[str, Any]:
        i = self.info
        return {
            "account": i["account"],
            "base_url": i["base_url"],
            "state_dir": self.state_dir,
            "ws_url": i["ws_url"],
            "hts_id": i["hts_id"],
        }

    def sync_client(self) -> KISClient:
        return KISClient(self.info["app_key"], self.info["app_secret"], **self._options())

    def async_client(self) -> AsyncKISClient:
        return AsyncKISClient(self.info["app_key"], self.info["app_secret"], **self._options())


@contextlib.contextmanager
def remote_environment() -> Iterator[RemoteEnv]:
    """:class:`RemoteEnv` over a spawned process running :func:`_fake_process`."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_fake_process, args=(theirs,), daemon=True
    )
    process.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the fake's process did not start within 60 s")
        info = ours.recv()
        with tempfile.TemporaryDirectory(prefix="bench-stream-") as state:
            yield RemoteEnv(RemoteWS(ours, info["ws_url"]), info, state)
        ours.send(None)
        process.join(10)
    finally:
        if process.is_alive():
            process.kill()
            process.join()


def blast_in_thread(ws: Blaster, code: str, n: int) -> threading.Thread:
    thread = threading.Thread(target=ws.blast, args=(code, n, BUNDLE), daemon=True)
    thread.start()
    return thread


# --- (1) throughput ---------------------------------------------------------------------------


async def async_client_rate(
    env: Source, code: str, n: int, *, iterate: bool = False, batches: bool = False
) -> float:
    """Records/s through ``AsyncKISClient.stream()`` (timed from the first frame's delivery);
    the consumer calls ``recv(30)`` per event, or with *iterate* uses ``async for``. With
    *batches* the stream delivers ``TradeBatch`` events (``trade_batches=True``) and the
    consumer reads each batch's prices and volumes (``sum`` over both columns)."""
    async with (
        env.async_client() as kis,
        kis.stream(queue_size=n + 1_000, trade_batches=batches) as s,
    ):
        await s.recv(10)  # StreamConnected
        await s.subscribe_trades([code])
        blaster = asyncio.create_task(asyncio.to_thread(env.ws.blast, code, n, BUNDLE))
        got = 0
        first = 0.0
        if batches:
            checksum = 0
            while got < n:
                event = await s.recv(30)
                if type(event) is TradeBatch:
                    if got == 0:
                        first = time.perf_counter()
                    got += len(event)
                    checksum += sum(event.prices) + sum(event.volumes)
            if checksum <= 0:
                raise RuntimeError("the batches carried no prices")
        elif iterate:
            async for event in s:
                if type(event) is Trade:
                    got += 1
                    if got == 1:
                        first = time.perf_counter()
                    if got == n:
                        break
        else:
            while got < n:
                event = await s.recv(30)
                if type(event) is Trade:
                    got += 1
                    if got == 1:
                        first = time.perf_counter()
        elapsed = time.perf_counter() - first
        await blaster
        if sum(s.dropped.values()):
            raise RuntimeError(f"events were dropped: {s.dropped}")
    return (n - BUNDLE) / elapsed


def sync_client_rate(env: Source, code: str, n: int) -> float:
    """Records/s through ``KISClient.stream()``: the consumer is this thread."""
    with env.sync_client() as kis, kis.stream(queue_size=n + 1_000) as s:
        s.recv(10)
        s.subscribe_trades([code])
        blaster = blast_in_thread(env.ws, code, n)
        got = 0
        first = 0.0
        while got < n:
            event = s.recv(30)
            if type(event) is Trade:
                got += 1
                if got == 1:
                    first = time.perf_counter()
        elapsed = time.perf_counter() - first
        blaster.join()
        if sum(s.dropped.values()):
            raise RuntimeError(f"events were dropped: {s.dropped}")
    return (n - BUNDLE) / elapsed


async def bare_rate(
    env: Source, approval_key: str, code: str, n: int, *, split: bool = False, fields: bool = False
) -> float:
    """Records/s of a bare ``websockets`` client that only splits frames and counts records.
    For information: with *split* it also splits each frame's payload into its fields (the
    least any reader of a record's fields must do: records are delimited only by their field
    count); with *fields* it builds each record's field dict as well."""
    subscribe = {
        "header": {
            "approval_key": approval_key,
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": code}},
    }
    async with connect(env.ws.url, ping_interval=None, max_size=None, compression=None) as conn:
        await conn.send(json.dumps(subscribe, separators=(",", ":")))
        answer = await conn.recv()
        if '"OPSP0000"' not in answer:
            raise RuntimeError("the bare client's subscription was not accepted")
        blaster = asyncio.create_task(asyncio.to_thread(env.ws.blast, code, n, BUNDLE))
        got = 0
        first = 0.0
        while got < n:
            text = await conn.recv(decode=True)
            if text[0] in "01":
                parts = text.split("|", 3)
                if got == 0:
                    first = time.perf_counter()
                count = int(parts[2])
                if split:
                    parts[3].split("^")
                if fields:
                    values = parts[3].split("^")
                    width = len(values) // count
                    for start in range(0, len(values), width):
                        record = values[start : start + width]
                        dict(zip(TRADE_FIELDS, record, strict=True))
                got += count
            elif '"PINGPONG"' in text:
                await conn.send(text)
        elapsed = time.perf_counter() - first
        await blaster
    return (n - BUNDLE) / elapsed


#: The throughput measures of (1), in the order each run takes them.
MEASURES = ("bare", "bare_split", "bare_fields", "async", "async_iter", "async_batch", "sync")


def throughput(runs: int, n: int, *, separate: bool = False) -> dict[str, list[float]]:
    """Records/s of every measure in :data:`MEASURES`, per run; with *separate* the fake runs
    in its own process."""
    rates: dict[str, list[float]] = {m: [] for m in MEASURES}
    with contextlib.ExitStack() as stack:
        env: Source
        if separate:
            env = remote = stack.enter_context(remote_environment())
            code = remote.code
            asyncio.run(async_client_rate(env, code, 2_000))  # warm up; issues the approval key
            approval_key = remote.approval_key()
        else:
            env = local = stack.enter_context(environment())
            code = local.fake.universe[0]
            asyncio.run(async_client_rate(env, code, 2_000))
            approval_key = local.fake.approval_keys(local.app.app_key)[-1].value
        for run in range(runs):
            rates["bare"].append(asyncio.run(bare_rate(env, approval_key, code, n)))
            rates["bare_split"].append(
                asyncio.run(bare_rate(env, approval_key, code, n, split=True))
            )
            rates["bare_fields"].append(
                asyncio.run(bare_rate(env, approval_key, code, n, fields=True))
            )
            rates["async"].append(asyncio.run(async_client_rate(env, code, n)))
            rates["async_iter"].append(asyncio.run(async_client_rate(env, code, n, iterate=True)))
            rates["async_batch"].append(asyncio.run(async_client_rate(env, code, n, batches=True)))
            rates["sync"].append(sync_client_rate(env, code, n))
            shown = ", ".join(f"{m} {v[-1]:,.0f}/s" for m, v in rates.items())
            print(f"    run {run + 1}/{runs}: {shown}", flush=True)
    return rates


# --- (2) latency ------------------------------------------------------------------------------


@attrs.frozen
class Latency:
    records: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ns: list[int], seconds: float) -> Latency:
        values = sorted(v / 1e6 for v in samples_ns)
        return cls(
            len(values),
            len(values) / seconds,
            percentile(values, 50),
            percentile(values, 99),
            values[-1],
        )


WARMUP_S = 0.5


async def async_latency(env: Env, code: str, seconds: float, rate: float) -> Latency:
    samples: list[int] = []
    async with env.async_client() as kis, kis.stream() as s:
        await s.recv(10)
        await s.subscribe_trades([code])
        env.ws.start_feed(rate, 1)
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            count_from = start + WARMUP_S
            end = count_from + seconds
            while (now := loop.time()) < end:
                event = await s.recv(5)
                if type(event) is Trade:
                    at = time.perf_counter_ns()
                    if now >= count_from:
                        samples.append(at - int(event.fields[PROBE_FIELD]))
        finally:
            env.ws.stop_feed()
    return Latency.of(samples, seconds)


def sync_latency(env: Env, code: str, seconds: float, rate: float) -> Latency:
    samples: list[int] = []
    with env.sync_client() as kis, kis.stream() as s:
        s.recv(10)
        s.subscribe_trades([code])
        env.ws.start_feed(rate, 1)
        try:
            start = time.monotonic()
            count_from = start + WARMUP_S
            end = count_from + seconds
            while (now := time.monotonic()) < end:
                event = s.recv(5)
                if type(event) is Trade:
                    at = time.perf_counter_ns()
                    if now >= count_from:
                        samples.append(at - int(event.fields[PROBE_FIELD]))
        finally:
            env.ws.stop_feed()
    return Latency.of(samples, seconds)


# --- (3) forced disconnects -------------------------------------------------------------------


@attrs.define
class Resumes:
    cycles: int = 0
    resumed: int = 0
    lost: int = 0
    extra: int = 0
    duplicates: int = 0
    slot_busy: list[int] = attrs.field(factory=list)
    refused_events: int = 0
    resubscribed_events: int = 0
    cycles_with_all_trades: int = 0
    trades_after_resume: int = 0
    resume_s: list[float] = attrs.field(factory=list)
    wall_s: float = 0.0


def wait_for(predicate: Any, timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def await_resume(s: Stream, ws: FakeWSServer, key: str, result: Resumes) -> None:
    """Read events until a StreamResubscribed is followed by a live session of *key* at the
    server (an attempt refused with OPSP8996 also ends in a StreamResubscribed)."""
    while True:
        event = s.recv(30)
        if type(event) is SubscriptionRefused:
            result.refused_events += 1
        if type(event) is not StreamResubscribed:
            continue
        result.resubscribed_events += 1
        if wait_for(lambda: ws.sessions(key) > 0, 0.5):
            return


def trades_flow(s: Stream, ws: FakeWSServer, codes: list[str], result: Resumes) -> None:
    """Publish one trade per code; count those delivered within 5 s."""
    for code in codes:
        ws.publish_trades(code, 1)
    seen: set[str] = set()
    deadline = time.monotonic() + 5
    while seen != set(codes) and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            event = s.recv(max(deadline - time.monotonic(), 0.01))
            if type(event) is Trade:
                seen.add(event.code)
                result.trades_after_resume += 1
            elif type(event) is SubscriptionRefused:
                result.refused_events += 1
    result.cycles_with_all_trades += seen == set(codes)


def forced_disconnects(cycles: int, codes_n: int = 5) -> Resumes:
    result = Resumes()
    started = time.perf_counter()
    with environment(slot_hold_s=2.0, pingpong_interval_s=1.0) as env:
        ws, key = env.ws, env.app.app_key
        codes = env.fake.universe[:codes_n]
        with (
            env.sync_client() as kis,
            kis.stream(reconnect_initial=1.0, reconnect_max=4.0) as s,
        ):
            s.recv(10)
            s.subscribe_trades(codes)
            s.subscribe_fills()
            wanted = frozenset(s.registrations)
            if ws.registrations(key) != wanted:
                raise RuntimeError("the first subscriptions did not all register")
            for cycle in range(1, cycles + 1):
                before = ws.stats
                ws.drop_all()
                dropped_at = time.monotonic()
                await_resume(s, ws, key, result)
                result.resume_s.append(time.monotonic() - dropped_at)
                wait_for(lambda: ws.registrations(key) == wanted, 2.0)
                registered = ws.registrations(key)
                result.resumed += 1
                result.lost += len(wanted - registered)
                result.extra += len(registered - wanted)
                after = ws.stats
                result.duplicates += after.duplicates - before.duplicates
                result.slot_busy.append(after.slot_busy_for(key) - before.slot_busy_for(key))
                echoes = ws.echoes(key)
                trades_flow(s, ws, codes, result)
                # A working session: one PINGPONG echoed before the next drop.
                wait_for(lambda e=echoes: ws.echoes(key) > e, 3.0)
                result.cycles = cycle
                if cycle % 10 == 0 or cycle == cycles:
                    print(
                        f"    cycle {cycle}/{cycles}: lost {result.lost}, duplicates "
                        f"{result.duplicates}, OPSP8996 max/hold {max(result.slot_busy)}, "
                        f"trades after resume {result.cycles_with_all_trades}/{cycle} cycles, "
                        f"{time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
    result.wall_s = time.perf_counter() - started
    return result


# --- (4) memory -------------------------------------------------------------------------------


@attrs.frozen
class Memory:
    records: int
    rss_start_kib: int
    rss_100k_kib: int
    rss_end_kib: int
    seconds: float
    dropped: dict[str, int]

    @property
    def growth_mb(self) -> float:
        return (self.rss_end_kib - self.rss_100k_kib) / 1024


def chunks(codes: list[str], total: int, per_call: int) -> list[tuple[str, int]]:
    """(code, records) blasts covering *total* records, round-robin over *codes*."""
    plan: list[tuple[str, int]] = []
    left = total
    while left:
        for code in codes:
            n = min(per_call, left)
            plan.append((code, n))
            left -= n
            if not left:
                break
    return plan


async def memory_run(env: Env, total: int, mark: int) -> Memory:
    codes = env.fake.universe[:41]
    plan = chunks(codes, total, 1_000)
    async with env.async_client() as kis, kis.stream() as s:
        await s.recv(10)
        await s.subscribe_trades(codes)
        if len(env.ws.registrations(env.app.app_key)) != 41:
            raise RuntimeError("not all 41 subscriptions registered")
        gc.collect()
        rss_start = rss_kib()

        def blast_all() -> None:
            for code, n in plan:
                env.ws.blast(code, n, BUNDLE)

        blaster = asyncio.create_task(asyncio.to_thread(blast_all))
        started = time.perf_counter()
        got = 0
        rss_mark = 0
        step = total // 10
        while got < total:
            try:
                event = await s.recv(5)
            except TimeoutError:
                if blaster.done():
                    break  # some were dropped: nothing more is coming
                continue
            if type(event) is Trade:
                got += 1
                if got == mark:
                    gc.collect()
                    rss_mark = rss_kib()
                if got % step == 0:
                    print(f"    {got:,} records, RSS {rss_kib() / 1024:.1f} MB", flush=True)
        seconds = time.perf_counter() - started
        await blaster
        gc.collect()
        rss_end = rss_kib()
        dropped = dict(s.dropped)
    return Memory(got, rss_start, rss_mark, rss_end, seconds, dropped)


def memory(total: int, mark: int) -> Memory:
    with environment() as env:
        return asyncio.run(memory_run(env, total, mark))


# --- main -------------------------------------------------------------------------------------


def report_throughput(args: argparse.Namespace) -> dict[str, Any]:
    print(f"(1) throughput: {args.records:,} records, {BUNDLE} per frame, {args.runs} runs")
    out = {}
    for where in args.fake.split(","):
        label = "in this process" if where == "same" else "in its own process"
        print(f"  the fake {label}:")
        rates = throughput(args.runs, args.records, separate=where == "separate")
        out[where] = throughput_summary(rates)
    return out


def throughput_summary(rates: dict[str, list[float]]) -> dict[str, Any]:
    med = {m: median_of(v) for m, v in rates.items()}
    ratio = med["async"] / med["bare"]
    batch_ratio = med["async_batch"] / med["bare"]
    print(
        f"    medians: bare websockets {med['bare']:,.0f}/s, async client "
        f"{med['async']:,.0f}/s, sync client {med['sync']:,.0f}/s"
    )
    print(f"    async / bare {ratio:.2f} (goal >= 0.5), one Trade event per record")
    print(
        f"    async with trade_batches=True {med['async_batch']:,.0f}/s (the consumer reads "
        f"every price and volume): / bare {batch_ratio:.2f} (goal >= 0.5)"
    )
    print(f"    async {med['async']:,.0f} records/s (goal >= 50,000)")
    print(f"    sync / bare {med['sync'] / med['bare']:.2f} (for information)")
    print(
        f"    for information: bare + the payload split into fields {med['bare_split']:,.0f}/s "
        f"(async / that {med['async'] / med['bare_split']:.2f})"
    )
    print(
        f"    for information: bare + a field dict per record {med['bare_fields']:,.0f}/s "
        f"(async / that {med['async'] / med['bare_fields']:.2f}); async client with "
        f"'async for' instead of recv(30) {med['async_iter']:,.0f}/s"
    )
    return {
        **{m: round(v) for m, v in med.items()},
        "async_ratio": round(ratio, 3),
        "async_batch_ratio": round(batch_ratio, 3),
        "sync_ratio": round(med["sync"] / med["bare"], 3),
        "runs": {m: [round(x) for x in v] for m, v in rates.items()},
    }


def report_latency(args: argparse.Namespace) -> dict[str, Any]:
    rate = 2_000.0
    print(f"(2) latency, fake send -> consumer recv, {rate:,.0f} records/s, {args.seconds} s")
    with environment(latency_probe=True) as env:
        code = env.fake.universe[0]
        shells = {
            "async": asyncio.run(async_latency(env, code, args.seconds, rate)),
            "sync": sync_latency(env, code, args.seconds, rate),
        }
    for shell, a in shells.items():
        print(
            f"    {shell}: {a.records:,} records ({a.rate:,.0f}/s): p50 {a.p50_ms:.2f} ms, "
            f"p99 {a.p99_ms:.2f} ms, max {a.max_ms:.2f} ms (goal p99 <= 5 ms)",
            flush=True,
        )
    return {shell: attrs.asdict(a) for shell, a in shells.items()}


def report_disconnects(args: argparse.Namespace) -> dict[str, Any]:
    print(f"(3) {args.cycles} forced abnormal disconnects, slot hold 2 s, 5 codes + fills")
    r = forced_disconnects(args.cycles)
    holds = collections_counter(r.slot_busy)
    print(
        f"    resumed {r.resumed}/{r.cycles}; lost subscriptions {r.lost} (goal 0), "
        f"extra {r.extra}; OPSP0002 duplicates {r.duplicates} (goal 0)"
    )
    print(
        f"    OPSP8996 per hold: max {max(r.slot_busy)} (goal <= 3), distribution {holds}; "
        f"StreamResubscribed events {r.resubscribed_events} for {r.resumed} resumes"
    )
    print(
        f"    a trade of every code after the resume: {r.cycles_with_all_trades}/{r.cycles} "
        f"cycles ({r.trades_after_resume} trades); SubscriptionRefused {r.refused_events}"
    )
    print(
        f"    drop -> resume: median {median_of(r.resume_s):.2f} s, "
        f"max {max(r.resume_s):.2f} s; wall {r.wall_s:.0f} s"
    )
    return {
        **{k: v for k, v in attrs.asdict(r).items() if k not in ("slot_busy", "resume_s")},
        "slot_busy_max": max(r.slot_busy),
        "slot_busy_per_hold": holds,
        "resume_s_median": round(median_of(r.resume_s), 3),
        "resume_s_max": round(max(r.resume_s), 3),
    }


def report_memory(args: argparse.Namespace) -> dict[str, Any]:
    mark = min(100_000, args.memory_records // 2)
    print(f"(4) memory: 41 subscriptions, {args.memory_records:,} records")
    m = memory(args.memory_records, mark)
    print(
        f"    RSS {m.rss_start_kib / 1024:.1f} MB at the start, "
        f"{m.rss_100k_kib / 1024:.1f} MB after {mark:,} records, "
        f"{m.rss_end_kib / 1024:.1f} MB after {m.records:,}: growth {m.growth_mb:.2f} MB "
        f"(goal <= 5 MB)"
    )
    print(f"    {m.records / m.seconds:,.0f} records/s; dropped {m.dropped}")
    return {**attrs.asdict(m), "growth_mb": round(m.growth_mb, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--runs", type=int, default=5, help="throughput runs (median)")
    parser.add_argument("--records", type=int, default=100_000, help="records per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency window per shell")
    parser.add_argument("--cycles", type=int, default=100, help="forced disconnects")
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--parts", default="1234", help="which parts to run, e.g. 13")
    parser.add_argument(
        "--fake",
        default="same,separate",
        help="(1): where the fake runs: same (this process), separate (its own), or both",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.records, args.seconds = 3, 20_000, 2.0
        args.cycles, args.memory_records = 3, 200_000
    # Each reconnect logs a warning on kisclient.stream; keep the report readable.
    logging.getLogger("kisclient").addHandler(logging.NullHandler())
    summary: dict[str, Any] = {"machine": machine(), "load_at_start": load()}
    print(f"# stream benchmarks ({machine()}; load average {load()})", flush=True)
    parts = {
        "1": ("throughput", report_throughput),
        "2": ("latency_ms", report_latency),
        "3": ("disconnects", report_disconnects),
        "4": ("memory", report_memory),
    }
    for number, (name, report) in parts.items():
        if number in args.parts:
            summary[name] = report(args)
    summary["load_at_end"] = load()
    print(f"# load average at the end: {load()}")
    print(json.dumps(summary))


def collections_counter(values: list[int]) -> dict[str, int]:
    """How many holds saw each number of OPSP8996 answers."""
    counts: dict[str, int] = {}
    for v in sorted(values):
        counts[str(v)] = counts.get(str(v), 0) + 1
    return counts


if __name__ == "__main__":
    main()
