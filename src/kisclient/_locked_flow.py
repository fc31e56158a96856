"""Single-flight state shared across threads and processes: one flow, a sync and an async driver.

The access token (:mod:`kisclient._token`) and the WebSocket approval key
(:mod:`kisclient._approval`) are both a small file that several processes read and, rarely and
one at a time, renew by calling KIS. Each writes its algorithm once, as a generator of
:class:`Op`, :class:`Write` and :class:`Wait` steps; :class:`LockedFlowRunner` performs the
steps, blocking (:meth:`~LockedFlowRunner._run_sync`) or on an event loop
(:meth:`~LockedFlowRunner._run_async`, file locks and file I/O in worker threads).

Contracts:

- ``ACQUIRE`` takes the per-scope process lock, then the file lock; ``RELEASE`` both. A driver
  releases them on any exit, and refuses a :class:`Wait` while they are held (nobody sleeps
  holding a lock other processes queue on).
- An exception raised performing a step is thrown into the flow, which decides.
- The async driver queues the tasks of one event loop on an :class:`asyncio.Lock` first, so at
  most one worker thread per loop waits for the process lock, and a cancelled task never leaks a
  lock (see :class:`_Handoff`).
"""

from __future__ import annotations

import asyncio
import enum
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import attrs

from ._clock import Clock
from ._errors import ConfigurationError
from ._statedir import FileLock

__all__ = ["LockedFlowRunner", "Op", "Step", "Wait", "Write"]

StateT = TypeVar("StateT")
ResultT = TypeVar("ResultT")


class Op(enum.Enum):
    ACQUIRE = "acquire"  # take the process lock, then the file lock
    RELEASE = "release"  # release both
    READ = "read"  # -> the store's state
    ISSUE = "issue"  # -> what the issue function returned (the endpoint's JSON body)


@attrs.frozen
class Write(Generic[StateT]):
    """Write *state* to the store (the locks are held)."""

    state: StateT


@attrs.frozen
class Wait:
    """Sleep *seconds* on the clock (never while the locks are held)."""

    seconds: float


Step = Op | Write[Any] | Wait


class Store(Protocol[StateT]):
    """What a runner needs of its store."""

    @property
    def lock_path(self) -> Path: ...

    def read(self, now: float | None = None) -> StateT: ...

    def write(self, state: StateT) -> None: ...

    def lock(self) -> FileLock: ...

    def thread_lock(self) -> threading.Lock: ...

    def unusable(self, exc: OSError) -> ConfigurationError: ...


_ASYNC_LOCKS_GUARD = threading.Lock()
_ASYNC_LOCKS: dict[str, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]] = {}


def _loop_lock(key: str) -> asyncio.Lock:
    """An :class:`asyncio.Lock` per (scope, running loop): tasks of one loop queue here first,
    so at most one worker thread per loop waits for the process lock (no executor starvation).
    """
    loop = asyncio.get_running_loop()
    with _ASYNC_LOCKS_GUARD:
        per_loop = _ASYNC_LOCKS.setdefault(key, weakref.WeakKeyDictionary())
        lock = per_loop.get(loop)
        if lock is None:
            lock = per_loop[loop] = asyncio.Lock()
        return lock


