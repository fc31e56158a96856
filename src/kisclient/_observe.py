"""The client's observer seam: typed events for an operator's metrics, and nothing else.

``KISClient(..., observer=callback)`` (and ``AsyncKISClient``) calls ``callback(event)`` with
one of the events below, synchronously, on the thread (or event loop) where it happened:

- :class:`RequestObserved`: one HTTP request was sent and its answer classified (every attempt,
  retries, token and approval-key calls included);
- :class:`AdmissionWaited`: the rate limiter admitted a request after *seconds* (``0.0`` when
  it did not wait), on the client's clock;
- :class:`StreamObserved`: a stream connected, reconnected, found the app key's slot locked
  (:class:`~kisclient.StreamSlotBusy`), or dropped events for a slow consumer.

Contract: the callback must be quick and must not call the client. It is never given a secret
(no key, token, account or body; the request's path, ``tr_id`` and KIS's message code only).
An exception it raises is logged (once per exception type) and swallowed: observing never
changes what a call does. No observer (the default) costs one ``is None`` test per effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs

__all__ = [
    "AdmissionWaited",
    "ClientEvent",
    "Observer",
    "RequestObserved",
    "StreamObserved",
    "notify",
]

log = logging.getLogger("kisclient")


@attrs.frozen
class RequestObserved:
    """One request sent and answered (or not: ``status`` ``None`` for a transport error).

    ``route`` is ``"account"`` or ``"data"`` (a data key's market data); ``path`` the
    endpoint's path without the host (``/oauth2/tokenP`` for a token issuance); ``outcome`` is
    ``"ok"`` for a success, else KIS's message code (``"EGW00201"``: rate limited), else
    ``"http_<status>"``, else ``"transport"`` (no answer); ``attempt`` counts from 1 within the
    call."""

    route: str
    path: str
    tr_id: str
    attempt: int
    status: int | None
    outcome: str

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@attrs.frozen
class AdmissionWaited:
    """The rate limiter of *route* admitted one request after *seconds* of waiting."""

    route: str
    seconds: float


@attrs.frozen
class StreamObserved:
    """Something a stream session did: ``connected`` (the first connection), ``reconnected``,
    ``slot_busy`` (opening found the app key's session owned by another process, or KIS said
    OPSP8996), ``dropped`` (*count* events dropped for a slow consumer since the last report)."""

    kind: Literal["connected", "reconnected", "slot_busy", "dropped"]
    count: int = 1


#: What an observer receives.
ClientEvent: TypeAlias = RequestObserved | AdmissionWaited | StreamObserved
#: The ``observer`` argument of both clients.
Observer: TypeAlias = Callable[[ClientEvent], None]

_complained: set[type[BaseException]] = set()


def notify(observer: Observer | None, event: ClientEvent) -> None:
    """Give *event* to *observer* (if any); log and swallow what it raises."""
    if observer is None:
        return
    try:
        observer(event)
    except Exception as exc:  # an observer never changes what a call does
        if type(exc) not in _complained:
            _complained.add(type(exc))
            log.warning("kisclient observer raised %s (ignored)", type(exc).__name__)
