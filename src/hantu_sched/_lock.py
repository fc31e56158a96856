"""One scheduler per data directory: an exclusive, non-blocking OS lock on the directory itself.

On POSIX the lock is ``flock`` on the data directory, opened ``O_RDONLY | O_DIRECTORY``. A
directory cannot be deleted while it has entries and cannot silently be re-created under a running
scheduler, so an operator or a tmp cleaner deleting or replacing a file never frees the lock
(issue 9, item 4). ``flock`` is per open file description, so it also excludes a second instance
inside the same process, and the OS releases it when the process dies: a crash never leaves a
stale lock.

``hantu_sched.lock`` in the directory is only a pid file for messages and ``status``: it is
written after the lock is taken, re-written by :meth:`DataDirLock.refresh` if someone deleted or
replaced it, and emptied on release. A pid in it whose process is gone is a *stale record*
(the scheduler was killed): :func:`lock_holder` says so. On Windows, where a directory cannot be
opened for locking, ``msvcrt.locking`` on the pid file is used as before.

The lock is the first line of defence; the second is the storage's owner epoch
(:meth:`~hantu_sched._storage.SQLiteStorage.claim`), which fences journal writes of a deposed
instance even if two instances ever got past the lock (e.g. a data directory on a network file
system where ``flock`` is not shared).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys

import attrs

__all__ = ["LOCK_NAME", "DataDirLock", "LockHolder", "SchedulerAlreadyRunningError", "lock_holder"]

LOCK_NAME = "hantu_sched.lock"


class SchedulerAlreadyRunningError(RuntimeError):
    """Another scheduler instance holds the data directory's lock."""


def _open_target(directory: pathlib.Path) -> int:
    """A descriptor to lock: the directory itself (POSIX) or the pid file (Windows)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt  # noqa: PLC0415 - platform-specific

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl  # noqa: PLC0415 - platform-specific

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(path: pathlib.Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _pid_alive(pid: int) -> bool:
    """True if a process *pid* exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover - e.g. Windows semantics
        return False
    return True


@attrs.frozen
class LockHolder:
    """What the pid file says about the data directory's scheduler.

    ``pid`` is the recorded pid (``None`` if there is none); ``alive`` whether that process
    exists. :meth:`describe` is the one line ``status`` and ``doctor`` print.
    """

    pid: int | None
    alive: bool

    @property
    def running(self) -> bool:
        """True if a recorded scheduler process is alive."""
        return self.pid is not None and self.alive

    def describe(self) -> str:
        if self.pid is None:
            return "not running"
        if self.alive:
            return f"running (pid {self.pid})"
        return f"not running (stale record of pid {self.pid})"


def lock_holder(data_dir: str | os.PathLike[str]) -> LockHolder:
    """Read the pid file of *data_dir* without touching the lock (safe while ``run`` starts)."""
    pid = _read_pid(pathlib.Path(data_dir) / LOCK_NAME)
    return LockHolder(pid, pid is not None and _pid_alive(pid))


class DataDirLock:
    """Exclusive lock on a data directory. ``acquire`` raises
    :class:`SchedulerAlreadyRunningError` at once if it is held; ``release`` is idempotent."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(data_dir)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write our pid, or raise :class:`SchedulerAlreadyRunningError`."""
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _open_target(self.directory)
        if not _try_lock(fd):
            os.close(fd)
            holder = _read_pid(self.path)
            raise SchedulerAlreadyRunningError(
                f"another hantu_sched instance (pid {holder or 'unknown'}) is already running "
                f"on {self.directory}; refusing to start a second scheduler on the same data "
                "directory"
            )
        self._fd = fd
        try:
            self._write_pid()
        except OSError:
            self.release()
            raise

    def _write_pid(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - the pid file is the locked file
            assert self._fd is not None
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
            return
        self.path.write_text(f"{os.getpid()}\n", encoding="ascii")

    def refresh(self) -> None:
        """Re-write the pid file if it was deleted or no longer names this process (the lock
        itself is unaffected by that). Best effort: an unwritable directory is ignored."""
        if self._fd is None or _read_pid(self.path) == os.getpid():
            return
        with contextlib.suppress(OSError):
            self._write_pid()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if sys.platform != "win32" and _read_pid(self.path) == os.getpid():
            with contextlib.suppress(OSError):
                self.path.write_text("", encoding="ascii")
        os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
