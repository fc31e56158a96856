"""The randomized soak of issue 9, level 2: real scheduler processes, real SIGKILLs.

The parent (:func:`run_process_seed`) serves a :class:`~kisclient.testing.FakeKIS` on loopback
(:class:`~kisclient.testing.FakeKISServer`) and runs the scheduler in child processes (this file
as a script: ``run_daemon`` with a loopback base URL). Every process reads the time from the
same :class:`Warp`, a piecewise-linear map from the wall clock to the virtual trading day that
the parent fixes before the first child starts: the day runs at :data:`FAST` × real time, except
the first minute after the open (when the orders go out) which runs at :data:`SLOW` ×. The
child's transport sets each request's real httpx timeouts to kisclient's 10-second timeout
converted at the current speed (never under :data:`READ_TIMEOUT_REAL_S`), so while the orders go
out the client's real read timeout is exactly 10 virtual seconds, as its settle window assumes,
and a gateway latency of up to 3× that really outlasts it. The fake runs on the same warp,
shifted by a random clock offset (±5 minutes). A seed takes about 8 real seconds.

Chaos, drawn from ``random.Random(seed)`` (:class:`ProcessPlan`):

- SIGKILL of the scheduler at random virtual moments, restarted at once;
- a SIGKILL with an order in flight: the fake holds the n-th order-cash request (a latency fault
  of up to 3× the timeout) and the parent kills the child right then, so the order lands after
  the restart;
- gateway latency on some other orders;
- lock-file deletion before some restarts, and a second scheduler process started on the same
  data directory (lock file deleted first) while the first runs; it is killed a while later.

Rules (the same as level 1): no duplicate order at the fake; no unit run twice (from the
children's start/end log: a unit's job never starts while another run of it has neither ended
nor been killed with its process, never after a run of it returned, and never more often than
the journal counts attempts); every unit done or explained in the journal. A child that exits
with an error is restarted (as a supervisor would) and noted; the seed fails if the day does not
finish within :data:`REAL_DEADLINE_S`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import attrs
import httpx
from _soak_harness import DAY, ORDER_PATH, SoakReport, judge_day

from hantu_sched import JobContext, JobRegistry, SchedulerConfig, SQLiteStorage
from hantu_sched._calendar import KRXCalendar
from hantu_sched._cli import run_daemon
from hantu_sched._constants import KST
from hantu_sched._jobs import Job
from hantu_sched._lock import LOCK_NAME, SchedulerAlreadyRunningError
from hantu_sched._settings import Settings, load_credentials, load_settings
from hantu_sched._storage import DEFAULT_DB_NAME
from kisclient.testing import FakeKIS, FakeKISServer, Fault, OffsetClock
from kisclient.testing._http import FakeRequest

__all__ = ["ProcessPlan", "Warp", "WarpClock", "run_process_seed"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Virtual seconds per real second, most of the day.
FAST = 10000.0
#: Virtual seconds per real second from the open to :data:`SLOW_UNTIL`.
SLOW = 20.0
SLOW_UNTIL = dt.time(9, 1)
#: kisclient's default timeout (virtual seconds) and what that is in real seconds when SLOW.
CLIENT_TIMEOUT_S = 10.0
READ_TIMEOUT_REAL_S = CLIENT_TIMEOUT_S / SLOW
#: The virtual day the children run.
DAY_START = dt.time(5, 58)
DAY_END = dt.time(17, 30)
#: Codes at the fake (the pipeline's universe).
UNIVERSE = 30
#: A seed that has not finished after this many real seconds fails.
REAL_DEADLINE_S = 90.0
#: Restarts after a child exited on its own (an error) before the seed gives up.
MAX_SELF_EXITS = 5


def _at(value: dt.time) -> float:
    return dt.datetime.combine(DAY, value, KST).timestamp()


@attrs.frozen
class Warp:
    """Virtual time as a function of wall time (both Unix seconds), shared by every process.

    Virtual time is ``start`` at wall ``wall0`` and then runs at ``speeds[i]`` until
    ``until[i]`` (virtual), the last speed for ever after.
    """

    wall0: float
    start: float
    until: tuple[float, ...]
    speeds: tuple[float, ...]

    def _segments(self) -> Iterator[tuple[float, float, float, float]]:
        """(virtual start, virtual end, wall start, speed) of each segment."""
        virtual, wall = self.start, self.wall0
        for end, speed in zip((*self.until, float("inf")), self.speeds, strict=True):
            yield virtual, end, wall, speed
            if end == float("inf"):
                return
            wall += (end - virtual) / speed
            virtual = end

    def virtual(self, wall: float) -> float:
        """The virtual time at *wall*."""
        for v_start, v_end, w_start, speed in self._segments():
            value = v_start + (wall - w_start) * speed
            if value < v_end:
                return value
        raise AssertionError("unreachable: the last segment never ends")

    def wall(self, virtual: float) -> float:
        """The wall time at which the virtual clock reads *virtual*."""
        for v_start, v_end, w_start, speed in self._segments():
            if virtual < v_end:
                return w_start + (virtual - v_start) / speed
        raise AssertionError("unreachable: the last segment never ends")

    def speed_at(self, virtual: float) -> float:
        """Virtual seconds per real second at *virtual*."""
        for _, v_end, _, speed in self._segments():
            if virtual < v_end:
                return speed
        raise AssertionError("unreachable: the last segment never ends")

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Warp:
        data = json.loads(text)
        return cls(data["wall0"], data["start"], tuple(data["until"]), tuple(data["speeds"]))


class WarpClock:
    """A :class:`hantu_sched.Clock` reading :class:`Warp` time. Waits really wait (in wall
    seconds, re-reading the clock at least every 20 ms)."""

    def __init__(self, warp: Warp) -> None:
        self.warp = warp

    def time(self) -> float:
        return self.warp.virtual(time.time())

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), KST)

    def monotonic(self) -> float:
        return self.time()

    def _wall_left(self, target: float) -> float:
        return self.warp.wall(target) - time.time()

    def sleep(self, seconds: float) -> None:
        self.sleep_until(dt.datetime.fromtimestamp(self.time() + max(seconds, 0.0), KST))

    async def asleep(self, seconds: float) -> None:
        target = self.time() + max(seconds, 0.0)
        while (left := self._wall_left(target)) > 0:
            await asyncio.sleep(min(left, 0.02))
        await asyncio.sleep(0)

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        event = cancel if cancel is not None else threading.Event()
        target = when.timestamp()
        while not event.is_set() and (left := self._wall_left(target)) > 0:
            event.wait(min(left, 0.02))

    async def asleep_until(self, when: dt.datetime) -> None:
        target = when.timestamp()
        while (left := self._wall_left(target)) > 0:
            await asyncio.sleep(min(left, 0.02))

    def __repr__(self) -> str:
        return f"WarpClock(start={self.warp.start})"


@attrs.frozen
class ProcessPlan:
    """Everything random about one real-process seed."""

    seed: int
    #: Virtual moments (Unix seconds) at which the running scheduler is SIGKILLed.
    kills: tuple[float, ...]
    #: SIGKILL while this order-cash request (1-based) is held in flight, if any.
    inflight_kill: int | None
    #: order-cash request number → latency (virtual seconds) at the fake.
    latency: dict[int, float]
    clock_offset_s: float
    #: Delete the lock file before the n-th restart (1-based) when n is in this set.
    delete_lock_before: frozenset[int]
    #: A second process starts at this virtual moment (lock file deleted first), if at all.
    second_at: float | None
    #: ... and is killed this many virtual seconds later.
    second_for_s: float

    @classmethod
    def from_seed(cls, seed: int) -> ProcessPlan:
        """The plan of *seed* (pure function of the seed)."""
        rng = random.Random(seed)
        hot = [_at(t) for t in (dt.time(6, 0), dt.time(7, 0), dt.time(9, 0), dt.time(15, 30))]
        kills: set[float] = set()
        for _ in range(rng.randint(0, 2)):
            if rng.random() < 0.5:
                kills.add(rng.choice(hot) + rng.uniform(0, 60))
            else:
                kills.add(rng.uniform(_at(DAY_START) + 120, _at(dt.time(17, 10))))
        inflight = rng.randint(1, 6) if seed % 2 == 0 or rng.random() < 0.5 else None
        latency = {
            rng.randint(1, 10): round(rng.uniform(1, 3 * CLIENT_TIMEOUT_S), 1)
            for _ in range(rng.randint(0, 2))
        }
        if inflight is not None:
            latency[inflight] = round(rng.uniform(1.5 * CLIENT_TIMEOUT_S, 3 * CLIENT_TIMEOUT_S), 1)
        second = seed % 3 == 0 or rng.random() < 0.3
        return cls(
            seed=seed,
            kills=tuple(sorted(kills)),
            inflight_kill=inflight,
            latency=latency,
            clock_offset_s=round(rng.uniform(-300, 300), 1),
            delete_lock_before=frozenset(n for n in range(1, 10) if rng.random() < 0.5),
            second_at=rng.uniform(_at(dt.time(6, 5)), _at(dt.time(16, 0))) if second else None,
            second_for_s=round(rng.uniform(60, 2 * 3600)),
        )

    def describe(self) -> str:
        """One line: what this seed does."""

        def hms(moment: float) -> str:
            return f"{dt.datetime.fromtimestamp(moment, KST):%H:%M:%S}"

        latency = ",".join(f"#{n}:{d:g}s" for n, d in sorted(self.latency.items())) or "none"
        second = "none"
        if self.second_at is not None:
            second = (
                f"{hms(self.second_at)}, killed {self.second_for_s:g}s after it is up "
                "(lock file deleted)"
            )
        return (
            f"real processes; SIGKILL at {','.join(map(hms, self.kills)) or 'none'}; "
            f"SIGKILL with order #{self.inflight_kill or '-'} in flight; latency {latency}; "
            f"fake clock {self.clock_offset_s:+g}s; lock deleted before restarts "
            f"{sorted(self.delete_lock_before) or '-'}; second process {second}"
        )


class _ChaosFake(FakeKIS):
    """The parent's fake: gives the planned order-cash requests their latency fault and raises
    :attr:`kill_now` when the in-flight one arrives."""

    def __init__(self, plan: ProcessPlan, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.order_requests = 0
        self.kill_now = threading.Event()
        self._count_lock = threading.Lock()

    def _take_fault(self, request: FakeRequest) -> Fault | None:
        if request.method != "POST" or request.path != ORDER_PATH:
            return super()._take_fault(request)
        with self._count_lock:
            self.order_requests += 1
            number = self.order_requests
        if number == self.plan.inflight_kill:
            self.kill_now.set()
        delay = self.plan.latency.get(number)
        if delay is not None:
            return Fault("latency", path=ORDER_PATH, delay_s=delay)
        return super()._take_fault(request)


# --- the child ----------------------------------------------------------------------------------


class _ReadTimeout(httpx.BaseTransport):
    """Sets each request's timeouts to the client timeout *in virtual seconds* converted to real
    seconds at the current speed (never below the SLOW value, so reads stay safe when FAST)."""

    def __init__(self, inner: httpx.BaseTransport, clock: WarpClock) -> None:
        self._inner = inner
        self._clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        speed = self._clock.warp.speed_at(self._clock.time())
        real = max(CLIENT_TIMEOUT_S / speed, READ_TIMEOUT_REAL_S)
        request.extensions["timeout"] = {"connect": 5.0, "read": real, "write": 5.0, "pool": 5.0}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _logged(job: Job, label_of: Any, log: IO[str]) -> Job:
    def run(ctx: JobContext) -> None:
        label = label_of(ctx)
        _write(log, "start", label, ctx.clock.now())
        try:
            job(ctx)
        except BaseException as exc:
            _write(log, f"end {type(exc).__name__}", label, ctx.clock.now())
            raise
        _write(log, "end returned", label, ctx.clock.now())

    return run


def _write(log: IO[str], event: str, label: str, at: dt.datetime) -> None:
    line = {"event": event, "label": label, "pid": os.getpid(), "at": at.isoformat()}
    log.write(json.dumps(line) + "\n")
    log.flush()


def _child_main(argv: list[str]) -> int:
    """One scheduler process: ``run_daemon`` on the warp clock against the loopback fake."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--warp", required=True)
    parser.add_argument("--runlog", required=True)
    parser.add_argument("--ready", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    clock = WarpClock(Warp.from_json(args.warp))
    log = open(args.runlog, "a", encoding="utf-8")  # noqa: SIM115 - open for the process' life
    original = Settings.job_registry

    def label_of(ctx: JobContext) -> str:
        key = ctx.key
        return key.job if key.batch is None else f"{key.job}[{key.batch}]"

    def job_registry(self: Settings, pipeline_config: Any) -> JobRegistry:
        registry = original(self, pipeline_config)
        wrapped = JobRegistry()
        for name, entry in registry.items():
            wrapped.register(name, _logged(entry.run, label_of, log), reconcile=entry.reconcile)
        return wrapped

    Settings.job_registry = job_registry  # type: ignore[method-assign]
    settings = load_settings(args.config, data_dir=args.data_dir)
    credentials = load_credentials(settings)
    assert credentials is not None
    until = dt.datetime.combine(DAY, DAY_END, KST)
    pathlib.Path(args.ready).touch()  # the parent counts a second process's life from here
    try:
        return run_daemon(
            settings,
            credentials,
            clock=clock,
            until=until,
            transport=_ReadTimeout(httpx.HTTPTransport(), clock),
        )
    except SchedulerAlreadyRunningError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3


# --- the parent ---------------------------------------------------------------------------------


@attrs.define
class _Child:
    name: str
    number: int
    proc: subprocess.Popen[bytes]
    out: IO[bytes]


class _Parent:
    """Runs one real-process seed: starts, kills and restarts the children."""

    def __init__(self, plan: ProcessPlan, work: pathlib.Path) -> None:
        self.plan = plan
        self.work = work
        self.data_dir = work / "data"
        self.runlog = work / "runs.jsonl"
        self.notes: list[str] = []
        self.restarts = 0
        self.started = 0
        self.self_exits = 0
        self.kills = list(plan.kills)
        self.second_at = plan.second_at
        self.second_end: float | None = None
        self.second: _Child | None = None
        self.warp = Warp(
            wall0=time.time() + 1.0,  # the children need a moment to start
            start=_at(DAY_START),
            until=(_at(dt.time(9, 0)), _at(SLOW_UNTIL)),
            speeds=(FAST, SLOW, FAST),
        )
        self.clock = WarpClock(self.warp)
        self.fake = _ChaosFake(
            plan,
            clock=OffsetClock(self.clock, plan.clock_offset_s),
            seed=plan.seed,
            universe_size=UNIVERSE,
            rate_limits={"paper": None, "real": None},
        )
        self.app = self.fake.add_app(env="paper")

    def _env(self, server: FakeKISServer) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "chaos")]),
            KIS_APP_KEY=self.app.app_key,
            KIS_APP_SECRET=self.app.app_secret,
            KIS_ACCOUNT=self.app.account,
            KIS_BASE_URL=server.base_url("paper"),
            KIS_STATE_DIR=str(self.work / "state"),
        )
        return env

    def _start(self, name: str, env: dict[str, str], config: pathlib.Path) -> _Child:
        self.started += 1
        out = open(self.work / f"child-{self.started}-{name}.log", "wb")  # noqa: SIM115
        command = [
            sys.executable,
            str(pathlib.Path(__file__)),
            "--config",
            str(config),
            "--data-dir",
            str(self.data_dir),
            "--warp",
            self.warp.to_json(),
            "--runlog",
            str(self.runlog),
            "--ready",
            str(self._ready(self.started)),
        ]
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        return _Child(name, self.started, proc, out)

    def _ready(self, number: int) -> pathlib.Path:
        return self.work / f"child-{number}.ready"

    def _kill(self, child: _Child, *, record: bool = True) -> None:
        """SIGKILL *child* if it still runs, reap it, and mark its runs ended in the run log."""
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
        if not child.out.closed:
            child.out.close()
        if record:
            with open(self.runlog, "a", encoding="utf-8") as log:
                log.write(json.dumps({"event": "killed", "pid": child.proc.pid}) + "\n")

    def _last_line(self, child: _Child) -> str:
        """The last line *child* wrote (its error, when it failed)."""
        path = self.work / f"child-{child.number}-{child.name}.log"
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "no output"

    def _delete_lock(self) -> None:
        (self.data_dir / LOCK_NAME).unlink(missing_ok=True)

    def run(self) -> None:
        self.data_dir.mkdir(parents=True)
        (self.work / "state").mkdir(mode=0o700)
        config = self.work / "config.toml"
        config.write_text(
            "[kis]\nenv = 'paper'\n[pipeline]\ntrading_mode = 'paper'\n"
            f"universe = {json.dumps(self.fake.universe)}\n",
            encoding="utf-8",
        )
        deadline = time.monotonic() + REAL_DEADLINE_S
        with FakeKISServer(self.fake) as server:
            env = self._env(server)
            self.main = self._start("main", env, config)
            try:
                while not self._finished():
                    if time.monotonic() > deadline:
                        self.notes.append(f"TIMED OUT at {self.clock.now():%H:%M:%S}")
                        return
                    self._kills(env, config)
                    self._second(env, config)
                    self._main_exit(env, config)
                    self.fake.kill_now.wait(0.02)
            finally:
                for child in (self.main, self.second):
                    if child is not None:
                        self._kill(child, record=child.proc.poll() is None)

    def _finished(self) -> bool:
        """The day is over: the scheduler returned at the end of the day, no second process
        is running, or a scheduler that keeps failing was given up on."""
        if self.self_exits > MAX_SELF_EXITS:
            return True
        return self.main.proc.poll() == 0 and self.second is None

    def _kills(self, env: dict[str, str], config: pathlib.Path) -> None:
        """SIGKILL and restart the scheduler when an order is in flight or a kill is due."""
        now = self.clock.time()
        planned = bool(self.kills) and now >= self.kills[0]
        inflight = self.fake.kill_now.is_set()
        if not (planned or inflight):
            return
        self.fake.kill_now.clear()
        if planned:
            self.kills.pop(0)
        if self.main.proc.poll() is not None:
            return  # it already ended: nothing to kill
        self._kill(self.main)
        self.restarts += 1
        why = "order in flight" if inflight else "planned"
        self.notes.append(f"SIGKILL ({why}) at {self.clock.now():%H:%M:%S}")
        if self.restarts in self.plan.delete_lock_before:
            self._delete_lock()
        self.main = self._start("main", env, config)

    def _second(self, env: dict[str, str], config: pathlib.Path) -> None:
        """Start the second process when due (lock file deleted first); kill it
        ``second_for_s`` after it is up, or note how it ended on its own."""
        now = self.clock.time()
        if self.second_at is not None and now >= self.second_at:
            self.second_at = None
            self._delete_lock()
            self.second = self._start("second", env, config)
        second = self.second
        if second is None:
            return
        if self.second_end is None and self._ready(second.number).exists():
            self.second_end = now + self.plan.second_for_s
        code = second.proc.poll()
        if code is not None:
            what = "refused to start" if code == 3 else f"exited with {code}"
            if code not in (0, 3):
                what += f" ({self._last_line(second)})"
            self.notes.append(f"second process {what}")
        elif self.second_end is not None and now >= self.second_end:
            self.notes.append(f"second process SIGKILLed at {self.clock.now():%H:%M:%S}")
        else:
            return
        self._kill(second)
        self.second = None

    def _main_exit(self, env: dict[str, str], config: pathlib.Path) -> None:
        """Restart a scheduler that exited with an error (as a supervisor would)."""
        code = self.main.proc.poll()
        if code is None or code == 0:
            return
        self.self_exits += 1
        self._kill(self.main)
        self.notes.append(f"scheduler exited with {code} ({self._last_line(self.main)}); restarted")
        if self.self_exits <= MAX_SELF_EXITS:
            self.main = self._start("main", env, config)

    def _entries(self) -> list[dict[str, Any]]:
        if not self.runlog.exists():
            return []
        lines = self.runlog.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def starts(self) -> list[str]:
        """The label of every job start in the run log."""
        return [str(e["label"]) for e in self._entries() if e["event"] == "start"]

    def unit_violations(self) -> list[str]:
        """Rule 2 from the run log (see the module docstring)."""
        open_runs: dict[str, list[tuple[int, str]]] = {}
        finished: dict[str, str] = {}
        violations: list[str] = []
        for entry in self._entries():
            pid = int(entry["pid"])
            if entry["event"] == "killed":
                for runs in open_runs.values():
                    runs[:] = [r for r in runs if r[0] != pid]
                continue
            label, at = str(entry["label"]), str(entry["at"])[11:19]
            runs = open_runs.setdefault(label, [])
            if entry["event"] == "start":
                for other_pid, since in runs:
                    violations.append(
                        f"{label} started at {at} by pid {pid} while pid {other_pid}'s run "
                        f"(since {since}) was going"
                    )
                if label in finished:
                    violations.append(
                        f"{label} started again at {at} by pid {pid} after {finished[label]}"
                    )
                runs.append((pid, at))
            else:
                runs[:] = [r for r in runs if r[0] != pid]
                if entry["event"] == "end returned":
                    finished[label] = f"it finished at {at} (pid {pid})"
        return violations


def run_process_seed(seed: int, work: pathlib.Path) -> SoakReport:
    """Run real-process seed *seed* in the empty directory *work*; the verdict."""
    plan = ProcessPlan.from_seed(seed)
    parent = _Parent(plan, work)
    parent.run()
    storage = SQLiteStorage(parent.data_dir / DEFAULT_DB_NAME)
    try:
        records = storage.list_jobs(DAY)
    finally:
        storage.close()
    notes = list(parent.notes)
    timed_out = any(n.startswith("TIMED OUT") for n in notes)
    return judge_day(
        seed=seed,
        plan=plan.describe(),
        restarts=parent.restarts,
        orders=parent.fake.orders(parent.app.app_key),
        records=records,
        starts=parent.starts(),
        violations=parent.unit_violations(),
        config=SchedulerConfig(),
        calendar=KRXCalendar(),
        notes=notes,
        unexplained=[f"the day did not finish within {REAL_DEADLINE_S:g} real seconds"]
        if timed_out
        else [],
    )


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
