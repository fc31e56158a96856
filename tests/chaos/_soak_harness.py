"""The randomized soak of issue 9 ("never twice, never down"), level 1: in-process.

One seed is one simulated trading day (:func:`hantu_sched._simulate.simulate_day`, paper trading
through the real default pipeline against the in-process :class:`~kisclient.testing.FakeKIS`)
under a :class:`ChaosPlan` drawn from ``random.Random(seed)``:

- **crashes** at random moments (a few hot spots too: the first minutes of screening and of the
  batches, the open while orders go out, the close itself, the after-close jobs). A crash is a
  :class:`~hantu_sched.testing.SimulatedCrash` raised from whatever wait reaches that moment,
  exactly where ``kill -9`` would land; a new scheduler is then built on the same data directory.
- **a crash with an order in flight**: around the n-th ``order-cash`` request of the day the
  process "dies": after the fake processed it and before the answer is read (or, when that order
  has a latency fault longer than the client timeout, while it is still on its way), just before
  it is sent, or at the next request after it (for a timed-out order: the reconcile looking for
  it).
- **gateway latency** on random orders: ``Fault("latency", delay_s=...)`` with delays up to 3×
  the client's timeout, so some orders land at the fake after the client gave up.
- **clock offset**: the fake runs on ``OffsetClock(sim_clock, offset)`` with the offset uniform
  in ±5 minutes, i.e. the host clock is ahead of or behind KIS.
- **lock-file deletion** before some restarts, and sometimes a **second scheduler instance** on
  the same data directory (every fourth seed and some others), started from inside the first
  one's wait (with the lock file deleted first, most of the time). It runs nested, on the same
  fake clock, until it is killed a while later; then the first instance carries on. A correct
  system refuses to start it.

The verdict (:class:`SoakReport`) checks four rules:

1. **No duplicate order at the fake**: per (side, code), at most one order-cash order.
2. **No unit ran twice**: a unit's job callable never starts while another run of that unit is
   still in progress (in any instance), and never starts again after a run of it returned
   normally (which the executor turns into ``done``); and every start was journaled (a unit
   never has more starts than journal ``attempts``).
3. **Every unit done or explained**: every unit of the day plan has a journal row that is
   ``done``, ``skipped`` with a note, or ``failed`` with an error (a recorded reason). ``running``,
   ``pending``, ``needs-reconcile`` or no row at the end of the day is unexplained.
4. **Never down**: the strategy's orders went out (at least one order at the fake). A host clock
   ahead of KIS once made every order of the day bounce off KIS's "market closed" at 09:00.

Everything is deterministic per seed: ``CHAOS_SEED=N`` reruns seed N alone.
"""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
import random
import threading
from collections.abc import Iterable, Sequence

import attrs
import httpx

from hantu_sched import (
    Credentials,
    JobContext,
    JobRegistry,
    JobState,
    KISTarget,
    SchedulerConfig,
    SQLiteStorage,
    build_services,
)
from hantu_sched._calendar import KRXCalendar
from hantu_sched._constants import KST
from hantu_sched._day import build_day_plan
from hantu_sched._jobs import Job
from hantu_sched._journal import JobRecord
from hantu_sched._lock import LOCK_NAME, SchedulerAlreadyRunningError
from hantu_sched._scheduler import IntegratedScheduler
from hantu_sched._simulate import (
    SimClock,
    SimHooks,
    SimulationResult,
    is_crash,
    simulate_day,
)
from hantu_sched._storage import DEFAULT_DB_NAME
from hantu_sched.pipeline import PipelineConfig, default_jobs
from hantu_sched.testing import SimulatedCrash
from kisclient import Env
from kisclient.testing import FakeApp, FakeKIS, Fault, OffsetClock, Order

__all__ = [
    "CLIENT_TIMEOUT_S",
    "DAY",
    "ORDER_PATH",
    "ChaosPlan",
    "RunLog",
    "SoakReport",
    "count_orders",
    "judge_units",
    "run_seed",
    "unjournaled_runs",
]

#: A Thursday with the regular 09:00-15:30 session.
DAY = dt.date(2026, 6, 4)
#: The order endpoint (as the fake sees the path).
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
#: The in-process clients' timeout (KISClient's default), in seconds of the simulated clock.
CLIENT_TIMEOUT_S = 10.0
#: Codes listed at the fake: small keeps a day fast, big enough for ten buys.
UNIVERSE = 60
#: Hot spots crashes are drawn near (besides uniformly over the day).
_HOT = (
    dt.time(6, 0),  # screening starts
    dt.time(7, 0),  # the first batch
    dt.time(7, 30),  # the last batch
    dt.time(9, 0),  # the open: orders go out
    dt.time(15, 20),  # cancels before the close
    dt.time(15, 30),  # the close itself
    dt.time(16, 0),  # market_close
    dt.time(17, 0),  # performance
)
_DAY_START = dt.time(5, 31)
_DAY_END = dt.time(23, 30)


