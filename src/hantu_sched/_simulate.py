"""``python -m hantu_sched simulate``: a whole trading day in seconds, crashes included.

The day runs on a :class:`~hantu_sched.testing.CrashingClock` (a fake clock) starting at 05:30
KST, against the in-process fake KIS server (:class:`kisclient.testing.FakeKIS`, on the same
clock) with a paper app, so the default pipeline's screening, selection, paper orders, market
close and performance report all really go through kisclient. At each ``--restart-at`` time the
scheduler is killed without a graceful stop (the clock raises
:class:`~hantu_sched.testing.SimulatedCrash` from whatever wait reaches that time, exactly where
a ``kill -9`` would land) and a new scheduler is built on the same SQLite journal and data
directory; its recovery plan is printed with the reason for every decision.

The result is complete iff every unit of the day plan ends ``done`` in the journal.

:func:`simulate_range` runs consecutive days (``simulate --from D1 --to D2``): one clock, one
fake server and one paper account across the range, so positions and cash carry from day to
day while the fake's prices move; days the calendar closes are skipped (reported, nothing runs).
Each trading day starts a fresh scheduler at 05:30 on the same journal and data directory (as
a service manager would each morning), with the same ``--restart-at`` crashes that day. The
journal, batch files, balance snapshots and performance reports of every day stay in the data
directory, so ``report --from D1 --to D2`` draws the account's real equity curve.

:class:`SimHooks` lets a harness (the chaos soak in ``tests/chaos``) change the clock, the fake
server and the transports, and act before each scheduler instance starts; the defaults are the
behaviour described above.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import pathlib
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO

import attrs
import httpx

from kisclient import Env, KISClient, Observer
from kisclient.testing import FakeApp, FakeKIS

from ._calendar import KRXCalendar, Session
from ._constants import KST
from ._day import JOB_ORDER, SchedulerConfig, build_day_plan
from ._events import EventSink, discard
from ._jobs import Job, JobContext, JobInterrupted, JobRegistry
from ._journal import JobRecord, JobState
from ._recovery import Action, ActionKind
from ._scheduler import IntegratedScheduler
from ._services import Credentials, KISTarget, Services, build_services
from ._storage import DEFAULT_DB_NAME, SQLiteStorage
from ._telemetry import Telemetry
from .testing import CrashingClock, SimulatedCrash

__all__ = [
    "MARKER",
    "SIM_START",
    "RangeResult",
    "SimClock",
    "SimEvent",
    "SimHooks",
    "SimulationError",
    "SimulationResult",
    "TelemetryHooks",
    "is_crash",
    "prepare_data_dir",
    "simulate_day",
    "simulate_range",
]

#: When the simulated day starts (KST), before the first job (screening, 06:00).
SIM_START = dt.time(5, 30)
#: File that marks a directory as a simulation's (so it may be wiped and reused).
MARKER = ".hantu-simulate"


class SimulationError(ValueError):
    """Bad simulation arguments (printed as one line by the CLI)."""


class SimClock(CrashingClock):
    """A :class:`CrashingClock` that also crashes from kisclient's interval sleeps (rate
    limiter, retries), so a kill can land in the middle of a job's network work."""

    def _crash_if_passing(self, seconds: float) -> None:
        crash = self.crash_at
        if crash is not None and self.time() + max(seconds, 0.0) >= crash.timestamp():
            self.crash_at = None
            if crash > self.now():
                self.set(crash)
            raise SimulatedCrash(f"simulated crash at {crash.isoformat()}")

    def sleep(self, seconds: float) -> None:
        self._crash_if_passing(seconds)
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self._crash_if_passing(seconds)
        await super().asleep(seconds)


@attrs.frozen
class SimEvent:
    """One line of the timeline. ``kind``: ``scheduler``, ``plan``, ``start``, ``done``,
    ``failed``, ``interrupted``, ``killed``, ``reconcile``, ``decision``, ``log``, ``crash``."""

    at: dt.datetime
    kind: str
    label: str
    text: str
    job: str | None = None
    batch: str | None = None
    attempt: int | None = None


