"""The per-user state directory: where tokens, locks and shared rate state live, and how they are
written.

Layout under ``state_dir``::

    <state_dir>/<env>-<sha256(app_key)[:16]>/     mode 0700  (:func:`scope_dir`)
        token.json                                 the token store (kisclient._token)
        hantu_token_refresh.lock                   its refresh lock
        ratelimit.json, ratelimit.lock             shared rate-limiter state (kisclient._ratelimit)

The app key never appears in a path, a log line or a repr; only a prefix of its SHA-256 does.
Every directory kisclient creates, at every level, gets mode 0700. Files are written atomically
with mode 0600 (:func:`atomic_write_text`) and are never trusted when they are not regular files,
empty, corrupt, readable by other users (:func:`read_private_json`), or carry time stamps later
than the rules that wrote them allow (:func:`stamps_from_the_future`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeGuard, TypeVar

import fasteners

from ._config import Env
from ._errors import ConfigurationError

__all__ = [
    "CLOCK_TOLERANCE_S",
    "FileLock",
    "ScopedFile",
    "atomic_write_text",
    "hold_file_lock",
    "is_json_number",
    "key_fingerprint",
    "make_file_lock",
    "process_lock",
    "read_private_json",
    "scope_dir",
    "stamps_from_the_future",
]

log = logging.getLogger("kisclient.state")

T = TypeVar("T")


def key_fingerprint(app_key: str, length: int = 16) -> str:
    """The first *length* hex digits of SHA-256(*app_key*): safe to show in paths and logs."""
    return hashlib.sha256(app_key.encode("utf-8")).hexdigest()[:length]


def scope_dir(state_dir: Path, env: Env, app_key: str) -> Path:
    """Return (creating it, mode 0700) the directory of one (environment, app key) scope.

    ``state_dir / f"{env.value}-{sha256(app_key)[:16]}"``. Every missing level, *state_dir* and
    its missing parents included, is created with mode 0700 whatever the umask; an existing
    scope directory with a wider mode is narrowed to 0700. Raises :class:`ConfigurationError`
    (naming the path) if *state_dir* or the scope path exists but is not a directory, or if a
    missing level cannot be created.
    """
    if not app_key:
        raise ConfigurationError("an app key is needed to locate the token store")
    root = Path(state_dir)
    path = root / f"{env.value}-{key_fingerprint(app_key)}"
    for level in (root, path):
        if level.exists() and not level.is_dir():
            raise ConfigurationError(f"kisclient state path {level} exists but is not a directory")
    try:
        _make_private_dirs(path)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the kisclient state directory {path}: {exc.strerror or exc}"
        ) from None
    _ensure_private_dir(path)
    return path


def _make_private_dirs(path: Path) -> None:
    """Create *path* and its missing parents, each with mode exactly 0700.

    :func:`os.makedirs` applies *mode* to the leaf only and the umask to every level, so each
    missing level is created here and then chmod-ed. Existing levels are left alone.
    """
    missing = []
    level = path
    while not level.is_dir():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # another process created it meanwhile: not ours to chmod
        if os.name == "posix":
            directory.chmod(0o700)


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


#: ``O_NONBLOCK`` where it exists: opening a FIFO then returns at once instead of waiting for a
#: writer (for a regular file the flag changes nothing).
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def read_private_json(path: Path, what: str) -> dict[str, Any] | None:
    """Read a JSON object from *path*, or ``None`` if it must not be trusted.

    ``None`` (after a WARNING naming *what* and the file, never its content) for: something that
    is not a regular file (a FIFO is opened non-blocking and never read, a directory is not
    read), a file readable or writable by group or others, a file owned by another user, an
    empty file, invalid or too deeply nested JSON, or a top-level value that is not an object.
    A missing file is ``None`` silently; an unreadable one (an :class:`OSError` other than
    "missing") is ``None`` with a WARNING. Never blocks, never raises for the file's content.
    """
    raw = _read_regular_private_file(path, what)
    if raw is None:
        return None
    if not raw.strip():
        log.warning("ignoring empty %s %s", what, path)
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        log.warning("ignoring corrupt %s %s (not JSON, or nested too deeply)", what, path)
        return None
    if not isinstance(data, dict):
        log.warning("ignoring corrupt %s %s (not an object)", what, path)
        return None
    return data


def _read_regular_private_file(path: Path, what: str) -> bytes | None:
    """The bytes of *path* if it is a private regular file; ``None`` (warned, unless missing)
    otherwise. One ``open``, one ``fstat``, then reads: no extra system call per use."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring unreadable %s %s: %s", what, path, exc.strerror or exc)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            log.warning("ignoring %s %s: not a regular file", what, path)
            return None
        if os.name == "posix" and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
            log.warning(
                "ignoring %s %s: mode %o or owner is not private", what, path, st.st_mode & 0o777
            )
            return None
        return _read_all(fd, st.st_size)
    except OSError as exc:
        log.warning("ignoring unreadable %s %s: %s", what, path, exc.strerror or exc)
        return None
    finally:
        os.close(fd)


def _read_all(fd: int, size_hint: int) -> bytes:
    """Everything left in *fd* (a regular file whose size was *size_hint* a moment ago)."""
    chunks = []
    while chunk := os.read(fd, max(size_hint, 4096) + 1):
        chunks.append(chunk)
    return b"".join(chunks)


