"""A real PostgreSQL server on a free loopback port, for the PostgreSQL storage tests.

The binaries come from the ``pgserver`` wheel (it bundles PostgreSQL 16's ``initdb`` and
``postgres``) that the test session installs (noxfile.py's TEST_DEPS); only its binaries are used,
the server is started here: ``initdb`` into a fresh temporary directory, then ``postgres`` bound to
127.0.0.1 on a free port, trust authentication, no fsync (a test server). PostgreSQL refuses to
run as root, so as root the server runs as ``nobody`` (its directory is handed to that user).

:class:`PgServer` also simulates failures: :meth:`PgServer.partition` cuts one login role off the
database (its sessions are terminated and it cannot log in again) until :meth:`PgServer.heal`;
:meth:`PgServer.stop` / :meth:`PgServer.start` stop and restart the server on the same port with
its data kept. :meth:`PgServer.fresh_database` gives each test its own empty database.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

__all__ = ["PgServer", "pg_binaries", "pg_server", "pg_url"]


def pg_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (from the ``pgserver`` wheel; found
    without importing it: its import has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:  # pragma: no cover - the test session installs it
        raise RuntimeError(
            "no PostgreSQL binaries: install the test dependencies (python -m nox -s tests "
            "does: pgserver)"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL server in a new temporary directory on a free 127.0.0.1 port
    (``fsync=True`` for a durable one, as the benchmark measures; tests need no fsync)."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync
        self.directory = Path(tempfile.mkdtemp(prefix="hantu-pg-"))
        self.port = _free_port()
        self._user = "nobody" if os.geteuid() == 0 else None
        if self._user is not None:
            shutil.chown(self.directory, self._user)
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._initdb()

    def _initdb(self) -> None:
        subprocess.run(
            [
                str(pg_binaries() / "initdb"),
                "-D",
                str(self.directory / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            user=self._user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until it accepts a connection (start-up, not behaviour)."""
        if self.running:
            return
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - the server's life
        args = [
            str(pg_binaries() / "postgres"),
            "-D",
            str(self.directory / "data"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
            "-c",
            f"fsync={'on' if self.fsync else 'off'}",
            "-c",
            "max_connections=200",
        ]
        self._proc = subprocess.Popen(args, user=self._user, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30.0
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"postgres exited: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres did not accept connections within 30 s") from None
                time.sleep(0.02)

    def log_tail(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are disconnected), then wait for the exit."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(database), autocommit=True)

    def fresh_database(self) -> str:
        """A new empty database (owned by ``postgres``); its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def create_role(self, role: str) -> None:
        """A login role with full rights (a "host" whose connections can be cut)."""
        with self.admin() as conn, contextlib.suppress(psycopg.errors.DuplicateObject):
            conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')

    def partition(self, role: str) -> int:
        """Cut *role* off: it can no longer log in and its sessions are terminated; the number
        of sessions ended."""
        with self.admin() as conn:
            conn.execute(f'ALTER ROLE "{role}" NOLOGIN')
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            ).fetchall()
        return len(rows)

    def heal(self, role: str) -> None:
        """Let *role* log in again."""
        with self.admin() as conn:
            conn.execute(f'ALTER ROLE "{role}" LOGIN')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server per test session (per xdist worker)."""
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A URL of a fresh empty database on the session's server."""
    return pg_server.url(pg_server.fresh_database())