@attrs.define
class SimulationResult:
    """What happened: the events, the final journal rows and whether the day ended complete."""

    trading_date: dt.date
    data_dir: pathlib.Path
    session: Session | None = None
    closed_reason: str | None = None
    events: list[SimEvent] = attrs.field(factory=list)
    records: list[JobRecord] = attrs.field(factory=list)
    #: Planned units (``job[batch]``) with no journal row at the end of the day.
    unplanned: list[str] = attrs.field(factory=list)
    restarts: int = 0
    orders: int = 0
    wall_seconds: float = 0.0
    #: kisclient warnings of the day (message → count); each is printed once in the timeline.
    warnings: dict[str, int] = attrs.field(factory=dict)

    @property
    def incomplete(self) -> list[JobRecord]:
        """Journal rows of the day that are not ``done``."""
        return [r for r in self.records if r.state is not JobState.DONE]

    @property
    def complete(self) -> bool:
        """True iff the day ended complete (a closed day is trivially complete)."""
        if self.session is None:
            return True
        return bool(self.records) and not self.incomplete and not self.unplanned

    def of(self, kind: str) -> list[SimEvent]:
        """Events of *kind*."""
        return [e for e in self.events if e.kind == kind]


@attrs.define
class RangeResult:
    """What happened over ``[first, last]``: one :class:`SimulationResult` per calendar day
    (a day the calendar closes has ``session is None`` and its ``closed_reason``)."""

    first: dt.date
    last: dt.date
    data_dir: pathlib.Path
    days: list[SimulationResult] = attrs.field(factory=list)
    wall_seconds: float = 0.0

    @property
    def trading_days(self) -> list[SimulationResult]:
        """The days that traded (a session), in order."""
        return [d for d in self.days if d.session is not None]

    @property
    def complete(self) -> bool:
        """True iff every trading day ended complete."""
        return all(d.complete for d in self.days)

    @property
    def restarts(self) -> int:
        """Simulated crashes over the range."""
        return sum(d.restarts for d in self.days)

    @property
    def orders(self) -> int:
        """Paper orders the fake accepted over the range."""
        return sum(d.orders for d in self.days)


class SimHooks:
    """Extension points of :func:`simulate_day`; every default keeps its normal behaviour.

    A harness subclasses this to skew the fake server's clock, inject faults or crashes from
    inside a transport, or tamper with the data directory between scheduler instances.
    """

    def make_clock(self, start: dt.datetime) -> SimClock:
        """The simulation's clock (the scheduler's and the clients'), starting at *start*."""
        return SimClock(start)

    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        """The in-process fake KIS server (by default on the simulation's *clock*)."""
        return FakeKIS(clock=clock, seed=seed, universe_size=universe_size, moving_prices=True)

    def transport(self, fake: FakeKIS) -> httpx.BaseTransport:
        """The sync transport of each instance's :class:`~kisclient.KISClient`."""
        return fake.transport()

    def async_transport(self, fake: FakeKIS) -> httpx.AsyncBaseTransport:
        """The async transport of each :class:`~kisclient.AsyncKISClient` the jobs build."""
        return fake.async_transport()

    def before_instance(self, instance: int, data_dir: pathlib.Path) -> None:
        """Called before scheduler instance number *instance* (1, 2, ... counted per day) is
        built."""

    def observer(self) -> Observer | None:
        """kisclient's observer of every instance's clients (default: none)."""
        return None

    def events(self) -> EventSink:
        """Where every instance's scheduler events go (default: nowhere)."""
        return discard

    def on_event(self, event: SimEvent) -> None:
        """Called with every timeline event as it happens (``simulate --log-format json``)."""

    def day_done(self, result: SimulationResult) -> None:
        """Called after each day of the range, closed days included (the progress bar)."""


