"""Development sessions. Every session installs what it needs into its own environment.

nox -s tests       the whole suite (what CI runs)
nox -s property    hypothesis with the long profile
nox -s chaos       the randomized soak of issue 9, long (200 in-process + 10 real-process seeds)
nox -s lint        ruff
nox -s typecheck   mypy --strict over both packages and the tests
nox -s build       both wheels, their contents, and kisclient installed alone
nox -s bench       benchmarks (figures go to docs/benchmarks.md)
nox -s demo        the main job on embedded defaults
nox -s record      re-record the vcrpy cassettes from the real API (needs credentials)
nox -s peers       a third-party KIS client (python-kis, from PyPI) against serve (optional)
"""

from __future__ import annotations

import os
import pathlib
import shutil
import zipfile

import nox

ROOT = pathlib.Path(__file__).parent
DISTS = ("dists/kisclient", "dists/hantu_sched")
TEST_DEPS = ("pytest>=8", "hypothesis>=6.100", "vcrpy>=6", "holidays>=0.102")
PYTHON = os.environ.get("NOX_PYTHON") or None
#: The third-party KIS client `nox -s peers` runs against serve (the version tools/peers knows).
PEER = "python-kis==2.1.6"

nox.options.sessions = ["lint", "typecheck", "tests", "build"]
nox.options.reuse_existing_virtualenvs = True


def _install_project(session: nox.Session) -> None:
    session.install(*DISTS)


def _pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Install both distributions and the test dependencies, then run pytest with *args*."""
    _install_project(session)
    session.install(*TEST_DEPS)
    session.run("python", "-m", "pytest", *args, env=env or {})


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (the one CI runs)."""
    _pytest(session, *session.posargs)


@nox.session(python=PYTHON)
def property(session: nox.Session) -> None:
    """Run the property tests with hypothesis's long profile."""
    _pytest(session, "-m", "property", *session.posargs, env={"HYPOTHESIS_PROFILE": "long"})


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """The chaos tests with the soak's long profile: CHAOS_SEEDS in-process simulated days
    (default 200) and CHAOS_PROCESS_SEEDS real-process days (default 10); CHAOS_SEED=N reruns
    one seed. The default test run has a short version (5 + 1 seeds)."""
    seeds = {
        "CHAOS_SEEDS": os.environ.get("CHAOS_SEEDS", "200"),
        "CHAOS_PROCESS_SEEDS": os.environ.get("CHAOS_PROCESS_SEEDS", "10"),
    }
    _pytest(session, "tests/chaos", *session.posargs, env=seeds)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over both packages, the tests, examples and benchmarks."""
    _install_project(session)
    session.install("mypy>=1.10", "nox", *TEST_DEPS)
    session.run("mypy")
    session.run("mypy", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build both wheels, check what is inside, and install kisclient alone."""
    session.install("build>=1.2")
    out = ROOT / "dist"
    shutil.rmtree(out, ignore_errors=True)
    for dist in DISTS:
        session.run("python", "-m", "build", "--wheel", "--outdir", str(out), dist)
    wheels = sorted(out.glob("*.whl"))
    expected = {"kisclient": "kisclient/", "hantu_sched": "hantu_sched/"}
    for wheel in wheels:
        package = "kisclient" if wheel.name.startswith("kisclient-") else "hantu_sched"
        names = zipfile.ZipFile(wheel).namelist()
        foreign = [n for n in names if not (n.startswith(expected[package]) or ".dist-info/" in n)]
        if foreign or f"{package}/py.typed" not in names:
            session.error(f"{wheel.name}: unexpected files {foreign} or no py.typed")
        session.log(f"{wheel.name}: {len(names)} files, only {package}/ plus py.typed and metadata")
    if len(wheels) != 2:
        session.error(f"expected two wheels, got {[w.name for w in wheels]}")
    # kisclient alone in a fresh environment: importable, no trace of hantu_sched.
    venv = pathlib.Path(session.create_tmp()) / "alone"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    kis_wheel = next(w for w in wheels if w.name.startswith("kisclient-"))
    session.run(py, "-m", "pip", "install", "-q", str(kis_wheel), external=True)
    session.run(
        py,
        "-c",
        "import importlib.util, kisclient, kisclient.testing;"
        "assert importlib.util.find_spec('hantu_sched') is None, 'hantu_sched leaked';"
        "print('kisclient', kisclient.__version__, 'installs and imports alone')",
        external=True,
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks against the loopback fake server (figures for docs/benchmarks.md)."""
    _install_project(session)
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job on embedded defaults: no credentials, no internet."""
    _install_project(session)
    # By default the scheduler is killed mid-screening and mid-trading, and recovers both times.
    args = session.posargs or ["--restart-at", "06:03", "--restart-at", "11:00"]
    session.run("python", "-m", "hantu_sched", "simulate", *args)


@nox.session(python=PYTHON)
def record(session: nox.Session) -> None:
    """Re-record the vcrpy cassettes from the real KIS API (needs KIS_APP_KEY etc.)."""
    _pytest(session, "tests/kisclient/test_cassettes.py", *session.posargs, env={"KIS_RECORD": "1"})


@nox.session(python=PYTHON, default=False)
def peers(session: nox.Session) -> None:
    """Optional: a third-party KIS client (PEER, from PyPI) against `serve`, real and paper.

    Only its hosts change; prints a call x environment table and fails if the fake fails a call.
    Not in the default sessions, not run by the test suite."""
    _install_project(session)
    session.install(PEER)
    session.run("python", "tools/peers/run_peer.py", *session.posargs)
