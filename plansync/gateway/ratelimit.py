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

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            self._next_slot = slot + 1 / self.rate
        if slot > now:
            self._sleep(slot - now)
