"""A worker process for the shared-state ("two hosts") tests.

Usage:
    python shared_state_worker.py quotes N1 N2 CODE [CODE ...]
        waits for a line on stdin, quotes N1 times (cycling through the codes); if N2 > 0,
        prints {"phase": 1}, waits for another line and quotes N2 times more; then prints
        {"issuances", "ok", "failed", "mode", "outages", "local_admissions"} as one JSON line.
    python shared_state_worker.py lease
        takes the app key's stream lease, prints {"pid": ...} and holds it until killed.

Credentials, URLs, KIS_STATE_DIR and KIS_SHARED_STATE come from the environment
(``KISClient.from_env``). Warnings go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from kisclient import KISClient, KISError


def quotes(n1: int, n2: int, codes: list[str]) -> None:
    kis = KISClient.from_env()
    ok = failed = 0

    def run(n: int, start: int) -> None:
        nonlocal ok, failed
        for i in range(start, start + n):
            try:
                kis.get_price(codes[i % len(codes)])
                ok += 1
            except KISError as exc:
                failed += 1
                print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    sys.stdin.readline()  # the parent releases every worker at once
    with kis:
        run(n1, 0)
        if n2 > 0:
            print(json.dumps({"phase": 1}), flush=True)
            sys.stdin.readline()
            run(n2, n1)
        status = kis.shared_state_status
        result = {
            "issuances": kis.token_issuances,
            "ok": ok,
            "failed": failed,
            "mode": status.mode,
            "outages": status.outages,
            "local_admissions": status.local_admissions,
        }
        print(json.dumps(result), flush=True)


def lease() -> None:
    kis = KISClient.from_env()
    held = kis._shared.stream_lease(kis._settings.env, kis._settings.app_key)
    held.acquire()
    print(json.dumps({"pid": os.getpid()}), flush=True)
    sys.stdin.readline()  # held until killed (or told to go)
    held.release()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if sys.argv[1] == "lease":
        lease()
    else:
        quotes(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])


if __name__ == "__main__":
    main()
