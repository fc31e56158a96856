"""Fault injection: scripted failures that the next matching requests run into.

A :class:`Fault` matches a request by ``path`` and/or ``tr_id``; with both ``None`` it matches any
*data* call (token endpoints are only hit by a fault that names their path). Each fault is used
``times`` times, then forgotten. Faults are tried in the order they were added.
"""

from __future__ import annotations

import threading
from typing import Literal

import attrs

from kisclient._codes import lookup

__all__ = ["AFTER_PROCESSING", "BEFORE_PROCESSING", "Fault", "FaultKind", "FaultList"]

FaultKind = Literal[
    "http_5xx_bare",
    "http_5xx_envelope",
    "latency",
    "connect_error",
    "drop_before",
    "drop_after",
    "read_timeout",
    "malformed_json",
    "truncated_json",
    "rate_burst",
]

#: Kinds that answer (or fail) without processing the request.
BEFORE_PROCESSING = frozenset(
    {"http_5xx_bare", "http_5xx_envelope", "connect_error", "drop_before", "rate_burst"}
)
#: Kinds that process the request (an order executes) and then spoil the answer.
AFTER_PROCESSING = frozenset({"drop_after", "read_timeout", "malformed_json", "truncated_json"})
_KINDS = BEFORE_PROCESSING | AFTER_PROCESSING | {"latency"}


def _check_kind(_: object, __: object, value: str) -> None:
    if value not in _KINDS:
        raise ValueError(f"unknown fault kind {value!r}; expected one of {sorted(_KINDS)}")


def _check_code(_: object, __: object, value: str | None) -> None:
    if value is not None and lookup(value) is None:
        raise ValueError(f"{value!r} is not in kisclient's code table")


@attrs.frozen
class Fault:
    """One scripted failure.

    - ``http_5xx_bare``: HTTP *status* with a plain-text body; nothing processed.
    - ``http_5xx_envelope``: HTTP *status* with a KIS envelope carrying *code* (default
      EGW00202); nothing processed.
    - ``latency``: the request reaches the gateway *delay_s* after it was sent (on the fake's
      clock), then is answered normally (a :class:`~kisclient.FakeClock` just advances). When
      *delay_s* exceeds the client's read timeout the client gives up first, faithfully: in
      process, the fake's clock advances by the timeout, the client gets
      :class:`httpx.ReadTimeout`, and the request (an order executes) is processed only when
      the fake's clock reaches arrival + *delay_s* (before any later request, and before
      ``FakeKIS.orders()``/``cash()``/``holdings()``/``stats`` read state). On loopback the
      server thread waits *delay_s* on the fake's clock, then processes and answers (whoever
      is still listening). Contract: ``Fault("latency", delay_s > timeout)`` → the client sees
      a timeout, the order lands at the fake *delay_s* later on the fake's clock.
    - ``connect_error``: in-process, :class:`httpx.ConnectError`; on loopback the connection is
      closed before the request is processed (the client cannot tell it from ``drop_before``).
    - ``drop_before``: received, connection closed unprocessed.
    - ``drop_after``: processed (an order executes), connection closed without an answer.
    - ``read_timeout``: processed, then in-process :class:`httpx.ReadTimeout`; on loopback the
      server holds the connection silent for *delay_s* real seconds (default 10 s) or until the
      server stops.
    - ``malformed_json`` / ``truncated_json``: processed, answer body spoiled / cut in half.
    - ``rate_burst``: EGW00201 regardless of the rate window; nothing processed.
    """

    kind: FaultKind = attrs.field(validator=_check_kind)
    path: str | None = None
    tr_id: str | None = None
    times: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    delay_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    status: int = 500
    code: str | None = attrs.field(default=None, validator=_check_code)

    def matches(self, path: str, tr_id: str, *, data_call: bool) -> bool:
        """Whether this fault applies to a request for *path* carrying *tr_id*."""
        if self.path is None and self.tr_id is None:
            return data_call
        return (self.path is None or self.path == path) and (
            self.tr_id is None or self.tr_id == tr_id
        )


@attrs.define
class _Armed:
    fault: Fault
    left: int


class FaultList:
    """The pending faults. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        """Arm *fault* for its next ``times`` matching requests."""
        with self._lock:
            self._pending.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        """Faults not yet used up (each listed once)."""
        with self._lock:
            return [armed.fault for armed in self._pending]

    def take(self, path: str, tr_id: str, *, data_call: bool) -> Fault | None:
        """Consume one use of the first fault matching the request, if any."""
        with self._lock:
            for armed in self._pending:
                if armed.fault.matches(path, tr_id, data_call=data_call):
                    armed.left -= 1
                    if armed.left <= 0:
                        self._pending.remove(armed)
                    return armed.fault
            return None
