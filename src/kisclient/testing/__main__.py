"""``python -m kisclient.testing serve``: the fake KIS on loopback ports, for testing bots.

Options (all optional)::

    --port N / --paper-port N        real / paper HTTP ports (0: a free one; the default)
    --ws-port N / --paper-ws-port N  real / paper WebSocket ports (0: a free one)
    --host 127.0.0.1                 loopback addresses only
    --seed N --universe N            credentials, listings and prices (default 0 and 300 codes)
    --real-limit N --paper-limit N   requests/s per app key (0: no rate window)
    --now ISO | --clock SPEC         the fake's time: ``--now 2026-11-26T10:00`` (naive: KST)
                                     starts there and advances with real time; ``--clock`` takes
                                     the same ISO form, an offset from the system clock
                                     (``+3h``, ``-90m``, ``+2d``, ``+30s``) or ``system``
    --market open|closed|auto        force the market open or closed (``auto``: weekdays
                                     09:00-15:30 KST on the fake's clock), e.g. paper orders at
                                     night with ``--market open``
    --static-prices                  each day's close all day (default: prices move intraday)
    --cash N                         each printed app's cash (KRW)
    --hold CODE=QTY                  a position in each printed app (repeatable)
    --seed-file x.toml               ``cash = N`` and a ``[holdings]`` table (``"005930" = 10``);
                                     ``[real]`` / ``[paper]`` tables with the same keys apply to
                                     one environment; the command line wins
    --print-env [--env real|paper]   see below

Default output (stdout, unchanged for scripts that parse it): the real base URL (first line),
the paper base URL (its own port; ``<real URL>/paper`` is an alias for paper), then
``KEY=value`` lines: ``KIS_ENV=real``, ``KIS_BASE_URL``, ``KIS_APP_KEY``, ``KIS_APP_SECRET``,
``KIS_ACCOUNT``, ``KIS_PAPER_BASE_URL``, ``KIS_PAPER_APP_KEY``, ``KIS_PAPER_APP_SECRET``,
``KIS_PAPER_ACCOUNT``, ``KIS_WS_URL``, ``KIS_PAPER_WS_URL``, ``KIS_HTS_ID``,
``KIS_PAPER_HTS_ID`` (fake credentials of one real and one paper app); flushes, and serves until
SIGINT or SIGTERM; then prints one ``STATS {json}`` line (requests, per environment the token
issuances, EGW00201 answers and the busiest one-second window, and under ``ws`` each WebSocket
server's counters).

``--print-env`` prints instead exactly the variables :meth:`KISClient.from_env` reads for ONE
environment (``--env``, default ``real``): ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ENV``,
``KIS_ACCOUNT``, ``KIS_BASE_URL``, ``KIS_WS_URL``, ``KIS_HTS_ID``, each as ``export NAME=value``
(values shell-quoted), nothing else on stdout. So that
``eval "$(python -m kisclient.testing serve --print-env --env paper)"`` returns, the server then
runs in the background (a detached process in its own session; its pid goes to stderr as one
line, and to ``--pid-file`` if given; stop it with ``kill PID``; its one-line notices and the
``STATS`` line go to ``--log-file``, or nowhere). With ``--foreground`` it stays attached instead:
prints the variables, closes stdout and serves until SIGINT/SIGTERM with everything else on
stderr (for ``serve --print-env --foreground > fake.env &``).

A client that goes away mid-answer (its timeout, a dropped connection) and any error while
answering are one line on stderr each, never a traceback. Only loopback hosts are accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import attrs

from kisclient._clock import Clock, SystemClock
from kisclient._config import KST

from ._fake import FakeKIS
from ._offset_clock import OffsetClock
from ._server import FakeKISServer, is_loopback
from ._state import FakeApp
from ._ws import FakeWSServer

__all__ = ["main", "parse_clock"]

_OFFSET = re.compile(r"([+-])(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_clock(spec: str, base: Clock | None = None) -> Clock:
    """The clock *spec* names, on *base* (default the system clock): ``system``; an ISO time
    (naive: KST), where the clock starts and from which it advances with *base*; or an offset
    from *base* such as ``+3h``, ``-90m``, ``+2d``, ``+30s`` (plain numbers are seconds).
    :class:`ValueError` for anything else."""
    base = base if base is not None else SystemClock()
    text = spec.strip()
    if text.lower() in ("system", "auto", ""):
        return base
    match = _OFFSET.fullmatch(text)
    if match is not None:
        sign, number, unit = match.groups()
        offset = float(number) * _UNIT_S[unit]
        return OffsetClock(base, -offset if sign == "-" else offset)
    return OffsetClock.starting_at(_parse_moment(text), base)


def _parse_moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO time or an offset like +3h: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=KST)


def _holding(text: str) -> tuple[str, int]:
    code, sep, qty = text.partition("=")
    try:
        amount = int(qty)
    except ValueError:
        amount = -1
    if not sep or not code.strip() or amount <= 0:
        raise argparse.ArgumentTypeError(f"expected CODE=QTY with QTY > 0, not {text!r}")
    return code.strip(), amount


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kisclient.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake KIS server on loopback ports")
    serve.add_argument("--port", type=int, default=0, help="real HTTP port (0: a free one)")
    serve.add_argument("--paper-port", type=int, default=0, help="paper HTTP port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--universe", type=int, default=300, help="number of listed codes")
    serve.add_argument(
        "--real-limit", type=int, default=None, help="requests/s per real app key (0: none)"
    )
    serve.add_argument(
        "--paper-limit", type=int, default=None, help="requests/s per paper app key (0: none)"
    )
    serve.add_argument("--ws-port", type=int, default=0, help="real WebSocket port")
    serve.add_argument("--paper-ws-port", type=int, default=0, help="paper WebSocket port")
    when = serve.add_mutually_exclusive_group()
    when.add_argument("--now", metavar="ISO", help="start the fake's clock at ISO (naive: KST)")
    when.add_argument(
        "--clock", metavar="SPEC", help="system, an ISO start time, or an offset like +3h"
    )
    serve.add_argument("--market", choices=("open", "closed", "auto"), default="auto")
    serve.add_argument(
        "--static-prices", action="store_true", help="each day's close all day (no intraday path)"
    )
    serve.add_argument("--cash", type=int, default=None, help="each app's cash (KRW)")
    serve.add_argument(
        "--hold",
        type=_holding,
        action="append",
        default=[],
        metavar="CODE=QTY",
        help="a position in each app (repeatable)",
    )
    serve.add_argument("--seed-file", type=Path, default=None, help="TOML: cash, [holdings]")
    serve.add_argument(
        "--print-env",
        action="store_true",
        help="print `export` lines for one environment (eval-able) and serve in the background",
    )
    serve.add_argument("--env", choices=("real", "paper"), default=None)
    serve.add_argument(
        "--foreground", action="store_true", help="with --print-env: keep serving attached"
    )
    serve.add_argument("--pid-file", type=Path, default=None)
    serve.add_argument("--log-file", type=Path, default=None)
    return parser


def _seeding(args: argparse.Namespace) -> dict[str, tuple[int | None, dict[str, int]]]:
    """Per environment: (cash or None, holdings), from the seed file then the command line."""
    data: dict[str, Any] = {}
    if args.seed_file is not None:
        with args.seed_file.open("rb") as fh:
            data = tomllib.load(fh)
    result: dict[str, tuple[int | None, dict[str, int]]] = {}
    for env in ("real", "paper"):
        table = data.get(env, {})
        if not isinstance(table, dict):
            raise ValueError(f"[{env}] must be a table")
        cash = table.get("cash", data.get("cash"))
        holdings: dict[str, int] = {}
        for source in (data.get("holdings", {}), table.get("holdings", {})):
            if not isinstance(source, dict):
                raise ValueError("holdings must be a table of CODE = QTY")
            for code, qty in source.items():
                if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                    raise ValueError(f"holding {code!r}: quantity must be a positive integer")
                holdings[str(code)] = qty
        for code, qty in args.hold:
            holdings[code] = qty
        if args.cash is not None:
            cash = args.cash
        if cash is not None and (not isinstance(cash, int) or isinstance(cash, bool) or cash < 0):
            raise ValueError("cash must be a non-negative integer")
        result[env] = (cash, holdings)
    return result


def _stats_line(
    fake: FakeKIS, apps: Sequence[FakeApp], sockets: Sequence[FakeWSServer] = ()
) -> str:
    """One ``STATS {json}`` line: what the server saw, per app (for benchmarks and scripts)."""
    stats = fake.stats
    per_app = {
        app.env: {
            "token_issuances": stats.token_issuances(app.app_key),
            "rate_limited": stats.rate_limited(app.app_key),
            "max_in_any_second": stats.max_in_any_second(app.app_key),
        }
        for app in apps
    }
    ws = {
        server.env: {
            name: value
            for name, value in attrs.asdict(server.stats).items()
            if name != "slot_busy_by_app_key"
        }
        for server in sockets
    }
    summary = {"requests": stats.requests(), "apps": per_app, "ws": ws}
    return "STATS " + json.dumps(summary, sort_keys=True)


def _env_lines(app: FakeApp, base_url: str, ws_url: str) -> list[str]:
    """``export NAME=value`` for what ``KISClient.from_env()`` reads, for *app*'s environment."""
    values = {
        "KIS_APP_KEY": app.app_key,
        "KIS_APP_SECRET": app.app_secret,
        "KIS_ENV": app.env,
        "KIS_ACCOUNT": app.account,
        "KIS_BASE_URL": base_url,
        "KIS_WS_URL": ws_url,
        "KIS_HTS_ID": app.hts_id,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def _detach(argv: Sequence[str], args: argparse.Namespace) -> int:
    """Run this command again with ``--foreground`` in a new session, its stdout a pipe read
    to the end (the child closes it once it has printed the variables), and print that."""
    log: TextIO | int = subprocess.DEVNULL
    if args.log_file is not None:
        log = args.log_file.open("a", encoding="utf-8")
    command = [sys.executable, "-m", "kisclient.testing", *argv, "--foreground"]
    try:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
    finally:
        if not isinstance(log, int):
            log.close()
    assert proc.stdout is not None
    printed = proc.stdout.read()
    proc.stdout.close()
    if not printed:
        status = proc.wait()
        print(f"fake-kis: the server did not start (exit status {status})", file=sys.stderr)
        return status or 1
    sys.stdout.write(printed)
    sys.stdout.flush()
    print(f"fake-kis: serving in the background, pid {proc.pid} (stop: kill {proc.pid})",
          file=sys.stderr, flush=True)  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(raw)
    if not is_loopback(args.host):
        print(f"refusing to bind {args.host!r}: loopback addresses only", file=sys.stderr)
        return 2
    if args.env is not None and not args.print_env:
        parser.error("--env needs --print-env")
    if args.foreground and not args.print_env:
        parser.error("--foreground needs --print-env")
    try:
        clock_spec = args.now if args.now is not None else args.clock
        clock = parse_clock(clock_spec) if clock_spec is not None else None
        seeding = _seeding(args)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"fake-kis: {exc}", file=sys.stderr)
        return 2
    if args.print_env and not args.foreground:
        return _detach(raw, args)
    return _serve(args, clock, seeding)


