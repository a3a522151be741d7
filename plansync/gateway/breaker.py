"""Stop sending when requests keep failing the same systemic way.

A wrong key, a wrong merchant id, an endpoint that refuses connections, fails TLS,
redirects or stops answering: such an error hits every plan alike, and 300 plans made 300
identical lines in 28 s (a gateway that dripped its answers held 50 plans for 1043 s).
After ``threshold`` consecutive failed requests of one systemic kind (each attempt counts,
as it fails; no success between), the breaker trips: no further request is sent, and the
error is reported once. A plan whose first request was never sent is "not tried".
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from plansync.errors import (
    EnvelopeError,
    GatewayError,
    GatewayRejectedError,
    MerchantRejectedError,
    OutcomeUnknownError,
    TransportError,
)

NOT_TRIED = "not tried"  # how a request the breaker stopped begins its message


class SystemicError(GatewayError):
    """A request not sent because the breaker tripped on ``cause``."""

    def __init__(self, cause: GatewayError) -> None:
        super().__init__(f"{NOT_TRIED}: {cause.message}", cause.hint)
        self.cause = cause


def kind(error: GatewayError) -> str | None:
    """Which systemic failure ``error`` is, or None for one that concerns a single plan."""
    if isinstance(error, MerchantRejectedError):
        return "merchant"  # 03, 14
    if isinstance(error, GatewayRejectedError) and error.code in ("13", "96"):
        return f"unreadable {error.code}"
    if isinstance(error, GatewayRejectedError) and error.code.startswith("HTTP 4"):
        return "unreadable request"  # refused before any answer was made
    if isinstance(error, EnvelopeError):
        return "answer does not open"  # our copy of 2C2P's key, or of ours, is wrong
    if isinstance(error, TransportError) and error.systemic:
        return "endpoint"  # TLS, connection refused, DNS, a proxy, no answer, a redirect
    if isinstance(error, OutcomeUnknownError) and error.unanswered:
        return "endpoint"  # a write that got no answer: the gateway may have stopped
    return None


class Breaker:
    def __init__(self, threshold: int = 3) -> None:
        self.threshold = threshold
        # Called once, as it trips: the client cuts the requests still in flight, which
        # would only fail alike, later (the run then ends at once).
        self.on_trip: Callable[[], None] = lambda: None
        self.tripped: GatewayError | None = None
        self._lock = threading.Lock()
        self._kind: str | None = None
        self._count = 0

    def check(self) -> None:
        """Before sending: refuse once tripped."""
        if self.tripped is not None:
            raise SystemicError(self.tripped)

    def succeeded(self) -> None:
        with self._lock:
            self._count = 0

    def failed(self, error: GatewayError) -> None:
        failure = kind(error)
        tripped = False
        with self._lock:
            if failure is None:  # a plan-specific answer: the gateway reads us fine
                self._count = 0
                return
            self._count = self._count + 1 if failure == self._kind else 1
            self._kind = failure
            if self._count >= self.threshold and self.tripped is None:
                self.tripped = error
                tripped = True
        if tripped:
            self.on_trip()
