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
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from plansync import __version__, formats
from plansync.errors import (
    GatewayError,
    GatewayUnavailableError,
    MessageError,
    OutcomeUnknownError,
    TransportError,
)
from plansync.fields import LivePlan, PlanFields
from plansync.gateway import assumptions, codes, messages, transport
from plansync.gateway.breaker import Breaker, SystemicError
from plansync.gateway.envelope import Envelope
from plansync.gateway.messages import Response, Write
from plansync.gateway.ratelimit import RateLimiter
from plansync.gateway.transport import TRIPPED, HttpTransport, Transport
from plansync.printable import printable

log = logging.getLogger(__name__)
# No attempt starts with less of its plan's time budget left than this: it could not be
# answered, and would only be cut off (as "within the 0s request deadline").
_SHORTEST_ATTEMPT = 1.0



@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0  # backoff of our own choosing
    retry_after_max: float = 300.0  # the longest wait a gateway's Retry-After may ask
    budget: float = 60.0  # one plan's exchange, all attempts and waits: no retry past it

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
                 sleep: Callable[[float], object] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.endpoint = endpoint
        self.merchant_id = merchant_id
        self._envelope = envelope
        self._transport = transport
        self._retry = retry or RetryPolicy()
        self._exponents = dict(exponent_overrides or {})
        self._limiter = rate_limiter or RateLimiter(None)
        self._stopping = threading.Event()
        # A stop ends the wait before a retry at once.
        self._sleep = self._stopping.wait if sleep is None else sleep
        self._clock = clock
        self._rng = random.Random()
        self._host = urlsplit(endpoint).netloc
        self.breaker = Breaker()
        self.breaker.on_trip = lambda: self._transport.cut(TRIPPED)

    @classmethod
    def over_http(cls, endpoint: str, merchant_id: str, envelope: Envelope, *,
                  pool_size: int = 8, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                  request_deadline: float = 40.0, **options: Any) -> GatewayClient:
        """A client over HTTP(S), with the proxy and CA bundle the environment sets."""
        http = HttpTransport.from_environment(
            endpoint, pool_size, connect_timeout, read_timeout,
            user_agent=f"plansync/{__version__}", max_body=assumptions.MAX_TOKEN_BYTES,
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
        self.abort()  # a run unwinding (a signal, an error) leaves nothing in flight
        self._transport.close()

    def abort(self) -> None:
        """Stop at once: requests in flight are cut off (a write among them becomes an
        unknown outcome), waits end, and nothing more is sent. For a run that must end
        now: SIGINT, SIGTERM."""
        self._stopping.set()
        self._limiter.cancel()
        self._transport.abort()

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

    # --- one exchange, with retries -------------------------------------------------

    def _exchange(self, plan_id: str, process_type: str,
                  carried: tuple[tuple[str, str], ...],
                  before: Callable[[], None] | None = None) -> Response:
        items = messages.request_items(self.merchant_id, plan_id, process_type, self._clock(),
                                       carried)
        token = self._envelope.seal(messages.build_xml(messages.REQUEST_ROOT, items))
        response = self._attempts(token, dict(items), plan_id, process_type, before)
        self.breaker.succeeded()
        return response

    def _attempts(self, token: str, request: Mapping[str, str], plan_id: str,
                  process_type: str, before: Callable[[], None] | None) -> Response:
        """Up to ``attempts`` tries within the plan's time budget. Every failed attempt
        tells the breaker as it happens: a gateway that stops answering trips it after a
        few attempts, not after a few plans' whole budgets."""
        ends: float | None = None  # the plan's time budget runs from its first attempt on
        previous: GatewayError | None = None  # the error of the last attempt, if one failed

        def give_up(why: str) -> GatewayError:
            nonlocal previous
            assert previous is not None
            previous = _noted(previous, why)
            return previous

        def out_of_budget() -> GatewayError:
            return give_up(f"gave up on plan {plan_id} after {self._retry.budget:g}s, its "
                           "time budget")

        def going() -> None:
            """Whether to try (again): not once stopped; a plan not tried at all once the
            breaker tripped, and not retried then, nor past its time budget."""
            self._check_going(plan_id, process_type)
            if previous is None:
                self.breaker.check()  # nothing more is sent once every request fails alike
            elif self.breaker.tripped is not None:
                raise give_up("not retried: plansync stopped sending")
            elif ends is not None and time.monotonic() >= ends - _SHORTEST_ATTEMPT:
                raise out_of_budget()

        def last_moment() -> float:
            """Once a connection is free (the wait for one may be long): still to go? And
            how long may this attempt take?"""
            nonlocal ends
            going()
            if before is not None:
                before()
            now = time.monotonic()
            ends = now + self._retry.budget if ends is None else ends
            return ends - now

        try:
            for attempt in range(self._retry.attempts):
                going()
                if not self._limiter.acquire(until=ends):  # its turn: past the budget
                    raise out_of_budget()
                seen: dict[str, Any] = {"plan": plan_id, "process_type": process_type,
                                        "attempt": attempt + 1}
                started = time.monotonic()
                try:
                    response = self._send_once(token, request, seen, last_moment)
                    _log_request(seen, started, "ok")
                    return response
                except (SystemicError, Stopped):
                    raise  # not sent
                except GatewayError as exc:
                    if exc is previous:  # given up at the last moment
                        raise
                    _log_request(seen, started, exc.message)
                    final = exc.original if isinstance(exc, _UnusableAnswer) else exc
                    if not isinstance(exc, TransportError) or not exc.retryable \
                            or attempt + 1 == self._retry.attempts:
                        raise final from None
                    if exc.unanswered:  # told at once: each such attempt takes long
                        self.breaker.failed(final)
                    previous = final
                    left = self._retry.budget if ends is None else ends - time.monotonic()
                    self._sleep(self._wait(exc, attempt, plan_id, process_type, final,
                                           left))
            raise AssertionError("unreachable: the last attempt returns or raises")
        except (SystemicError, Stopped):
            raise
        except GatewayError as failed:
            # The plan's request failed: the breaker hears of it once (an unanswered
            # attempt it heard of already, as it failed).
            if not (failed is previous and isinstance(failed, TransportError)
                    and failed.unanswered):
                self.breaker.failed(failed)
            raise

    def _check_going(self, plan_id: str, process_type: str) -> None:
        if self._stopping.is_set():
            raise Stopped(plan_id, process_type)

    def _wait(self, exc: TransportError, attempt: int, plan_id: str, process_type: str,
              final: GatewayError, left: float) -> float:
        """How long to wait before the next attempt: what the gateway asked for
        (Retry-After, shown), else backoff. Raises ``final`` instead when the next attempt
        would start past the plan's time budget (``left`` seconds from now), and stops
        when asked to wait more than retry_after_max."""
        fields = {"plan": plan_id, "process_type": process_type, "attempt": attempt + 1}
        if exc.retry_after is None:
            wait = self._retry.delay(attempt, self._rng)
            if wait >= left:
                final.message += (f"; gave up on plan {plan_id} after "
                                  f"{self._retry.budget:g}s, its time budget")
                raise final from None
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
        if wait >= left:
            raise TransportError(
                f"{exc.message}; it asks to wait {wait:.0f}s (Retry-After), past plan "
                f"{plan_id}'s time budget ({self._retry.budget:g}s for all its attempts)",
                "run again later, or raise plan_budget in plansync.yaml",
                retryable=False, systemic=True) from None
        log.warning("plan %s %s: the gateway asks to wait %.1fs (Retry-After); waiting",
                    plan_id, process_type, wait,
                    extra={"plansync": {**fields, "retry_in_s": round(wait, 3)}})
        return wait

    def _send_once(self, token: str, request: Mapping[str, str], seen: dict[str, Any],
                   last_moment: Callable[[], float]) -> Response:
        """One attempt; ``seen`` collects what the log line tells (status, respCode)."""
        plan_id = request["recurringUniqueID"]
        is_write = request["processType"] != messages.INQUIRY
        try:
            http = self._transport.post(token.encode("ascii"), last_moment)
        except transport.TlsFailed as exc:
            raise TransportError(f"TLS with {self._host} failed: {exc}",
                                 "check the endpoint URL and the machine's CA certificates "
                                 "(or REQUESTS_CA_BUNDLE)", retryable=False,
                                 systemic=True) from None
        except transport.ProxyFailed as exc:
            proxy = getattr(self._transport, "proxy", None) or "the proxy"
            raise TransportError(f"cannot connect through the proxy {proxy} ({exc})",
                                 "check HTTPS_PROXY (and NO_PROXY) and that the proxy is up",
                                 retryable=True, systemic=True) from None
        except transport.NotSent as exc:
            if self._stopping.is_set():
                raise Stopped(plan_id, request["processType"]) from None
            proxy = getattr(self._transport, "proxy", None)
            if proxy:  # the tunnel through it did not open: the proxy's doing, or its peer's
                raise TransportError(f"cannot connect to {self._host} through the proxy "
                                     f"{proxy} ({exc})", "check HTTPS_PROXY (and NO_PROXY), "
                                     "the proxy, and the endpoint", retryable=True,
                                     systemic=True) from None
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
        """A request that was sent, or may have been, and got no complete answer. Counted
        by the breaker: a gateway that stops answering stops the run after a few."""
        if is_write:
            return OutcomeUnknownError(
                f"the write on plan {plan_id} was sent but its answer was lost ({exc})",
                "it may have been applied; inquire the plan before trying again",
                unanswered=exc.timed_out)
        if self._stopping.is_set():
            return Stopped(plan_id, messages.INQUIRY, cut_off=True)
        return TransportError(f"no answer from {self._host} ({exc})", retryable=True,
                              unanswered=exc.timed_out)

    def _refused(self, http: transport.Answer, plan_id: str, is_write: bool) -> GatewayError:
        status = http.status
        retry_after = _retry_after(http.retry_after)
        if 300 <= status < 400:  # never followed: a signed request goes to the endpoint only
            return TransportError(
                f"{self._host} answered HTTP {status}, pointing to "
                f"{_host_of(http.location, self._host)}; plansync never follows a redirect",
                "check the endpoint in plansync.yaml (and any proxy in between); nothing "
                "was sent elsewhere", retryable=False, systemic=True)
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
    if not log.isEnabledFor(logging.INFO):  # the line is not built when no one reads it
        return
    seen["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    seen["outcome"] = outcome
    log.info("plan %s %s attempt %d: HTTP %s respCode %s, %.0f ms: %s", seen["plan"],
             seen["process_type"], seen["attempt"], seen.get("http_status", "-"),
             seen.get("resp_code", "-"), seen["duration_ms"], outcome,
             extra={"plansync": dict(seen)})


class Stopped(TransportError):
    """A request not sent, or an inquiry cut off, because the run is stopping
    (client.abort). A write cut off is an OutcomeUnknownError instead."""

    def __init__(self, plan_id: str, process_type: str, cut_off: bool = False) -> None:
        request = "inquiry" if process_type == messages.INQUIRY else "write"
        super().__init__(f"plan {plan_id}: {transport.STOPPED}, so its {request} was "
                         + ("cut off" if cut_off else "not sent"), retryable=False)


def _noted(error: GatewayError, note: str) -> GatewayError:
    """A copy of ``error`` with ``note`` added to its message; the breaker may hold the
    error itself, as the cause it tripped on, said as it was. (copy.copy would call the
    class with its args, and error classes take keyword-only arguments.)"""
    noted = type(error).__new__(type(error))
    noted.__dict__.update(error.__dict__)
    noted.args = error.args
    noted.message = f"{error.message}; {note}"
    return noted


def _host_of(location: str | None, own: str) -> str:
    """The host a redirect points to (never its path, query or credentials)."""
    if not location:
        return "no location"
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an unreadable location"
    if not host:
        return f"{own} (another path)"
    return printable(f"{host}:{port}" if port else host)[:80]


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