def _serve(
    args: argparse.Namespace,
    clock: Clock | None,
    seeding: dict[str, tuple[int | None, dict[str, int]]],
) -> int:
    limits = {"real": args.real_limit, "paper": args.paper_limit}
    fake = FakeKIS(
        clock=clock,
        seed=args.seed,
        universe_size=args.universe,
        rate_limits={env: limit for env, limit in limits.items() if limit is not None},
        moving_prices=not args.static_prices,
    )
    fake.set_market_open({"open": True, "closed": False, "auto": None}[args.market])
    apps: dict[str, FakeApp] = {}
    for env in ("real", "paper"):
        cash, holdings = seeding[env]
        apps[env] = app = fake.add_app(env, cash=cash)
        try:
            fake.seed_holdings(app.app_key, holdings)
        except KeyError as exc:
            print(f"fake-kis: --hold: {exc.args[0]!r} is not listed", file=sys.stderr)
            return 2
    real, paper = apps["real"], apps["paper"]
    # With --print-env, stdout carries the variables only; everything else goes to stderr.
    out = sys.stderr if args.print_env else sys.stdout
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    log_lock = threading.Lock()

    def _log(line: str) -> None:
        with log_lock:  # one write per line: serving threads never interleave
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            FakeKISServer(
                fake, port=args.port, host=args.host, paper_port=args.paper_port, log=_log
            )
        )
        sockets = [
            stack.enter_context(FakeWSServer(fake, env="real", host=args.host, port=args.ws_port)),
            stack.enter_context(
                FakeWSServer(fake, env="paper", host=args.host, port=args.paper_ws_port)
            ),
        ]
        if args.print_env:
            chosen = apps[args.env or "real"]
            socket = sockets[0] if chosen is real else sockets[1]
            lines = _env_lines(chosen, server.base_url(chosen.env), socket.url)
            print("\n".join(lines), flush=True)
            _close_stdout()
            if args.pid_file is not None:
                args.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
        else:
            lines = [
                server.base_url("real"),
                server.base_url("paper"),
                "KIS_ENV=real",
                f"KIS_BASE_URL={server.base_url('real')}",
                f"KIS_APP_KEY={real.app_key}",
                f"KIS_APP_SECRET={real.app_secret}",
                f"KIS_ACCOUNT={real.account}",
                f"KIS_PAPER_BASE_URL={server.base_url('paper')}",
                f"KIS_PAPER_APP_KEY={paper.app_key}",
                f"KIS_PAPER_APP_SECRET={paper.app_secret}",
                f"KIS_PAPER_ACCOUNT={paper.account}",
                f"KIS_WS_URL={sockets[0].url}",
                f"KIS_PAPER_WS_URL={sockets[1].url}",
                f"KIS_HTS_ID={real.hts_id}",
                f"KIS_PAPER_HTS_ID={paper.hts_id}",
            ]
            print("\n".join(lines), flush=True)
        while not stop.wait(0.2):
            pass
    print(_stats_line(fake, [real, paper], sockets), file=out, flush=True)
    if args.pid_file is not None:
        with contextlib.suppress(OSError):
            args.pid_file.unlink()
    return 0


def _close_stdout() -> None:
    """Point fd 1 at /dev/null, so whoever reads our stdout (``$(...)``) sees its end."""
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
