"""The day plan: which jobs run on a trading day, when, and what happens if they are missed.

Every time is an :class:`At`: an offset from local midnight, from the session open, or from the
session close, resolved against the calendar's session for the day. The defaults reproduce the
original system on a normal 09:00–15:30 day (screening 06:00, selection batches from 07:00,
trading open→close, market close at close+30 min, performance at close+90 min) and move trading
and the after-close jobs with a 10:00 open or the 10:00–16:30 수능 session.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ._batch import validate_batch_id
from ._calendar import KRXCalendar, Session
from ._constants import KST
from ._journal import JobKey

__all__ = [
    "DEFAULT_POLICIES",
    "JOB_ORDER",
    "MARKET_CLOSE",
    "PERFORMANCE",
    "SCREENING",
    "SELECTION",
    "TRADING",
    "Anchor",
    "At",
    "CatchUp",
    "DayPlan",
    "IncompleteSelection",
    "JobPolicy",
    "PlannedJob",
    "SchedulerConfig",
    "build_day_plan",
]

SCREENING = "screening"
SELECTION = "selection"
TRADING = "trading"
MARKET_CLOSE = "market_close"
PERFORMANCE = "performance"
#: The five jobs in the order they run.
JOB_ORDER = (SCREENING, SELECTION, TRADING, MARKET_CLOSE, PERFORMANCE)


class Anchor(enum.StrEnum):
    """What an :class:`At` offset is measured from."""

    DAY = "day"  # local (KST) midnight of the trading date
    OPEN = "open"  # the session open
    CLOSE = "close"  # the session close


@attrs.frozen
class At:
    """A time of the trading day: *offset* after *anchor*."""

    anchor: Anchor
    offset: dt.timedelta = dt.timedelta(0)

    @classmethod
    def local(cls, hour: int, minute: int = 0) -> At:
        """A fixed local time, e.g. ``At.local(6)`` for 06:00 KST."""
        return cls(Anchor.DAY, dt.timedelta(hours=hour, minutes=minute))

    @classmethod
    def open(cls, minutes: float = 0) -> At:
        """*minutes* after the session open (negative for before)."""
        return cls(Anchor.OPEN, dt.timedelta(minutes=minutes))

    @classmethod
    def close(cls, minutes: float = 0) -> At:
        """*minutes* after the session close."""
        return cls(Anchor.CLOSE, dt.timedelta(minutes=minutes))

    def resolve(self, session: Session) -> dt.datetime:
        """The aware KST datetime this denotes on *session*'s day."""
        if self.anchor is Anchor.OPEN:
            return session.open + self.offset
        if self.anchor is Anchor.CLOSE:
            return session.close + self.offset
        return dt.datetime.combine(session.date, dt.time(0), KST) + self.offset


class CatchUp(enum.StrEnum):
    """What happens to a job missed on its own day.

    ``same-day``: it runs late on its trading day until its deadline, never on a later day.
    ``next-trading-day``: additionally, if the previous trading day's run never finished, it runs
    on the next trading day (once).
    """

    SAME_DAY = "same-day"
    NEXT_TRADING_DAY = "next-trading-day"


class IncompleteSelection(enum.StrEnum):
    """What trading does when the selection is incomplete at or after the open."""

    COMPLETE_FIRST = "complete-first"  # re-run the missing batches, then start trading late
    SKIP_TRADING = "skip-trading"  # no trading that day


@attrs.frozen
class JobPolicy:
    """When a job runs and how misses and failures are handled.

    ``start``: earliest start. ``deadline``: no new start at or after it (``None``: end of the
    trading date). ``max_attempts`` counts every time the job was marked running (crashes
    included). ``retry_delay``: wait after a failure. ``side_effects``: the job touches the
    market (orders), so an unfinished run is reconciled before it runs again and it is never
    caught up on a later day.
    """

    start: At
    deadline: At | None = None
    catch_up: CatchUp = attrs.field(default=CatchUp.SAME_DAY, converter=CatchUp)
    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    retry_delay: dt.timedelta = dt.timedelta(minutes=5)
    side_effects: bool = False


DEFAULT_POLICIES: Mapping[str, JobPolicy] = MappingProxyType(
    {
        SCREENING: JobPolicy(At.local(6), At.close()),
        SELECTION: JobPolicy(At.local(7), At.close(), retry_delay=dt.timedelta(minutes=2)),
        TRADING: JobPolicy(
            At.open(), At.close(), retry_delay=dt.timedelta(minutes=1), side_effects=True
        ),
        MARKET_CLOSE: JobPolicy(At.close(30)),
        PERFORMANCE: JobPolicy(At.close(90), catch_up=CatchUp.NEXT_TRADING_DAY),
    }
)


def _batch_ids(value: tuple[str, ...]) -> tuple[str, ...]:
    ids = tuple(validate_batch_id(b) for b in value)
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"batch ids must be non-empty and unique, got {ids}")
    return ids


@attrs.frozen
class SchedulerConfig:
    """Scheduler configuration.

    ``batch_ids``: the selection batches (from configuration, not a hard-coded range); batch *i*
    starts at the selection start + *i* × ``batch_interval``. ``policies`` overrides
    :data:`DEFAULT_POLICIES` per job name. ``incomplete_selection`` decides what trading does
    when the selection is incomplete at the open.
    """

    batch_ids: tuple[str, ...] = attrs.field(default=("1", "2", "3", "4"), converter=_batch_ids)
    batch_interval: dt.timedelta = dt.timedelta(minutes=10)
    incomplete_selection: IncompleteSelection = attrs.field(
        default=IncompleteSelection.COMPLETE_FIRST, converter=IncompleteSelection
    )
    policies: Mapping[str, JobPolicy] = attrs.field(factory=dict)

    def policy(self, job: str) -> JobPolicy:
        """The effective policy of *job*."""
        found = self.policies.get(job) or DEFAULT_POLICIES.get(job)
        if found is None:
            raise KeyError(f"no policy for job {job!r}")
        return found


@attrs.frozen
class PlannedJob:
    """One unit of the day: *key*, with its resolved start and deadline."""

    key: JobKey
    start: dt.datetime
    deadline: dt.datetime
    policy: JobPolicy


@attrs.frozen
class DayPlan:
    """The trading day's jobs in run order."""

    trading_date: dt.date
    session: Session
    jobs: tuple[PlannedJob, ...]

    def for_job(self, job: str) -> tuple[PlannedJob, ...]:
        """The planned units of *job* (several for selection, one otherwise)."""
        return tuple(p for p in self.jobs if p.key.job == job)


def build_day_plan(config: SchedulerConfig, calendar: KRXCalendar, day: dt.date) -> DayPlan | None:
    """The plan for *day*, or ``None`` if KRX is closed then."""
    session = calendar.session(day)
    if session is None:
        return None
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), KST)
    planned: list[PlannedJob] = []
    for job in JOB_ORDER:
        policy = config.policy(job)
        start = policy.start.resolve(session)
        deadline = end_of_day if policy.deadline is None else policy.deadline.resolve(session)
        if job == SELECTION:
            for index, batch in enumerate(config.batch_ids):
                begin = start + index * config.batch_interval
                planned.append(PlannedJob(JobKey(job, day, batch), begin, deadline, policy))
        else:
            planned.append(PlannedJob(JobKey(job, day), start, deadline, policy))
    return DayPlan(day, session, tuple(planned))
