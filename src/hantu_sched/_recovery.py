"""Recovery as a pure decision: ``RecoveryManager.plan(now, state) -> list[Action]``.

``state`` is the gathered evidence (journal rows for today and the previous trading day, the
health of today's batch files, whether today's watchlist and selection rows exist). The plan
lists one action per unit of work with the reason for it; the scheduler executes the first
runnable action, gathers the evidence again and re-plans, so the plan is the single authority
both at a restart and during the normal day. The rules are tabulated in ``docs/recovery.md``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._batch import BatchHealth, BatchStore
from ._calendar import KRXCalendar
from ._constants import KST
from ._day import (
    JOB_ORDER,
    SCREENING,
    SELECTION,
    TRADING,
    CatchUp,
    DayPlan,
    IncompleteSelection,
    PlannedJob,
    SchedulerConfig,
    build_day_plan,
)
from ._journal import JobKey, JobRecord, JobState
from ._storage import Storage

__all__ = ["Action", "ActionKind", "RecoveryManager", "RecoveryState", "gather_state"]


class ActionKind(enum.StrEnum):
    """What the executor does with an action.

    ``run``: start the job. ``resume``: start a side-effecting job again after a reconcile.
    ``reconcile``: reconcile orders and positions of an unfinished side-effecting run.
    ``skip``: do not run (``record`` says whether the decision is written to the journal).
    ``adopt``: evidence shows the work is done; record it as done. ``wait``: not yet due
    (``at`` is when, or ``None`` when waiting for another job).
    """

    RUN = "run"
    RESUME = "resume"
    RECONCILE = "reconcile"
    SKIP = "skip"
    ADOPT = "adopt"
    WAIT = "wait"


#: Kinds that execute a job or its reconciler.
RUNNABLE = frozenset({ActionKind.RUN, ActionKind.RESUME, ActionKind.RECONCILE})


@attrs.frozen
class Action:
    """One decision about one unit of work, with its reason."""

    kind: ActionKind
    job: str
    batch: str | None
    trading_date: dt.date
    reason: str
    at: dt.datetime | None = None
    record: bool = False
    overrides_journal: bool = False

    @property
    def key(self) -> JobKey:
        """The journal key this action is about."""
        return JobKey(self.job, self.trading_date, self.batch)

    def describe(self) -> str:
        """One readable line: ``kind unit date [at HH:MM]: reason`` in aligned columns (the
        rows of ``recover --dry-run``, and what ``run`` logs for its plan and decisions)."""
        label = self.job + (f"[{self.batch}]" if self.batch else "")
        at = f" at {self.at.astimezone(KST):%H:%M}" if self.at else ""
        return f"{self.kind.value:<9} {label:<16} {self.trading_date}{at}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "kind": self.kind.value,
            "job": self.job,
            "batch": self.batch,
            "trading_date": self.trading_date.isoformat(),
            "reason": self.reason,
            "at": None if self.at is None else self.at.isoformat(),
            "record": self.record,
            "overrides_journal": self.overrides_journal,
        }


@attrs.frozen
class RecoveryState:
    """The evidence a plan is made from (gather it with :func:`gather_state`)."""

    jobs: Mapping[JobKey, JobRecord] = attrs.field(factory=dict)
    batches: Mapping[str, BatchHealth] = attrs.field(factory=dict)
    has_watchlist: bool = False
    selection_rows: frozenset[str] = frozenset()

    @classmethod
    def of(cls, records: Iterable[JobRecord], **kwargs: Any) -> RecoveryState:
        """Build a state from journal records (convenient in tests)."""
        return cls(jobs={r.key: r for r in records}, **kwargs)


def gather_state(
    now: dt.datetime,
    calendar: KRXCalendar,
    config: SchedulerConfig,
    storage: Storage,
    batches: BatchStore,
) -> RecoveryState:
    """Read the evidence for ``plan(now, ...)``: journal rows of today and of the previous
    trading day, today's batch file health, watchlist and selection rows."""
    today = now.astimezone(KST).date()
    records = list(storage.list_jobs(today))
    if calendar.is_trading_day(today):
        records += storage.list_jobs(calendar.previous_trading_day(today))
        health = batches.health_all(today, config.batch_ids)
        return RecoveryState.of(
            records,
            batches=health,
            has_watchlist=storage.get_watchlist(today) is not None,
            selection_rows=frozenset(storage.get_selection(today)),
        )
    return RecoveryState.of(records)


def _hm(when: dt.datetime) -> str:
    return when.astimezone(KST).strftime("%H:%M")


def _describe(record: JobRecord | None) -> str:
    if record is None:
        return "no journal row"
    text = f"journal: {record.state.value}, {record.attempts} attempt(s)"
    return f"{text}, last error: {record.error}" if record.error else text


