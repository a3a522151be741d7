"""POSTs to one endpoint: the gateway client's only socket I/O, on requests.

``Transport`` is what the client needs: ``post(body) -> Answer``, raising NotSent,
TlsFailed or AnswerLost. ``HttpTransport`` is it over requests: a Session whose pool
holds ``size`` connections, proxies and CA bundles read from the environment as requests
reads them (HTTPS_PROXY and NO_PROXY; REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, and also
SSL_CERT_FILE, which requests itself ignores), separate connect and read timeouts, an
answer size cap, and a total deadline per request. Tests give the client another
Transport (tests/inprocess.py).

The deadline needs the one thing requests does not offer: a read timeout bounds each
read, not an answer that drips in a byte at a time, and urllib3's documented remedy is a
watcher thread that shuts the socket down. So the pool's connections are urllib3's own,
subclassed only to hand their socket to that watcher, and to note when a request starts
to leave: what tells "never sent" from "may have been applied".
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from plansync.errors import ConfigError


class NotSent(Exception):
    """No connection could be opened (refused, DNS, connect timeout): nothing was sent."""


class TlsFailed(NotSent):
    """The TLS handshake failed (certificate not trusted, wrong host): nothing was sent."""


class ProxyFailed(NotSent):
    """The proxy refused the connection, or the tunnel through it: nothing was sent."""


class AnswerLost(Exception):
    """The request was sent, or may have been; no complete answer came back.
    ``timed_out``: none came in time (read timeout, deadline), as from a gateway that
    stopped answering — not a connection reset, which fails at once."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


STOPPED = "the run is stopping"  # why requests cut by abort() ended
TRIPPED = "cut off: plansync stopped sending"  # why requests cut as the breaker tripped


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None
    location: str | None = None  # where a 3xx pointed (never followed)


class Transport(Protocol):
    def post(self, body: bytes, before: Callable[[], float | None] | None = None) -> Answer:
        """Send ``body``; ``before`` is called at the last moment before it leaves (once a
        connection is free): it may raise to keep it from leaving, and returns how many
        seconds the request may take, if fewer than the transport's own deadline."""

    def abort(self) -> None:
        """Cut every request in flight, and any made from now on: the run is stopping."""

    def cut(self, why: str) -> None:
        """Cut every request in flight now (``why`` says so in each one's failure)."""

    def close(self) -> None: ...