def _at(value: dt.time) -> dt.datetime:
    return dt.datetime.combine(DAY, value, KST)


def _since_midnight(value: dt.time) -> float:
    return (_at(value) - _at(dt.time(0))).total_seconds()


def _time_of(seconds: float) -> dt.time:
    """The time of day *seconds* after midnight (whole seconds)."""
    return (_at(dt.time(0)) + dt.timedelta(seconds=round(seconds))).time()


@attrs.frozen
class ChaosPlan:
    """Everything random about one seed's day (see the module docstring)."""

    seed: int
    crashes: tuple[dt.time, ...]
    #: Crash around this order-cash request (1-based), if any; how: :attr:`inflight_mode`.
    inflight_crash: int | None
    #: ``before`` it is sent; ``after`` the fake processed it (or, if it outlasts the timeout,
    #: while it is on its way), before the answer; ``next``: at the client's next request after
    #: it (for a timed-out order, the reconcile that looks for it).
    inflight_mode: str
    #: order-cash request number → latency fault delay (seconds on the fake's clock).
    latency: dict[int, float]
    #: Seconds the fake's clock is ahead (+) or behind (-) the scheduler's.
    clock_offset_s: float
    #: Instance numbers (2, 3, ...) before which the lock file is deleted.
    delete_lock_before: frozenset[int]
    #: When a second instance is started inside the first, if at all.
    second_at: dt.time | None
    #: How long (seconds) the second instance runs before it is killed.
    second_for_s: float
    #: Whether the lock file is deleted before the second instance starts.
    second_deletes_lock: bool

    @classmethod
    def from_seed(cls, seed: int) -> ChaosPlan:
        """The plan of *seed* (pure function of the seed)."""
        rng = random.Random(seed)
        start, end = _since_midnight(_DAY_START), _since_midnight(_DAY_END)
        crashes: set[dt.time] = set()
        for _ in range(rng.randint(0, 3)):
            if rng.random() < 0.6:
                base = _since_midnight(rng.choice(_HOT))
                # exactly on the spot a third of the time, else within the next ~3 minutes
                crashes.add(_time_of(base if rng.random() < 0.34 else base + rng.uniform(0, 180)))
            else:
                crashes.add(_time_of(rng.uniform(start, end)))
        latency: dict[int, float] = {}
        for _ in range(rng.randint(0, 4)):
            latency[rng.randint(1, 10)] = round(rng.uniform(0.5, 3 * CLIENT_TIMEOUT_S), 1)
        inflight = rng.randint(1, 10) if rng.random() < 0.5 else None
        mode = rng.choice(("after", "after", "before", "next"))
        second = seed % 4 == 3 or rng.random() < 0.15  # every fourth seed, and some more
        return cls(
            seed=seed,
            crashes=tuple(sorted(crashes)),
            inflight_crash=inflight,
            inflight_mode=mode,
            latency=latency,
            clock_offset_s=round(rng.uniform(-300, 300), 1),
            delete_lock_before=frozenset(n for n in range(2, 8) if rng.random() < 0.5),
            second_at=_time_of(rng.uniform(start, end)) if second else None,
            second_for_s=round(rng.uniform(60, 3 * 3600)),
            second_deletes_lock=rng.random() < 0.8,
        )

    def describe(self) -> str:
        """One line: what this seed does."""
        crashes = ",".join(t.isoformat() for t in self.crashes) or "none"
        latency = ",".join(f"#{n}:{d:g}s" for n, d in sorted(self.latency.items())) or "none"
        second = "none"
        if self.second_at is not None:
            lock = "lock deleted" if self.second_deletes_lock else "lock kept"
            second = f"{self.second_at.isoformat()} for {self.second_for_s:g}s ({lock})"
        inflight = "-"
        if self.inflight_crash is not None:
            inflight = f"{self.inflight_mode} order #{self.inflight_crash}"
        return (
            f"crashes {crashes}; in-flight crash {inflight}; "
            f"latency {latency}; fake clock {self.clock_offset_s:+g}s; "
            f"lock deleted before instances {sorted(self.delete_lock_before) or '-'}; "
            f"second instance {second}"
        )


