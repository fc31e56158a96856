"""How often and how long one call may be retried: the per-call :class:`RetryPolicy` and the
per-client :class:`RetryBudget`. No I/O and no HTTP library: settings name a policy without
loading the transport."""

from __future__ import annotations

import random
import threading

import attrs

__all__ = ["RetryBudget", "RetryPolicy"]


@attrs.frozen
class RetryPolicy:
    """Bounds on retrying one call.

    ``max_attempts`` and ``deadline_s`` (total time from the first attempt) bound every call.
    Waits use full jitter: ``uniform(0, min(cap, base * 2**(n-1)))``, but never less than the
    server-specific wait of the code that caused the retry.
    """

    max_attempts: int = 5
    deadline_s: float = 30.0
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 5.0
    jitter: bool = True

    def delay(self, attempt_number: int, server_wait_s: float, rng: random.Random) -> float:
        """Seconds to wait after attempt *attempt_number* (1-based) failed."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt_number - 1))
        backoff = rng.uniform(0.0, ceiling) if self.jitter else ceiling
        return max(backoff, server_wait_s)


class RetryBudget:
    """A per-client retry quota, so an outage does not become a retry storm (after botocore).

    Each retry of a failure costs tokens (``Verdict.budget_cost``); a call that succeeds refunds
    what its retries cost, or 1 when it needed none, up to the capacity. Retries that cost
    nothing (rate-limit and token refreshes, which the limiter and token store already pace) are
    always allowed. Thread-safe: every thread (and task) using a client shares its budget.
    """

    def __init__(self, capacity: int = 100) -> None:
        if capacity < 0:
            raise ValueError(f"retry budget must not be negative, not {capacity}")
        self.capacity = capacity
        self._available = capacity
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        """Tokens left."""
        return self._available

    def try_spend(self, cost: int) -> bool:
        """Take *cost* tokens if there are enough; return whether the retry may go ahead."""
        with self._lock:
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, amount: int = 1) -> None:
        """Record a success: give back *amount* tokens (what its retries cost, or 1)."""
        with self._lock:
            self._available = min(self.capacity, self._available + amount)

    def __repr__(self) -> str:
        return f"RetryBudget({self._available}/{self.capacity})"
