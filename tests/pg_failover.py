"""Failover on PostgreSQL with real processes: two scheduler "hosts" share one deployment in a
real PostgreSQL; the leader is SIGKILLed at random moments and the standby finishes the day.

The parent (:func:`run_failover_seed`) serves the fake KIS on loopback on the chaos soak's
:class:`Warp` (tests/chaos/_soak_processes.py: every process reads the same virtual day, here
at :data:`FAST` × real time except the first minute after the open), and runs two children
(this file as a script): host ``a`` and host ``b``, each with its own data directory and token
store, both ``run_daemon(..., standby=True)`` on ``storage = "postgresql://..."`` with a lease
of :data:`LEASE_S` virtual seconds. Whoever claims first leads; the other waits.

Chaos, from ``random.Random(seed)`` (:class:`FailoverPlan`): SIGKILLs of *the current leader*
(read from the lease row) at random virtual moments, some at hot spots (screening, the batches,
the open while orders go out, the close), and a SIGKILL of the leader while an order-cash
request is held in flight at the fake (a latency fault longer than the client timeout, so the
order lands after the takeover); gateway latency on some other orders; the killed host is
restarted at once as a standby (as a supervisor would).

Verdict (:class:`~_soak_harness.SoakReport` plus one rule): no duplicate order at the fake; no
unit run twice (the children's start/end log, ended runs of killed processes included); every
unit done or explained in the shared journal; orders went out; and every trading start saw the
complete selection (every configured batch's row stored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
from typing import IO, Any

import attrs
import httpx
import psycopg

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT / "tests" / "chaos") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "chaos"))

from _soak_harness import DAY, SoakReport, judge_day  # noqa: E402
from _soak_processes import (  # noqa: E402
    CLIENT_TIMEOUT_S,
    SLOW,
    SLOW_UNTIL,
    UNIVERSE,
    ProcessPlan,
    Warp,
    WarpClock,
    _ChaosFake,
    _ReadTimeout,
)

from hantu_sched import JobContext, JobRegistry, SchedulerConfig  # noqa: E402
from hantu_sched._calendar import KRXCalendar  # noqa: E402
from hantu_sched._cli import run_daemon  # noqa: E402
from hantu_sched._constants import KST  # noqa: E402
from hantu_sched._jobs import Job  # noqa: E402
from hantu_sched._pg_storage import PostgresStorage  # noqa: E402
from hantu_sched._settings import Settings, load_credentials, load_settings  # noqa: E402
from kisclient.testing import FakeKISServer, OffsetClock  # noqa: E402

__all__ = ["FAST", "LEASE_S", "FailoverPlan", "run_failover_seed"]

#: Virtual seconds per real second (except the open's first minute, at SLOW).
FAST = 2500.0
#: The lease in virtual seconds (0.6 real seconds at FAST): renewed every third of it.
LEASE_S = 1500.0
DAY_START = dt.time(5, 58)
DAY_END = dt.time(17, 45)
#: A seed that has not finished after this many real seconds fails.
REAL_DEADLINE_S = 150.0
MAX_SELF_EXITS = 8


def _at(value: dt.time) -> float:
    return dt.datetime.combine(DAY, value, KST).timestamp()


@attrs.frozen
class FailoverPlan:
    """Everything random about one failover seed."""

    seed: int
    kills: tuple[float, ...]
    inflight_kill: int | None
    latency: dict[int, float]
    clock_offset_s: float

    @classmethod
    def from_seed(cls, seed: int) -> FailoverPlan:
        rng = random.Random(seed)
        hot = [_at(t) for t in (dt.time(6, 0), dt.time(7, 5), dt.time(9, 0), dt.time(15, 25))]
        kills: set[float] = set()
        for _ in range(rng.randint(1, 2)):
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
        return cls(seed, tuple(sorted(kills)), inflight, latency, round(rng.uniform(-60, 60), 1))

    def chaos_plan(self) -> ProcessPlan:
        """The fields the chaos fake reads (in-flight kill, latency), as its plan type."""
        return ProcessPlan(
            seed=self.seed,
            kills=self.kills,
            inflight_kill=self.inflight_kill,
            latency=self.latency,
            clock_offset_s=self.clock_offset_s,
            delete_lock_before=frozenset(),
            second_at=None,
            second_for_s=0,
        )

    def describe(self) -> str:
        def hms(moment: float) -> str:
            return f"{dt.datetime.fromtimestamp(moment, KST):%H:%M:%S}"

        latency = ",".join(f"#{n}:{d:g}s" for n, d in sorted(self.latency.items())) or "none"
        return (
            f"PostgreSQL failover; SIGKILL of the leader at {','.join(map(hms, self.kills))}; "
            f"SIGKILL of the leader with order #{self.inflight_kill or '-'} in flight; "
            f"latency {latency}; fake clock {self.clock_offset_s:+g}s; lease {LEASE_S:g}s"
        )


# --- the child ----------------------------------------------------------------------------------


def _write(log: IO[str], **entry: Any) -> None:
    log.write(json.dumps({**entry, "pid": os.getpid()}) + "\n")
    log.flush()


def _logged(job: Job, log: IO[str]) -> Job:
    def run(ctx: JobContext) -> None:
        key = ctx.key
        label = key.job if key.batch is None else f"{key.job}[{key.batch}]"
        extra: dict[str, Any] = {}
        if key.job == "trading":
            extra["selection"] = sorted(ctx.storage.get_selection(ctx.trading_date))
        _write(log, event="start", label=label, at=ctx.clock.now().isoformat(), **extra)
        try:
            job(ctx)
        except BaseException as exc:
            _write(
                log, event=f"end {type(exc).__name__}", label=label, at=ctx.clock.now().isoformat()
            )
            raise
        _write(log, event="end returned", label=label, at=ctx.clock.now().isoformat())

    return run


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--config", "--data-dir", "--warp", "--runlog"):
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    clock = WarpClock(Warp.from_json(args.warp))
    log = open(args.runlog, "a", encoding="utf-8")  # noqa: SIM115 - open for the process' life
    original = Settings.job_registry

    def job_registry(self: Settings, pipeline_config: Any) -> JobRegistry:
        registry = original(self, pipeline_config)
        wrapped = JobRegistry()
        for name, entry in registry.items():
            wrapped.register(name, _logged(entry.run, log), reconcile=entry.reconcile)
        return wrapped

    Settings.job_registry = job_registry  # type: ignore[method-assign]
    settings = load_settings(args.config, data_dir=args.data_dir)
    credentials = load_credentials(settings)
    assert credentials is not None
    return run_daemon(
        settings,
        credentials,
        clock=clock,
        until=dt.datetime.combine(DAY, DAY_END, KST),
        transport=_ReadTimeout(httpx.HTTPTransport(), clock),
        standby=True,
    )


# --- the parent ---------------------------------------------------------------------------------


@attrs.define
class _Host:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    out: IO[bytes] | None = None
    started: int = 0


class _Parent:
    def __init__(self, plan: FailoverPlan, work: pathlib.Path, url: str) -> None:
        self.plan = plan
        self.work = work
        self.url = url
        self.runlog = work / "runs.jsonl"
        self.notes: list[str] = []
        self.kills = list(plan.kills)
        self.killed = 0
        self.self_exits = 0
        self.takeovers = 0
        self.warp = Warp(
            wall0=time.time() + 1.5,
            start=_at(DAY_START),
            until=(_at(dt.time(9, 0)), _at(SLOW_UNTIL)),
            speeds=(FAST, SLOW, FAST),
        )
        self.clock = WarpClock(self.warp)
        self.fake = _ChaosFake(
            plan.chaos_plan(),
            clock=OffsetClock(self.clock, plan.clock_offset_s),
            seed=plan.seed,
            universe_size=UNIVERSE,
            rate_limits={"paper": None, "real": None},
        )
        self.app = self.fake.add_app(env="paper")
        self.hosts = {name: _Host(name) for name in ("a", "b")}

    def _env(self, server: FakeKISServer, host: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
        env.update(
            PYTHONPATH=os.pathsep.join(
                [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "chaos")]
            ),
            KIS_APP_KEY=self.app.app_key,
            KIS_APP_SECRET=self.app.app_secret,
            KIS_ACCOUNT=self.app.account,
            KIS_BASE_URL=server.base_url("paper"),
            KIS_STATE_DIR=str(self.work / f"state-{host}"),
            HANTU_STORAGE=self.url,
            HANTU_DEPLOYMENT="desk",
            HANTU_LEASE_SECONDS=f"{LEASE_S:g}",
        )
        return env

    def _start(self, host: _Host, server: FakeKISServer) -> None:
        host.started += 1
        out = open(self.work / f"host-{host.name}-{host.started}.log", "wb")  # noqa: SIM115
        command = [
            sys.executable,
            str(pathlib.Path(__file__)),
            "--config",
            str(self.work / "config.toml"),
            "--data-dir",
            str(self.work / f"data-{host.name}"),
            "--warp",
            self.warp.to_json(),
            "--runlog",
            str(self.runlog),
        ]
        host.proc = subprocess.Popen(
            command, env=self._env(server, host.name), stdout=out, stderr=subprocess.STDOUT
        )
        host.out = out

    def _reap(self, host: _Host, *, kill: bool) -> None:
        proc = host.proc
        if proc is None:
            return
        if kill and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if host.out is not None:
            host.out.close()
        with open(self.runlog, "a", encoding="utf-8") as log:
            log.write(json.dumps({"event": "killed", "pid": proc.pid}) + "\n")

    def _leader_pid(self) -> int | None:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT holder, expires_at FROM lease WHERE deployment = 'desk'"
            ).fetchone()
        if row is None or not row[0] or self.clock.time() >= float(row[1]):
            return None
        return int(str(row[0]).split()[2])  # "hantu_sched pid N on HOST"

    def _last_line(self, host: _Host) -> str:
        path = self.work / f"host-{host.name}-{host.started}.log"
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "no output"

    def run(self) -> None:
        (self.work / "config.toml").write_text(
            "[kis]\nenv = 'paper'\n[pipeline]\ntrading_mode = 'paper'\n"
            f"universe = {json.dumps(self.fake.universe)}\n",
            encoding="utf-8",
        )
        for name in self.hosts:
            (self.work / f"state-{name}").mkdir(mode=0o700)
        deadline = time.monotonic() + REAL_DEADLINE_S
        with FakeKISServer(self.fake) as server:
            for host in self.hosts.values():
                self._start(host, server)
            try:
                while not self._finished():
                    if time.monotonic() > deadline:
                        self.notes.append(f"TIMED OUT at {self.clock.now():%H:%M:%S}")
                        return
                    self._maybe_kill(server)
                    self._restart_failed(server)
                    self.fake.kill_now.wait(0.02)
            finally:
                for host in self.hosts.values():
                    if host.proc is not None and host.proc.poll() is None:
                        self._reap(host, kill=True)
                    if host.out is not None:
                        host.out.close()

    def _finished(self) -> bool:
        if self.self_exits > MAX_SELF_EXITS:
            return True
        return all(h.proc is not None and h.proc.poll() == 0 for h in self.hosts.values())

    def _maybe_kill(self, server: FakeKISServer) -> None:
        planned = bool(self.kills) and self.clock.time() >= self.kills[0]
        inflight = self.fake.kill_now.is_set()
        if not (planned or inflight):
            return
        leader = self._leader_pid()
        host = next(
            (h for h in self.hosts.values() if h.proc is not None and h.proc.pid == leader), None
        )
        if host is None:
            if inflight:  # the order's sender is always the leader: the lease says who
                self.fake.kill_now.clear()
                self.notes.append("order in flight but no leader found")
            return  # planned: no leader right now (a takeover is under way); retry
        self.fake.kill_now.clear()
        if planned:
            self.kills.pop(0)
        self._reap(host, kill=True)
        self.killed += 1
        why = "order in flight" if inflight else "planned"
        self.notes.append(f"SIGKILL of leader {host.name} ({why}) at {self.clock.now():%H:%M:%S}")
        self._start(host, server)

    def _restart_failed(self, server: FakeKISServer) -> None:
        for host in self.hosts.values():
            code = None if host.proc is None else host.proc.poll()
            if code is None or code == 0:
                continue
            self.self_exits += 1
            self._reap(host, kill=False)
            self.notes.append(
                f"host {host.name} exited with {code} ({self._last_line(host)}); restarted"
            )
            if self.self_exits <= MAX_SELF_EXITS:
                self._start(host, server)

    def entries(self) -> list[dict[str, Any]]:
        if not self.runlog.exists():
            return []
        return [json.loads(line) for line in self.runlog.read_text("utf-8").splitlines()]

    def unit_violations(self) -> list[str]:
        """A unit's job never starts while another run of it is going (in any process) nor
        after a run of it returned; trading never starts on a partial selection."""
        open_runs: dict[str, list[tuple[int, str]]] = {}
        finished: dict[str, str] = {}
        violations: list[str] = []
        batches = sorted(SchedulerConfig().batch_ids)
        for entry in self.entries():
            pid = int(entry["pid"])
            if entry["event"] == "killed":
                for runs in open_runs.values():
                    runs[:] = [r for r in runs if r[0] != pid]
                continue
            label, at = str(entry["label"]), str(entry["at"])[11:19]
            runs = open_runs.setdefault(label, [])
            if entry["event"] == "start":
                violations += [
                    f"{label} started at {at} by pid {pid} while pid {o}'s run (since {s}) went on"
                    for o, s in runs
                ]
                if label in finished:
                    violations.append(f"{label} started again at {at} after {finished[label]}")
                if label == "trading" and entry.get("selection") != batches:
                    violations.append(
                        f"trading started at {at} on a partial selection {entry.get('selection')}"
                    )
                runs.append((pid, at))
            else:
                runs[:] = [r for r in runs if r[0] != pid]
                if entry["event"] == "end returned":
                    finished[label] = f"it finished at {at} (pid {pid})"
        return violations


def run_failover_seed(seed: int, work: pathlib.Path, url: str) -> tuple[SoakReport, _Parent]:
    """Run failover seed *seed* in the empty directory *work* on the empty database *url*."""
    plan = FailoverPlan.from_seed(seed)
    parent = _Parent(plan, work, url)
    parent.run()
    storage = PostgresStorage(url, deployment="desk", read_only=True)
    try:
        records = storage.list_jobs(DAY)
        lease = storage.lease()
    finally:
        storage.close()
    if lease is not None and lease.last_takeover is not None:
        parent.notes.append(
            f"last takeover {lease.last_takeover['at'][11:19]} (epoch {lease.epoch})"
        )
    timed_out = any(n.startswith("TIMED OUT") for n in parent.notes)
    starts = [str(e["label"]) for e in parent.entries() if e["event"] == "start"]
    report = judge_day(
        seed=seed,
        plan=plan.describe(),
        restarts=parent.killed,
        orders=parent.fake.orders(parent.app.app_key),
        records=records,
        starts=starts,
        violations=parent.unit_violations(),
        config=SchedulerConfig(),
        calendar=KRXCalendar(),
        notes=parent.notes,
        unexplained=[f"the day did not finish within {REAL_DEADLINE_S:g} real seconds"]
        if timed_out
        else [],
    )
    return report, parent


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
