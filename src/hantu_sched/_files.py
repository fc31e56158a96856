"""Crash-safe file writes shared by the batch store and the reports."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

__all__ = ["atomic_write_bytes"]


def atomic_write_bytes(path: pathlib.Path, body: bytes, *, mode: int | None = None) -> None:
    """Write *body* to *path* so that a reader sees the old file or the new one, never a torn one.

    A temporary file in the same directory is written and fsynced, renamed over *path*, and the
    directory is fsynced (best effort where directories cannot be fsynced). Missing parent
    directories are created. The file is private (0600) unless *mode* says otherwise (the
    metrics textfile is 0644: node-exporter reads it as another user). On any failure the
    temporary file is removed and the error raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # not every platform can open a directory to fsync it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
