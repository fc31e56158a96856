"""Both distributions build, install and carry what they claim (docs/architecture.md, Packaging).

The artefacts are built once per session with ``python -m build --no-isolation`` (no index
needed: ``build`` and ``hatchling`` come with the test dependencies): an sdist, a wheel built
*from that sdist* (what ``python -m build`` does), and a wheel built straight from the tree. When
``PACKAGING_DIST_DIR`` is set (``nox -s build`` sets it), the artefacts there are checked instead:
``*.tar.gz`` and ``*.whl`` from the sdists, ``tree/*.whl`` from the tree.

Installs go into fresh virtual environments that see this environment's packages through a
``.pth`` file (for pip and hatchling) and get ``--no-index --no-deps --no-build-isolation``:
offline, and only the distribution under test is installed. ``nox -s build`` installs with
dependencies from the index.
"""

from __future__ import annotations

import email.message
import email.parser
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: distribution directory → (project name, package, file-name prefix of its artefacts)
DISTS = {
    "kisclient": ("kisclient", "kisclient", "kisclient-"),
    "hantu_sched": ("hantu-sched", "hantu_sched", "hantu_sched-"),
}
#: Files an sdist holds besides the package sources (.gitignore: hatchling always adds it).
SDIST_EXTRAS = {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "PKG-INFO", ".gitignore"}
REQUIRED_CLASSIFIERS = {
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
    "Topic :: Office/Business :: Financial :: Investment",
    "License :: OSI Approved :: MIT License",
}

# --- artefacts -------------------------------------------------------------------------------


def _build(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *args],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    given = os.environ.get("PACKAGING_DIST_DIR")
    if given:
        return pathlib.Path(given)
    out = tmp_path_factory.mktemp("dists")
    for name in DISTS:
        _build("--outdir", str(out), str(ROOT / "dists" / name))
        _build("--wheel", "--outdir", str(out / "tree"), str(ROOT / "dists" / name))
    return out


def _one(directory: pathlib.Path, prefix: str, suffix: str) -> pathlib.Path:
    found = [
        p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)
    ]
    assert len(found) == 1, (directory, prefix, suffix, found)
    return found[0]


def _tree_files(package: str) -> dict[str, bytes]:
    """The package's files in the source tree (what every artefact must hold), by relative path."""
    base = ROOT / "src"
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in (base / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


def _wheel_files(wheel: pathlib.Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n) for n in z.namelist()}


def _metadata(wheel: pathlib.Path) -> email.message.Message:
    files = _wheel_files(wheel)
    (name,) = [n for n in files if n.endswith(".dist-info/METADATA")]
    return email.parser.BytesParser().parsebytes(files[name])


def _version(package: str) -> str:
    scope: dict[str, object] = {}
    exec((ROOT / "src" / package / "_version.py").read_text(encoding="utf-8"), scope)
    return str(scope["__version__"])


