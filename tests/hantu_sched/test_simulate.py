"""End-to-end: a simulated trading day with the default pipeline on the fake KIS server, the
scheduler killed at boundary minutes and rebuilt on the same journal."""

from __future__ import annotations

import collections
import datetime as dt
import os
import pathlib
import subprocess
import sys

import httpx
import pytest

from hantu_sched import JOB_ORDER, JobContext, JobRegistry, JobState, SQLiteStorage
from hantu_sched._simulate import (
    MARKER,
    SimClock,
    SimHooks,
    SimulationError,
    SimulationResult,
    prepare_data_dir,
    simulate_day,
)
from hantu_sched.pipeline import PipelineConfig, default_jobs
from kisclient.testing import FakeKIS

ROOT = pathlib.Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 6, 4)  # a Thursday, regular 09:00-15:30 session
UNITS = {
    "screening",
    "selection[1]",
    "selection[2]",
    "selection[3]",
    "selection[4]",
    "trading",
    "market_close",
    "performance",
}


def _probe_jobs(seen: list[bool]) -> JobRegistry:
    """The default pipeline (paper) whose trading records whether the selection was complete."""
    registry = default_jobs(PipelineConfig(trading_mode="paper"))
    inner = registry["trading"]

    def trading(ctx: JobContext) -> None:
        seen.append(ctx.selection_complete())
        inner.run(ctx)

    registry.register("trading", trading, reconcile=inner.reconcile)
    return registry


def _simulate(
    tmp_path: pathlib.Path, restarts: list[dt.time], universe: int = 120
) -> tuple[SimulationResult, list[bool]]:
    seen: list[bool] = []
    result = simulate_day(
        DAY,
        tmp_path / "sim",
        restart_at=restarts,
        universe_size=universe,
        make_jobs=lambda: _probe_jobs(seen),
    )
    return result, seen


def _assert_day_complete(result: SimulationResult, trading_starts: list[bool]) -> None:
    assert result.complete, [r.to_dict() for r in result.incomplete] + result.unplanned
    labels = {e.label for e in result.of("done")}
    assert labels == UNITS
    # No unit finished twice, and nothing done was started again.
    done = collections.Counter(e.label for e in result.of("done"))
    assert max(done.values()) == 1, done
    for label in UNITS:
        finished = [e.at for e in result.of("done") if e.label == label]
        later = [e for e in result.of("start") if e.label == label and e.at > finished[0]]
        assert not later, later
    # Trading never started (or resumed) on an incomplete selection.
    assert trading_starts
    assert all(trading_starts)
    last_batch = max(e.at for e in result.of("done") if e.label.startswith("selection"))
    assert all(e.at >= last_batch for e in result.of("start") if e.label == "trading")
    # After-close jobs ran exactly once.
    for job in ("market_close", "performance"):
        assert len([e for e in result.of("start") if e.label == job]) == 1
    assert result.orders > 0


@pytest.mark.parametrize(
    "restarts",
    [
        [],
        [dt.time(6, 0)],
        [dt.time(6, 1, 30)],  # mid-screening
        [dt.time(7, 30)],  # the last batch's start
        [dt.time(7, 10, 20)],  # mid-batch
        [dt.time(9, 0)],  # the open
        [dt.time(11, 0)],  # mid-trading
        [dt.time(16, 0)],  # market_close's start
        [dt.time(17, 0)],  # performance's start
        [
            dt.time(6, 0),
            dt.time(7, 30),
            dt.time(9, 0),
            dt.time(11, 0),
            dt.time(16, 0),
            dt.time(17, 0),
        ],
    ],
    ids=lambda ts: "+".join(t.strftime("%H%M%S") for t in ts) or "no-restart",
)
def test_day_ends_complete_across_restarts(tmp_path: pathlib.Path, restarts: list[dt.time]) -> None:
    result, trading_starts = _simulate(tmp_path, restarts)
    _assert_day_complete(result, trading_starts)
    assert result.restarts == len(restarts)
    # Each restart printed its recovery plan with a reason for every unit.
    plans = result.of("plan")
    assert len(plans) == len(UNITS) * (len(restarts) + 1)
    assert all(e.text.strip() for e in plans)


def test_mid_trading_crash_reconciles_before_resuming(tmp_path: pathlib.Path) -> None:
    result, _ = _simulate(tmp_path, [dt.time(11, 0)])
    kinds = [(e.kind, e.label) for e in result.events if e.label == "trading"]
    killed = kinds.index(("killed", "trading"))
    reconcile = kinds.index(("reconcile", "trading"))
    assert killed < reconcile
    resumed = [e for e in result.of("start") if e.label == "trading" and e.at.hour == 11]
    assert resumed and resumed[0].text.startswith("resume")
    plan = [e.text for e in result.of("plan") if e.label == "trading" and e.at.hour == 11]
    assert "reconcile" in plan[0] and "never finished" in plan[0]
    record = next(r for r in result.records if r.key.job == "trading")
    assert record.state is JobState.DONE and record.attempts == 2
    # Orders were not placed twice: one per selected code.
    assert result.orders == 10


