"""A rate limit shared by every request of a run (inquiries, writes, retries alike)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``rate`` requests per second, evenly spaced; ``None`` means no limit.

    Each caller reserves the next free slot under a lock, then sleeps outside it until
    that slot, so waiting threads never hold each other up.
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._clock = clock
        self._cancelled = threading.Event()
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self, until: float | None = None) -> bool:
        """Wait for this caller's slot; returns at once, early, once cancelled. False,
        without waiting or taking a slot, if the slot would come after ``until`` (a
        ``clock`` time): the caller gives up instead."""
        if self.rate is None:
            return True
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            if until is not None and slot > until:
                return False
            self._next_slot = slot + 1 / self.rate
        if slot > now:
            self._cancelled.wait(slot - now)
        return True

    def cancel(self) -> None:
        """End every wait, now and later: the run is stopping."""
        self._cancelled.set()
