"""Issue 9, "never twice, never down": the randomized soak.

Level 1 (:mod:`_soak_harness`): one simulated trading day per seed, in process, with
random crashes (some with an order in flight), gateway latency up to 3× the client timeout, the
fake's clock off by up to ±5 minutes, lock-file deletion and a nested second scheduler instance.
Level 2 (:mod:`_soak_processes`): real scheduler processes (``run_daemon``) on an
accelerated clock against a loopback fake server, SIGKILLed at random moments (one of them with
an order in flight), restarted, with the lock file deleted and a second process started on the
same data directory.

Both levels assert: no duplicate order at the fake, no unit run twice, every unit done or
explained, and the day's orders went out (the rules are in :mod:`_soak_harness`'s docstring).

Profiles: the default run takes ``CHAOS_SEEDS`` = 5 in-process seeds and ``CHAOS_PROCESS_SEEDS``
= 1 real-process seed; ``nox -s chaos`` sets 200 and 10. ``CHAOS_SEED=N`` runs seed N alone at
both levels (the failure message starts with it).
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

sys.path.append(str(pathlib.Path(__file__).parent))
from _soak_harness import run_seed
from _soak_processes import run_process_seed


def _seeds(count_var: str, default: int) -> list[int]:
    one = os.environ.get("CHAOS_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get(count_var, str(default)))))


@pytest.mark.parametrize("seed", _seeds("CHAOS_SEEDS", 5))
def test_in_process_day_never_twice(seed: int, tmp_path: pathlib.Path) -> None:
    report = run_seed(seed, tmp_path)
    assert report.ok, report.summary()


@pytest.mark.multiprocess
@pytest.mark.loopback
@pytest.mark.parametrize("seed", _seeds("CHAOS_PROCESS_SEEDS", 1))
def test_real_processes_never_twice(seed: int, tmp_path: pathlib.Path) -> None:
    report = run_process_seed(seed, tmp_path)
    assert report.ok, report.summary()