class TelemetryHooks(SimHooks):
    """The default behaviour, with the day's events and client observations going to
    *telemetry* (metrics and alerts, as ``run`` does)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def make_clock(self, start: dt.datetime) -> SimClock:
        clock = super().make_clock(start)
        self.telemetry.clock = clock  # alerts are stamped with the simulated time
        return clock

    def observer(self) -> Observer | None:
        return self.telemetry.observe

    def events(self) -> EventSink:
        return self.telemetry.emit


def is_crash(exc: BaseException) -> bool:
    """True if *exc* is a :class:`SimulatedCrash`, possibly wrapped in an exception group (an
    ``asyncio.TaskGroup`` wraps what its tasks raise)."""
    if isinstance(exc, SimulatedCrash):
        return True
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(SimulatedCrash)[1]
        return rest is None
    return False


def _label(job: str | None, batch: str | None) -> str:
    if job is None:
        return ""
    return job if batch is None else f"{job}[{batch}]"


class _Timeline:
    """Collects events and prints them as they happen."""

    def __init__(
        self,
        clock: SimClock,
        out: TextIO | None,
        result: SimulationResult,
        on_event: Callable[[SimEvent], None] | None = None,
    ) -> None:
        self.clock = clock
        self.out = out
        self.result = result
        self.on_event = on_event

    def emit(self, kind: str, text: str, *, job: str | None = None, batch: str | None = None,
             attempt: int | None = None, label: str | None = None) -> None:  # fmt: skip
        at = self.clock.now()
        name = label if label is not None else _label(job, batch)
        event = SimEvent(at, kind, name, text, job, batch, attempt)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        if self.out is not None:
            try:
                self.out.write(f"{at:%H:%M:%S}  {name:<16} {text}\n")
                self.out.flush()
            except BrokenPipeError:  # the reader left (`| head`): the day goes on, unprinted
                self.out = None


class _TimelineHandler(logging.Handler):
    """Turns the jobs' log lines (progress) and every warning into timeline lines."""

    def __init__(self, timeline: _Timeline) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline
        #: Library warnings by message: printed the first time, counted after.
        self.repeats: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            name = record.name
            if name == "hantu_sched":  # the scheduler's own lines: decisions and failures
                self._core(record)
                return
            job = name.split(".", 1)[1] if name.startswith("hantu_sched.") else None
            if job is not None and "." in job:
                job = job.split(".", 1)[0]
            if job is None and record.levelno < logging.WARNING:
                return
            text = record.getMessage().splitlines()[0]
            if job is None:  # kisclient warnings (rate limits, retries): once per message
                seen = self.repeats.get(text, 0)
                self.repeats[text] = seen + 1
                if seen:
                    return
            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
            label = job if job is not None else name
            self.timeline.emit("log", f"  {prefix}{text}", label=label)
        except Exception:  # pragma: no cover - never let the timeline break the day
            self.handleError(record)

    def _core(self, record: logging.LogRecord) -> None:
        action = getattr(record, "action", None)  # the scheduler's "plan: ..." decision lines
        if isinstance(action, Action):
            recorded = action.kind is ActionKind.SKIP and action.record
            if action.kind is ActionKind.ADOPT or recorded:
                self.timeline.emit(
                    "decision",
                    f"{action.kind.value}: {action.reason}",
                    job=action.job,
                    batch=action.batch,
                )
            return
        if record.levelno >= logging.WARNING:
            text = record.getMessage().splitlines()[0]
            self.timeline.emit("log", f"  {record.levelname}: {text}", label="scheduler")