class LockedFlowRunner(Generic[StateT]):
    """Performs the steps of a flow over *store* (see the module docstring).

    ``issue`` / ``aissue`` call the KIS endpoint that renews the state and return its JSON body;
    the sync driver needs ``issue``, the async one uses ``aissue``, or ``issue`` in a worker
    thread. *what* names the owner in configuration errors.
    """

    def __init__(
        self,
        store: Store[StateT],
        clock: Clock,
        issue: Callable[[], Any] | None,
        aissue: Callable[[], Awaitable[Any]] | None,
        what: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._issue = issue
        self._aissue = aissue
        self._what = what
        self._thread_lock = store.thread_lock()
        self._file_lock: FileLock | None = None

    # -- the sync driver --

    def _run_sync(self, flow: Generator[Step, object, ResultT]) -> ResultT:
        held = False
        value: object = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = flow.throw(error) if error is not None else flow.send(value)
                except StopIteration as stop:
                    result: ResultT = stop.value
                    return result
                value, error = None, None
                held = self._check_step(step, held)
                try:
                    value = self._perform_sync(step)
                except Exception as exc:  # handed to the flow, which decides
                    error = exc
                else:
                    held = held or step is Op.ACQUIRE
        finally:
            flow.close()
            if held:
                self._release()

    def _perform_sync(self, step: Step) -> object:
        if step is Op.ACQUIRE:
            self._acquire_blocking()
        elif step is Op.RELEASE:
            self._release()
        elif step is Op.READ:
            return self._store.read(self._clock.time())
        elif step is Op.ISSUE:
            if self._issue is None:
                raise ConfigurationError(f"{self._what} needs a sync issue function")
            return self._issue()
        elif isinstance(step, Write):
            self._store.write(step.state)
        elif isinstance(step, Wait):
            self._clock.sleep(step.seconds)
        return None

    def _acquire_blocking(self) -> None:
        """Take the process lock, then the file lock (blocking the calling thread).

        Raises :class:`ConfigurationError` if the lock file cannot be created or opened.
        """
        self._thread_lock.acquire()
        try:
            file_lock = self._store.lock()
            try:
                file_lock.acquire()
            except OSError as exc:
                raise self._store.unusable(exc) from None
        except BaseException:
            self._thread_lock.release()
            raise
        self._file_lock = file_lock

    def _release(self) -> None:
        """Release the file lock, then the process lock."""
        file_lock, self._file_lock = self._file_lock, None
        try:
            if file_lock is not None:
                file_lock.release()
        finally:
            self._thread_lock.release()

    # -- the async driver --

    async def _run_async(self, flow: Generator[Step, object, ResultT]) -> ResultT:
        loop_lock: asyncio.Lock | None = None
        value: object = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = flow.throw(error) if error is not None else flow.send(value)
                except StopIteration as stop:
                    result: ResultT = stop.value
                    return result
                value, error = None, None
                self._check_step(step, loop_lock is not None)
                if step is Op.RELEASE and loop_lock is not None:
                    self._release_async(loop_lock)
                    loop_lock = None
                    continue
                try:
                    if step is Op.ACQUIRE:
                        loop_lock = await self._acquire_async()
                    else:
                        value = await self._perform_async(step)
                except Exception as exc:
                    error = exc
        finally:
            flow.close()
            if loop_lock is not None:
                self._release_async(loop_lock)

    async def _perform_async(self, step: Step) -> object:
        if step is Op.READ:
            return await asyncio.to_thread(self._store.read, self._clock.time())
        if step is Op.ISSUE:
            if self._aissue is not None:
                return await self._aissue()
            if self._issue is not None:
                return await asyncio.to_thread(self._issue)
            raise ConfigurationError(f"{self._what} needs an issue function for async use")
        if isinstance(step, Write):
            await asyncio.to_thread(self._store.write, step.state)
        elif isinstance(step, Wait):
            await self._clock.asleep(step.seconds)
        return None

    async def _acquire_async(self) -> asyncio.Lock:
        """Loop lock, then process and file locks in a worker thread; cancellation-safe.

        Returns the loop lock, which the caller hands back to :meth:`_release_async`. If the
        task is cancelled (or the loop shuts down) while the worker waits, the worker itself
        gives the locks back as soon as it gets them, so no lock is ever leaked, whether or not
        the event loop is still running by then.
        """
        loop_lock = _loop_lock(os.path.realpath(self._store.lock_path))
        await loop_lock.acquire()
        handoff = _Handoff()

        def worker() -> None:
            self._acquire_blocking()
            if not handoff.take():
                self._release()

        try:
            await asyncio.to_thread(worker)
        except BaseException:
            if handoff.abandon():
                self._release()
            loop_lock.release()
            raise
        return loop_lock

    def _release_async(self, loop_lock: asyncio.Lock) -> None:
        self._release()
        loop_lock.release()

    def _check_step(self, step: Step, held: bool) -> bool:
        """Driver bookkeeping: the new "held" flag before performing *step*; enforces that
        nothing sleeps while the locks are held."""
        if isinstance(step, Wait):
            assert not held, f"{self._what}: never sleep while holding the locks"
        if step is Op.RELEASE:
            return False
        return held


class _Handoff:
    """Race-free hand-over of locks taken by a worker thread to a task that may have gone."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._abandoned = False
        self._taken = False

    def take(self) -> bool:
        """Worker side, after acquiring: ``False`` if the task is gone (worker must release)."""
        with self._guard:
            self._taken = not self._abandoned
            return self._taken

    def abandon(self) -> bool:
        """Task side, on cancellation: ``True`` if the worker already handed the locks over
        (the task must release them); otherwise the worker will release them itself."""
        with self._guard:
            self._abandoned = True
            return self._taken
