"""The runner: ``python -m hantu_sched {run,status,recover,simulate,report,doctor}``.

Exit codes: 0 success; 1 the command ran but the outcome is bad (``simulate``: a day did not
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
import contextlib
import datetime as dt
import json
import logging
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import attrs

from kisclient import ConfigurationError

from ._calendar import CalendarNotCoveredError
from ._clock import Clock, SystemClock
from ._constants import KST
from ._lock import DataDirLock, SchedulerAlreadyRunningError
from ._logs import LOG_FORMATS, log_formatter
from ._settings import Credentials, Settings, SettingsError, load_credentials, load_settings
from ._storage import (
    DEFAULT_DB_NAME,
    CorruptJournalError,
    SQLiteStorage,
    Storage,
    StorageError,
    set_aside_journal,
)
from ._version import __version__

if TYPE_CHECKING:
    import httpx

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
    _log_format_option(run)
    run.add_argument(
        "--set-aside-corrupt-journal",
        action="store_true",
        help="if the journal is corrupt, rename it to <name>.<timestamp>.corrupt and start a "
        "fresh one (recovery rebuilds the day from the batch files)",
    )
    run.add_argument(
        "--standby",
        action="store_true",
        help="with PostgreSQL storage: if another host leads this deployment, wait and take "
        "over when its lease lapses (default: refuse to start)",
    )
    run.set_defaults(func=_cmd_run)

    status = commands.add_parser(
        "status", parents=[common], help="today's session, jobs, batches, token, errors"
    )
    status.add_argument(
        "--json", action="store_true", help="machine-readable output (with every attempt)"
    )
    status.add_argument("--now", type=_moment, help="report as of this ISO-8601 time")
    status.add_argument(
        "--date", type=_date, help="the trading day to show (default: today, of --now)"
    )
    status.add_argument(
        "--history", action="store_true", help="every attempt of every unit, not just the last"
    )
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
        "--from",
        dest="first",
        type=_date,
        metavar="D1",
        help="first day of a multi-day simulation (with --to; closed days are skipped; one "
        "account carries positions and cash from day to day)",
    )
    simulate.add_argument(
        "--to", dest="last", type=_date, metavar="D2", help="last day of a multi-day simulation"
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
    simulate.add_argument(
        "--alerts",
        action="store_true",
        help="also send the simulated day's alerts to the configured channels (metrics are "
        "always written to <data dir>/metrics/hantu_sched.prom)",
    )
    _log_format_option(simulate)
    simulate.set_defaults(func=_cmd_simulate)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="one self-contained HTML page: the day's timeline, orders and fills, the account",
    )
    report.add_argument(
        "--date",
        type=_date,
        help="the day (default: today if the journal has it, else the latest day it has)",
    )
    report.add_argument(
        "--from", dest="first", type=_date, metavar="D1", help="first day of a range (with --to)"
    )
    report.add_argument(
        "--to", dest="last", type=_date, metavar="D2", help="last day of a range (with --from)"
    )
    report.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the page (default: <data dir>/reports/report_<dates>.html)",
    )
    report.add_argument(
        "--open",
        action="store_true",
        help="print the page's file:// address and open it in a browser when one is available",
    )
    report.add_argument("--now", type=_moment, help="the page's generation time (ISO-8601)")
    report.set_defaults(func=_cmd_report)

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


def _log_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: readable lines (default); json: one JSON object per line, for machines",
    )


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
    standby: bool = False,
) -> int:
    """Build the clients and the scheduler and run until *until* or SIGTERM/SIGINT.

    With ``settings.storage`` a PostgreSQL URL the state lives there (see
    :mod:`hantu_sched._pg_storage`) and the run leads the deployment: with *standby* it waits
    for the leader's lease to lapse, otherwise a held lease is refused (``LeaseHeldError``).

    The journal is opened first: a corrupt one raises :class:`CorruptJournalError` (nothing is
    moved) unless *set_aside_corrupt*; an unwritable data directory raises :class:`OSError` or
    :class:`StorageError`. No client is built before the journal opened."""

    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage: Storage
    if settings.storage is not None:
        try:
            from ._pg_storage import PostgresStorage  # noqa: PLC0415 - psycopg only when used
        except ImportError as exc:
            raise StorageError(
                f"storage = postgresql://... needs psycopg ({exc}): install hantu-sched[postgresql]"
            ) from None
        storage = PostgresStorage(
            settings.storage,
            deployment=settings.deployment,
            clock=clock,
            lease_s=settings.lease_seconds,
        )
    else:
        storage = _open_journal(settings.data_dir, clock, set_aside_corrupt)
    try:
        return _run_with_storage(
            settings,
            credentials,
            storage,
            clock,
            until,
            transport,
            async_transport,
            signals,
            standby=standby,
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
    storage: Storage,
    clock: Clock,
    until: dt.datetime | None,
    transport: httpx.BaseTransport | None,
    async_transport: httpx.AsyncBaseTransport | None,
    signals: bool,
    *,
    standby: bool = False,
) -> int:
    from ._scheduler import IntegratedScheduler  # noqa: PLC0415
    from ._services import build_services  # noqa: PLC0415 - the clients, only for a run
    from ._telemetry import build_telemetry, load_alert_secrets  # noqa: PLC0415

    registry = settings.job_registry(settings.pipeline_config())
    secrets = load_alert_secrets(settings.credentials_file)
    telemetry = build_telemetry(settings.telemetry, settings.data_dir, clock, secrets=secrets)
    services = build_services(
        settings.kis_target,
        credentials,
        clock,
        transport=transport,
        async_transport=async_transport,
        observer=telemetry.observe,
    )
    try:
        telemetry.start()
        scheduler = IntegratedScheduler(
            settings.scheduler,
            storage,
            clock,
            registry,
            settings.calendar(),
            settings.data_dir,
            services=services,
            events=telemetry.emit,
            standby=standby,
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
            plan = scheduler.plan()
            _LOG.info("recovery plan at %s:", clock.now().isoformat(timespec="seconds"))
            for action in plan:
                _LOG.info("recovery plan: %s", action.describe(), extra={"action": action})
            scheduler.run(until=until)
        finally:
            if restore is not None:
                restore()
    finally:
        services.close()
        telemetry.close()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    credentials = load_credentials(settings)
    assert credentials is not None
    from rich.console import Console  # noqa: PLC0415

    from ._console import log_handler  # noqa: PLC0415

    handler = log_handler(
        log_formatter(args.log_format), Console(stderr=True), bars=args.log_format == "text"
    )
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
            standby=args.standby,
        )
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(previous)


# --- status / recover / doctor --------------------------------------------------------------------


def _cmd_status(args: argparse.Namespace) -> int:
    from ._inspect import dumps, format_status, status_report  # noqa: PLC0415

    report = status_report(_settings(args), _now(args), args.date)
    if report["journal_problem"] and args.json:
        print(f"{PROG}: warning: {report['journal_problem']}", file=sys.stderr)
    if args.json:
        print(dumps(report))
        return 0
    if not _maybe_terminal():  # plain text without importing rich (status stays quick)
        print(format_status(report, history=args.history))
        return 0
    from rich.console import Console  # noqa: PLC0415

    from ._console import print_status  # noqa: PLC0415

    print_status(report, Console(), history=args.history)
    return 0


def _maybe_terminal() -> bool:
    """False when rich would certainly not see a terminal on stdout (not a tty, and neither
    ``FORCE_COLOR`` nor ``TTY_COMPATIBLE`` says otherwise); rich decides the rest."""
    forced = os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE")
    return bool(forced) or sys.stdout.isatty()


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
        print(f"  {action.describe()}")
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
    if args.log_format == "json":  # the timeline as JSON lines on stdout, the rest on stderr
        events = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return _simulate(args, events)
    return _simulate(args, None)


def _simulate_hooks(telemetry: Any, json_lines: TextIO | None, advance: Any) -> Any:
    """``simulate``'s hooks: telemetry, each timeline event as a JSON line on *json_lines*
    (``--log-format json``), and *advance* (the days' progress bar) after each day."""
    from ._simulate import SimEvent, SimulationResult, TelemetryHooks  # noqa: PLC0415

    class Hooks(TelemetryHooks):
        lines = json_lines

        def on_event(self, event: SimEvent) -> None:
            if self.lines is not None:
                line = {
                    "ts": event.at.astimezone(KST).isoformat(timespec="seconds"),
                    "kind": event.kind,
                    "unit": event.label,
                    "text": event.text.strip(),
                    "job": event.job,
                    "batch": event.batch,
                    "attempt": event.attempt,
                }
                try:
                    self.lines.write(json.dumps(line, ensure_ascii=False) + "\n")
                    self.lines.flush()
                except BrokenPipeError:  # the reader left (`| head`): the day goes on, unprinted
                    self.lines = None

        def day_done(self, result: SimulationResult) -> None:
            advance(str(result.trading_date))

    return Hooks(telemetry)


def _days_bar(days: int, timeline_on_terminal: bool) -> Any:
    """The days' progress bar of a multi-day ``simulate`` on a terminal (stderr), unless the
    timeline is printed there (it shows the progress itself)."""
    from rich.console import Console  # noqa: PLC0415

    from ._console import progress  # noqa: PLC0415

    return progress(0 if timeline_on_terminal else days, "simulating", Console(stderr=True))


def _simulate(args: argparse.Namespace, json_lines: TextIO | None) -> int:
    from ._simulate import SimulationError, simulate_range  # noqa: PLC0415
    from ._telemetry import build_telemetry, load_alert_secrets  # noqa: PLC0415

    settings = load_settings(args.config)
    calendar = settings.calendar()
    if (args.first is None) != (args.last is None):
        raise SimulationError("--from and --to go together (the first and last day of a range)")
    if args.first is not None and args.date is not None:
        raise SimulationError("--date is one day; --from/--to a range: give one or the other")
    first: dt.date = (
        args.first or args.date or calendar.next_trading_day(dt.datetime.now(KST).date())
    )
    last: dt.date = args.last or first
    if last < first:
        raise SimulationError(f"--to {last} is before --from {first}")
    name = f"simulate-{first}" if first == last else f"simulate-{first}-to-{last}"
    data_dir = pathlib.Path(args.data_dir) if args.data_dir else settings.data_dir / name
    restarts = sorted({t for group in args.restart_at for t in group})

    def make_jobs() -> Any:
        config = settings.pipeline_config(trading_mode="paper", universe=None, allow_live=False)
        return settings.job_registry(config)

    make_jobs()  # a bad [jobs] or [pipeline] is one line before anything runs
    out: TextIO = sys.stdout
    if first == last:
        session = calendar.session(first)
        what = f"{first} ({first:%A}, "
        what += f"session {session.open:%H:%M}–{session.close:%H:%M} KST)" if session else "closed)"
    else:
        trading = len(list(calendar.trading_days(first, last)))
        what = f"{first} to {last} ({trading} trading day(s), one account throughout)"
    print(
        f"simulating {what}; {args.universe} codes on the fake KIS server; "
        f"paper trading; restarts at {', '.join(map(_hhmm, restarts)) or 'none'}; "
        f"data dir {data_dir}"
    )
    # metrics in the simulation's own directory (never the daemon's textfile or port); alerts
    # only with --alerts (to try a channel's set-up)
    secrets = load_alert_secrets(settings.credentials_file) if args.alerts else None
    telemetry = build_telemetry(
        attrs.evolve(settings.telemetry, metrics_http_port=0),
        data_dir,
        SystemClock(),
        secrets=secrets,
        textfile=data_dir / "metrics" / "hantu_sched.prom",
    )
    timeline = not args.quiet and json_lines is None
    try:
        with _days_bar((last - first).days + 1, timeline and out.isatty()) as advance:
            result = simulate_range(
                first,
                last,
                data_dir,
                restart_at=restarts,
                universe_size=args.universe,
                seed=args.seed,
                config=settings.scheduler,
                calendar=calendar,
                make_jobs=make_jobs,
                out=out if timeline else None,
                hooks=_simulate_hooks(telemetry.start(), json_lines, advance),
            )
    finally:
        telemetry.close()
    if first != last:
        return _print_range(result, data_dir)
    return _print_day(result.days[0], data_dir)


def _print_day(day: Any, data_dir: pathlib.Path) -> int:
    """The summary of a one-day simulation (a ``SimulationResult``): the journal at the end
    of the day, the verdict, and the ``report`` command that draws it."""
    first = day.trading_date
    if day.session is None:
        print(f"{first} is not a trading day ({day.closed_reason}): nothing ran; exit 0")
        return 0
    print("\njournal at the end of the day:")
    for record in day.records:
        label = record.key.job + (f"[{record.key.batch}]" if record.key.batch else "")
        started = f"{record.started_at:%H:%M:%S}" if record.started_at else "--:--:--"
        finished = f"{record.finished_at:%H:%M:%S}" if record.finished_at else "--:--:--"
        extra = f"  {record.error}" if record.error else ""
        print(
            f"  {label:<16} {record.state.value:<15} attempts {record.attempts}  "
            f"{started} → {finished}{extra}"
        )
    print(f"day {_verdict(day)}, {day.wall_seconds:.1f}s wall" + _not_done(day))
    repeated = {m: n for m, n in day.warnings.items() if n > 1}
    for message, count in repeated.items():
        print(f"  (kisclient warning seen {count}x: {message})")
    print(f"journal, batch files and reports: {data_dir}")
    print(f"picture: python -m hantu_sched report --data-dir {data_dir} --date {first}")
    return 0 if day.complete else 1


def _verdict(day: Any) -> str:
    """``COMPLETE: 8/8 units done, ...`` for a simulated day (a ``SimulationResult``)."""
    done = len(day.records) - len(day.incomplete)
    return (
        f"{'COMPLETE' if day.complete else 'INCOMPLETE'}: {done}/"
        f"{len(day.records) + len(day.unplanned)} units done, {day.restarts} crash(es) "
        f"recovered, {day.orders} paper order(s)"
    )


def _not_done(day: Any) -> str:
    missing = [
        r.key.job + (f"[{r.key.batch}]" if r.key.batch else "") for r in day.incomplete
    ] + day.unplanned
    return f"; not done: {', '.join(missing)}" if missing else ""


def _print_range(result: Any, data_dir: pathlib.Path) -> int:
    """The summary of a multi-day simulation (a ``RangeResult``): one line a day, the account's
    figures from the last performance report, and the ``report`` command that draws it."""
    values: dict[str, Any] = {}
    performance: Any = None
    if (data_dir / DEFAULT_DB_NAME).exists():
        storage = SQLiteStorage(data_dir / DEFAULT_DB_NAME, read_only=True)
        try:
            values = storage.list_records("balance_snapshot")
            last = result.trading_days[-1].trading_date.isoformat() if result.trading_days else ""
            performance = storage.get_record("performance", last)
        finally:
            storage.close()
    print("\ndays:")
    for day in result.days:
        when = f"  {day.trading_date} {day.trading_date:%a}"
        if day.session is None:
            print(f"{when}  closed ({day.closed_reason})")
            continue
        snapshot = values.get(day.trading_date.isoformat())
        worth = snapshot.get("net_assets") if isinstance(snapshot, dict) else None
        money = f", net assets {worth:,} KRW" if isinstance(worth, int) else ""
        print(f"{when}  {_verdict(day)}{money}{_not_done(day)}")
    verdict = "COMPLETE" if result.complete else "INCOMPLETE"
    print(
        f"range {verdict}: {len(result.trading_days)} trading day(s), {result.restarts} crash(es) "
        f"recovered, {result.orders} paper order(s), {result.wall_seconds:.1f}s wall"
    )
    if isinstance(performance, dict) and performance.get("start_value"):
        sharpe = performance.get("sharpe_ratio")
        print(
            f"account: {performance['start_value']:,.0f} → {performance['end_value']:,.0f} KRW "
            f"over {performance['observations']} close(s); cumulative "
            f"{performance['cumulative_return']:+.2%}, max drawdown "
            f"{performance['max_drawdown']:.2%}, Sharpe "
            + ("n/a" if sharpe is None else f"{sharpe:.2f}")
        )
    print(f"journal, batch files and reports: {data_dir}")
    print(
        f"picture: python -m hantu_sched report --data-dir {data_dir} "
        f"--from {result.first} --to {result.last}"
    )
    return 0 if result.complete else 1


# --- report -------------------------------------------------------------------------------------


def _cmd_report(args: argparse.Namespace) -> int:
    from ._report import ReportError, latest_day, write_report  # noqa: PLC0415

    settings = _settings(args)
    if (args.first is None) != (args.last is None):
        raise ReportError("--from and --to go together (the first and last day of a range)")
    if args.first is not None and args.date is not None:
        raise ReportError("--date is one day; --from/--to a range: give one or the other")
    since = args.first
    first: dt.date = args.first or args.date or latest_day(settings.data_dir, _now(args).date())
    last: dt.date = args.last or first
    path, data, size = write_report(
        settings.data_dir,
        first,
        last,
        output=pathlib.Path(args.output) if args.output else None,
        calendar=settings.calendar(),
        since=since,
        now=_now(args),
    )
    attempts = sum(len(d.attempts) for d in data.days)
    orders = sum(len(d.orders) for d in data.days)
    span = str(first) if first == last else f"{first} to {last}"
    print(
        f"report for {span}: {attempts} attempt(s), {orders} order(s), "
        f"{data.account.metrics.observations} close(s) on the equity curve; {size / 1024:.0f} KB"
    )
    print(path)
    if args.open:
        uri = path.resolve().as_uri()
        print(uri)
        if _browser_available():
            import webbrowser  # noqa: PLC0415

            webbrowser.open(uri)
    return 0


def _browser_available() -> bool:
    """A browser can be opened: $BROWSER is set, or a graphical session is (never a console
    browser taking over the terminal)."""
    return any(os.environ.get(name) for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"))


# --- entry point ----------------------------------------------------------------------------------


#: Command modules whose own error class is a one-line error: (module, class name). They are
#: looked up only if the command imported them (one that was never imported raised nothing), so
#: a quick command such as ``status`` does not pay for importing ``simulate`` or ``report``.
_LAZY_ERRORS = (
    ("hantu_sched._simulate", "SimulationError"),
    ("hantu_sched._report", "ReportError"),
)


def _one_line_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ``main`` prints as one line with exit 2 (evaluated when one is raised)."""
    lazy = [getattr(sys.modules.get(module), name, None) for module, name in _LAZY_ERRORS]
    return (
        SettingsError,
        SchedulerAlreadyRunningError,
        CalendarNotCoveredError,
        ConfigurationError,
        StorageError,
        *(error for error in lazy if isinstance(error, type) and issubclass(error, Exception)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status: int = args.func(args)
    except _one_line_errors() as exc:
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
