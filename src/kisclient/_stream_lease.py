"""The stream lease: at most one WebSocket session per app key among the processes of one host.

KIS allows one WebSocket session per app key; a second socket gets ``OPSP8996`` and may keep the
slot locked for a long time (as reported), so a process must know *before* connecting that no
other process (or other stream in this process) on the same state directory holds the slot.

Files in the scope directory (see :mod:`kisclient._statedir`)::

    stream.lock          an exclusive, non-blocking inter-process lock: the truth
    stream-owner.json    {pid, host, since} of the holder (atomic, 0600): only names the owner

A crashed holder's lock is released by the operating system, so a stale owner file never blocks
anybody: the next :meth:`StreamLease.acquire` takes the lock and overwrites it. The lock is a
POSIX record lock, meaningful among processes that share the file on one host; it does not
coordinate hosts (nothing here elects an owner across hosts). Acquisition never waits, so the
sync and async stream shells share it as is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import fasteners

from ._config import Env
from ._errors import ConfigurationError, StreamSlotBusy
from ._statedir import (
    atomic_write_text,
    key_fingerprint,
    process_lock,
    read_private_json,
    scope_dir,
)

__all__ = ["OWNER_FILE_NAME", "STREAM_LOCK_FILE_NAME", "StreamLease"]

log = logging.getLogger("kisclient.stream")

#: File name of the stream slot lock inside the scope directory.
STREAM_LOCK_FILE_NAME = "stream.lock"
#: File name of the file naming the slot's holder, beside the lock.
OWNER_FILE_NAME = "stream-owner.json"


#: How processes share the one session instead (the relay, ``kisclient._stream_relay``).
_SHARE_HINT: Final = "; to share it, open the stream with stream(relay=True) in every process"


class StreamLease:
    """The right to open the one WebSocket session of (environment, app key) on this host.

    :meth:`acquire` never waits: it takes a per-process guard (so a second stream in this
    process is refused too) and then an exclusive inter-process lock on ``stream.lock``, writes
    ``stream-owner.json`` and returns; if the slot is held it raises :class:`StreamSlotBusy`
    naming the holder's pid and host (``owner_pid``/``owner_host``; ``None`` and "unknown" if the
    owner file cannot be read). :meth:`release` removes the owner file if it is still this
    lease's and releases the locks; it is idempotent. Use as a context manager for both.
    Problems with the state directory raise :class:`ConfigurationError`.

    A lease shared across hosts can be lost to another holder while held; ``on_lost`` (any
    thread may call it, once) is how the session holding it hears of that. This host's file
    lease is never lost.
    """

    #: Called (from any thread) when the held lease was taken over; set by the session.
    on_lost: Callable[[], None] | None = None

    def __init__(self, state_dir: Path, env: Env, app_key: str) -> None:
        self.env = env
        self.directory = scope_dir(state_dir, env, app_key)
        self.lock_path = self.directory / STREAM_LOCK_FILE_NAME
        self.owner_path = self.directory / OWNER_FILE_NAME
        self.key_label = key_fingerprint(app_key, 8)
        self._guard = process_lock(self.lock_path)
        self._file_lock: Any = None  # fasteners.InterProcessLock while held
        self._since: float | None = None
        self._state_lock = threading.Lock()  # serialises acquire/release of this object

    def __repr__(self) -> str:
        state = "held" if self.held else "free"
        return f"StreamLease(env={self.env.value}, key={self.key_label}, {state})"

    @property
    def held(self) -> bool:
        """Whether this lease object currently holds the slot."""
        return self._file_lock is not None

    def __enter__(self) -> StreamLease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the slot without waiting, or raise :class:`StreamSlotBusy`.

        Raises :class:`StreamSlotBusy` also if this very object already holds it.
        """
        with self._state_lock:
            # The process guard comes first: opening and closing the lock file in a process
            # that holds the POSIX lock would drop that lock.
            if not self._guard.acquire(blocking=False):
                raise self._busy(in_process=True)
            try:
                file_lock = self._take_file_lock()
                if file_lock is None:
                    raise self._busy(in_process=False)
                try:
                    since = time.time()
                    self._write_owner(since)
                except BaseException:
                    file_lock.release()
                    raise
            except BaseException:
                self._guard.release()
                raise
            self._file_lock, self._since = file_lock, since
        log.info(
            "took the KIS WebSocket slot (env=%s, key=%s, pid %d)",
            self.env.value,
            self.key_label,
            os.getpid(),
        )

    def release(self) -> None:
        """Give the slot back: remove the owner file if it still names this lease, then
        release the locks. Does nothing if the slot is not held by this object."""
        with self._state_lock:
            file_lock, since = self._file_lock, self._since
            if file_lock is None:
                return
            self._file_lock, self._since = None, None
            try:
                if self._owner_record() == (os.getpid(), socket.gethostname(), since):
                    with contextlib.suppress(FileNotFoundError):
                        self.owner_path.unlink()
            except OSError as exc:
                log.warning("could not remove the stream owner file %s: %s", self.owner_path, exc)
            finally:
                try:
                    file_lock.release()
                finally:
                    self._guard.release()

    def owner(self) -> tuple[int, str, float] | None:
        """``(pid, host, since)`` from the owner file, or ``None`` if absent or unreadable.

        For status tools: it names the last recorded holder. A holder that crashed leaves its
        file behind although the slot is free (the lock is the truth, not this file).
        """
        return self._owner_record()

    # -- helpers --

    def _take_file_lock(self) -> Any:
        """A held ``fasteners.InterProcessLock`` on ``stream.lock``, or ``None`` if another
        process holds it."""
        try:
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            file_lock = fasteners.InterProcessLock(str(self.lock_path))
            if file_lock.acquire(blocking=False):
                return file_lock
        except OSError as exc:
            raise self._unusable(exc) from None
        handle = getattr(file_lock, "lockfile", None)  # fasteners leaves it open on failure
        if handle is not None:
            handle.close()
            file_lock.lockfile = None
        return None

    def _write_owner(self, since: float) -> None:
        payload = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        try:
            atomic_write_text(self.owner_path, json.dumps(payload, sort_keys=True), durable=False)
        except OSError as exc:
            raise self._unusable(exc) from None

    def _owner_record(self) -> tuple[int, str, float] | None:
        data = read_private_json(self.owner_path, "stream owner file")
        if data is None:
            return None
        pid, host, since = data.get("pid"), data.get("host"), data.get("since")
        if (
            not isinstance(pid, int)
            or isinstance(pid, bool)
            or not isinstance(host, str)
            or not isinstance(since, int | float)
            or isinstance(since, bool)
        ):
            log.warning("ignoring stream owner file %s with a wrong schema", self.owner_path)
            return None
        return pid, host, float(since)

    def _busy(self, *, in_process: bool) -> StreamSlotBusy:
        record = self._owner_record()
        if in_process:
            pid, host = os.getpid(), socket.gethostname()
            who = f"this process (pid {pid} on host {host})"
        elif record is not None:
            pid, host = record[0], record[1]
            who = f"pid {pid} on host {host}"
        else:
            return StreamSlotBusy(
                f"the KIS WebSocket slot (env={self.env.value}, key={self.key_label}) is held "
                "by another process (owner unknown: pid unknown, host unknown); KIS allows one "
                f"session per app key{_SHARE_HINT}",
            )
        return StreamSlotBusy(
            f"the KIS WebSocket slot (env={self.env.value}, key={self.key_label}) is held by "
            f"{who}; KIS allows one session per app key{'' if in_process else _SHARE_HINT}",
            owner_pid=pid,
            owner_host=host,
        )

    def _unusable(self, exc: OSError) -> ConfigurationError:
        return ConfigurationError(
            f"kisclient stream lease in {self.directory} is not usable "
            f"({exc.strerror or exc}): make that directory writable by this user, mode 0700"
        )
