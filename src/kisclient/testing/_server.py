"""FakeKISServer: the fake on real loopback HTTP ports (multi-threaded, keep-alive).

Two ports, as the real gateway has two hosts: the real environment on :attr:`FakeKISServer.port`
and paper on :attr:`FakeKISServer.paper_port` (every path there is paper, so a client that joins
absolute paths to its base URL reaches paper). On the real port ``/paper/...`` stays an alias for
paper (the prefix is stripped), for users of the single-port layout. Fault kinds that
end the connection close it without an answer. ``connect_error`` cannot refuse a connection per
request (the request must be read to be matched), so on loopback it behaves like
``drop_before``: nothing is processed and the client sees the connection closed.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from kisclient._config import Env, parse_env

from ._http import PAPER_PREFIX, FakeRequest, route

if TYPE_CHECKING:
    from ._fake import FakeKIS

__all__ = ["FakeKISServer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether *host* is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        fake: FakeKIS,
        family: socket.AddressFamily,
        *,
        env: Env | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.address_family = family
        self.fake = fake
        #: ``None``: route by path (``/paper/...`` is paper); otherwise every request is *env*.
        self.env = env
        self.log = log
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A client that went away mid-answer (it timed out, or was killed) is normal for a
        gateway: one line to *log* if there is one, never a traceback. Any other error is one
        line to *log* (with the serving port's environment), or, without *log*, the usual
        traceback (so tests see it)."""
        exc = sys.exc_info()[1]
        gone = isinstance(exc, (ConnectionError, TimeoutError))
        if self.log is not None:
            what = "client went away" if gone else "error while answering"
            self.log(f"fake-kis: {what} ({_peer(client_address)}): {type(exc).__name__}: {exc}")
            return
        if gone:
            return
        super().handle_error(request, client_address)


def _peer(address: Any) -> str:
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: requests carry secrets in headers; nothing is logged."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        env, path = route("", None, split.path)
        if self.server.env is not None:
            env = self.server.env
        request = FakeRequest.build(
            self.command,
            env,
            path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=self.headers.items(),
            body=body,
        )
        fault = fake._take_fault(request)
        if fault is not None and fault.kind in ("connect_error", "drop_before"):
            if fault.kind == "drop_before":
                fake._note_arrival(request)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "latency":
            fake.clock.sleep(fault.delay_s)
        answer = fake._process(request, fault)
        if answer.after is not None:
            if answer.after == "timeout":
                self.server.stopping.wait(answer.hold_s)
            self.close_connection = True
            return
        # send_response_only: the Date header is the fake's (on its clock), not http.server's.
        self.send_response_only(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


class FakeKISServer:
    """Serve *fake* on ``host:port`` (real; ``/paper/...`` there is paper too) and
    ``host:paper_port`` (paper), loopback only; port 0 picks a free one.

    *log*, if given, receives one line per client that went away mid-answer and per error
    while answering (no tracebacks); without it, disconnects are silent and other errors print
    their traceback. Use as a context manager, or :meth:`start` / :meth:`close`. Serving threads
    are daemons.
    """

    def __init__(
        self,
        fake: FakeKIS,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        paper_port: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the fake KIS server only binds loopback addresses, not {host!r}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._httpd = _HTTPServer((host, port), fake, family, log=log)
        try:
            self._paper = _HTTPServer((host, paper_port), fake, family, env=Env.PAPER, log=log)
        except BaseException:
            self._httpd.server_close()
            raise
        self._host = host
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The bound port of the real environment."""
        return int(self._httpd.server_address[1])

    @property
    def paper_port(self) -> int:
        """The bound port of the paper environment."""
        return int(self._paper.server_address[1])

    def base_url(self, env: Env | str = "real") -> str:
        """``http://host:port`` of *env*'s port (``http://host:port/paper`` on the real port
        also reaches paper: :meth:`alias_url`)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        port = self.paper_port if parse_env(env) is Env.PAPER else self.port
        return f"http://{host}:{port}"

    def alias_url(self) -> str:
        """The single-port paper URL: the real port with the ``/paper`` prefix."""
        return self.base_url("real") + PAPER_PREFIX

    def start(self) -> FakeKISServer:
        """Start serving in daemon threads (idempotent)."""
        if not self._threads:
            for httpd, port in ((self._httpd, self.port), (self._paper, self.paper_port)):
                thread = threading.Thread(
                    target=httpd.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"fake-kis:{port}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return self

    def close(self) -> None:
        """Stop serving and release the ports; silent ``read_timeout`` holds end at once."""
        for httpd in (self._httpd, self._paper):
            httpd.stopping.set()
        if self._threads:
            for httpd in (self._httpd, self._paper):
                httpd.shutdown()
            for thread in self._threads:
                thread.join()
            self._threads = []
        self._httpd.server_close()
        self._paper.server_close()

    def __enter__(self) -> FakeKISServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeKISServer({self.base_url()!r}, paper={self.base_url('paper')!r})"
