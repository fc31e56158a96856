"""RecoveryManager.plan: each rule at its boundary minutes (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hantu_sched import (
    KST,
    Action,
    ActionKind,
    BatchHealth,
    IncompleteSelection,
    JobKey,
    JobRecord,
    JobState,
    KRXCalendar,
    RecoveryManager,
    RecoveryState,
    SchedulerConfig,
)

CAL = KRXCalendar()
NORMAL = dt.date(2026, 9, 28)  # Monday after 추석; previous trading day 2026-09-23
PREVIOUS = dt.date(2026, 9, 23)
FIRST_DAY = dt.date(2026, 1, 2)  # opens 10:00, closes 15:30
CSAT = dt.date(2026, 11, 19)  # 10:00-16:30
BATCHES = ("1", "2", "3", "4")
VALID = dict.fromkeys(BATCHES, BatchHealth.VALID)


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), KST)


def row(
    job: str,
    day: dt.date,
    state: JobState,
    attempts: int = 1,
    batch: str | None = None,
    finished: dt.datetime | None = None,
) -> JobRecord:
    return JobRecord(JobKey(job, day, batch), state, attempts, finished_at=finished)


def done_morning(day: dt.date) -> list[JobRecord]:
    return [row("screening", day, JobState.DONE)] + [
        row("selection", day, JobState.DONE, batch=b) for b in BATCHES
    ]


def plan(
    now: dt.datetime, state: RecoveryState, **config: object
) -> dict[tuple[str, str | None, dt.date], Action]:
    actions = RecoveryManager(SchedulerConfig(**config), CAL).plan(now, state)  # type: ignore[arg-type]
    assert len({(a.job, a.batch, a.trading_date) for a in actions}) == len(actions)
    json.dumps([a.to_dict() for a in actions])  # always serialisable
    assert all(a.reason for a in actions)
    return {(a.job, a.batch, a.trading_date): a for a in actions}


def kind(
    actions: dict[tuple[str, str | None, dt.date], Action],
    job: str,
    day: dt.date,
    batch: str | None = None,
) -> ActionKind:
    return actions[(job, batch, day)].kind


def test_screening_boundary_0559_0600() -> None:
    before = plan(at(NORMAL, "05:59"), RecoveryState())
    assert kind(before, "screening", NORMAL) is ActionKind.WAIT
    assert before[("screening", None, NORMAL)].at == at(NORMAL, "06:00")
    after = plan(at(NORMAL, "06:00"), RecoveryState())
    assert kind(after, "screening", NORMAL) is ActionKind.RUN
    assert kind(after, "selection", NORMAL, "1") is ActionKind.WAIT


def test_screening_adopted_when_its_output_or_the_whole_selection_exists() -> None:
    complete = RecoveryState(batches=dict.fromkeys(("1", "2", "3", "4"), BatchHealth.VALID))
    actions = plan(at(NORMAL, "06:30"), complete)
    assert kind(actions, "screening", NORMAL) is ActionKind.ADOPT
    assert "valid batch files" in actions[("screening", None, NORMAL)].reason
    stored = RecoveryState(has_watchlist=True)
    assert kind(plan(at(NORMAL, "06:30"), stored), "screening", NORMAL) is ActionKind.ADOPT


def test_screening_reruns_when_batches_remain_and_no_watchlist_is_stored() -> None:
    """Evidence must be what the next job reads: the remaining batches read the watchlist."""
    partial = RecoveryState(batches={"1": BatchHealth.VALID})
    actions = plan(at(NORMAL, "06:30"), partial)
    assert kind(actions, "screening", NORMAL) is ActionKind.RUN
    assert kind(actions, "selection", NORMAL, "1") is ActionKind.ADOPT
    rows = RecoveryState(selection_rows=frozenset({"2"}))
    assert kind(plan(at(NORMAL, "06:30"), rows), "screening", NORMAL) is ActionKind.RUN


def test_screening_done_without_evidence_reruns() -> None:
    state = RecoveryState.of([row("screening", NORMAL, JobState.DONE)])
    action = plan(at(NORMAL, "06:30"), state)[("screening", None, NORMAL)]
    assert action.kind is ActionKind.RUN
    assert action.overrides_journal


def test_batches_wait_for_screening_then_run_in_order() -> None:
    waiting = plan(at(NORMAL, "07:15"), RecoveryState())
    assert kind(waiting, "selection", NORMAL, "1") is ActionKind.WAIT
    assert "screening" in waiting[("selection", "1", NORMAL)].reason
    ready = plan(at(NORMAL, "07:15"), RecoveryState(has_watchlist=True))
    assert kind(ready, "selection", NORMAL, "1") is ActionKind.RUN
    assert kind(ready, "selection", NORMAL, "2") is ActionKind.RUN
    assert kind(ready, "selection", NORMAL, "3") is ActionKind.WAIT


@pytest.mark.parametrize("mode", list(IncompleteSelection))
def test_trading_boundary_0859_0900_incomplete_selection(mode: IncompleteSelection) -> None:
    state = RecoveryState(has_watchlist=True, batches={**VALID, "3": BatchHealth.CORRUPT})
    before = plan(at(NORMAL, "08:59"), state, incomplete_selection=mode)
    assert kind(before, "trading", NORMAL) is ActionKind.WAIT
    assert kind(before, "selection", NORMAL, "3") is ActionKind.RUN
    after = plan(at(NORMAL, "09:00"), state, incomplete_selection=mode)
    trading = after[("trading", None, NORMAL)]
    assert kind(after, "selection", NORMAL, "3") is ActionKind.RUN  # re-run after the open too
    if mode is IncompleteSelection.SKIP_TRADING:
        assert trading.kind is ActionKind.SKIP
        assert trading.record
        assert "skip trading" in trading.reason
    else:
        assert trading.kind is ActionKind.WAIT
        assert "3: corrupt" in trading.reason


def test_trading_starts_at_0900_on_complete_selection() -> None:
    state = RecoveryState.of(done_morning(NORMAL), batches=VALID, has_watchlist=True)
    assert kind(plan(at(NORMAL, "08:59"), state), "trading", NORMAL) is ActionKind.WAIT
    assert kind(plan(at(NORMAL, "09:00"), state), "trading", NORMAL) is ActionKind.RUN


def test_trading_never_on_incomplete_selection_even_when_resuming() -> None:
    records = [*done_morning(NORMAL), row("trading", NORMAL, JobState.PENDING, attempts=1)]
    state = RecoveryState.of(records, batches={**VALID, "4": BatchHealth.STALE}, has_watchlist=True)
    actions = plan(at(NORMAL, "11:00"), state)
    assert kind(actions, "trading", NORMAL) is ActionKind.WAIT
    assert kind(actions, "selection", NORMAL, "4") is ActionKind.RUN


@pytest.mark.parametrize("state", [JobState.RUNNING, JobState.NEEDS_RECONCILE])
def test_unfinished_trading_reconciles_then_resumes_until_1530(state: JobState) -> None:
    records = [*done_morning(NORMAL), row("trading", NORMAL, state)]
    evidence = RecoveryState.of(records, batches=VALID, has_watchlist=True)
    action = plan(at(NORMAL, "15:29"), evidence)[("trading", None, NORMAL)]
    assert action.kind is ActionKind.RECONCILE
    assert "reconcile" in action.reason
    closed = plan(at(NORMAL, "15:30"), evidence)[("trading", None, NORMAL)]
    assert closed.kind is ActionKind.RECONCILE  # reconciled, then done at close (issue 9, 14)
    assert "done at the close" in closed.reason
    reconciled = [*done_morning(NORMAL), row("trading", NORMAL, JobState.PENDING, attempts=1)]
    resumed = plan(at(NORMAL, "15:29"), RecoveryState.of(reconciled, batches=VALID))
    assert kind(resumed, "trading", NORMAL) is ActionKind.RESUME


@pytest.mark.parametrize(
    ("job", "before", "boundary"),
    [("market_close", "15:59", "16:00"), ("performance", "16:59", "17:00")],
)
def test_after_close_jobs_boundaries_and_once_per_day(job: str, before: str, boundary: str) -> None:
    assert kind(plan(at(NORMAL, before), RecoveryState()), job, NORMAL) is ActionKind.WAIT
    assert kind(plan(at(NORMAL, boundary), RecoveryState()), job, NORMAL) is ActionKind.RUN
    done = RecoveryState.of([row(job, NORMAL, JobState.DONE, finished=at(NORMAL, boundary))])
    evening = plan(at(NORMAL, "21:00"), done)[(job, None, NORMAL)]
    assert evening.kind is ActionKind.SKIP
    assert not evening.record
    assert "never run twice" in evening.reason


def test_first_trading_day_of_year_shifts_trading_only() -> None:
    state = RecoveryState.of(done_morning(FIRST_DAY), batches=VALID, has_watchlist=True)
    assert kind(plan(at(FIRST_DAY, "09:59"), state), "trading", FIRST_DAY) is ActionKind.WAIT
    assert kind(plan(at(FIRST_DAY, "10:00"), state), "trading", FIRST_DAY) is ActionKind.RUN
    assert kind(plan(at(FIRST_DAY, "06:00"), RecoveryState()), "screening", FIRST_DAY) is (
        ActionKind.RUN
    )
    assert kind(plan(at(FIRST_DAY, "15:59"), state), "market_close", FIRST_DAY) is ActionKind.WAIT
    assert kind(plan(at(FIRST_DAY, "16:00"), state), "market_close", FIRST_DAY) is ActionKind.RUN


def test_csat_day_shifts_session_and_after_close_jobs() -> None:
    state = RecoveryState.of(done_morning(CSAT), batches=VALID, has_watchlist=True)
    assert kind(plan(at(CSAT, "09:59"), state), "trading", CSAT) is ActionKind.WAIT
    assert kind(plan(at(CSAT, "10:00"), state), "trading", CSAT) is ActionKind.RUN
    assert kind(plan(at(CSAT, "16:29"), state), "trading", CSAT) is ActionKind.RUN
    assert kind(plan(at(CSAT, "16:30"), state), "trading", CSAT) is ActionKind.SKIP
    assert kind(plan(at(CSAT, "16:59"), state), "market_close", CSAT) is ActionKind.WAIT
    assert kind(plan(at(CSAT, "17:00"), state), "market_close", CSAT) is ActionKind.RUN
    assert kind(plan(at(CSAT, "17:59"), state), "performance", CSAT) is ActionKind.WAIT
    assert kind(plan(at(CSAT, "18:00"), state), "performance", CSAT) is ActionKind.RUN


def test_evidence_beats_the_journal_both_ways() -> None:
    records = [*done_morning(NORMAL)]
    state = RecoveryState.of(
        records[:2],  # screening and batch 1 marked done
        batches={"1": BatchHealth.MISSING, "2": BatchHealth.VALID, "3": BatchHealth.EMPTY},
        has_watchlist=True,
    )
    actions = plan(at(NORMAL, "08:00"), state)
    gone = actions[("selection", "1", NORMAL)]
    assert gone.kind is ActionKind.RUN
    assert gone.overrides_journal
    assert "missing" in gone.reason
    adopted = actions[("selection", "2", NORMAL)]
    assert adopted.kind is ActionKind.ADOPT
    assert adopted.record
    assert kind(actions, "selection", NORMAL, "3") is ActionKind.RUN


def test_previous_day_catch_up_policy() -> None:
    records = [
        row("screening", PREVIOUS, JobState.DONE),
        row("trading", PREVIOUS, JobState.RUNNING),
        row("market_close", PREVIOUS, JobState.FAILED, finished=at(PREVIOUS, "16:01")),
    ]
    actions = plan(at(NORMAL, "05:00"), RecoveryState.of(records))
    assert kind(actions, "performance", PREVIOUS) is ActionKind.RUN
    trading = actions[("trading", None, PREVIOUS)]
    assert trading.kind is ActionKind.SKIP
    assert trading.record
    assert "never runs it on a later day" in trading.reason
    assert kind(actions, "market_close", PREVIOUS) is ActionKind.SKIP
    assert ("screening", None, PREVIOUS) not in actions  # done: nothing to say


def test_previous_day_without_any_journal_row_is_not_caught_up() -> None:
    actions = plan(at(NORMAL, "05:00"), RecoveryState())
    assert all(a.trading_date == NORMAL for a in actions.values())


@pytest.mark.parametrize("day", [dt.date(2026, 6, 3), dt.date(2026, 7, 17), dt.date(2026, 9, 26)])
def test_closed_day_runs_nothing_and_says_why(day: dt.date) -> None:
    records = [row("performance", CAL.previous_trading_day(day), JobState.FAILED)]
    actions = plan(at(day, "10:00"), RecoveryState.of(records))
    assert {a.kind for a in actions.values()} == {ActionKind.SKIP}
    assert not any(a.record for a in actions.values())
    reason = next(iter(actions.values())).reason
    assert "not a KRX trading day" in reason
    assert str(CAL.closure_reason(day)) in reason


def test_failed_job_retries_after_delay_then_gives_up() -> None:
    failed = row("screening", NORMAL, JobState.FAILED, 1, finished=at(NORMAL, "06:01"))
    waiting = plan(at(NORMAL, "06:02"), RecoveryState.of([failed]))[("screening", None, NORMAL)]
    assert waiting.kind is ActionKind.WAIT
    assert waiting.at == at(NORMAL, "06:06")
    assert kind(plan(at(NORMAL, "06:06"), RecoveryState.of([failed])), "screening", NORMAL) is (
        ActionKind.RUN
    )
    exhausted = row("screening", NORMAL, JobState.FAILED, 3, finished=at(NORMAL, "06:01"))
    gave_up = plan(at(NORMAL, "07:00"), RecoveryState.of([exhausted]))[("screening", None, NORMAL)]
    assert gave_up.kind is ActionKind.SKIP
    assert "giving up" in gave_up.reason


def test_plan_requires_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        RecoveryManager(SchedulerConfig(), CAL).plan(dt.datetime(2026, 9, 28, 9), RecoveryState())


@pytest.mark.parametrize("attempts", [1, 2])
def test_a_crashed_idempotent_job_runs_again_while_attempts_remain(attempts: int) -> None:
    state = RecoveryState.of([row("screening", NORMAL, JobState.RUNNING, attempts)])
    assert kind(plan(at(NORMAL, "06:30"), state), "screening", NORMAL) is ActionKind.RUN


def test_rule_21a_a_crashed_job_at_max_attempts_gives_up_and_records_it() -> None:
    state = RecoveryState.of([row("screening", NORMAL, JobState.RUNNING, 3)])
    action = plan(at(NORMAL, "06:30"), state)[("screening", None, NORMAL)]
    assert action.kind is ActionKind.SKIP and action.record
    assert "gave up: 3/3 attempts used" in action.reason
    assert "the process died" in action.reason


def test_rule_21a_side_effecting_job_that_crashed_at_max_attempts_gives_up() -> None:
    crashed = RecoveryState.of(
        [*done_morning(NORMAL), row("trading", NORMAL, JobState.RUNNING, 3)], batches=VALID
    )
    action = plan(at(NORMAL, "11:00"), crashed)[("trading", None, NORMAL)]
    assert action.kind is ActionKind.SKIP and action.record
    assert "gave up: 3/3" in action.reason


def test_graceful_stops_never_use_up_attempts_of_a_side_effecting_job() -> None:
    stopped = RecoveryState.of(
        [*done_morning(NORMAL), row("trading", NORMAL, JobState.PENDING, 3)], batches=VALID
    )
    assert kind(plan(at(NORMAL, "11:00"), stopped), "trading", NORMAL) is ActionKind.RESUME


def test_rules_17a_17b_trading_unfinished_at_the_close_is_reconciled_then_done_at_close() -> None:
    running = RecoveryState.of(
        [*done_morning(NORMAL), row("trading", NORMAL, JobState.RUNNING)], batches=VALID
    )
    first = plan(at(NORMAL, "15:30:01"), running)[("trading", None, NORMAL)]
    assert first.kind is ActionKind.RECONCILE
    reconciled = RecoveryState.of(
        [*done_morning(NORMAL), row("trading", NORMAL, JobState.PENDING)], batches=VALID
    )
    second = plan(at(NORMAL, "15:30:02"), reconciled)[("trading", None, NORMAL)]
    assert second.kind is ActionKind.ADOPT and second.record
    assert "done at close" in second.reason
    never_started = RecoveryState.of(done_morning(NORMAL), batches=VALID)
    missed = plan(at(NORMAL, "15:30"), never_started)[("trading", None, NORMAL)]
    assert missed.kind is ActionKind.SKIP and "missed" in missed.reason