@attrs.define
class UnitRun:
    """One call of a unit's job callable."""

    label: str
    instance: str
    attempt: int
    started_at: dt.datetime
    #: ``returned``, ``failed: <error>``, ``killed`` or ``None`` while running.
    outcome: str | None = None


@attrs.define
class RunLog:
    """Every start and end of every unit's job callable, across instances, and the rule-2
    violations noticed as they happen."""

    runs: list[UnitRun] = attrs.field(factory=list)
    violations: list[str] = attrs.field(factory=list)
    #: The instance currently running (set by the harness).
    instance: str = "#1"

    def wrap(self, registry: JobRegistry) -> JobRegistry:
        """*registry* with every job callable logged (reconcilers are not job runs)."""
        wrapped = JobRegistry()
        for name, entry in registry.items():
            wrapped.register(name, self._wrap(entry.run), reconcile=entry.reconcile)
        return wrapped

    def _wrap(self, job: Job) -> Job:
        def run(ctx: JobContext) -> None:
            label = _label(ctx.key.job, ctx.key.batch)
            now = ctx.clock.now()
            for earlier in self.runs:
                if earlier.label != label:
                    continue
                if earlier.outcome is None:
                    self.violations.append(
                        f"{label} started by {self.instance} at {now:%H:%M:%S} while its run "
                        f"from {earlier.instance} ({earlier.started_at:%H:%M:%S}) was still going"
                    )
                elif earlier.outcome == "returned":
                    self.violations.append(
                        f"{label} started again by {self.instance} at {now:%H:%M:%S} after it "
                        f"finished ({earlier.instance}, started {earlier.started_at:%H:%M:%S})"
                    )
            record = UnitRun(label, self.instance, ctx.attempt, now)
            self.runs.append(record)
            try:
                job(ctx)
            except Exception as exc:
                record.outcome = f"failed: {type(exc).__name__}"
                raise
            except BaseException:
                record.outcome = "killed"
                raise
            record.outcome = "returned"

        return run


@attrs.define
class SoakReport:
    """The verdict of one seed (either level)."""

    seed: int
    #: What the seed did (:meth:`ChaosPlan.describe` or the process plan's).
    plan: str
    restarts: int
    orders: dict[str, int]
    duplicates: dict[str, int]
    unit_violations: list[str]
    unexplained: list[str]
    units: dict[str, str]
    notes: list[str]
    #: Level 1 only: the simulated day (timeline, journal) for a closer look at a seed.
    result: SimulationResult | None = None

    @property
    def ok(self) -> bool:
        """True iff all four rules hold."""
        return not (self.duplicates or self.unit_violations or self.unexplained)

    def summary(self) -> str:
        """One line to reproduce and understand the seed."""
        verdict = "ok" if self.ok else "FAIL"
        parts = [
            f"CHAOS_SEED={self.seed} {verdict}",
            f"orders {sum(self.orders.values())}",
            f"duplicates {self.duplicates or 0}",
            f"units run twice {self.unit_violations or 0}",
            f"unexplained {self.unexplained or 0}",
            f"restarts {self.restarts}",
            "journal " + " ".join(f"{k}={v}" for k, v in self.units.items()),
        ]
        if self.notes:
            parts.append("notes " + "; ".join(self.notes))
        parts.append(f"plan: {self.plan}")
        return " | ".join(parts)


class _ChaosClock(SimClock):
    """The simulation clock, which also starts the planned second instance from inside a wait
    that reaches its moment (unless a crash comes first)."""

    def __init__(self, start: dt.datetime, soak: _Soak) -> None:
        super().__init__(start)
        self.soak = soak

    def sleep_until(self, when: dt.datetime, cancel: threading.Event | None = None) -> None:
        second = self.soak.second_due
        crash = self.crash_at
        if (
            second is not None
            and when >= second
            and (crash is None or crash > second)
            and not (cancel is not None and cancel.is_set())
        ):
            super().sleep_until(second, cancel)
            self.soak.run_second_instance()
        super().sleep_until(when, cancel)