class RecoveryManager:
    """Pure planner. ``plan`` reads nothing but its arguments (and the calendar's data)."""

    def __init__(self, config: SchedulerConfig, calendar: KRXCalendar) -> None:
        self.config = config
        self.calendar = calendar

    def plan(self, now: dt.datetime, state: RecoveryState) -> list[Action]:
        """Every decision for the trading date of *now* (KST), in execution order.

        On a closed day: one unrecorded ``skip`` per job saying why. On a trading day: the
        previous trading day's unfinished jobs (per their catch-up policy), then today's jobs.
        """
        if now.tzinfo is None:
            raise ValueError("plan() needs an aware datetime")
        today = now.astimezone(KST).date()
        plan = build_day_plan(self.config, self.calendar, today)
        if plan is None:
            why = self.calendar.closure_reason(today)
            reason = f"{today} is not a KRX trading day ({why}); nothing runs"
            return [Action(ActionKind.SKIP, job, None, today, reason) for job in JOB_ORDER]
        actions = self._previous_day(now, today, state)
        actions += self._today(now, plan, state)
        return actions

    # -- the previous trading day -------------------------------------------------------------

    def _previous_day(self, now: dt.datetime, today: dt.date, state: RecoveryState) -> list[Action]:
        previous = self.calendar.previous_trading_day(today)
        plan = build_day_plan(self.config, self.calendar, previous)
        rows = {k: r for k, r in state.jobs.items() if k.trading_date == previous}
        if plan is None or not rows:
            return []  # the scheduler did not run that day: nothing was missed by it
        actions: list[Action] = []
        for item in plan.jobs:
            record = rows.get(item.key)
            if record is not None and record.state in (JobState.DONE, JobState.SKIPPED):
                continue
            key = item.key
            if item.policy.catch_up is CatchUp.NEXT_TRADING_DAY and not item.policy.side_effects:
                why = (
                    f"missed on {previous} ({_describe(record)}); catch-up policy next-trading-day"
                )
                actions.append(self._attempt(now, key, record, item, why))
            else:
                reason = (
                    f"missed on {previous} ({_describe(record)}); catch-up policy "
                    f"{item.policy.catch_up.value} never runs it on a later day"
                )
                actions.append(
                    Action(ActionKind.SKIP, key.job, key.batch, previous, reason, record=True)
                )
        return actions

    # -- today ----------------------------------------------------------------------------------

    def _today(self, now: dt.datetime, plan: DayPlan, state: RecoveryState) -> list[Action]:
        evidence = self._screening_evidence(state)
        actions = [self._screening(now, plan.for_job(SCREENING)[0], state, evidence)]
        batch_actions = [
            self._batch(now, item, state, bool(evidence)) for item in plan.for_job(SELECTION)
        ]
        actions += batch_actions
        actions.append(self._trading(now, plan, state, batch_actions))
        for item in plan.jobs:
            if item.key.job not in (SCREENING, SELECTION, TRADING):
                actions.append(self._generic(now, item, state.jobs.get(item.key)))
        return actions

    def _screening_evidence(self, state: RecoveryState) -> str:
        """Why screening counts as done, or ``""``. Evidence must be what the next job reads:
        the stored watchlist (every batch reads it), or a complete selection (every configured
        batch file valid: no batch needs the watchlist any more). Batch files alone, with a
        batch still to run and no watchlist, are not enough: screening runs again."""
        valid_batches = sorted(b for b, h in state.batches.items() if h is BatchHealth.VALID)
        complete = bool(self.config.batch_ids) and all(
            state.batches.get(b) is BatchHealth.VALID for b in self.config.batch_ids
        )
        if not state.has_watchlist and not complete:
            return ""
        evidence = []
        if state.has_watchlist:
            evidence.append("today's watchlist is stored")
        if valid_batches:
            evidence.append(f"valid batch files {valid_batches}")
        if state.selection_rows:
            evidence.append(f"selection rows {sorted(state.selection_rows)} are stored")
        return "; ".join(evidence)

    def _screening(
        self, now: dt.datetime, item: PlannedJob, state: RecoveryState, evidence: str
    ) -> Action:
        record = state.jobs.get(item.key)
        if evidence:
            return self._evidence_present(item, record, evidence)
        if record is not None and record.state is JobState.DONE:
            why = "journal says done but no watchlist is stored and the selection is incomplete"
            return self._rerun(now, item, why)
        return self._generic(now, item, record)

    def _batch(
        self, now: dt.datetime, item: PlannedJob, state: RecoveryState, screening_ok: bool
    ) -> Action:
        record = state.jobs.get(item.key)
        health = state.batches.get(item.key.batch or "", BatchHealth.MISSING)
        if health is BatchHealth.VALID:
            return self._evidence_present(item, record, "its batch file is valid")
        if record is not None and record.state is JobState.DONE:
            why = f"journal says done but the batch file is {health.value}"
            return self._rerun(now, item, why, depends_ok=screening_ok)
        return self._generic(now, item, record, depends_ok=screening_ok, waiting_for="screening")

    def _trading(
        self, now: dt.datetime, plan: DayPlan, state: RecoveryState, batches: list[Action]
    ) -> Action:
        """Trading never starts or resumes on an incomplete selection (reconciling is fine)."""
        item = plan.for_job(TRADING)[0]
        action = self._generic(now, item, state.jobs.get(item.key))
        if action.kind not in (ActionKind.RUN, ActionKind.RESUME):
            return action
        incomplete = [
            f"{b}: {state.batches.get(b, BatchHealth.MISSING).value}"
            for b in self.config.batch_ids
            if state.batches.get(b, BatchHealth.MISSING) is not BatchHealth.VALID
        ]
        if not incomplete:
            return attrs.evolve(action, reason=f"{action.reason}; selection complete")
        key = item.key
        listed = ", ".join(incomplete)
        if self.config.incomplete_selection is IncompleteSelection.SKIP_TRADING:
            reason = (
                f"selection incomplete at {_hm(now)} (batches {listed}); configuration says "
                "skip trading for the day"
            )
            return Action(ActionKind.SKIP, key.job, None, key.trading_date, reason, record=True)
        if not any(a.kind in RUNNABLE or a.kind is ActionKind.WAIT for a in batches):
            reason = (
                f"selection incomplete (batches {listed}) and no batch can still complete; "
                "trading skipped for the day"
            )
            return Action(ActionKind.SKIP, key.job, None, key.trading_date, reason, record=True)
        reason = (
            f"selection incomplete (batches {listed}); completing it before trading starts "
            "(configuration: complete-first)"
        )
        return Action(ActionKind.WAIT, key.job, None, key.trading_date, reason)

    # -- shared rules ---------------------------------------------------------------------------

    @staticmethod
    def _decided(item: PlannedJob, record: JobRecord | None) -> Action | None:
        key = item.key
        if record is None:
            return None
        if record.state is JobState.DONE:
            when = "" if record.finished_at is None else f" at {_hm(record.finished_at)}"
            reason = f"done{when}; never run twice in a day"
            return Action(ActionKind.SKIP, key.job, key.batch, key.trading_date, reason)
        if record.state is JobState.SKIPPED:
            reason = f"skipped earlier: {record.note or 'no reason recorded'}"
            return Action(ActionKind.SKIP, key.job, key.batch, key.trading_date, reason)
        if record.state is JobState.FAILED and record.attempts >= item.policy.max_attempts:
            reason = (
                f"failed {record.attempts}/{item.policy.max_attempts} attempts; giving up "
                f"(last error: {record.error})"
            )
            return Action(ActionKind.SKIP, key.job, key.batch, key.trading_date, reason)
        return None

    @staticmethod
    def _evidence_present(item: PlannedJob, record: JobRecord | None, evidence: str) -> Action:
        key = item.key
        if record is not None and record.state in (JobState.DONE, JobState.SKIPPED):
            return RecoveryManager._decided(item, record) or Action(
                ActionKind.SKIP, key.job, key.batch, key.trading_date, evidence
            )
        reason = f"{evidence} ({_describe(record)}): counts as done"
        return Action(ActionKind.ADOPT, key.job, key.batch, key.trading_date, reason, record=True)

    def _rerun(
        self, now: dt.datetime, item: PlannedJob, why: str, depends_ok: bool = True
    ) -> Action:
        key = item.key
        if now >= item.deadline:
            reason = f"{why}; deadline {_hm(item.deadline)} passed, not re-run"
            return Action(
                ActionKind.SKIP, key.job, key.batch, key.trading_date, reason, record=True
            )
        if now < item.start or not depends_ok:
            reason = f"{why}; re-run when due"
            at = item.start if now < item.start else None
            return Action(ActionKind.WAIT, key.job, key.batch, key.trading_date, reason, at=at)
        reason = f"{why}: evidence beats the journal, re-running"
        return Action(
            ActionKind.RUN, key.job, key.batch, key.trading_date, reason, overrides_journal=True
        )

    def _generic(
        self,
        now: dt.datetime,
        item: PlannedJob,
        record: JobRecord | None,
        *,
        depends_ok: bool = True,
        waiting_for: str = "",
    ) -> Action:
        decided = self._decided(item, record)
        if decided is not None:
            return decided
        key = item.key
        what = _describe(record)
        if now >= item.deadline and item.policy.side_effects and record is not None:
            finishing = self._finish_after_deadline(item, record)
            if finishing is not None:
                return finishing
        if now >= item.deadline:
            reason = f"missed: deadline {_hm(item.deadline)} passed ({what})"
            return Action(
                ActionKind.SKIP, key.job, key.batch, key.trading_date, reason, record=True
            )
        if now < item.start:
            reason = f"scheduled at {_hm(item.start)}"
            return Action(
                ActionKind.WAIT, key.job, key.batch, key.trading_date, reason, at=item.start
            )
        if not depends_ok:
            reason = f"due since {_hm(item.start)}; waiting for {waiting_for}"
            return Action(ActionKind.WAIT, key.job, key.batch, key.trading_date, reason)
        return self._attempt(now, key, record, item, f"due since {_hm(item.start)}")

    @staticmethod
    def _finish_after_deadline(item: PlannedJob, record: JobRecord) -> Action | None:
        """A side-effecting job (trading) still unfinished at its deadline (the close) may have
        placed orders: reconcile them (the reconciler sends no order), then record the run as
        done at the close. It is never "missed" and never resumed."""
        key = item.key
        day = key.trading_date
        deadline = _hm(item.deadline)
        if record.state in (JobState.RUNNING, JobState.NEEDS_RECONCILE):
            reason = (
                f"deadline {deadline} passed while the run was unfinished ({_describe(record)}): "
                "reconcile orders and positions (no new orders), then finish it as done at the "
                "close"
            )
            return Action(ActionKind.RECONCILE, key.job, key.batch, day, reason)
        if record.state is JobState.PENDING and record.attempts > 0:
            reason = (
                f"reconciled after the deadline {deadline} ({record.note or 'no note'}): the "
                "run ended at the close; done at close"
            )
            return Action(ActionKind.ADOPT, key.job, key.batch, day, reason, record=True)
        return None

    @staticmethod
    def _crashed_out(
        key: JobKey, record: JobRecord | None, item: PlannedJob, why: str
    ) -> Action | None:
        """Give up on a job whose last allowed attempt crashed.

        A row found ``running`` when the scheduler plans (it holds the data directory's lock,
        and its own jobs run synchronously) means that attempt's process died (OOM, a
        segfault, a kill): it counts like a failure. At ``max_attempts`` the job is not started
        (nor reconciled and resumed) again; the decision is recorded (``skipped``) so the
        journal says why. Graceful stops (``needs-reconcile``/``pending``) are not crashes and
        never give up here; past the deadline rule 17a comes first."""
        policy = item.policy
        if record is None or record.state is not JobState.RUNNING:
            return None
        if record.attempts < policy.max_attempts:
            return None
        reason = (
            f"{why}; gave up: {record.attempts}/{policy.max_attempts} attempts used, the last "
            "one never finished (the process died: crash, OOM or kill)"
        )
        return Action(ActionKind.SKIP, key.job, key.batch, key.trading_date, reason, record=True)

    @staticmethod
    def _attempt(
        now: dt.datetime, key: JobKey, record: JobRecord | None, item: PlannedJob, why: str
    ) -> Action:
        """Run, retry, reconcile or resume *key*, which is due and not finished."""
        policy = item.policy
        day = key.trading_date
        crashed_out = RecoveryManager._crashed_out(key, record, item, why)
        if crashed_out is not None:
            return crashed_out
        if record is not None and record.state is JobState.FAILED:
            if record.attempts >= policy.max_attempts:
                reason = f"{why}; failed {record.attempts}/{policy.max_attempts}, giving up"
                return Action(ActionKind.SKIP, key.job, key.batch, day, reason)
            retry_at = (record.finished_at or now) + policy.retry_delay
            if now < retry_at:
                reason = f"{why}; retry {record.attempts + 1} after failure: {record.error}"
                return Action(ActionKind.WAIT, key.job, key.batch, day, reason, at=retry_at)
        state = None if record is None else record.state
        if policy.side_effects and state in (
            JobState.RUNNING,
            JobState.NEEDS_RECONCILE,
            JobState.FAILED,
        ):
            reason = (
                f"{why}; the last run never finished ({_describe(record)}): reconcile orders "
                "and positions before resuming"
            )
            return Action(ActionKind.RECONCILE, key.job, key.batch, day, reason)
        if policy.side_effects and record is not None and record.attempts > 0:
            reason = f"{why}; reconciled ({record.note or 'no note'}): resuming"
            return Action(ActionKind.RESUME, key.job, key.batch, day, reason)
        if state is JobState.RUNNING:
            reason = f"{why}; the last run never finished ({_describe(record)}): running again"
        elif state is JobState.FAILED:
            reason = f"{why}; retry {record.attempts + 1 if record else 1} after failure"
        else:
            reason = why
        return Action(ActionKind.RUN, key.job, key.batch, day, reason)