def _wrap(timeline: _Timeline, name: str, job: Job, *, reconcile: bool = False) -> Job:
    def run(ctx: JobContext) -> None:
        key = ctx.key
        started = ctx.clock.now()
        if reconcile:
            timeline.emit("reconcile", "reconcile: checking today's orders and positions",
                          job=key.job, batch=key.batch, attempt=ctx.attempt)  # fmt: skip
        else:
            record = ctx.storage.get_job(key)
            why = record.note if record is not None and record.note else ""
            what = "resume" if ctx.resume else "start"
            timeline.emit("start", f"{what} (attempt {ctx.attempt}): {why}",
                          job=key.job, batch=key.batch, attempt=ctx.attempt)  # fmt: skip
        try:
            job(ctx)
        except JobInterrupted:
            timeline.emit("interrupted", "stopped on request", job=key.job, batch=key.batch)
            raise
        except Exception as exc:
            timeline.emit("failed", f"FAILED: {type(exc).__name__}: {exc}",
                          job=key.job, batch=key.batch, attempt=ctx.attempt)  # fmt: skip
            raise
        except BaseException:
            timeline.emit("killed", "killed mid-job (process crash)",
                          job=key.job, batch=key.batch, attempt=ctx.attempt)  # fmt: skip
            raise
        took = (ctx.clock.now() - started).total_seconds()
        kind = "reconciled" if reconcile else "done"
        timeline.emit(kind, f"{kind} in {_duration(took)}",
                      job=key.job, batch=key.batch, attempt=ctx.attempt)  # fmt: skip

    run.__name__ = f"timeline_{name}"
    return run


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _wrap_registry(registry: JobRegistry, timeline: _Timeline) -> JobRegistry:
    wrapped = JobRegistry()
    for name, entry in registry.items():
        reconcile = entry.reconcile
        wrapped.register(
            name,
            _wrap(timeline, name, entry.run),
            reconcile=None
            if reconcile is None
            else _wrap(timeline, name, reconcile, reconcile=True),
        )
    return wrapped


def prepare_data_dir(data_dir: pathlib.Path) -> None:
    """Make *data_dir* a fresh simulation directory.

    A directory carrying the :data:`MARKER` file is wiped; an empty or missing one is created;
    any other non-empty directory is refused (it may be a production data directory).
    """
    if data_dir.exists():
        if not data_dir.is_dir():
            raise SimulationError(f"--data-dir {str(data_dir)!r} is not a directory")
        if (data_dir / MARKER).exists():
            shutil.rmtree(data_dir)
        elif any(data_dir.iterdir()):
            raise SimulationError(
                f"refusing to simulate into {str(data_dir)!r}: it is not empty and is not a "
                "simulation directory (no .hantu-simulate marker); choose another --data-dir"
            )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("created by python -m hantu_sched simulate\n", encoding="utf-8")


def _plan_lines(actions: Sequence[Action]) -> Iterable[tuple[Action, str]]:
    for action in actions:
        when = ""
        if action.kind is ActionKind.WAIT and action.at is not None:
            when = f" (at {action.at.astimezone(KST):%H:%M})"
        yield action, f"plan {action.kind.value}{when}: {action.reason}"


def simulate_day(
    trading_date: dt.date,
    data_dir: pathlib.Path,
    *,
    restart_at: Sequence[dt.time] = (),
    universe_size: int = 300,
    seed: int = 0,
    config: SchedulerConfig | None = None,
    calendar: KRXCalendar | None = None,
    make_jobs: Callable[[], JobRegistry] | None = None,
    pipeline: dict[str, Any] | None = None,
    out: TextIO | None = None,
    fresh: bool = True,
    hooks: SimHooks | None = None,
) -> SimulationResult:
    """Simulate *trading_date* (see the module docstring) and return what happened.

    *make_jobs* builds the job registry (default: the default pipeline in paper mode with
    *pipeline* settings, universe from the fake server). The data directory is prepared with
    :func:`prepare_data_dir` when *fresh*. *hooks* customise the clock, the fake server, the
    transports and what happens before each instance (see :class:`SimHooks`).
    """
    result = simulate_range(
        trading_date,
        trading_date,
        data_dir,
        restart_at=restart_at,
        universe_size=universe_size,
        seed=seed,
        config=config,
        calendar=calendar,
        make_jobs=make_jobs,
        pipeline=pipeline,
        out=out,
        fresh=fresh,
        hooks=hooks,
    )
    return result.days[0]


@attrs.define
class _World:
    """What lives across the days of a range: the fake server, its paper app (the account),
    the client state directory and the wrapped job registry."""

    fake: FakeKIS
    app: FakeApp
    state_dir: pathlib.Path
    jobs: JobRegistry


