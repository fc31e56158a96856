"""``python -m kisclient.testing serve --port 0 [--seed N] [--host 127.0.0.1]``.

Prints the real base URL (first line), the paper base URL, then ``KEY=value`` lines with the
credentials of one real and one paper app (fake values), flushes, and serves until SIGINT or
SIGTERM. Only loopback hosts are accepted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._fake import FakeKIS
from ._server import FakeKISServer, is_loopback

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kisclient.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake KIS server on a loopback port")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if not is_loopback(args.host):
        print(f"refusing to bind {args.host!r}: loopback addresses only", file=sys.stderr)
        return 2
    fake = FakeKIS(seed=args.seed)
    real, paper = fake.add_app("real"), fake.add_app("paper")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with FakeKISServer(fake, port=args.port, host=args.host) as server:
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
        ]
        print("\n".join(lines), flush=True)
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
