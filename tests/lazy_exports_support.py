"""Checks for a package whose ``__init__`` loads its public names on first use (PEP 562): the
lazy table, the type checkers' imports and ``__all__`` must name the same things, and every
name must resolve to the object its private module defines."""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import subprocess
import sys
from types import ModuleType


def type_checking_imports(package: ModuleType) -> dict[str, tuple[str, str]]:
    """The ``if TYPE_CHECKING:`` block's imports of *package*'s ``__init__``: name -> (module
    without the leading dot, attribute)."""
    assert package.__file__ is not None
    tree = ast.parse(pathlib.Path(package.__file__).read_text(encoding="utf-8"))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "expected one 'if TYPE_CHECKING:' block"
    found: dict[str, tuple[str, str]] = {}
    for node in blocks[0].body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names:
            found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def check_lazy_exports(package: ModuleType) -> None:
    exports: dict[str, tuple[str, str]] = package._EXPORTS
    assert set(exports) == set(package.__all__) - {"__version__"}
    assert type_checking_imports(package) == exports
    for name, (module, attribute) in exports.items():
        defined = getattr(importlib.import_module(f"{package.__name__}.{module}"), attribute)
        assert getattr(package, name) is defined, name
    assert set(package.__all__) <= set(dir(package))


def modules_loaded_by(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running *statement*."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    ).stdout
    return set(out.split())
