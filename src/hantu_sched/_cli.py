"""The runner: ``python -m hantu_sched {run,status,recover,simulate,doctor}``.

Exit codes: 0 success; 1 the command ran but the outcome is bad (``simulate``: the day did not
end complete; ``doctor``: a check failed); 2 it could not run (bad arguments or configuration,
an unresolvable job, a malformed date, a missing credential, another scheduler on the data
directory, a journal that cannot be opened, an unwritable data directory, this scheduler deposed
by another) — always as one line on stderr, never a traceback.

A corrupt journal is never moved silently: ``run`` refuses it (exit 2) and ``doctor`` fails its
``journal`` check; ``run --set-aside-corrupt-journal`` (holding the data directory's lock)
renames it to ``hantu_sched.sqlite3.<UTC timestamp>.corrupt`` and starts a fresh journal, from
which recovery rebuilds the day out of the batch files. ``status`` and ``recover`` only report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import httpx

from kisclient import ConfigurationError

from ._calendar import CalendarNotCoveredError
from ._clock import Clock, SystemClock
from ._constants import KST
from ._lock import DataDirLock, SchedulerAlreadyRunningError
from ._services import build_services
from ._settings import Credentials, Settings, SettingsError, load_credentials, load_settings
from ._storage import (
    DEFAULT_DB_NAME,
    CorruptJournalError,
    SQLiteStorage,
    StorageError,
    set_aside_journal,
)
from ._version import __version__

__all__ = ["build_parser", "main"]

PROG = "hantu_sched"
_LOG = logging.getLogger("hantu_sched.runner")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _moment(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date-time (e.g. 2026-06-04T11:00+09:00)"
        ) from None
    return value.replace(tzinfo=KST) if value.tzinfo is None else value


def _times(text: str) -> list[dt.time]:
    times = []
    for part in text.split(","):
        try:
            times.append(dt.time.fromisoformat(part.strip()))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a time (HH:MM)") from None
    return times


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (parsing never runs anything)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration file (default: $HANTU_CONFIG, else embedded defaults)",
    )
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        help="journal, batch files, reports and lock (default: data_dir / $HANTU_DATA_DIR)",
    )
    parser = _Parser(
        prog=PROG,
        description="A crash-safe KRX trading-day scheduler built on kisclient.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[common], help="the daemon: recovery, then the day's schedule, every day"
    )
    run.add_argument("--until", type=_moment, help="stop at this ISO-8601 time (default: never)")
    run.add_argument(
        "--set-aside-corrupt-journal",
        action="store_true",
        help="if the journal is corrupt, rename it to <name>.<timestamp>.corrupt and start a "
        "fresh one (recovery rebuilds the day from the batch files)",
    )
    run.set_defaults(func=_cmd_run)

    status = commands.add_parser(
        "status", parents=[common], help="today's session, jobs, batches, token, errors"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--now", type=_moment, help="report as of this ISO-8601 time")
    status.set_defaults(func=_cmd_status)

    recover = commands.add_parser(
        "recover", parents=[common], help="what recovery would do now, and why"
    )
    recover.add_argument(
        "--dry-run", action="store_true", help="show the plan without doing it (required)"
    )
    recover.add_argument("--now", type=_moment, help="plan as of this ISO-8601 time")
    recover.add_argument("--json", action="store_true", help="a JSON list of actions")
    recover.set_defaults(func=_cmd_recover)

    simulate = commands.add_parser(
        "simulate",
        parents=[common],
        help="a whole trading day on a fake clock against the fake KIS server",
    )
    simulate.add_argument(
        "--date", type=_date, help="the day (default: the next trading day after today)"
    )
    simulate.add_argument(
        "--restart-at",
        type=_times,
        action="append",
        default=[],
        metavar="HH:MM",
        help="kill the scheduler at this time and start a new one (repeatable, or comma list)",
    )
    simulate.add_argument(
        "--universe", type=_positive, default=300, metavar="N", help="codes listed (default 300)"
    )
    simulate.add_argument("--seed", type=int, default=0, help="fake market seed (default 0)")
    simulate.add_argument(
        "--quiet", action="store_true", help="print only the summary, not the timeline"
    )
    simulate.set_defaults(func=_cmd_simulate)

    doctor = commands.add_parser(
        "doctor", parents=[common], help="check configuration, credentials, clock, reachability"
    )
    doctor.add_argument(
        "--timeout", type=float, default=3.0, help="connect timeout in seconds (default 3)"
    )
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, data_dir=args.data_dir)


def _now(args: argparse.Namespace) -> dt.datetime:
    value: dt.datetime | None = getattr(args, "now", None)
    return value if value is not None else dt.datetime.now(KST)


# --- run ----------------------------------------------------------------------------------------


class _KSTFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return dt.datetime.fromtimestamp(record.created, KST).isoformat(timespec="milliseconds")


def run_daemon(
    settings: Settings,
    credentials: Credentials,
    *,
    clock: Clock | None = None,
    until: dt.datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    async_transport: httpx.AsyncBaseTransport | None = None,
    signals: bool = True,
    set_aside_corrupt: bool = False,
) -> int:
    """Build the clients and the scheduler and run until *until* or SIGTERM/SIGINT.

    The journal is opened first: a corrupt one raises :class:`CorruptJournalError` (nothing is
    moved) unless *set_aside_corrupt*; an unwritable data directory raises :class:`OSError` or
    :class:`StorageError`. No client is built before the journal opened."""

    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = _open_journal(settings.data_dir, clock, set_aside_corrupt)
    try:
        return _run_with_storage(
            settings, credentials, storage, clock, until, transport, async_transport, signals
        )
    finally:
        storage.close()


def _open_journal(data_dir: pathlib.Path, clock: Clock, set_aside_corrupt: bool) -> SQLiteStorage:
    """Open the journal for writing; move a corrupt one aside only when asked to (under the
    data directory's lock, so a running scheduler's journal is never moved)."""
    path = data_dir / DEFAULT_DB_NAME
    try:
        return _open_sound(path)
    except CorruptJournalError:
        if not set_aside_corrupt:
            raise
    with DataDirLock(data_dir):
        moved = set_aside_journal(path, clock.now())
    _LOG.warning("corrupt journal moved aside to %s; starting a fresh journal", moved)
    return SQLiteStorage(path)


def _open_sound(path: pathlib.Path) -> SQLiteStorage:
    """The journal, opened and passing ``PRAGMA quick_check`` (else :class:`CorruptJournalError`:
    damage deep in the file is refused at start, not found halfway through the day)."""
    storage = SQLiteStorage(path)
    problem = storage.integrity_problem()
    if problem is not None:
        storage.close()
        raise CorruptJournalError(path, problem)
    return storage


def _run_with_storage(
    settings: Settings,
    credentials: Credentials,
    storage: SQLiteStorage,
    clock: Clock,
    until: dt.datetime | None,
    transport: httpx.BaseTransport | None,
    async_transport: httpx.AsyncBaseTransport | None,
    signals: bool,
) -> int:
    from ._scheduler import IntegratedScheduler  # noqa: PLC0415

    registry = settings.job_registry(settings.pipeline_config())
    services = build_services(
        settings.kis_target,
        credentials,
        clock,
        transport=transport,
        async_transport=async_transport,
    )
    try:
        scheduler = IntegratedScheduler(
            settings.scheduler,
            storage,
            clock,
            registry,
            settings.calendar(),
            settings.data_dir,
            services=services,
        )
        restore = scheduler.install_signal_handlers() if signals else None
        try:
            _LOG.info(
                "hantu_sched %s: data dir %s, KIS %s at %s, credentials from %s",
                __version__,
                settings.data_dir,
                settings.kis_env.value,
                settings.base_url,
                credentials.source,
            )
            for action in scheduler.plan():
                _LOG.info("recovery plan: %s", action.to_dict())
            scheduler.run(until=until)
        finally:
            if restore is not None:
                restore()
    finally:
        services.close()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    credentials = load_credentials(settings)
    assert credentials is not None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KSTFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(settings.log_level)
    try:
        return run_daemon(
            settings,
            credentials,
            until=args.until,
            set_aside_corrupt=args.set_aside_corrupt_journal,
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


# --- status / recover / doctor --------------------------------------------------------------------


def _cmd_status(args: argparse.Namespace) -> int:
    from ._inspect import dumps, format_status, status_report  # noqa: PLC0415

    report = status_report(_settings(args), _now(args))
    if report["journal_problem"] and args.json:
        print(f"{PROG}: warning: {report['journal_problem']}", file=sys.stderr)
    print(dumps(report) if args.json else format_status(report))
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    from ._inspect import dumps, journal_problem, recovery_plan  # noqa: PLC0415

    if not args.dry_run:
        raise SettingsError(
            "recover only previews (use --dry-run): `run` applies this plan itself at every "
            "start, holding the data directory's lock"
        )
    settings = _settings(args)
    now = _now(args)
    problem = journal_problem(settings)
    if problem is not None:  # one line; the plan below treats the journal as empty
        print(f"{PROG}: warning: {problem}; planning from the batch files only", file=sys.stderr)
    actions = recovery_plan(settings, now)
    if args.json:
        print(dumps([a.to_dict() for a in actions]))
        return 0
    print(f"recovery plan at {now.isoformat(timespec='seconds')} for {settings.data_dir}:")
    for action in actions:
        label = action.job + (f"[{action.batch}]" if action.batch else "")
        at = f" at {action.at.astimezone(KST):%H:%M}" if action.at else ""
        print(f"  {action.kind.value:<9} {label:<16} {action.trading_date}{at}: {action.reason}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ._inspect import Check, doctor_checks  # noqa: PLC0415

    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(Check("config", "FAIL", str(exc)).line())
        return 1
    source = settings.config_path or "embedded defaults"
    checks = [Check("config", "OK", f"{source}; KIS {settings.kis_env.value}")]
    checks += doctor_checks(settings, _now(args), timeout=args.timeout)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.status == "FAIL"]
    warned = [c for c in checks if c.status == "WARN"]
    print(f"{len(checks)} checks: {len(failed)} failed, {len(warned)} warnings")
    return 1 if failed else 0


# --- simulate -------------------------------------------------------------------------------------


def _hhmm(value: dt.time) -> str:
    return value.isoformat(timespec="seconds" if value.second else "minutes")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ._simulate import simulate_day  # noqa: PLC0415

    settings = load_settings(args.config)
    calendar = settings.calendar()
    day: dt.date = args.date or calendar.next_trading_day(dt.datetime.now(KST).date())
    data_dir = (
        pathlib.Path(args.data_dir)
        if args.data_dir
        else settings.data_dir / f"simulate-{day.isoformat()}"
    )
    restarts = sorted({t for group in args.restart_at for t in group})

    def make_jobs() -> Any:
        config = settings.pipeline_config(trading_mode="paper", universe=None, allow_live=False)
        return settings.job_registry(config)

    make_jobs()  # a bad [jobs] or [pipeline] is one line before anything runs
    out: TextIO = sys.stdout
    session = calendar.session(day)
    hours = f"session {session.open:%H:%M}–{session.close:%H:%M} KST" if session else "closed"
    print(
        f"simulating {day} ({day:%A}, {hours}); {args.universe} codes on the fake KIS server; "
        f"paper trading; restarts at {', '.join(map(_hhmm, restarts)) or 'none'}; "
        f"data dir {data_dir}"
    )
    result = simulate_day(
        day,
        data_dir,
        restart_at=restarts,
        universe_size=args.universe,
        seed=args.seed,
        config=settings.scheduler,
        calendar=calendar,
        make_jobs=make_jobs,
        out=None if args.quiet else out,
    )
    if result.session is None:
        print(f"{day} is not a trading day ({result.closed_reason}): nothing ran; exit 0")
        return 0
    print("\njournal at the end of the day:")
    for record in result.records:
        label = record.key.job + (f"[{record.key.batch}]" if record.key.batch else "")
        started = f"{record.started_at:%H:%M:%S}" if record.started_at else "--:--:--"
        finished = f"{record.finished_at:%H:%M:%S}" if record.finished_at else "--:--:--"
        extra = f"  {record.error}" if record.error else ""
        print(
            f"  {label:<16} {record.state.value:<15} attempts {record.attempts}  "
            f"{started} → {finished}{extra}"
        )
    verdict = "COMPLETE" if result.complete else "INCOMPLETE"
    missing = [
        r.key.job + (f"[{r.key.batch}]" if r.key.batch else "") for r in result.incomplete
    ] + result.unplanned
    print(
        f"day {verdict}: {len(result.records) - len(result.incomplete)}/"
        f"{len(result.records) + len(result.unplanned)} units done, {result.restarts} crash(es) "
        f"recovered, {result.orders} paper order(s), {result.wall_seconds:.1f}s wall"
        + (f"; not done: {', '.join(missing)}" if missing else "")
    )
    repeated = {m: n for m, n in result.warnings.items() if n > 1}
    for message, count in repeated.items():
        print(f"  (kisclient warning seen {count}x: {message})")
    print(f"journal, batch files and reports: {data_dir}")
    return 0 if result.complete else 1


# --- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    from ._simulate import SimulationError  # noqa: PLC0415

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status: int = args.func(args)
    except (
        SettingsError,
        SimulationError,
        SchedulerAlreadyRunningError,
        CalendarNotCoveredError,
        ConfigurationError,
        StorageError,
    ) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `simulate | head`: the reader left, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # e.g. a read-only or missing data directory
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    return status
