"""The one place plansync talks HTTP: a 2C2P Recurring Maintenance client.

Retries are for what is safe to send again: inquiries, and writes that are known not to
have left this machine (connection refused, DNS, connect timeout, 429). An update or a
cancel whose answer is lost after it was sent raises OutcomeUnknownError instead; only a
later inquiry can tell whether it took effect.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from plansync.config import Settings
from plansync.errors import (
    GatewayError,
    GatewayUnavailableError,
    OutcomeUnknownError,
    TransportError,
)
from plansync.gateway import assumptions, codes, formats, messages
from plansync.gateway.envelope import Envelope
from plansync.gateway.messages import LivePlan, PlanFields, Response
from plansync.gateway.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; the gateway's Retry-After wins."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class GatewayClient:
    def __init__(self, endpoint: str, merchant_id: str, envelope: Envelope, *,
                 pool_size: int = 8, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 retry: RetryPolicy | None = None,
                 exponent_overrides: Mapping[str, int] | None = None,
                 rate_limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.endpoint = endpoint
        self.merchant_id = merchant_id
        self._envelope = envelope
        self._timeouts = (connect_timeout, read_timeout)
        self._retry = retry or RetryPolicy()
        self._exponents = dict(exponent_overrides or {})
        self._limiter = rate_limiter or RateLimiter(None)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()
        self._host = urlsplit(endpoint).netloc
        self._session = requests.Session()
        # requests would re-read the proxy and CA variables from the environment on every
        # request (a third of our CPU per plan); read them once, here, instead.
        self._session.proxies = requests.utils.get_environ_proxies(endpoint)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle and endpoint.startswith("https:"):  # TLS is never off: only whose CAs
            self._session.verify = ca_bundle
        self._session.trust_env = False
        # Every request is the same POST but for its body: prepare it once, copy it per
        # request (Session.post would re-merge settings each time: 0.25 ms a request).
        self._template = requests.Request("POST", endpoint,
                                          headers={"Content-Type": "text/plain"}).prepare()
        # Our own retry loop decides what is safe to resend, so urllib3 must not retry.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0,
                              pool_block=True)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, settings: Settings, pool_size: int = 8,
                      rate_limit: float | None = None) -> GatewayClient:
        return cls(settings.endpoint, settings.merchant_id, settings.envelope(),
                   pool_size=pool_size, connect_timeout=settings.connect_timeout,
                   read_timeout=settings.read_timeout,
                   exponent_overrides=settings.currency_exponents,
                   rate_limiter=RateLimiter(rate_limit))

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
        self._session.close()

    # --- the three operations -------------------------------------------------------

    def inquire(self, plan_id: str) -> LivePlan:
        response = self._exchange(plan_id, messages.INQUIRY, None, 2)
        return messages.live_plan(response, self._exponents)

    def update(self, plan_id: str, fields: PlanFields, currency: str) -> Response:
        """Send the carried fields; amounts use ``currency``'s minor unit."""
        exponent = formats.currency_exponent(currency, self._exponents)
        return self._exchange(plan_id, messages.UPDATE, fields, exponent)

    def cancel(self, plan_id: str) -> Response:
        return self._exchange(plan_id, messages.CANCEL, None, 2)

    # --- one exchange, with retries -------------------------------------------------

    def _exchange(self, plan_id: str, process_type: str, fields: PlanFields | None,
                  exponent: int) -> Response:
        xml = messages.build_request(self.merchant_id, plan_id, process_type, self._clock(),
                                     fields, exponent)
        token = self._envelope.seal(xml)
        is_write = process_type != messages.INQUIRY
        for attempt in range(self._retry.attempts):
            self._limiter.acquire()
            try:
                return self._send_once(token, plan_id, is_write)
            except TransportError as exc:
                if not exc.retryable or attempt + 1 == self._retry.attempts:
                    raise
                wait = self._retry.delay(attempt, self._rng, exc.retry_after)
                log.debug("plan %s %s: %s; retrying in %.2fs", plan_id, process_type, exc, wait)
                self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send_once(self, token: str, plan_id: str, is_write: bool) -> Response:
        request = self._template.copy()
        request.prepare_body(token.encode("ascii"), None)
        try:
            http = self._session.send(request, timeout=self._timeouts, allow_redirects=False)
        except requests.RequestException as exc:
            raise self._lost(exc, plan_id, is_write) from None
        if http.status_code != 200:
            raise self._refused(http, plan_id, is_write)
        try:
            response = messages.read_response(self._envelope.open(http.content))
            if response.plan_id and response.plan_id != plan_id:
                raise GatewayError(f"answer is for plan {response.plan_id}, not {plan_id}")
        except GatewayError as exc:
            if is_write:
                raise OutcomeUnknownError(
                    f"the answer to the write on plan {plan_id} cannot be read: {exc.message}",
                    "the write may have been applied; inquire the plan before trying again"
                ) from None
            raise
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

    def _lost(self, exc: requests.RequestException, plan_id: str, is_write: bool
              ) -> GatewayError:
        """Map a request that got no HTTP answer to 'never left' or 'lost after sending'."""
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(f"TLS with {self._host} failed: {exc}",
                                  "check the endpoint URL and the machine's CA certificates",
                                  retryable=False)
        never_left = isinstance(exc, requests.exceptions.ConnectTimeout) or _is_connect_failure(exc)
        if never_left:
            return TransportError(f"cannot connect to {self._host}",
                                  "check the endpoint and the network", retryable=True)
        if is_write:
            return OutcomeUnknownError(
                f"the write on plan {plan_id} was sent but its answer was lost "
                f"({type(exc).__name__})",
                "it may have been applied; inquire the plan before trying again")
        return TransportError(f"no answer from {self._host} ({type(exc).__name__})",
                              retryable=True)

    def _refused(self, http: requests.Response, plan_id: str, is_write: bool) -> GatewayError:
        status = http.status_code
        retry_after = _retry_after(http.headers.get("Retry-After"))
        if status == 429:  # refused before any work is done: safe to resend
            return TransportError(f"{self._host} is rate limiting (HTTP 429)", retryable=True,
                                  retry_after=retry_after)
        if 400 <= status < 500:
            body = http.text[:80].strip().replace("\n", " ")
            return GatewayUnavailableError(f"HTTP {status}", body, "request refused",
                                           assumptions.UNREADABLE_REQUEST_HINT)
        if is_write:
            return OutcomeUnknownError(
                f"the write on plan {plan_id} got HTTP {status} after it was sent",
                "it may have been applied; inquire the plan before trying again")
        return TransportError(f"{self._host} answered HTTP {status}", retryable=True,
                              retry_after=retry_after)


def _is_connect_failure(exc: requests.RequestException) -> bool:
    """True when urllib3 could not open a connection (refused, DNS): nothing was sent."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, NewConnectionError):
            return True
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException) and reason is not cause:
            cause = reason
            continue
        cause = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) \
            else None
    return False


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
