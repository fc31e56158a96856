"""Two scheduler processes share a deployment in a real PostgreSQL; the leader is SIGKILLed at
random moments (mid-batch, mid-trading with an order in flight) and the standby finishes the day:
0 units run twice, 0 missed, 0 duplicate orders at the fake, trading never on a partial
selection (tests/pg_failover.py). And a leader process cut off from the database stops leading
before the standby process leads.

``PG_FAILOVER_SEEDS`` seeds run (default 3); ``PG_FAILOVER_SEED=N`` reruns seed N alone;
``nox -s failover`` runs 50.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from pg_failover import run_failover_seed
from pg_support import PgServer


def _seeds() -> list[int]:
    one = os.environ.get("PG_FAILOVER_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get("PG_FAILOVER_SEEDS", "3"))))


@pytest.mark.parametrize("seed", _seeds())
def test_the_standby_finishes_the_day_after_the_leader_is_killed(
    seed: int, pg_server: PgServer, tmp_path: pathlib.Path
) -> None:
    report, parent = run_failover_seed(seed, tmp_path, pg_server.url(pg_server.fresh_database()))
    print(report.summary())
    assert report.ok, report.summary()
    assert parent.killed >= 1, report.summary()  # a leader really died and another took over


#: One scheduler host (quick test jobs, the system clock, standby) printing when it leads and
#: when it stops leading, with the wall time.
_HOST = """
import logging, sys, time
from hantu_sched import IntegratedScheduler, SchedulerConfig, SystemClock
from hantu_sched._pg_storage import PostgresStorage
from hantu_sched.testing import make_test_jobs

class Mark(logging.Handler):
    def emit(self, record):
        text = record.getMessage()
        if text.startswith("scheduler started"):
            print("LEADING", time.time(), flush=True)
        if "no longer the leader" in text:
            print("DEMOTED", time.time(), flush=True)

log = logging.getLogger("host"); log.setLevel(logging.INFO); log.addHandler(Mark())
clock = SystemClock(max_step=0.05)
storage = PostgresStorage(sys.argv[1], deployment="p", clock=clock, lease_s=float(sys.argv[3]))
IntegratedScheduler(SchedulerConfig(), storage, clock, make_test_jobs(), data_dir=sys.argv[2],
                    logger=log, standby=True).run()
"""


def _host(url: str, data_dir: pathlib.Path, lease: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", _HOST, url, str(data_dir), str(lease)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _next_mark(proc: subprocess.Popen[str], mark: str) -> float:
    """The wall time of *proc*'s next *mark* line (its other output is skipped)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(mark):
            return float(line.split()[1])
    raise AssertionError(f"{mark} never came; exit code {proc.wait()}")


def test_a_partitioned_leader_process_stops_leading_before_the_standby_leads(
    pg_server: PgServer, tmp_path: pathlib.Path
) -> None:
    database = pg_server.fresh_database()
    role = f"host_p{os.getpid()}"
    pg_server.create_role(role)
    lease = 3.0
    leader = _host(pg_server.url(database, user=role), tmp_path / "a", lease)
    standby: subprocess.Popen[str] | None = None
    try:
        _next_mark(leader, "LEADING")
        standby = _host(pg_server.url(database), tmp_path / "b", lease)
        assert pg_server.partition(role) >= 1  # the leader loses the database (not KIS)
        demoted = _next_mark(leader, "DEMOTED")
        leads = _next_mark(standby, "LEADING")
        assert demoted < leads  # demoted before the standby could lead
        assert leader.wait() != 0  # run() ended with DeposedError
    finally:
        pg_server.heal(role)
        for proc in (leader, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            if proc is not None:
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
