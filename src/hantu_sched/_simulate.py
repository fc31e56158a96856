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

from kisclient import Env, KISClient
from kisclient.testing import FakeApp, FakeKIS

from ._calendar import KRXCalendar, Session
from ._constants import KST
from ._day import JOB_ORDER, SchedulerConfig, build_day_plan
from ._jobs import Job, JobContext, JobInterrupted, JobRegistry
from ._journal import JobRecord, JobState
from ._recovery import Action, ActionKind
from ._scheduler import IntegratedScheduler
from ._services import Credentials, KISTarget, Services, build_services
from ._storage import DEFAULT_DB_NAME, SQLiteStorage
from .testing import CrashingClock, SimulatedCrash

__all__ = [
    "MARKER",
    "SIM_START",
    "SimClock",
    "SimEvent",
    "SimHooks",
    "SimulationError",
    "SimulationResult",
    "is_crash",
    "prepare_data_dir",
    "simulate_day",
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
        """Called before scheduler instance number *instance* (1, 2, ...) is built."""


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

    def __init__(self, clock: SimClock, out: TextIO | None, result: SimulationResult) -> None:
        self.clock = clock
        self.out = out
        self.result = result

    def emit(self, kind: str, text: str, *, job: str | None = None, batch: str | None = None,
             attempt: int | None = None, label: str | None = None) -> None:  # fmt: skip
        at = self.clock.now()
        name = label if label is not None else _label(job, batch)
        self.result.events.append(SimEvent(at, kind, name, text, job, batch, attempt))
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
        args = record.args
        if record.msg == "plan %s: %s" and isinstance(args, tuple) and len(args) == 2:
            data = args[1]
            if isinstance(data, dict) and (
                data.get("kind") == ActionKind.ADOPT.value
                or (data.get("kind") == ActionKind.SKIP.value and data.get("record"))
            ):
                self.timeline.emit(
                    "decision",
                    f"{data['kind']}: {data['reason']}",
                    job=str(data["job"]),
                    batch=data.get("batch"),
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
    hooks = hooks or SimHooks()
    calendar = calendar or KRXCalendar()
    config = config or SchedulerConfig()
    wall = time.perf_counter()
    result = SimulationResult(trading_date, data_dir)
    start = dt.datetime.combine(trading_date, SIM_START, KST)
    end = dt.datetime.combine(trading_date + dt.timedelta(days=1), dt.time(0), KST)
    crashes = sorted({dt.datetime.combine(trading_date, t, KST) for t in restart_at})
    for crash in crashes:
        if not start < crash < end:
            raise SimulationError(
                f"--restart-at {crash:%H:%M} is outside the simulated day ({SIM_START:%H:%M}–24:00)"
            )
    clock = hooks.make_clock(start)
    timeline = _Timeline(clock, out, result)
    session = calendar.session(trading_date)
    if session is None:
        result.closed_reason = calendar.closure_reason(trading_date)
        timeline.emit(
            "scheduler",
            f"{trading_date} is not a KRX trading day ({result.closed_reason}): nothing runs",
            label="calendar",
        )
        result.wall_seconds = time.perf_counter() - wall
        return result
    result.session = session
    if fresh:
        prepare_data_dir(data_dir)
    fake = hooks.make_fake(clock, seed, universe_size)
    app = fake.add_app(env="paper")
    state_dir = data_dir / "kis-state"
    state_dir.mkdir(mode=0o700, exist_ok=True)
    registry = (make_jobs or _default_jobs(pipeline or {}))()
    wrapped = _wrap_registry(registry, timeline)
    with _captured_logs(timeline) as handler:
        try:
            _run_instances(clock, crashes, end, fake, app, state_dir, config, calendar, wrapped,
                           data_dir, timeline, result, hooks)  # fmt: skip
        finally:
            result.warnings = dict(handler.repeats)
    storage = SQLiteStorage(data_dir / DEFAULT_DB_NAME)
    try:
        order = {name: index for index, name in enumerate(JOB_ORDER)}
        result.records = sorted(
            storage.list_jobs(trading_date),
            key=lambda r: (order.get(r.key.job, len(order)), r.key.batch or ""),
        )
    finally:
        storage.close()
    plan = build_day_plan(config, calendar, trading_date)
    seen = {r.key for r in result.records}
    result.unplanned = [
        _label(p.key.job, p.key.batch) for p in (plan.jobs if plan else ()) if p.key not in seen
    ]
    result.orders = len(fake.orders(app.app_key))
    result.wall_seconds = time.perf_counter() - wall
    return result


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
                config, storage, clock, jobs, calendar, data_dir, services=services
            )
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
