"""In-process httpx transports (sync and async) in front of a :class:`FakeKIS`.

Environment routing is by URL (see :func:`kisclient.testing._http.route`). Faults become the
exceptions a real network would raise: ``connect_error`` → :class:`httpx.ConnectError` (nothing
arrived), ``drop_before``/``drop_after`` → :class:`httpx.RemoteProtocolError`, ``read_timeout``
→ :class:`httpx.ReadTimeout`. ``latency`` waits on the fake's clock; a delay longer than the
request's read timeout (``request.extensions["timeout"]["read"]``) advances the fake's clock by
the timeout, raises :class:`httpx.ReadTimeout` and leaves the request on its way: the fake
processes it when its clock reaches arrival + delay (before any later request, and before its
public accessors read state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._faults import Fault
from ._http import FakeRequest, FakeResponse, route

if TYPE_CHECKING:
    from ._fake import FakeKIS

__all__ = ["AsyncFakeTransport", "FakeTransport"]


def _fake_request(request: httpx.Request, body: bytes) -> FakeRequest:
    env, path = route(request.url.host, request.url.port, request.url.path)
    return FakeRequest.build(
        request.method,
        env,
        path,
        query=request.url.params.multi_items(),
        headers=[
            (k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.headers.raw
        ],
        body=body,
    )


def _before(fake: FakeKIS, request: httpx.Request, fake_request: FakeRequest) -> Fault | None:
    """Take the matching fault and raise for the kinds that stop the request early."""
    fault = fake._take_fault(fake_request)
    if fault is None:
        return None
    if fault.kind == "connect_error":
        raise httpx.ConnectError("fake KIS: connection refused", request=request)
    if fault.kind == "drop_before":
        fake._note_arrival(fake_request)
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    return fault


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, int | float) else None


def _outlasts(fault: Fault, request: httpx.Request) -> float | None:
    """The read timeout a ``latency`` fault outlasts (the client gives up first), or ``None``."""
    read = _read_timeout(request)
    return read if read is not None and fault.delay_s > read else None


def _deliver(request: httpx.Request, answer: FakeResponse) -> httpx.Response:
    if answer.after == "drop":
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if answer.after == "timeout":
        raise httpx.ReadTimeout("fake KIS: read timed out", request=request)
    return httpx.Response(
        answer.status, headers=answer.headers, content=answer.body, request=request
    )


class FakeTransport(httpx.BaseTransport):
    """Sync transport: ``httpx.Client(transport=fake.transport(), base_url=...)``."""

    def __init__(self, fake: FakeKIS) -> None:
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fake_request = _fake_request(request, request.read())
        fault = _before(self._fake, request, fake_request)
        if fault is not None and fault.kind == "latency":
            timeout = _outlasts(fault, request)
            if timeout is not None:
                self._fake._defer(fake_request, fault.delay_s)
                self._fake.clock.sleep(timeout)
                raise httpx.ReadTimeout("fake KIS: read timed out (slow gateway)", request=request)
            self._fake.clock.sleep(fault.delay_s)
        return _deliver(request, self._fake._process(fake_request, fault))


class AsyncFakeTransport(httpx.AsyncBaseTransport):
    """Async transport: ``httpx.AsyncClient(transport=fake.async_transport(), ...)``."""

    def __init__(self, fake: FakeKIS) -> None:
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fake_request = _fake_request(request, await request.aread())
        fault = _before(self._fake, request, fake_request)
        if fault is not None and fault.kind == "latency":
            timeout = _outlasts(fault, request)
            if timeout is not None:
                self._fake._defer(fake_request, fault.delay_s)
                await self._fake.clock.asleep(timeout)
                raise httpx.ReadTimeout("fake KIS: read timed out (slow gateway)", request=request)
            await self._fake.clock.asleep(fault.delay_s)
        return _deliver(request, self._fake._process(fake_request, fault))
