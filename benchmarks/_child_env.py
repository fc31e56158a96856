"""The environment of a benchmark's child interpreter whose start-up is timed.

Bytecode is cached, as an installed package has it (pip compiles at install time), in a
directory of the caller's choosing: an environment with ``PYTHONDONTWRITEBYTECODE=1`` (this
project's development machine has one) would otherwise compile every module of the sources at
every start, and the benchmark would time the compiler.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["cached_bytecode_env"]


def cached_bytecode_env(cache_dir: pathlib.Path | str, **extra: str) -> dict[str, str]:
    """This process's environment without ``KIS_*``, ``HANTU_*`` and ``FORCE_COLOR``, with
    bytecode cached under *cache_dir* and *extra* set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "HANTU_"))}
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    env.update(extra)
    return env
