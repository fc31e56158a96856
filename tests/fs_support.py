"""File-system helpers for tests that need a directory nobody can write to, even as root."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

__all__ = ["read_only"]


@contextlib.contextmanager
def read_only(directory: pathlib.Path) -> Iterator[None]:
    """Make *directory* refuse new entries for the duration: mode 0500, or (root ignores modes)
    the immutable attribute. Restores the directory afterwards."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode & 0o777
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.fail("running as root without chattr: cannot make a directory read-only")
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
