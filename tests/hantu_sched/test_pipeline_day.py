"""A whole trading day: the default pipeline under the IntegratedScheduler, against the fake KIS."""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
import sys

import pytest

from hantu_sched import IntegratedScheduler, JobState, SchedulerConfig
from hantu_sched.pipeline import (
    RECORD_BALANCE_SNAPSHOT,
    RECORD_FINAL_SELECTION,
    RECORD_PERFORMANCE,
    RECORD_TRADING_RECONCILE,
    PipelineConfig,
    default_jobs,
    report_path,
)
from hantu_sched.testing import CrashingClock, SimulatedCrash

sys.path.append(str(pathlib.Path(__file__).parent))
from test_pipeline_support import DAY, Harness, at, make_harness

END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), at("00:00").tzinfo)
CONFIG = PipelineConfig(trading_mode="paper", top_n=3, min_avg_volume=0)


def scheduler(harness: Harness, config: PipelineConfig = CONFIG) -> IntegratedScheduler:
    return IntegratedScheduler(
        SchedulerConfig(batch_ids=harness.batch_ids),
        harness.storage,
        harness.clock,
        default_jobs(config),
        data_dir=harness.data_dir,
        services=harness.services(),
    )


def assert_day_complete(harness: Harness) -> None:
    states = {(r.key.job, r.key.batch): r.state for r in harness.storage.list_jobs(DAY)}
    assert states, "the journal is empty"
    assert all(state is JobState.DONE for state in states.values()), states
    assert {job for job, _ in states} == {
        "screening", "selection", "trading", "market_close", "performance"
    }  # fmt: skip
    assert harness.record(RECORD_BALANCE_SNAPSHOT) is not None
    assert harness.record(RECORD_PERFORMANCE) is not None
    assert report_path(harness.data_dir, DAY.isoformat()).is_file()


def test_a_paper_day_end_to_end(tmp_path: pathlib.Path) -> None:
    harness = make_harness(tmp_path, start=at("05:00"), universe_size=60)
    harness.batch_ids = ("1", "2")
    try:
        scheduler(harness).run(until=END)
        assert_day_complete(harness)
        final = harness.record(RECORD_FINAL_SELECTION)["items"]
        assert len(final) in (1, 2, 3)
        assert harness.order_codes() == [item["code"] for item in final]
        assert all(o.time >= at("09:00") for o in harness.fake.orders(harness.app.app_key))
    finally:
        harness.close()


def test_a_crash_during_trading_is_reconciled_without_duplicate_orders(
    tmp_path: pathlib.Path,
) -> None:
    clock = CrashingClock(at("05:00"), crash_at=at("11:00"))
    harness = make_harness(tmp_path, clock=clock, universe_size=60)
    harness.batch_ids = ("1", "2")
    try:
        with pytest.raises(SimulatedCrash):
            scheduler(harness).run(until=END)
        placed = harness.order_codes()
        assert placed
        # Restart on the same storage, account and clock (the fake server keeps running).
        scheduler(harness).run(until=END)
        assert_day_complete(harness)
        assert harness.order_codes() == placed
        assert set(collections.Counter(harness.order_codes()).values()) == {1}
        found = harness.record(RECORD_TRADING_RECONCILE)
        assert sorted(found["ordered_codes"]) == sorted(placed)
    finally:
        harness.close()
