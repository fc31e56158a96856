"""One scheduler per data directory: an exclusive, non-blocking OS file lock.

The lock is ``<data_dir>/hantu_sched.lock`` held with ``flock`` (POSIX; per open file, so it
also excludes a second instance inside the same process) or ``msvcrt.locking`` (Windows). The OS
releases it when the process dies, so a crash never leaves a stale lock. The holder's pid is
written into the file for the error message only.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
from typing import IO

__all__ = ["LOCK_NAME", "DataDirLock", "SchedulerAlreadyRunningError"]

LOCK_NAME = "hantu_sched.lock"


class SchedulerAlreadyRunningError(RuntimeError):
    """Another scheduler instance holds the data directory's lock."""


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt  # noqa: PLC0415 - platform-specific

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl  # noqa: PLC0415 - platform-specific

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class DataDirLock:
    """Exclusive lock on a data directory. ``acquire`` raises
    :class:`SchedulerAlreadyRunningError` at once if it is held; ``release`` is idempotent."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(data_dir) / LOCK_NAME
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._handle is not None

    def acquire(self) -> None:
        if self._handle is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - kept open while held
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SchedulerAlreadyRunningError(
                f"another hantu_sched instance (pid {holder}) is already running on "
                f"{self.path.parent}; refusing to start a second scheduler on the same data "
                "directory"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
            handle.close()  # closing the descriptor releases the lock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
