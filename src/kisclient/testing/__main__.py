"""``python -m kisclient.testing serve --port 0 [--seed N] [--host 127.0.0.1] [--universe N]
[--real-limit N] [--paper-limit N] [--ws-port N] [--paper-ws-port N]``.

Prints the real base URL (first line), the paper base URL, then ``KEY=value`` lines with the
credentials of one real and one paper app (fake values), then ``KIS_WS_URL=ws://...``,
``KIS_PAPER_WS_URL=ws://...`` (a :class:`FakeWSServer` per environment, default options) and the
apps' HTS IDs (``KIS_HTS_ID``, ``KIS_PAPER_HTS_ID``: the execution notices' ``tr_key``),
flushes, and serves until SIGINT or SIGTERM; then prints one ``STATS {json}`` line (requests, per
environment the token issuances, EGW00201 answers and the busiest one-second window, and under
``ws`` each WebSocket server's counters). Only loopback hosts are accepted. A limit of 0 turns the
server's rate window off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import attrs

from ._fake import FakeKIS
from ._server import FakeKISServer, is_loopback
from ._state import FakeApp
from ._ws import FakeWSServer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kisclient.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake KIS server on a loopback port")
    serve.add_argument("--port", type=int, default=0)
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
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if not is_loopback(args.host):
        print(f"refusing to bind {args.host!r}: loopback addresses only", file=sys.stderr)
        return 2
    limits = {"real": args.real_limit, "paper": args.paper_limit}
    fake = FakeKIS(
        seed=args.seed,
        universe_size=args.universe,
        rate_limits={env: limit for env, limit in limits.items() if limit is not None},
    )
    real, paper = fake.add_app("real"), fake.add_app("paper")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeKISServer(fake, port=args.port, host=args.host))
        sockets = [
            stack.enter_context(FakeWSServer(fake, env="real", host=args.host, port=args.ws_port)),
            stack.enter_context(
                FakeWSServer(fake, env="paper", host=args.host, port=args.paper_ws_port)
            ),
        ]
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
    print(_stats_line(fake, [real, paper], sockets), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
