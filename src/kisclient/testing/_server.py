"""FakeKISServer: the fake on a real loopback HTTP port (multi-threaded, keep-alive).

One port serves both environments: ``/paper/...`` is paper, anything else real. Fault kinds that
end the connection close it without an answer. ``connect_error`` cannot refuse a connection per
request (the request must be read to be matched), so on loopback it behaves like
``drop_before``: nothing is processed and the client sees the connection closed.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
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

    def __init__(self, address: tuple[str, int], fake: FakeKIS, family: socket.AddressFamily):
        self.address_family = family
        self.fake = fake
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A client that went away mid-answer (it timed out, or was killed) is normal for a
        gateway; anything else is still reported with its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


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
    """Serve *fake* on ``host:port`` (loopback only; port 0 picks a free one).

    Use as a context manager, or :meth:`start` / :meth:`close`. Serving threads are daemons.
    """

    def __init__(self, fake: FakeKIS, port: int = 0, host: str = "127.0.0.1") -> None:
        if not is_loopback(host):
            raise ValueError(f"the fake KIS server only binds loopback addresses, not {host!r}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._httpd = _HTTPServer((host, port), fake, family)
        self._host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    def base_url(self, env: Env | str = "real") -> str:
        """``http://host:port`` for real, with ``/paper`` appended for paper."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        url = f"http://{host}:{self.port}"
        return url + PAPER_PREFIX if parse_env(env) is Env.PAPER else url

    def start(self) -> FakeKISServer:
        """Start serving in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-kis:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port; silent ``read_timeout`` holds end at once."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

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
        return f"FakeKISServer({self.base_url()!r})"
