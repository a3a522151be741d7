"""The one place plansync talks to the gateway: a 2C2P Recurring Maintenance client.

Retries are for what is safe to send again: inquiries, and writes that are known not to
have left this machine (connection refused, DNS, connect timeout, 429). An update or a
cancel whose answer is lost after it was sent raises OutcomeUnknownError instead; only a
later inquiry can tell whether it took effect.
"""

from __future__ import annotations

import logging
import random
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from plansync import formats
from plansync.errors import (
    GatewayError,
    GatewayUnavailableError,
    MessageError,
    OutcomeUnknownError,
    TransportError,
)
from plansync.gateway import assumptions, codes, messages, transport
from plansync.gateway.breaker import Breaker
from plansync.gateway.envelope import Envelope
from plansync.gateway.messages import LivePlan, PlanFields, Response, Write
from plansync.gateway.ratelimit import RateLimiter
from plansync.gateway.transport import HttpTransport, Transport
from plansync.printable import printable

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0  # backoff of our own choosing
    retry_after_max: float = 300.0  # the longest wait a gateway's Retry-After may ask

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class GatewayClient:
    """Talks to the gateway through ``transport`` (over_http: the real one)."""

    def __init__(self, endpoint: str, merchant_id: str, envelope: Envelope,
                 transport: Transport, *,
                 retry: RetryPolicy | None = None,
                 exponent_overrides: Mapping[str, int] | None = None,
                 rate_limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.endpoint = endpoint
        self.merchant_id = merchant_id
        self._envelope = envelope
        self._transport = transport
        self._retry = retry or RetryPolicy()
        self._exponents = dict(exponent_overrides or {})
        self._limiter = rate_limiter or RateLimiter(None)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()
        self._host = urlsplit(endpoint).netloc
        self.breaker = Breaker()

    @classmethod
    def over_http(cls, endpoint: str, merchant_id: str, envelope: Envelope, *,
                  pool_size: int = 8, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                  request_deadline: float = 40.0, **options: Any) -> GatewayClient:
        """A client over HTTP(S), with the proxy and CA bundle the environment sets."""
        http = HttpTransport.from_environment(
            endpoint, pool_size, connect_timeout, read_timeout,
            user_agent=f"plansync/{version('plansync')}", max_body=assumptions.MAX_TOKEN_BYTES,
            deadline=request_deadline)
        return cls(endpoint, merchant_id, envelope, http, **options)

    @property
    def key_fingerprint(self) -> str:
        return self._envelope.fingerprint()

    @property
    def exponents(self) -> Mapping[str, int]:
        return self._exponents

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    # --- the three operations -------------------------------------------------------

    def inquire(self, plan_id: str) -> LivePlan:
        response = self._exchange(plan_id, messages.INQUIRY, ())
        return messages.live_plan(response, self._exponents)

    def update_write(self, plan_id: str, fields: PlanFields, currency: str) -> Write:
        """The update carrying ``fields`` (amounts in ``currency``'s minor unit), encoded;
        a value outside the documented ranges is refused here, never sent."""
        try:
            exponent = formats.currency_exponent(currency, self._exponents)
            return messages.update_write(plan_id, fields, exponent)
        except ValueError as exc:
            raise MessageError(f"plan {plan_id} cannot be sent: {exc}") from None

    def cancel_write(self, plan_id: str, live: LivePlan | None) -> Write:
        """The cancel, carrying what assumptions.CANCEL_CARRIES names from ``live``."""
        try:
            exponent = formats.currency_exponent(live.currency, self._exponents) if live else 2
            return messages.cancel_write(plan_id, live, exponent)
        except ValueError as exc:
            raise MessageError(f"plan {plan_id} cannot be sent: {exc}") from None

    def send(self, write: Write, before: Callable[[], None] | None = None) -> Response:
        """Send the write, calling ``before`` at the last moment before each attempt
        leaves: it raises (HeldBack) to keep the write from leaving."""
        return self._exchange(write.plan_id, write.process_type, write.carried, before)

    def update(self, plan_id: str, fields: PlanFields, currency: str) -> Response:
        return self.send(self.update_write(plan_id, fields, currency))

    def cancel(self, plan_id: str, live: LivePlan | None = None) -> Response:
        return self.send(self.cancel_write(plan_id, live))

    # --- one exchange, with retries -------------------------------------------------

    def _exchange(self, plan_id: str, process_type: str,
                  carried: tuple[tuple[str, str], ...],
                  before: Callable[[], None] | None = None) -> Response:
        items = messages.request_items(self.merchant_id, plan_id, process_type, self._clock(),
                                       carried)
        token = self._envelope.seal(messages.build_xml(messages.REQUEST_ROOT, items))
        request = dict(items)
        try:
            response = self._attempts(token, request, plan_id, process_type, before)
        except GatewayError as exc:
            self.breaker.failed(exc)
            raise
        self.breaker.succeeded()
        return response

    def _attempts(self, token: str, request: Mapping[str, str], plan_id: str,
                  process_type: str, before: Callable[[], None] | None) -> Response:
        for attempt in range(self._retry.attempts):
            self.breaker.check()  # nothing more is sent once every request fails alike
            self._limiter.acquire()
            seen: dict[str, Any] = {"plan": plan_id, "process_type": process_type,
                                    "attempt": attempt + 1}
            started = time.monotonic()
            try:
                response = self._send_once(token, request, seen, before)
                _log_request(seen, started, "ok")
                return response
            except GatewayError as exc:
                _log_request(seen, started, exc.message)
                if not isinstance(exc, TransportError):
                    raise
                if not exc.retryable or attempt + 1 == self._retry.attempts:
                    if isinstance(exc, _UnusableAnswer):
                        raise exc.original from None
                    raise
                self._sleep(self._wait(exc, attempt, plan_id, process_type))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, exc: TransportError, attempt: int, plan_id: str,
              process_type: str) -> float:
        """How long to wait before the next attempt: what the gateway asked for
        (Retry-After, shown), else backoff; asked for more than retry_after_max, stop."""
        fields = {"plan": plan_id, "process_type": process_type, "attempt": attempt + 1}
        if exc.retry_after is None:
            wait = self._retry.delay(attempt, self._rng)
            log.debug("plan %s %s: retrying in %.2fs (%s)", plan_id, process_type, wait,
                      exc.message, extra={"plansync": {**fields, "retry_in_s": round(wait, 3)}})
            return wait
        wait = exc.retry_after
        if wait > self._retry.retry_after_max:
            raise TransportError(
                f"{exc.message}; it asks to wait {wait:.0f}s (Retry-After), more than "
                f"retry_after_max ({self._retry.retry_after_max:g}s)",
                "run again later, or raise retry_after_max in plansync.yaml",
                retryable=False, systemic=True) from None
        log.warning("plan %s %s: the gateway asks to wait %.1fs (Retry-After); waiting",
                    plan_id, process_type, wait,
                    extra={"plansync": {**fields, "retry_in_s": round(wait, 3)}})
        return wait

    def _send_once(self, token: str, request: Mapping[str, str], seen: dict[str, Any],
                   before: Callable[[], None] | None = None) -> Response:
        """One attempt; ``seen`` collects what the log line tells (status, respCode)."""
        plan_id = request["recurringUniqueID"]
        is_write = request["processType"] != messages.INQUIRY
        try:
            http = self._transport.post(token.encode("ascii"), before)
        except transport.TlsFailed as exc:
            raise TransportError(f"TLS with {self._host} failed: {exc}",
                                 "check the endpoint URL and the machine's CA certificates "
                                 "(or REQUESTS_CA_BUNDLE)", retryable=False,
                                 systemic=True) from None
        except transport.NotSent as exc:
            raise TransportError(f"cannot connect to {self._host} ({exc})",
                                 "check the endpoint and the network", retryable=True,
                                 systemic=True) from None
        except transport.AnswerLost as exc:
            raise self._lost(exc, plan_id, is_write) from None
        seen["http_status"] = http.status
        if http.status != 200:
            raise self._refused(http, plan_id, is_write)
        try:
            response = messages.read_response(self._envelope.open(http.body))
            seen["resp_code"] = response.code
            messages.check_bound(response, request)
        except GatewayError as exc:
            if is_write:
                raise OutcomeUnknownError(
                    f"the answer to the write on plan {plan_id} cannot be used: {exc.message}",
                    "the write may have been applied; inquire the plan before trying again"
                ) from None
            raise _UnusableAnswer(exc) from None
        if response.code == codes.SUCCESS:
            return response
        rejection = codes.rejection(response.code, response.reason)
        if response.code in codes.RETRYABLE_CODES:
            if not is_write:
                raise TransportError(str(rejection), retryable=True)
            if response.code == "95":  # timed out inside the gateway: it may have committed
                raise OutcomeUnknownError(f"the write on plan {plan_id} timed out at the "
                                          "gateway (95)", "inquire the plan before retrying")
        raise rejection

    def _lost(self, exc: transport.AnswerLost, plan_id: str, is_write: bool) -> GatewayError:
        """A request that was sent, or may have been, and got no complete answer."""
        if is_write:
            return OutcomeUnknownError(
                f"the write on plan {plan_id} was sent but its answer was lost ({exc})",
                "it may have been applied; inquire the plan before trying again")
        return TransportError(f"no answer from {self._host} ({exc})", retryable=True)

    def _refused(self, http: transport.Answer, plan_id: str, is_write: bool) -> GatewayError:
        status = http.status
        retry_after = _retry_after(http.retry_after)
        if status == 429:  # refused before any work is done: safe to resend
            return TransportError(f"{self._host} is rate limiting (HTTP 429)", retryable=True,
                                  retry_after=retry_after)
        if 400 <= status < 500:
            return GatewayUnavailableError(f"HTTP {status}", _excerpt(http.body),
                                           "request refused",
                                           assumptions.UNREADABLE_REQUEST_HINT)
        if is_write:
            return OutcomeUnknownError(
                f"the write on plan {plan_id} got HTTP {status} after it was sent",
                "it may have been applied; inquire the plan before trying again")
        return TransportError(f"{self._host} answered HTTP {status}", retryable=True,
                              retry_after=retry_after)


