"""hantu_sched and the examples use kisclient's public API only.

kisclient and hantu-sched ship as separately versioned wheels, and users copy the examples, so
neither may import a private kisclient module (``kisclient._x``): every ``import`` and
``from ... import`` statement (at any depth, including inside functions) is parsed with
:mod:`ast`, and so are imported names (``from kisclient import _private``). Tests and
benchmarks may use private names; they are not scanned.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import kisclient

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCANNED = (ROOT / "src" / "hantu_sched", ROOT / "examples")


def private_kisclient_imports(source: str, filename: str = "<text>") -> list[str]:
    """``line: statement`` for every import of a private kisclient module or name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        names: list[str] = []
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] != "kisclient":
                continue
            private_module = any(part.startswith("_") for part in parts[1:])
            private_name = any(name.startswith("_") for name in names)
            if private_module or private_name:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _python_files() -> list[pathlib.Path]:
    files = [path for root in SCANNED for path in sorted(root.rglob("*.py"))]
    assert len(files) > 20, files  # the scan really looked at the package and the examples
    return files


@pytest.mark.parametrize(
    "source",
    [
        "from kisclient._config import ENDPOINTS\n",
        "import kisclient._statedir\n",
        "import kisclient._statedir as sd\n",
        "def f():\n    from kisclient._settings import default_state_dir\n",
        "from kisclient.testing._fake import FakeKIS\n",
        "from kisclient import _version\n",
    ],
)
def test_the_scan_catches_private_imports(source: str) -> None:
    assert private_kisclient_imports(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from kisclient import KISClient, token_status\n",
        "import kisclient\n",
        "from kisclient.testing import FakeKIS\n",
        "from ._settings import Settings\n",  # relative: hantu_sched's own private modules
        "import kisclient_extra._x\n",
    ],
)
def test_the_scan_allows_public_imports(source: str) -> None:
    assert private_kisclient_imports(source) == [], source


def test_shipped_code_and_examples_import_only_public_kisclient_names() -> None:
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in _python_files()
        if (hits := private_kisclient_imports(path.read_text(encoding="utf-8"), str(path)))
    }
    assert offenders == {}


def test_every_kisclient_name_hantu_sched_imports_is_in_its_public_api() -> None:
    """A name imported ``from kisclient import X`` must be listed in ``kisclient.__all__``."""
    public = set(kisclient.__all__)
    missing = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "kisclient":
                missing |= {alias.name for alias in node.names} - public
    assert missing == set()