# --- what the artefacts hold -------------------------------------------------------------------


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_sdist_holds_exactly_the_sources(artefacts: pathlib.Path, dist: str) -> None:
    _, package, prefix = DISTS[dist]
    sdist = _one(artefacts, prefix, ".tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name: m for m in tar.getmembers() if not m.isdir()}
        top = f"{prefix}{_version(package)}/"
        assert all(name.startswith(top) for name in members)
        assert all(m.isfile() for m in members.values()), "links in the sdist"
        held = {name.removeprefix(top): tar.extractfile(m).read() for name, m in members.items()}  # type: ignore[union-attr]
    sources = {f"src/{k}": v for k, v in _tree_files(package).items()}
    assert set(held) == set(sources) | SDIST_EXTRAS
    assert {k: held[k] for k in sources} == sources
    assert held["LICENSE"] == (ROOT / "LICENSE").read_bytes()
    assert held["CHANGELOG.md"] == (ROOT / "dists" / dist / "CHANGELOG.md").read_bytes()


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_wheel_from_the_sdist_equals_wheel_from_the_tree(
    artefacts: pathlib.Path, dist: str
) -> None:
    prefix = DISTS[dist][2]
    from_sdist = _wheel_files(_one(artefacts, prefix, ".whl"))
    from_tree = _wheel_files(_one(artefacts / "tree", prefix, ".whl"))
    assert sorted(from_sdist) == sorted(from_tree)
    assert from_sdist == from_tree


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_wheel_holds_the_package_its_license_and_nothing_else(
    artefacts: pathlib.Path, dist: str
) -> None:
    _, package, prefix = DISTS[dist]
    files = _wheel_files(_one(artefacts, prefix, ".whl"))
    info = f"{prefix}{_version(package)}.dist-info/"
    code = {n: b for n, b in files.items() if not n.startswith(info)}
    assert code == _tree_files(package)
    assert f"{package}/py.typed" in code
    assert files[f"{info}licenses/LICENSE"] == (ROOT / "LICENSE").read_bytes()
    assert {n.removeprefix(info) for n in files if n.startswith(info)} >= {
        "METADATA",
        "WHEEL",
        "RECORD",
        "licenses/LICENSE",
    }


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_metadata_is_complete(artefacts: pathlib.Path, dist: str) -> None:
    project, package, prefix = DISTS[dist]
    meta = _metadata(_one(artefacts, prefix, ".whl"))
    assert meta["Name"] == project
    assert meta["Version"] == _version(package)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta["Author"] or meta["Author-email"]
    classifiers = set(meta.get_all("Classifier") or [])
    assert REQUIRED_CLASSIFIERS - {"License :: OSI Approved :: MIT License"} <= classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Changelog", "Documentation"} <= set(urls)
    assert all(u.startswith(urls["Source"]) for u in urls.values())
    assert meta.get_payload()  # the README is the long description


def test_both_distributions_name_the_same_repository(artefacts: pathlib.Path) -> None:
    sources = set()
    for _, _, prefix in DISTS.values():
        urls = _metadata(_one(artefacts, prefix, ".whl")).get_all("Project-URL") or []
        sources |= {u.split(", ", 1)[1] for u in urls if u.startswith("Source, ")}
    assert len(sources) == 1


def test_hantu_sched_requires_holidays_and_kisclient(artefacts: pathlib.Path) -> None:
    meta = _metadata(_one(artefacts, DISTS["hantu_sched"][2], ".whl"))
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("holidays>=") and ";" not in r for r in requires), requires
    assert any(r.startswith("kisclient") and ";" not in r for r in requires), requires
    assert "calendar" not in (meta.get_all("Provides-Extra") or [])


def test_each_distribution_carries_the_root_license() -> None:
    root = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert root.startswith("MIT License")
    assert "kisclient and hantu-sched contributors" in root
    for dist in DISTS:
        assert (ROOT / "dists" / dist / "LICENSE").read_text(encoding="utf-8") == root


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_the_source_link_points_at_the_package(dist: str) -> None:
    package = DISTS[dist][1]
    link = ROOT / "dists" / dist / "src" / package
    assert link.is_symlink()
    assert os.readlink(link) == f"../../../src/{package}"
    assert link.resolve() == (ROOT / "src" / package).resolve()
    assert [p.name for p in (ROOT / "dists" / dist / "src").iterdir()] == [package]


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_declared_dependencies_have_floors(dist: str) -> None:
    """``nox -s lowest`` pins every floor; a dependency without one would go untested."""
    project = tomllib.loads((ROOT / "dists" / dist / "pyproject.toml").read_text("utf-8"))
    deps = list(project["project"]["dependencies"])
    for extra in project["project"].get("optional-dependencies", {}).values():
        deps += extra
    assert deps
    assert all(">=" in d for d in deps), deps


# --- installs ----------------------------------------------------------------------------------