def simulate_range(
    first: dt.date,
    last: dt.date,
    data_dir: pathlib.Path,
    *,
    restart_at: Sequence[dt.time] = (),
    universe_size: int = 300,
    seed: int = 0,
    config: SchedulerConfig | None = None,
    calendar: KRXCalendar | None = None,
    make_jobs: Callable[[], JobRegistry] | None = None,
    pipeline: dict[str, Any] | None = None,
    out: TextIO | None = None,
    fresh: bool = True,
    hooks: SimHooks | None = None,
) -> RangeResult:
    """Simulate every day of ``[first, last]`` on one clock, one fake server and one account
    (see the module docstring); the arguments are :func:`simulate_day`'s. Days the calendar
    closes are skipped with their reason; *restart_at* applies to every trading day. With
    more than one day, each day's timeline on *out* starts with a header line."""
    if last < first:
        raise SimulationError(f"--to {last} is before --from {first}")
    hooks = hooks or SimHooks()
    calendar = calendar or KRXCalendar()
    config = config or SchedulerConfig()
    wall = time.perf_counter()
    times = sorted(set(restart_at))
    for when in times:
        if when <= SIM_START:
            raise SimulationError(
                f"--restart-at {when:%H:%M} is outside the simulated day ({SIM_START:%H:%M}–24:00)"
            )
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    answer = RangeResult(first, last, data_dir)
    clock = hooks.make_clock(dt.datetime.combine(first, SIM_START, KST))
    timeline = _Timeline(
        clock, None if len(days) > 1 else out, SimulationResult(first, data_dir), hooks.on_event
    )
    world: _World | None = None
    with _captured_logs(timeline) as handler:
        for day in days:
            day_wall = time.perf_counter()
            start = dt.datetime.combine(day, SIM_START, KST)
            if start > clock.now():
                clock.set(start)
            result = SimulationResult(day, data_dir)
            answer.days.append(result)
            timeline.result = result
            handler.repeats = {}
            if len(days) > 1 and out is not None:
                timeline.out = _header(out, day)
            session = calendar.session(day)
            if session is None:
                result.closed_reason = calendar.closure_reason(day)
                timeline.emit(
                    "scheduler",
                    f"{day} is not a KRX trading day ({result.closed_reason}): nothing runs",
                    label="calendar",
                )
                result.wall_seconds = time.perf_counter() - day_wall
                hooks.day_done(result)
                continue
            if world is None:
                if fresh:
                    prepare_data_dir(data_dir)
                fake = hooks.make_fake(clock, seed, universe_size)
                state_dir = data_dir / "kis-state"
                state_dir.mkdir(mode=0o700, exist_ok=True)
                registry = (make_jobs or _default_jobs(pipeline or {}))()
                world = _World(
                    fake, fake.add_app(env="paper"), state_dir, _wrap_registry(registry, timeline)
                )
            _simulate_one(day, session, times, world, clock, config, calendar, data_dir,
                          timeline, result, hooks, handler)  # fmt: skip
            result.wall_seconds = time.perf_counter() - day_wall
            hooks.day_done(result)
    answer.wall_seconds = time.perf_counter() - wall
    if len(answer.days) == 1:
        answer.days[0].wall_seconds = answer.wall_seconds
    return answer


def _header(out: TextIO, day: dt.date) -> TextIO | None:
    """Write the day's header line on *out*; ``None`` if the reader left."""
    try:
        out.write(f"\n=== {day} ({day:%A}) ===\n")
    except BrokenPipeError:
        return None
    return out


