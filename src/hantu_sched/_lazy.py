"""Public names loaded on first use (PEP 562), for the ``__init__`` of a package whose names live
in private modules: ``import hantu_sched`` (or ``hantu_sched.pipeline``) then costs almost
nothing, and a short command such as ``status`` loads only what it touches."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    exports: Mapping[str, tuple[str, str]],
    public: Iterable[str],
    namespace: MutableMapping[str, Any],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of *package*: name ``N`` with
    ``exports[N] == (module, attribute)`` is ``attribute`` of ``package.module``, imported on
    first use and then stored in *namespace* (the package's globals), so later look-ups are plain
    attribute reads. *public* is the package's ``__all__``."""
    names = frozenset(public)

    def __getattr__(name: str) -> Any:
        try:
            module, attribute = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f".{module}", package), attribute)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
