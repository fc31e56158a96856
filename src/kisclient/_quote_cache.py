"""A short-lived quote cache consulted before the network."""

from __future__ import annotations

import threading

from ._clock import Clock
from ._models import Quote

__all__ = ["QuoteCache"]


class QuoteCache:
    """Quotes by 6-character code, each kept for ``ttl_s`` seconds of the injected clock.

    A TTL of 0 disables the cache (every lookup is a miss and nothing is stored). ``hits`` and
    ``misses`` count lookups. Thread-safe, so sync clients in worker threads may share it.
    """

    def __init__(self, ttl_s: float, clock: Clock) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must not be negative")
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Quote]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, code: str) -> Quote | None:
        """The cached quote of *code* if it is younger than the TTL, else ``None``."""
        with self._lock:
            entry = self._entries.get(code)
            if entry is not None and self._clock.monotonic() - entry[0] < self.ttl_s:
                self.hits += 1
                return entry[1]
            if entry is not None:
                del self._entries[code]
            self.misses += 1
            return None

    def put(self, code: str, quote: Quote) -> None:
        """Remember *quote* for *code* (no-op when the cache is disabled)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._entries[code] = (self._clock.monotonic(), quote)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