class HttpTransport:
    def __init__(self, endpoint: str, size: int, connect_timeout: float, read_timeout: float,
                 *, user_agent: str, proxies: Mapping[str, str] | None = None,
                 verify: str | bool = True, max_body: int = 1 << 20,
                 deadline: float = 40.0) -> None:
        self._url = endpoint
        self._max_body = max_body
        self._deadline = deadline
        self._watchdog = _Watchdog()
        self._slots = threading.BoundedSemaphore(size)
        self._session = requests.Session()
        self._session.trust_env = False  # the environment was read once, by from_environment
        self._session.proxies = dict(proxies or {})
        self._session.verify = verify
        self._session.headers.update({"Content-Type": "text/plain", "Accept": "*/*",
                                      "User-Agent": user_agent})
        self._adapter = _WatchedAdapter(pool_connections=1, pool_maxsize=size,
                                        pool_block=True)
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)
        # Settled once, as requests' adapter settles them for each request it sends: the
        # connection pool (direct, or through the proxy), the URL to ask it for, the
        # headers and timeouts. Doing that anew for every request (merging the session's
        # settings, parsing URLs, copying cookie jars, building a Response) cost more CPU
        # than the rest of the request's way through urllib3.
        template = self._session.prepare_request(requests.Request("POST", endpoint))
        pool = self._adapter.get_connection_with_tls_context(
            template, verify, proxies=self._session.proxies)
        self._adapter.cert_verify(pool, endpoint, verify, None)  # type: ignore[no-untyped-call]
        assert isinstance(pool, HTTPConnectionPool)  # what the adapter's managers make
        self._pool = pool
        self._path = self._adapter.request_url(template, self._session.proxies)
        self._headers = dict(template.headers)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)

    @classmethod
    def from_environment(cls, endpoint: str, size: int, connect_timeout: float,
                         read_timeout: float, **options: Any) -> HttpTransport:
        """A transport with the proxy and CA bundle this process's environment sets."""
        proxies: Mapping[str, str] = {}
        if endpoint.startswith("https://"):  # plain http is only ever the local emulator
            proxies = requests.utils.get_environ_proxies(endpoint)
            for proxy in proxies.values():
                proxy_host(proxy)  # refused here, once, if it cannot be used
        verify: str | bool = True
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            if path := os.environ.get(name):
                if not os.path.exists(path):
                    raise ConfigError(f"{name} names {path}, which does not exist",
                                      f"point {name} at a CA bundle file, or unset it")
                verify = path
                break
        return cls(endpoint, size, connect_timeout, read_timeout, proxies=proxies,
                   verify=verify, **options)

    def post(self, body: bytes, before: Callable[[], float | None] | None = None) -> Answer:
        with self._slots:  # waiting for a connection is not part of the request's time
            limit = None if before is None else before()
            allowed = self._deadline if limit is None else max(0.0, min(limit, self._deadline))
            request = self._watchdog.start(allowed)
            if request.cut is not None:  # the run stopped: this one never leaves
                self._watchdog.release(request)
                raise NotSent(request.cut)
            try:
                # The pool's urlopen: the signed request goes to the endpoint and nowhere
                # else (a 3xx comes back as it is, and the client refuses it), and is never
                # retried here (the client decides what may be sent again).
                response = self._pool.urlopen(
                    "POST", self._path, body=body,
                    headers={**self._headers, "Content-Length": str(len(body))},
                    redirect=False, assert_same_host=False, preload_content=False,
                    decode_content=False, retries=self._adapter.max_retries,
                    timeout=self._timeout)
                try:
                    # Never more than max_body + 1 bytes: enough for the caller to see the
                    # answer is too large, without holding whatever a broken peer sends.
                    data = response.read(self._max_body + 1, decode_content=True)
                finally:
                    # Read to its end, the connection went back to the pool as it ended.
                    # Left with unread bytes, it is closed, and goes back closed: the pool
                    # holds ``size`` connections, and one kept out is lost for good.
                    response.close()
                    response.release_conn()
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError,
                    http.client.HTTPException) as exc:
                raise self._failure(request, exc) from exc
            finally:
                self._watchdog.release(request)
            if request.cut is not None:  # cut off just as the answer completed
                raise AnswerLost(request.cut, timed_out=request.cut != STOPPED)
            return Answer(response.status, data, response.headers.get("Retry-After"),
                          response.headers.get("Location"))

    def _failure(self, request: _InFlight, exc: BaseException) -> Exception:
        if request.cut is not None:
            if not request.sending:
                return NotSent(request.cut)
            return AnswerLost(request.cut, timed_out=request.cut != STOPPED)
        if request.sending:
            return AnswerLost(_describe(exc), timed_out=isinstance(
                _root(exc), TimeoutError | urllib3.exceptions.TimeoutError))
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        if isinstance(reason, urllib3.exceptions.SSLError):
            return TlsFailed(_describe(exc))
        if isinstance(reason, urllib3.exceptions.ProxyError):
            return ProxyFailed(_describe(exc))
        return NotSent(_describe(exc))

    @property
    def proxy(self) -> str | None:
        """host:port of the proxy requests go through, if any (never its credentials)."""
        proxy = self._session.proxies.get(urlsplit(self._url).scheme)
        return proxy_host(proxy) if proxy else None

    def abort(self) -> None:
        self._watchdog.abort()

    def cut(self, why: str) -> None:
        self._watchdog.cut(why)

    def close(self) -> None:
        self._watchdog.stop()
        self._pool.close()  # its connections too (the pool manager's clear leaves them)
        self._session.close()