class _ChaosTransport(httpx.BaseTransport):
    """The clients' transport: arms the planned latency faults on order-cash requests and
    "kills the process" around the planned one (see :attr:`ChaosPlan.inflight_mode`)."""

    def __init__(self, inner: httpx.BaseTransport, soak: _Soak) -> None:
        self._inner = inner
        self._soak = soak

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        soak = self._soak
        if soak.crash_next_request:
            soak.crash_next_request = False
            raise SimulatedCrash("killed at the request after an in-flight order")
        if request.method != "POST" or not request.url.path.endswith(ORDER_PATH):
            return self._inner.handle_request(request)
        soak.order_requests += 1
        number = soak.order_requests
        delay = soak.plan.latency.get(number)
        if delay is not None:
            soak.fake.faults.add(Fault("latency", path=ORDER_PATH, delay_s=delay))
        mode = soak.plan.inflight_mode if soak.plan.inflight_crash == number else None
        if mode == "before":
            raise SimulatedCrash(f"killed just before order #{number} was sent")
        soak.crash_next_request = mode == "next"
        try:
            response = self._inner.handle_request(request)
        except httpx.TimeoutException:
            if mode == "after":  # still on its way to the exchange when the process dies
                raise SimulatedCrash(f"killed with order #{number} in flight") from None
            raise
        if mode == "after":  # the exchange has it; the answer dies with the process
            raise SimulatedCrash(f"killed after order #{number} was accepted, before the answer")
        return response

    def close(self) -> None:
        self._inner.close()


class _Soak(SimHooks):
    """The hooks of one seed's simulated day, and the state they share."""

    def __init__(self, plan: ChaosPlan, data_dir: pathlib.Path) -> None:
        self.plan = plan
        self.data_dir = data_dir
        self.log = RunLog()
        self.config = SchedulerConfig()
        self.calendar = KRXCalendar()
        self.registry = self.log.wrap(default_jobs(PipelineConfig(trading_mode="paper")))
        self.order_requests = 0
        #: Set by the transport: the next request of any client "kills the process".
        self.crash_next_request = False
        self.notes: list[str] = []
        self.second_due = None if plan.second_at is None else _at(plan.second_at)
        self._clock: _ChaosClock | None = None
        self._fake: FakeKIS | None = None

    @property
    def clock(self) -> _ChaosClock:
        assert self._clock is not None
        return self._clock

    @property
    def fake(self) -> FakeKIS:
        assert self._fake is not None
        return self._fake

    @property
    def app(self) -> FakeApp:
        return self.fake.apps[0]

    # --- SimHooks ---

    def make_clock(self, start: dt.datetime) -> SimClock:
        self._clock = _ChaosClock(start, self)
        return self._clock

    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        skewed = OffsetClock(clock, self.plan.clock_offset_s)
        self._fake = FakeKIS(clock=skewed, seed=seed, universe_size=universe_size)
        return self._fake

    def transport(self, fake: FakeKIS) -> httpx.BaseTransport:
        return _ChaosTransport(fake.transport(), self)

    def before_instance(self, instance: int, data_dir: pathlib.Path) -> None:
        self.log.instance = f"#{instance}"
        if instance in self.plan.delete_lock_before:
            (data_dir / LOCK_NAME).unlink(missing_ok=True)

    # --- the second instance ---

    def run_second_instance(self) -> None:
        """Start a second scheduler on the same data directory, nested inside the first one's
        wait, and kill it ``second_for_s`` later (or let it refuse to start)."""
        self.second_due = None
        clock = self.clock
        first_crash, first_instance = clock.crash_at, self.log.instance
        if self.plan.second_deletes_lock:
            (self.data_dir / LOCK_NAME).unlink(missing_ok=True)
        self.log.instance = "second"
        clock.crash_at = clock.now() + dt.timedelta(seconds=self.plan.second_for_s)
        storage = SQLiteStorage(self.data_dir / DEFAULT_DB_NAME)
        services = build_services(
            KISTarget(Env.PAPER, state_dir=self.data_dir / "kis-state"),
            Credentials(self.app.app_key, self.app.app_secret, self.app.account, "the fake"),
            clock,
            transport=self.transport(self.fake),
            async_transport=self.async_transport(self.fake),
            universe=self.fake.universe,
        )
        kis = services.kis
        assert kis is not None  # build_services always builds the sync client
        end = _at(dt.time(0)) + dt.timedelta(days=1)
        try:
            scheduler = IntegratedScheduler(
                self.config,
                storage,
                clock,
                self.registry,
                self.calendar,
                self.data_dir,
                services=services,
            )
            scheduler.run(until=end)
            self.notes.append("second instance ran to the end of the day")
        except SchedulerAlreadyRunningError:
            self.notes.append("second instance refused to start")
        except BaseException as exc:
            if not is_crash(exc):
                raise
            self.notes.append(f"second instance ran until killed at {clock.now():%H:%M:%S}")
        finally:
            kis.close()
            storage.close()
            self.log.instance = first_instance
            clock.crash_at = first_crash