def _log_request(seen: dict[str, Any], started: float, outcome: str) -> None:
    """-v: one line per request attempt — never a body, token or key."""
    seen["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    seen["outcome"] = outcome
    log.info("plan %s %s attempt %d: HTTP %s respCode %s, %.0f ms: %s", seen["plan"],
             seen["process_type"], seen["attempt"], seen.get("http_status", "-"),
             seen.get("resp_code", "-"), seen["duration_ms"], outcome,
             extra={"plansync": dict(seen)})


class _UnusableAnswer(TransportError):
    """An inquiry's answer that does not verify, parse or bind to its request: asking
    again is safe, and it may be a passing fault. The last one is raised as it was."""

    def __init__(self, original: GatewayError) -> None:
        super().__init__(original.message, original.hint, retryable=True)
        self.original = original


_TOKEN_RE = re.compile(r"eyJ[A-Za-z0-9_\-.]*")


def _excerpt(body: bytes, limit: int = 80) -> str:
    """What a gateway's error body says, safe to show: printable text only, no token (a
    JOSE token could be the request itself), at most ``limit`` characters."""
    text = body.decode("utf-8", "replace")
    text = _TOKEN_RE.sub("[token]", text)
    text = " ".join(printable(text.replace("\n", " ")).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:  # urllib3's parser, uncapped: the cap is retry_after_max's, applied above
        return Retry(retry_after_max=sys.maxsize).parse_retry_after(value)
    except InvalidHeader:
        return None
