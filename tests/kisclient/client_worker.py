"""A worker process for the multi-process tests: waits for "go" on stdin, then quotes.

Usage: python client_worker.py CODE [CODE ...]   (credentials and URLs come from the environment)
Prints one JSON line: {"issuances": int, "prices": {code: price}}.
"""

from __future__ import annotations

import json
import os
import sys

from kisclient import KISClient, Window, parse_env


def main() -> None:
    codes = sys.argv[1:]
    kis = KISClient(
        os.environ["KIS_APP_KEY"],
        os.environ["KIS_APP_SECRET"],
        env=parse_env(os.environ.get("KIS_ENV", "real")),
        base_url=os.environ["KIS_BASE_URL"],
        rate_limits=[Window(int(os.environ["KIS_TEST_RATE"]), 1.0)]
        if "KIS_TEST_RATE" in os.environ
        else None,
        state_dir=os.environ["KIS_STATE_DIR"],
    )
    sys.stdin.readline()  # the parent releases every worker at once
    with kis:
        prices = {code: kis.get_price(code).price for code in codes}
        print(json.dumps({"issuances": kis.token_issuances, "prices": prices}), flush=True)


if __name__ == "__main__":
    main()