def test_mid_screening_crash_reruns_screening(tmp_path: pathlib.Path) -> None:
    result, _ = _simulate(tmp_path, [dt.time(6, 1)])
    assert any(e.kind == "killed" and e.label == "screening" for e in result.events)
    screening = next(r for r in result.records if r.key.job == "screening")
    assert screening.attempts == 2 and screening.state is JobState.DONE


def test_closed_day_runs_nothing(tmp_path: pathlib.Path) -> None:
    result = simulate_day(dt.date(2026, 6, 3), tmp_path / "sim")  # 지방선거일
    assert result.session is None and result.complete
    assert "지방선거일" in (result.closed_reason or "")
    assert not (tmp_path / "sim").exists()


def test_restart_outside_the_day_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SimulationError, match="outside the simulated day"):
        simulate_day(DAY, tmp_path / "sim", restart_at=[dt.time(5, 0)])


def test_data_dir_reuse_rules(tmp_path: pathlib.Path) -> None:
    foreign = tmp_path / "prod"
    foreign.mkdir()
    (foreign / "hantu_sched.sqlite3").write_text("not ours")
    with pytest.raises(SimulationError, match="not a simulation directory"):
        prepare_data_dir(foreign)
    sim = tmp_path / "sim"
    prepare_data_dir(sim)
    (sim / "leftover").write_text("x")
    prepare_data_dir(sim)  # a simulation directory is wiped and reused
    assert sorted(p.name for p in sim.iterdir()) == [MARKER]


def test_rerun_in_the_same_directory_starts_fresh(tmp_path: pathlib.Path) -> None:
    first, _ = _simulate(tmp_path, [], universe=60)
    second, _ = _simulate(tmp_path, [], universe=60)
    assert first.complete and second.complete
    storage = SQLiteStorage(tmp_path / "sim" / "hantu_sched.sqlite3")
    try:
        assert all(r.attempts == 1 for r in storage.list_jobs(DAY))
    finally:
        storage.close()


def test_failing_job_makes_the_day_incomplete(tmp_path: pathlib.Path) -> None:
    def make() -> JobRegistry:
        registry = default_jobs(PipelineConfig(trading_mode="paper"))

        def broken(ctx: JobContext) -> None:
            raise RuntimeError("report disk full")

        registry.register("performance", broken)
        return registry

    result = simulate_day(DAY, tmp_path / "sim", universe_size=60, make_jobs=make)
    assert not result.complete
    perf = next(r for r in result.incomplete if r.key.job == "performance")
    assert perf.state is JobState.FAILED and perf.attempts == 3
    assert "report disk full" in (perf.error or "")
    assert len([e for e in result.of("failed") if e.label == "performance"]) == 3


class _RecordingHooks(SimHooks):
    """Default behaviour, recording what simulate_day asked for."""

    def __init__(self) -> None:
        self.clocks: list[SimClock] = []
        self.fakes: list[FakeKIS] = []
        self.transports = 0
        self.instances: list[int] = []

    def make_clock(self, start: dt.datetime) -> SimClock:
        self.clocks.append(super().make_clock(start))
        return self.clocks[-1]

    def make_fake(self, clock: SimClock, seed: int, universe_size: int) -> FakeKIS:
        assert clock is self.clocks[0] and universe_size == 60
        self.fakes.append(super().make_fake(clock, seed, universe_size))
        return self.fakes[-1]

    def transport(self, fake: FakeKIS) -> httpx.BaseTransport:
        self.transports += 1
        return super().transport(fake)

    def before_instance(self, instance: int, data_dir: pathlib.Path) -> None:
        assert (data_dir / MARKER).exists()
        self.instances.append(instance)


def test_hooks_build_the_clock_fake_and_transports_and_see_every_instance(
    tmp_path: pathlib.Path,
) -> None:
    hooks = _RecordingHooks()
    result = simulate_day(
        DAY, tmp_path / "sim", restart_at=[dt.time(11, 0)], universe_size=60, hooks=hooks
    )
    assert result.complete and result.restarts == 1
    assert len(hooks.clocks) == 1 and len(hooks.fakes) == 1
    assert hooks.instances == [1, 2] and hooks.transports == 2
    fake = hooks.fakes[0]
    assert result.orders == len(fake.orders(fake.apps[0].app_key)) > 0


def test_subprocess_smoke(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    data_dir = tmp_path / "sim"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hantu_sched",
            "simulate",
            "--date",
            "2026-06-04",
            "--universe",
            "80",
            "--restart-at",
            "07:30",
            "--restart-at",
            "11:00",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "day COMPLETE: 8/8 units done, 2 crash(es) recovered" in out
    assert "KILLED (simulated crash" in out
    assert "plan reconcile" in out
    assert "quotes: 80/80 (100%)" in out  # progress of the long phase
    assert (data_dir / "reports" / "performance_2026-06-04.json").exists()
    assert sorted(p.name for p in (data_dir / "daily_selection").iterdir()) == [
        f"batch_{i}.json" for i in range(1, 5)
    ]
    assert proc.stderr == ""
    assert JOB_ORDER[0] in out