#: How far after ``clock.time()`` a time stamp read from shared state may lie and still be
#: trusted. Every process of the user reads the same system clock, so a stamp written "now" by
#: another process is never later than this one's "now" by more than scheduling noise; anything
#: further ahead was written before the clock was set back, or is corrupt.
CLOCK_TOLERANCE_S = 1.0


def stamps_from_the_future(
    path: Path, what: str, now: float, stamps: Iterable[tuple[str, float | None, float]]
) -> bool:
    """Whether any time stamp read from *path* lies further after *now* than the rules allow.

    *stamps* holds ``(name, value, horizon_s)``: the rules that wrote *value* put it at most
    *horizon_s* after the writer's clock (0 for "the time of an event", the longest allowed
    penalty for a deadline). A value later than ``now + horizon_s + CLOCK_TOLERANCE_S`` cannot
    have come from a correct writer on this clock: the caller must treat the file as corrupt and
    reset that state, so no wait derived from the file exceeds what the rules allow. ``True``
    comes with one WARNING naming *what*, the file and the first offending field; ``None``
    values are ignored.
    """
    for name, value, horizon_s in stamps:
        if value is not None and value > now + horizon_s + CLOCK_TOLERANCE_S:
            log.warning(
                "resetting %s %s: %s lies %.0fs in the future (written before the clock was set "
                "back, or corrupt)",
                what,
                path,
                name,
                value - now,
            )
            return True
    return False


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
def hold_file_lock(file_lock_path: Path) -> Iterator[None]:
    """Hold the file lock at *file_lock_path* (take its :func:`process_lock` first).

    Raises :class:`OSError` if the lock file cannot be created or opened.
    """
    file_lock = make_file_lock(file_lock_path)
    file_lock.acquire()
    try:
        yield
    finally:
        file_lock.release()


def is_json_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ScopedFile:
    """A small JSON state file of one (environment, app key) scope, and the lock beside it.

    Subclasses name the file, the lock file, what it is (for messages) and its schema, and turn
    the payload into their state. :meth:`_read_payload` never raises or blocks for a missing,
    non-regular, empty, corrupt, wrong-schema, foreign-scope or non-private file (it is
    ignored, logged at WARNING, and ``None`` returned); :meth:`_write_payload` is atomic, mode
    0600, in the 0700 scope directory. A write or lock the file system refuses raises
    :class:`ConfigurationError` naming the directory. Writers hold :meth:`thread_lock`, then
    :meth:`lock`.
    """

    FILE_NAME: ClassVar[str]
    LOCK_FILE_NAME: ClassVar[str]
    WHAT: ClassVar[str]
    SCHEMA: ClassVar[int] = 1

    def __init__(self, state_dir: Path, env: Env, app_key: str) -> None:
        self.env = env
        self.directory = scope_dir(state_dir, env, app_key)
        self.path = self.directory / self.FILE_NAME
        self.lock_path = self.directory / self.LOCK_FILE_NAME
        self._key_hash = key_fingerprint(app_key)
        self.key_label = key_fingerprint(app_key, 8)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={self.env.value}, key={self.key_label}, "
            f"dir={self.directory})"
        )

    def _read_payload(self, decode: Callable[[dict[str, Any]], T]) -> T | None:
        """The file's payload through *decode*, or ``None`` if nothing trustworthy is stored
        (*decode* raising ``ValueError``, ``TypeError`` or ``OverflowError`` means a wrong
        schema)."""
        data = read_private_json(self.path, self.WHAT)
        if data is None:
            return None
        try:
            if data.get("schema") != self.SCHEMA:
                raise ValueError(f"unknown schema {data.get('schema')!r}")
            if data.get("env") != self.env.value or data.get("key") != self._key_hash:
                raise ValueError("file belongs to another environment or app key")
            return decode(data)
        except (ValueError, TypeError, OverflowError) as exc:
            log.warning("ignoring %s %s with a wrong schema: %s", self.WHAT, self.path, exc)
            return None

    def _write_payload(self, payload: dict[str, Any]) -> None:
        """Replace the file atomically with *payload* plus the schema and scope fields."""
        scoped = {"schema": self.SCHEMA, "env": self.env.value, "key": self._key_hash, **payload}
        try:
            atomic_write_text(self.path, json.dumps(scoped, indent=1, sort_keys=True))
        except OSError as exc:
            raise self.unusable(exc) from None

    def lock(self) -> FileLock:
        """A new ``fasteners.InterProcessLock`` on the lock file. It excludes other processes
        only: take :meth:`thread_lock` first. Raises :class:`ConfigurationError` if the lock
        file cannot be created."""
        try:
            return make_file_lock(self.lock_path)
        except OSError as exc:
            raise self.unusable(exc) from None

    def thread_lock(self) -> threading.Lock:
        """The process-global lock of this lock file, shared by every manager in the process."""
        return process_lock(self.lock_path)

    def unusable(self, exc: OSError) -> ConfigurationError:
        """The error for a store (or its lock) that the file system refuses."""
        return ConfigurationError(
            f"kisclient {self.WHAT} in {self.directory} is not usable "
            f"({exc.strerror or exc}): make that directory writable by this user, mode 0700"
        )
