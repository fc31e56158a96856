"""Every example runs against the fake KIS server with no credentials, and says what it should."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# example file -> a pattern its output must contain
EXPECTED = {
    "quote.py": r"^005930: [\d,]+ KRW",
    "async_batch_quotes.py": r"120 quotes in 4 requests; failed: \['NOT-A-CODE'\]",
    "custom_job.py": r"custom screening kept \d+ of 12 codes(?s:.*)day complete: 8/8 units done",
    "live_trades_and_fills.py": (
        r"connected \(attempt 1\)\n(trade 005930 \d+ @ [\d,]+ at \d{6}\n){3}"
        r"order (\d{10}) accepted: buy 10 x 005930\norder \2 filled: buy 10 x 005930"
    ),
    "paper_order_reconcile.py": (
        r"found order \d{10}: buy 10 x 005930.*\n.*orders the server executed: 1"
    ),
}


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    assert re.search(EXPECTED[name], result.stdout, re.MULTILINE), result.stdout