def _simulate_one(
    day: dt.date,
    session: Session,
    times: Sequence[dt.time],
    world: _World,
    clock: SimClock,
    config: SchedulerConfig,
    calendar: KRXCalendar,
    data_dir: pathlib.Path,
    timeline: _Timeline,
    result: SimulationResult,
    hooks: SimHooks,
    handler: _TimelineHandler,
) -> None:
    """One trading day of a range, on *world*; fills *result*."""
    result.session = session
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), KST)
    crashes = [dt.datetime.combine(day, t, KST) for t in times]
    orders_before = len(world.fake.orders(world.app.app_key))
    try:
        _run_instances(clock, crashes, end, world.fake, world.app, world.state_dir, config,
                       calendar, world.jobs, data_dir, timeline, result, hooks)  # fmt: skip
    finally:
        result.warnings = dict(handler.repeats)
    storage = SQLiteStorage(data_dir / DEFAULT_DB_NAME)
    try:
        order = {name: index for index, name in enumerate(JOB_ORDER)}
        result.records = sorted(
            storage.list_jobs(day),
            key=lambda r: (order.get(r.key.job, len(order)), r.key.batch or ""),
        )
    finally:
        storage.close()
    plan = build_day_plan(config, calendar, day)
    seen = {r.key for r in result.records}
    result.unplanned = [
        _label(p.key.job, p.key.batch) for p in (plan.jobs if plan else ()) if p.key not in seen
    ]
    result.orders = len(world.fake.orders(world.app.app_key)) - orders_before


@contextlib.contextmanager
def _captured_logs(timeline: _Timeline) -> Iterator[_TimelineHandler]:
    """Route the scheduler's, the jobs' and kisclient's log lines into the timeline."""
    handler = _TimelineHandler(timeline)
    loggers = [logging.getLogger("hantu_sched"), logging.getLogger("kisclient")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield handler
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def _default_jobs(pipeline: dict[str, Any]) -> Callable[[], JobRegistry]:
    def make() -> JobRegistry:
        from .pipeline import PipelineConfig, default_jobs  # noqa: PLC0415

        values = {**pipeline, "trading_mode": "paper", "universe": None, "allow_live": False}
        registry: JobRegistry = default_jobs(PipelineConfig.from_mapping(values))
        return registry

    return make


def _services(
    fake: FakeKIS, app: FakeApp, state_dir: pathlib.Path, clock: SimClock, hooks: SimHooks
) -> tuple[Services, KISClient]:
    """The instance's services, built like ``run``'s (:func:`build_services`), on the fake."""
    services = build_services(
        KISTarget(Env.PAPER, state_dir=state_dir),
        Credentials(app.app_key, app.app_secret, app.account, "the fake KIS server's app"),
        clock,
        transport=hooks.transport(fake),
        async_transport=hooks.async_transport(fake),
        universe=fake.universe,
        observer=hooks.observer(),
    )
    assert services.kis is not None  # build_services always builds the sync client
    return services, services.kis


def _run_instances(
    clock: SimClock,
    crashes: list[dt.datetime],
    end: dt.datetime,
    fake: FakeKIS,
    app: FakeApp,
    state_dir: pathlib.Path,
    config: SchedulerConfig,
    calendar: KRXCalendar,
    jobs: JobRegistry,
    data_dir: pathlib.Path,
    timeline: _Timeline,
    result: SimulationResult,
    hooks: SimHooks,
) -> None:
    pending = list(crashes)
    instance = 0
    while True:
        instance += 1
        clock.crash_at = pending.pop(0) if pending else None
        hooks.before_instance(instance, data_dir)
        storage = SQLiteStorage(data_dir / DEFAULT_DB_NAME)
        services, kis = _services(fake, app, state_dir, clock, hooks)
        try:
            scheduler = IntegratedScheduler(
                config, storage, clock, jobs, calendar, data_dir, services=services,
                events=hooks.events(),
            )  # fmt: skip
            what = "started" if instance == 1 else "restarted on the same journal"
            timeline.emit("scheduler", f"scheduler #{instance} {what}; recovery plan:",
                          label="scheduler")  # fmt: skip
            for action, line in _plan_lines(scheduler.plan()):
                timeline.emit("plan", f"  {line}", job=action.job, batch=action.batch)
            try:
                scheduler.run(until=end)
            except BaseException as exc:
                if not is_crash(exc):
                    raise
                result.restarts += 1
                timeline.emit(
                    "crash",
                    f"*** scheduler #{instance} KILLED (simulated crash, no graceful stop) ***",
                    label="scheduler",
                )
                continue
            timeline.emit("scheduler", f"scheduler #{instance} reached the end of the day",
                          label="scheduler")  # fmt: skip
            return
        finally:
            kis.close()
            storage.close()