def proxy_host(proxy: str) -> str:
    """host:port of a proxy URL from the environment; ConfigError, naming neither the URL
    nor its credentials, if urllib3 cannot use it."""
    try:  # as requests reads it, so that what passes here is what requests can use
        parsed = urllib3.util.parse_url(
            requests.utils.prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]
    except (urllib3.exceptions.LocationParseError, ValueError):  # they quote the whole URL
        parsed = None
    if parsed is None or not parsed.host or parsed.scheme not in ("http", "https") \
            or parsed.port == 0:
        raise ConfigError("the proxy set by HTTPS_PROXY (or https_proxy, ALL_PROXY) is not "
                          "a URL plansync can use",
                          "set it to http://HOST:PORT (with credentials if the proxy needs "
                          "them), or unset it")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    return f"{parsed.host}:{port}"


# --- the watcher, and urllib3's connections handing it their sockets ----------------


class Deadlines:
    """A total deadline for each request of another requests Session (the GitHub
    client's): ``mount`` it, then send each request inside ``within(seconds)``. A request
    that outlives it, in its headers too, has its socket shut down."""

    def __init__(self) -> None:
        self._watchdog = _Watchdog()

    def mount(self, session: requests.Session) -> None:
        adapter = _WatchedAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[_InFlight]:
        request = self._watchdog.start(seconds)
        try:
            yield request
        finally:
            self._watchdog.release(request)

    def close(self) -> None:
        self._watchdog.stop()


class _InFlight:
    """One request on its way: its deadline, its socket once it has one, and whether any
    of it may have left this machine. Its own lock orders the watcher's cut against the
    request's thread handing over or releasing the socket: once released, the socket is
    back in the pool, another request's, and must not be shut."""

    __slots__ = ("_lock", "allowed", "copy", "cut", "deadline", "done", "sending", "sock")

    def __init__(self, deadline: float, allowed: float) -> None:
        self.deadline = deadline
        self.allowed = allowed
        self.sock: socket.socket | None = None
        self.copy: socket.socket | None = None  # a duplicate of the socket, ours to close
        self.sending = False
        self.cut: str | None = None  # why it was cut off: past its deadline, or stopped
        self.done = False  # released: its socket is no longer its own
        self._lock = threading.Lock()

    def cut_off(self, why: str) -> None:
        with self._lock:
            if self.done:
                return
            self.cut = why
            if self.sock is not None:
                _shut(self.sock)

    def attach(self, sock: socket.socket, copy: bool = False) -> None:
        """``sock`` is the request's socket from now on. ``copy``: keep a duplicate of it
        (closed on release), for a plain socket that TLS is about to wrap: wrapping
        detaches the original, and the handshake that follows must be cut too."""
        duplicate = sock.dup() if copy else None
        with self._lock:
            previous, self.copy = self.copy, duplicate
            self.sock = duplicate or sock
            if self.cut is not None:
                _shut(self.sock)
        _close(previous)

    def release(self) -> None:
        """Its socket is no longer its own (back in the pool, or closed); idempotent."""
        with self._lock:
            self.done = True
            copy, self.copy, self.sock = self.copy, None, None
        _close(copy)

    def __lt__(self, other: _InFlight) -> bool:  # ordered by deadline in the watcher's heap
        return self.deadline < other.deadline


class _Current(threading.local):
    request: _InFlight | None = None


_current = _Current()


