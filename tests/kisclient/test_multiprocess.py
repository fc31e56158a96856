"""Real processes sharing one state_dir and one loopback fake server."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kisclient import SystemClock
from kisclient._config import ENDPOINTS
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer

pytestmark = [pytest.mark.multiprocess, pytest.mark.loopback]

WORKER = pathlib.Path(__file__).with_name("client_worker.py")
SRC = pathlib.Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def served() -> Iterator[tuple[FakeKIS, FakeApp, str]]:
    fake = FakeKIS(seed=11, clock=SystemClock())
    app = fake.add_app(env="real")
    with FakeKISServer(fake) as server:
        yield fake, app, server.base_url("real")


def run_workers(
    app: FakeApp,
    base_url: str,
    state_dir: pathlib.Path,
    jobs: list[list[str]],
    extra_env: dict[str, str] | None = None,
) -> list[dict[str, object]]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "KIS_APP_KEY": app.app_key,
        "KIS_APP_SECRET": app.app_secret,
        "KIS_BASE_URL": base_url,
        "KIS_STATE_DIR": str(state_dir),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *codes],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for codes in jobs
    ]
    for proc in procs:  # release them together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_eight_processes_starting_together_issue_one_token(
    served: tuple[FakeKIS, FakeApp, str], tmp_path: pathlib.Path
) -> None:
    fake, app, base_url = served
    results = run_workers(app, base_url, tmp_path, [["005930"]] * 8)
    assert sum(int(r["issuances"]) for r in results) == 1  # type: ignore[call-overload]
    assert fake.stats.token_issuances(app.app_key) == 1
    assert all(r["prices"] == {"005930": fake.price_of("005930")} for r in results)
    # a restart reuses the stored token: zero issuances
    again = run_workers(app, base_url, tmp_path, [["000660"]] * 2)
    assert [r["issuances"] for r in again] == [0, 0]
    assert fake.stats.token_issuances(app.app_key) == 1


def test_three_processes_sharing_a_key_stay_inside_the_window(
    served: tuple[FakeKIS, FakeApp, str], tmp_path: pathlib.Path
) -> None:
    fake, app, base_url = served
    codes = fake.universe[:15]
    # Each process allows 15/s against the server's 18/s: a shared budget keeps the server's count
    # under 18 with room for a busy machine's arrival jitter; separate budgets would send ~45/s.
    run_workers(app, base_url, tmp_path, [codes, codes, codes], {"KIS_TEST_RATE": "15"})
    assert fake.stats.requests(path=ENDPOINTS["inquire_price"].path) == 45
    assert fake.stats.rate_limited(app.app_key) == 0
    assert fake.stats.max_in_any_second(app.app_key) <= 18