def count_orders(orders: Iterable[Order]) -> tuple[dict[str, int], dict[str, int]]:
    """Rule 1: orders per ``"<side> <code>"``, and those placed more than once."""
    per_code = collections.Counter(f"{o.side} {o.code}" for o in orders)
    return dict(per_code), {code: n for code, n in per_code.items() if n > 1}


def judge_units(
    records: Iterable[JobRecord], config: SchedulerConfig, calendar: KRXCalendar
) -> tuple[dict[str, str], list[str]]:
    """Rule 3: each planned unit's final journal state, and the units left unexplained."""
    unexplained: list[str] = []
    units: dict[str, str] = {}
    by_key = {r.key: r for r in records}
    plan_of_day = build_day_plan(config, calendar, DAY)
    for planned in plan_of_day.jobs if plan_of_day else ():
        key = planned.key
        label = _label(key.job, key.batch)
        record = by_key.get(key)
        state = record.state.value if record is not None else "missing"
        units[label] = state
        if record is None:
            unexplained.append(f"{label}: no journal row")
        elif record.state is JobState.SKIPPED and not record.note:
            unexplained.append(f"{label}: skipped without a note")
        elif record.state is JobState.FAILED and not record.error:
            unexplained.append(f"{label}: failed without an error")
        elif record.state not in (JobState.DONE, JobState.SKIPPED, JobState.FAILED):
            unexplained.append(f"{label}: {state} at the end of the day")
    return units, unexplained


def unjournaled_runs(records: Iterable[JobRecord], starts: Iterable[str]) -> list[str]:
    """Rule 2, against the journal: every start of a unit's job is counted in its journal
    ``attempts`` (it was marked running first), so no unit has more starts than attempts."""
    attempts = {_label(r.key.job, r.key.batch): r.attempts for r in records}
    counted = collections.Counter(starts)
    return [
        f"{label} started {n} time(s) but the journal counts {attempts.get(label, 0)} attempt(s)"
        for label, n in sorted(counted.items())
        if n > attempts.get(label, 0)
    ]


def _label(job: str, batch: str | None) -> str:
    return job if batch is None else f"{job}[{batch}]"


def run_seed(seed: int, work: pathlib.Path) -> SoakReport:
    """Simulate one chaotic day for *seed* in the empty directory *work*; the verdict."""
    plan = ChaosPlan.from_seed(seed)
    data_dir = work / f"seed-{seed}"
    soak = _Soak(plan, data_dir)
    result = simulate_day(
        DAY,
        data_dir,
        restart_at=plan.crashes,
        universe_size=UNIVERSE,
        seed=seed,
        config=soak.config,
        calendar=soak.calendar,
        make_jobs=lambda: soak.registry,
        hooks=soak,
    )
    still = [f"{r.label} ({r.instance})" for r in soak.log.runs if r.outcome is None]
    violations = list(soak.log.violations)
    if still:
        violations.append(f"runs never ended: {', '.join(still)}")
    return judge_day(
        seed=seed,
        plan=plan.describe(),
        restarts=result.restarts,
        orders=soak.fake.orders(soak.app.app_key),
        records=result.records,
        starts=[r.label for r in soak.log.runs],
        violations=violations,
        config=soak.config,
        calendar=soak.calendar,
        notes=soak.notes,
        result=result,
    )


def judge_day(
    *,
    seed: int,
    plan: str,
    restarts: int,
    orders: Iterable[Order],
    records: Sequence[JobRecord],
    starts: Iterable[str],
    violations: list[str],
    config: SchedulerConfig,
    calendar: KRXCalendar,
    notes: list[str],
    unexplained: Iterable[str] = (),
    result: SimulationResult | None = None,
) -> SoakReport:
    """Apply the four rules to one day (either level): the orders at the fake, the journal
    *records*, the unit *starts* seen and the *violations* of rule 2 found while it ran, plus
    anything else left *unexplained* (a day that did not finish)."""
    per_code, duplicates = count_orders(orders)
    units, unexplained_units = judge_units(records, config, calendar)
    violations = [*violations, *unjournaled_runs(records, starts)]
    unexplained = [*unexplained_units, *unexplained]
    if not per_code:
        unexplained.append("no order was placed all day: trading never got its orders out")
    return SoakReport(
        seed=seed,
        plan=plan,
        restarts=restarts,
        orders=per_code,
        duplicates=duplicates,
        unit_violations=violations,
        unexplained=unexplained,
        units=units,
        notes=notes,
        result=result,
    )