class _Watchdog:
    """Shuts down the socket of a request that outlives its deadline, so the read
    blocked on it returns at once. One thread for all requests of a transport, woken only
    when a request is due sooner than any before it: requests come and go by the
    thousand, so each costs a heap push and a flag, not a wake-up."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[_InFlight] = []  # a heap by deadline; released ones lapse later
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._aborted = False

    def start(self, seconds: float) -> _InFlight:
        """A request of this thread starts: cut it off after ``seconds`` (or on abort).
        The connection it gets hands its socket over; ``release`` when it is done."""
        request = _InFlight(time.monotonic() + seconds, seconds)
        self.watch(request)
        _current.request = request
        return request

    def watch(self, request: _InFlight) -> None:
        with self._changed:
            if self._aborted:
                request.cut = STOPPED
                return
            self._lapse()
            heapq.heappush(self._due, request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plansync-deadline",
                                                daemon=True)
                self._thread.start()
            if self._due[0] is request:  # due before any other: the watcher waits less
                self._changed.notify()

    def release(self, request: _InFlight) -> None:
        _current.request = None
        request.release()

    def abort(self) -> None:
        with self._changed:
            self._aborted = True
        self.cut(STOPPED)

    def cut(self, why: str) -> None:
        with self._changed:
            due, self._due = self._due, []
        for request in due:
            request.cut_off(why)

    def _lapse(self) -> None:
        """Drop the released requests due first. Requests mostly end in the order they
        start, so this keeps the heap about as long as the requests in flight; behind one
        slow request, those released after it wait for it (at most a deadline's worth)."""
        while self._due and self._due[0].done:
            heapq.heappop(self._due)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                self._lapse()
                if not self._due:
                    self._changed.wait()
                    continue
                wait = self._due[0].deadline - time.monotonic()
                if wait > 0:
                    self._changed.wait(min(wait, threading.TIMEOUT_MAX))
                    continue
                first = heapq.heappop(self._due)
                first.cut_off(f"no complete answer within the {round(first.allowed, 1):g}s "
                              "request deadline")


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _shut(sock: socket.socket) -> None:
    # Through an https:// proxy, urllib3 runs the gateway's TLS inside the proxy's TLS in
    # an SSLTransport, which has no shutdown: the socket it runs on is shut instead.
    underneath = getattr(sock, "socket", sock)
    with contextlib.suppress(OSError):
        underneath.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Mixed into urllib3's connections: the request in flight on this thread learns the
    connection's socket, and that it is being sent."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        # The plain socket, as soon as it is connected: a deadline or a stop then also
        # cuts a TLS handshake or a proxy's CONNECT that hangs.
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        request = _current.request
        if request is not None:
            request.attach(sock, copy=True)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._hand_over()  # the TLS socket wraps (and detaches) the plain one

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is None:
            self.connect()  # so that a refused connection is known not to have sent
        else:
            self._hand_over()
        if _current.request is not None:
            _current.request.sending = True
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _hand_over(self) -> None:
        request = _current.request
        if request is not None and self.sock is not None:
            request.attach(self.sock)


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _Returned:
    """Mixed into urllib3's pools: a connection going back to the pool (urllib3 puts it
    back as the answer's last byte is read, before the request's thread is done) stops
    being its request's, so that request's deadline can no longer shut a socket that
    another request may already be using."""

    def _put_conn(self, conn: Any) -> None:
        request = _current.request
        if request is not None:
            request.release()
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPPool(_Returned, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(_Returned, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its pools (direct and through a proxy) made of _Watched
    connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def _describe(exc: BaseException) -> str:
    """A few words for what went wrong on the wire (no request content)."""
    cause = _root(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, socket.gaierror):
        return "host name not resolved"
    if isinstance(cause, TimeoutError | urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(cause, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _root(exc: BaseException) -> BaseException:
    """The innermost error that requests and urllib3 wrapped: the one that says what
    happened (an OSError of the socket or ssl module, when there is one)."""
    for _ in range(12):  # wrappers nest a few deep; never loop on a cycle
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            return exc
        reason = getattr(exc, "reason", None)
        inner = next((arg for arg in (reason, *exc.args) if isinstance(arg, BaseException)),
                     exc.__cause__ or exc.__context__)
        if inner is None:
            return exc
        exc = inner
    return exc
