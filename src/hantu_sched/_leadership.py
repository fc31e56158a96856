"""Leadership for storages shared between hosts (PostgreSQL): wait for the lease as a standby,
keep it renewed while leading, give it up on a clean stop.

A storage is *leased* when it has ``lease_s``, ``renew(now)`` and ``release()`` besides the
:class:`~hantu_sched._storage.Storage` contract (:class:`~hantu_sched._pg_storage.
PostgresStorage`); its ``claim`` raises :class:`~hantu_sched._pg_storage.LeaseHeldError` while
another holder's lease is valid. For any other storage :func:`acquire` is just ``claim`` and
:class:`LeaseKeeper` does nothing.

- :func:`acquire`: ``claim``; if the lease is held and *standby*, wait on the injected clock
  until just after the leader's lease would lapse and try again (a renewed lease means another
  wait; the leader is logged once), until the claim succeeds, the stop event is set or *until*
  passes: a standby takes over at most the lease plus a moment after the leader's last renewal.
  Without *standby* the :class:`LeaseHeldError` propagates (a second ``run`` is refused, as on
  one host).
- :class:`LeaseKeeper`: a daemon thread renewing every third of the lease. A renewal that finds
  the lease gone (deposed) ends the thread; one that cannot reach the database is logged and
  retried; the storage's local validity then runs out two thirds of a lease after the last
  good renewal, so the leader stops acting (its stop event reads as set, its writes are
  refused) a third of a lease before a standby may take over.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Protocol, runtime_checkable

from ._clock import Clock, FakeClock
from ._storage import DeposedError, Storage, StorageError

__all__ = ["LeaseKeeper", "LeasedStorage", "acquire"]

#: A standby re-tries this long after the leader's lease would lapse (seconds on its clock).
_AFTER_LAPSE_S = 0.05


@runtime_checkable
class LeasedStorage(Protocol):
    """A storage whose claim is a lease (see the module docstring)."""

    lease_s: float

    def renew(self, now: dt.datetime) -> None: ...

    def release(self) -> None: ...


def acquire(
    storage: Storage,
    owner: str,
    clock: Clock,
    stop: threading.Event,
    *,
    standby: bool,
    until: dt.datetime | None,
    log: logging.Logger,
) -> int | None:
    """Claim *storage* for *owner*; the epoch, or ``None`` if *stop* was set or *until* passed
    while waiting as a standby (see the module docstring)."""
    if not isinstance(storage, LeasedStorage):
        return storage.claim(owner, clock.now())
    from ._pg_storage import LeaseHeldError  # noqa: PLC0415 - psycopg only when leased

    announced: str | None = None
    while True:
        now = clock.now()
        if until is not None and now >= until:
            return None
        try:
            return storage.claim(owner, now)
        except LeaseHeldError as exc:
            if not standby:
                raise
            if announced != exc.lease.holder:
                announced = exc.lease.holder
                log.info("standby: %s; waiting to take over when its lease lapses", exc)
            # wake just after the lease would lapse (re-checked then: it may have been renewed)
            lapse = exc.lease.expires_at + _AFTER_LAPSE_S - now.timestamp()
            poll = min(max(lapse, _AFTER_LAPSE_S), storage.lease_s)
        except StorageError as exc:
            if not standby:
                raise
            log.warning("standby: cannot reach the storage (%s); retrying", exc)
            poll = storage.lease_s / 3
        wake = now + dt.timedelta(seconds=poll)
        if until is not None:
            wake = min(wake, until)
        clock.sleep_until(wake, stop)
        if stop.is_set():
            return None


class LeaseKeeper:
    """Renews a leased storage's lease every third of it, on a daemon thread (a no-op for
    other storages, and on a :class:`~hantu_sched._clock.FakeClock`). :meth:`close` stops it;
    ``release=True`` also gives the lease up."""

    def __init__(self, storage: Storage, clock: Clock, log: logging.Logger) -> None:
        self._storage = storage if isinstance(storage, LeasedStorage) else None
        self._clock = clock
        self._log = log
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        # A fake clock's waits jump its time for every thread: such runs (in-process tests)
        # use a lease longer than their day instead of renewals.
        if self._storage is not None and not isinstance(clock, FakeClock):
            self._thread = threading.Thread(target=self._run, name="hantu-lease", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._storage is not None
        period = dt.timedelta(seconds=self._storage.lease_s / 3)
        failing = False
        while not self._halt.is_set():
            self._clock.sleep_until(self._clock.now() + period, self._halt)
            if self._halt.is_set():
                return
            try:
                self._storage.renew(self._clock.now())
            except DeposedError as exc:
                self._log.critical("%s", exc)
                return
            except StorageError as exc:
                if not failing:
                    self._log.error("lease renewal failed (%s); retrying", exc)
                failing = True
                continue
            if failing:
                self._log.warning("lease renewed again")
            failing = False

    def close(self, *, release: bool = False) -> None:
        """Stop renewing (and with *release*, give the lease up: a standby takes over now)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if release and self._storage is not None:
            try:
                self._storage.release()
            except StorageError as exc:
                self._log.warning("could not release the lease (%s); it expires on its own", exc)
