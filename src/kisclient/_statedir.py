"""The per-user state directory: where tokens, locks and shared rate state live, and how they are
written.

Layout under ``state_dir``::

    <state_dir>/<env>-<sha256(app_key)[:16]>/     mode 0700  (:func:`scope_dir`)
        token.json                                 the token store (kisclient._token)
        hantu_token_refresh.lock                   its refresh lock
        ratelimit.json, ratelimit.lock             shared rate-limiter state (kisclient._ratelimit)

The app key never appears in a path, a log line or a repr; only a prefix of its SHA-256 does.
Files are written atomically with mode 0600 (:func:`atomic_write_text`) and are never trusted
when they are empty, corrupt, or readable by other users (:func:`read_private_json`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import fasteners

from ._config import Env
from ._errors import ConfigurationError

__all__ = [
    "FileLock",
    "atomic_write_text",
    "hold_locks",
    "key_fingerprint",
    "make_file_lock",
    "process_lock",
    "read_private_json",
    "scope_dir",
]

log = logging.getLogger("kisclient.state")


def key_fingerprint(app_key: str, length: int = 16) -> str:
    """The first *length* hex digits of SHA-256(*app_key*): safe to show in paths and logs."""
    return hashlib.sha256(app_key.encode("utf-8")).hexdigest()[:length]


def scope_dir(state_dir: Path, env: Env, app_key: str) -> Path:
    """Return (creating it, mode 0700) the directory of one (environment, app key) scope.

    ``state_dir / f"{env.value}-{sha256(app_key)[:16]}"``. A missing *state_dir* is created with
    mode 0700 too; an existing scope directory with a wider mode is narrowed to 0700.
    """
    if not app_key:
        raise ConfigurationError("an app key is needed to locate the token store")
    path = Path(state_dir) / f"{env.value}-{key_fingerprint(app_key)}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ensure_private_dir(path)
    return path


def _ensure_private_dir(path: Path) -> None:
    """Narrow *path* to mode 0700 if it is wider (POSIX only); warn if that is impossible."""
    if os.name != "posix":  # pragma: no cover - Windows has no POSIX modes
        return
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        log.warning("could not restrict %s to mode 0700: %s", path, exc)


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Write *text* to *path* atomically with mode 0600.

    A temporary file in the same directory is written, flushed and (if *durable*) fsynced,
    then renamed over *path* with :func:`os.replace`, and the directory is fsynced (if
    *durable*). A concurrent reader sees either the old complete file or the new complete
    file, never an empty or partial one. ``durable=False`` keeps that atomicity but not
    durability across a power loss (for state that is worthless after a crash anyway).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in *directory* durable (best effort; not supported everywhere)."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


def read_private_json(path: Path, what: str) -> dict[str, Any] | None:
    """Read a JSON object from *path*, or ``None`` if it must not be trusted.

    ``None`` (after a WARNING naming the file, never its content) for: a file readable or
    writable by group or others, a file owned by another user, an empty file, invalid JSON or a
    top-level value that is not an object. A missing file is ``None`` silently.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if os.name == "posix" and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
            log.warning(
                "ignoring %s %s: mode %o or owner is not private", what, path, st.st_mode & 0o777
            )
            return None
        raw = handle.read()
    if not raw.strip():
        log.warning("ignoring empty %s %s", what, path)
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("ignoring corrupt %s %s (not JSON)", what, path)
        return None
    if not isinstance(data, dict):
        log.warning("ignoring corrupt %s %s (not an object)", what, path)
        return None
    return data


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def process_lock(path: Path) -> threading.Lock:
    """The process-global :class:`threading.Lock` for the lock file *path*.

    POSIX record locks (what the file lock uses) do not exclude threads of the same process, and
    closing any descriptor of the file drops them, so every user of a lock file in this process
    must take this lock first.
    """
    key = os.path.realpath(path)
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


class FileLock(Protocol):
    """What :meth:`TokenStore.lock` returns: a ``fasteners.InterProcessLock``-like lock."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...


def make_file_lock(path: Path) -> FileLock:
    """A fresh ``fasteners.InterProcessLock`` on *path* (the file is created with mode 0600)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    lock: FileLock = fasteners.InterProcessLock(str(path))
    return lock


@contextlib.contextmanager
def hold_locks(thread_lock: threading.Lock, file_lock_path: Path) -> Iterator[None]:
    """Hold the process-global *thread_lock*, then the file lock at *file_lock_path*."""
    with thread_lock:
        file_lock = make_file_lock(file_lock_path)
        file_lock.acquire()
        try:
            yield
        finally:
            file_lock.release()