def _venv(path: pathlib.Path) -> pathlib.Path:
    """A fresh venv at *path* that also sees this environment's packages (after its own)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parent = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (pathlib.Path(purelib) / "zz_parent_env.pth").write_text("\n".join(sorted(parent)) + "\n")
    return python


def _run(*command: str, cwd: pathlib.Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout.strip()


def _pip_install(python: pathlib.Path, *args: str) -> None:
    offline = ("--quiet", "--no-index", "--no-deps", "--no-build-isolation")
    _run(str(python), "-m", "pip", "install", *offline, *args)


def _python(python: pathlib.Path, code: str, cwd: pathlib.Path) -> str:
    return _run(str(python), "-c", code, cwd=cwd)


def _requirements(artefacts: pathlib.Path, dist: str, suffix: str) -> list[str]:
    """The artefacts hantu-sched's import needs besides itself (kisclient's), by *suffix*."""
    return [] if dist == "kisclient" else [str(_one(artefacts, "kisclient-", suffix))]


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_editable_install_is_truly_editable(
    artefacts: pathlib.Path, tmp_path: pathlib.Path, dist: str
) -> None:
    """``pip install -e dists/<dist>`` puts the tree on sys.path: an edit shows on next import.

    The layout (sources, the distribution directory, its source link) is copied to *tmp_path*
    so the edit never touches the real tree."""
    project, package, _ = DISTS[dist]
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "src" / package, work / "src" / package)
    shutil.copytree(ROOT / "dists" / dist, work / "dists" / dist, symlinks=True)
    python = _venv(tmp_path / "venv")
    if dist != "kisclient":
        _pip_install(python, *_requirements(artefacts, dist, ".whl"))
    _pip_install(python, "--editable", str(work / "dists" / dist))

    probe = f"import {package}, {package}._version as v; print({package}.__file__)"
    first = _python(python, probe + "; print(getattr(v, 'PROBE', None))", tmp_path)
    location, value = first.splitlines()
    assert pathlib.Path(location).resolve() == (work / "src" / package / "__init__.py").resolve()
    assert value == "None"
    with (work / "src" / package / "_version.py").open("a", encoding="utf-8") as f:
        f.write('\nPROBE = "edited"\n')
    second = _python(python, probe + "; print(getattr(v, 'PROBE', None))", tmp_path)
    assert second.splitlines()[1] == "edited"

    # What pip recorded, and what went on sys.path: only the directory holding the source link.
    site = pathlib.Path(
        _python(python, "import sysconfig; print(sysconfig.get_path('purelib'))", tmp_path)
    )
    (info,) = site.glob(f"{package}-*.dist-info")
    direct = json.loads((info / "direct_url.json").read_text(encoding="utf-8"))
    assert direct["dir_info"] == {"editable": True}
    assert (info / "METADATA").read_text(encoding="utf-8").count(f"Name: {project}") == 1
    (pth,) = site.glob(f"_{package}.pth")
    assert pth.read_text(encoding="utf-8").split() == [str(work / "dists" / dist / "src")]
    assert not (site / package).exists(), "an editable install must not copy the package"


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_sdist_installs_into_a_fresh_venv(
    artefacts: pathlib.Path, tmp_path: pathlib.Path, dist: str
) -> None:
    """pip builds the wheel from the sdist and installs the package into the venv itself."""
    _, package, prefix = DISTS[dist]
    python = _venv(tmp_path / "venv")
    _pip_install(
        python, *_requirements(artefacts, dist, ".tar.gz"), str(_one(artefacts, prefix, ".tar.gz"))
    )
    out = _python(
        python,
        f"import sysconfig, {package} as p; print(p.__file__); print(p.__version__);"
        "print(sysconfig.get_path('purelib'))",
        tmp_path,
    )
    location, version, site = out.splitlines()
    assert pathlib.Path(location) == pathlib.Path(site) / package / "__init__.py"
    assert version == _version(package)
    assert (pathlib.Path(site) / package / "py.typed").is_file()


# --- the README's two commands -----------------------------------------------------------------


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_commands_make_their_own_venv() -> None:
    """Two commands, each usable where ``python3`` is an externally managed system Python."""
    demo, tests = _readme_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/python -m pip install ")
        assert "python3 -m pip" not in command
    assert demo.endswith("-m nox -s demo")
    assert tests.endswith("-m nox -s tests")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci


def test_distribution_readmes_link_the_declared_repository(artefacts: pathlib.Path) -> None:
    """The READMEs are the PyPI pages: their links are absolute and name the repository the
    metadata declares, and the pages they point at exist in this repository."""
    urls = _metadata(_one(artefacts, "kisclient-", ".whl")).get_all("Project-URL") or []
    (source,) = [u.split(", ", 1)[1] for u in urls if u.startswith("Source, ")]
    for dist in DISTS:
        text = (ROOT / "dists" / dist / "README.md").read_text(encoding="utf-8")
        links = [w.strip("<>()[].,") for w in text.split() if "://" in w]
        links = [link[link.index("http") :] for link in links]
        assert links, dist
        for link in links:
            assert link.startswith(source), link
            path = link.removeprefix(source).removeprefix("/blob/main/")
            if path:
                assert (ROOT / path).is_file(), link
