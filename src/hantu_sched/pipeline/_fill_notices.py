"""Fill notices for the trading job: KIS's real-time execution notices, when configured.

With ``PipelineConfig.fill_notices`` the trading job opens the client's stream before it places
orders and subscribes to this HTS id's notices (``kisclient.Fill``). Notices are the fast path;
polling the day's orders stays the fallback and the authority (recovery reconciles by polling).
If the stream cannot be opened (no ``KIS_HTS_ID``, another process owns the app key's session,
the WebSocket is unreachable) the job logs why and polls only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from kisclient import ConfigurationError, Fill, KISError

if TYPE_CHECKING:  # the clients load when a job builds one, not with the pipeline
    from kisclient import KISClient, Stream

__all__ = ["FillNotices"]


class FillNotices:
    """The fill notices of one trading run. ``filled`` maps an order number to the quantity
    the notices reported filled; ``notices`` counts every notice received (acceptances too)."""

    def __init__(self, kis: KISClient, log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self._kis = kis
        self._log = log
        self._stream: Stream | None = None
        self.filled: dict[str, int] = {}
        self.notices = 0

    @property
    def active(self) -> bool:
        return self._stream is not None

    def open(self) -> None:
        """Open the stream and subscribe to fill notices, or log why not (polling only)."""
        stream = self._kis.stream()
        try:
            stream.open()
        except (KISError, ConfigurationError, OSError) as exc:
            self._log.warning("fill notices unavailable (%s): polling only", exc)
            return
        try:
            stream.subscribe_fills()
        except (KISError, ConfigurationError, OSError) as exc:
            self._log.warning("fill notices unavailable (%s): polling only", exc)
            stream.close()
            return
        self._stream = stream
        self._log.info("fill notices: subscribed")

    def drain(
        self, mine: Collection[str], *, until_filled: Collection[str] = (), grace_s: float = 0.0
    ) -> None:
        """Take every notice already received. With *until_filled*, wait (real time, at most
        *grace_s*) until the notices cover those order numbers' fills."""
        if self._stream is None:
            return
        deadline = time.monotonic() + grace_s
        while True:
            missing = [n for n in until_filled if n not in self.filled]
            timeout = max(0.0, deadline - time.monotonic()) if missing else 0.0
            try:
                event = self._stream.recv(timeout=timeout)
            except (TimeoutError, EOFError):
                return
            except KISError as exc:
                self._log.warning("fill notices stopped (%s): polling only", exc)
                self.close()
                return
            if isinstance(event, Fill) and event.order_no in mine:
                self.notices += 1
                if event.filled:
                    self.filled[event.order_no] = self.filled.get(event.order_no, 0) + event.qty
                    self._log.info(
                        "fill notice: order %s %s %s %d @ %d",
                        event.order_no, event.side, event.code, event.qty, event.price,
                    )  # fmt: skip

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
