"""Where a client goes when nothing else is said: the environment a name means, its REST base
URL and the per-user state directory. Light on purpose (no attrs classes, no HTTP): read-only
tools such as ``hantu_sched status`` need these and nothing else of the client's settings."""

from __future__ import annotations

import os
import pathlib
import sys

from ._config import Env, EnvName, env_settings
from ._config import parse_env as _parse_env
from ._errors import ConfigurationError

__all__ = ["default_base_url", "default_state_dir", "parse_env"]


def parse_env(value: EnvName | Env | str) -> Env:
    """The :class:`Env` named by *value*: ``"real"`` or ``"paper"`` (also KIS's own names
    ``"prod"`` and ``"vps"``), any case, surrounding blanks ignored; an :class:`Env` is returned
    as is. Raises :class:`ConfigurationError` (a :class:`ValueError`) naming the accepted
    spellings for anything else."""
    try:
        return _parse_env(value)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def default_base_url(env: EnvName | Env | str) -> str:
    """The documented REST base URL of *env* (no trailing slash), as the clients use it when
    ``base_url`` is not given. Raises :class:`ConfigurationError` for an unknown *env*."""
    return env_settings(parse_env(env)).base_url


def default_state_dir() -> pathlib.Path:
    """The user's cache directory for kisclient (tokens, locks, shared rate state)."""
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or str(pathlib.Path.home() / "AppData" / "Local")
        return pathlib.Path(root) / "kisclient"
    if sys.platform == "darwin":
        return pathlib.Path.home() / "Library" / "Caches" / "kisclient"
    root = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(root) / "kisclient"
