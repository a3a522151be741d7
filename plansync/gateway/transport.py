"""POSTs to one endpoint over a few kept-alive connections: the client's only socket I/O.

The standard library's http.client speaks the protocol; this adds what a gateway client
needs around it: at most ``size`` connections (callers beyond that wait their turn), TLS
verified against certifi's CA bundle or REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, an HTTPS
proxy from HTTPS_PROXY (and NO_PROXY) through a CONNECT tunnel, separate connect and read
timeouts, a total deadline per request (a read timeout bounds each read, not an answer
that drips in a byte at a time), and errors that say whether any of the request can have
left this machine.

(This replaced requests + urllib3, whose per-request machinery cost about a third of the
CPU the client spends holding the GIL, outside cryptography.)
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi

from plansync.errors import ConfigError


class NotSent(Exception):
    """No connection could be opened (refused, DNS, connect timeout): nothing was sent."""


class TlsFailed(NotSent):
    """The TLS handshake failed (certificate not trusted, wrong host): nothing was sent."""


class AnswerLost(Exception):
    """The request was sent, or may have been; no complete answer came back."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


class Transport:
    def __init__(self, endpoint: str, size: int, connect_timeout: float, read_timeout: float,
                 environ: Mapping[str, str], user_agent: str, max_body: int = 1 << 20,
                 deadline: float = 40.0) -> None:
        parts = urlsplit(endpoint)
        https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if https else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Host": parts.netloc, "Content-Type": "text/plain", "Accept": "*/*",
                         "User-Agent": user_agent}
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_body = max_body
        self._deadline = deadline
        self._watchdog = _Watchdog()
        self._tls = _tls_context(environ) if https else None
        # Plain http is only ever the local emulator (config refuses it elsewhere): no proxy.
        self._proxy = _proxy_for(endpoint, environ) if https else None
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[http.client.HTTPConnection] = []
        self._idle_lock = threading.Lock()

    def post(self, body: bytes) -> Answer:
        with self._slots:  # waiting for a connection is not part of the request's time
            deadline = time.monotonic() + self._deadline
            connection = self._reuse() or self._connect(deadline)
            assert connection.sock is not None
            connection.sock.settimeout(min(self._read_timeout, self._deadline))
            watch = self._watchdog.watch(connection.sock, deadline)
            try:
                connection.request("POST", self._target, body=body, headers=self._headers)
                response = connection.getresponse()
                # Never more than max_body + 1 bytes: enough for the caller to see the
                # answer is too large, without holding whatever a broken peer sends.
                data = response.read(self._max_body + 1)
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                late = self._watchdog.release(watch)
                raise AnswerLost(self._overdue() if late else _describe(exc)) from exc
            if self._watchdog.release(watch):  # cut off just as the answer completed
                connection.close()
                raise AnswerLost(self._overdue())
            if response.will_close or not response.isclosed():  # closed, or left unread
                connection.close()
            else:
                with self._idle_lock:
                    self._idle.append(connection)
            return Answer(response.status, data, response.getheader("Retry-After"))

    def _overdue(self) -> str:
        return f"no complete answer within the {self._deadline:g}s request deadline"

    def close(self) -> None:
        self._watchdog.stop()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _reuse(self) -> http.client.HTTPConnection | None:
        """The most recently used idle connection that the server has not closed."""
        while True:
            with self._idle_lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if connection.sock is not None and not _readable(connection.sock):
                return connection
            connection.close()  # closed by the server while idle (or it sent junk)

    def _connect(self, deadline: float) -> http.client.HTTPConnection:
        timeout = max(0.001, min(self._connect_timeout, deadline - time.monotonic()))
        connection: http.client.HTTPConnection
        if self._proxy is not None:
            host, port, headers = self._proxy
            connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                     context=self._tls)
            connection.set_tunnel(self._host, self._port, headers=headers)
        elif self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port,
                                                     timeout=timeout,
                                                     context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port,
                                                    timeout=timeout)
        try:
            connection.connect()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            connection.close()
            raise TlsFailed(_describe(exc)) from exc
        except OSError as exc:
            connection.close()
            raise NotSent(_describe(exc)) from exc
        return connection


class _Watchdog:
    """Shuts down the socket of a request that outlives its deadline, so the read
    blocked on it returns at once. One thread for every connection of a transport."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[int, tuple[float, socket.socket]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._changed:
            self._next += 1
            self._due[self._next] = (deadline, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plansync-deadline",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()
            return self._next

    def release(self, watch: int) -> bool:
        """Stop watching; True if the deadline struck first."""
        with self._changed:
            self._due.pop(watch, None)
            if watch in self._fired:
                self._fired.discard(watch)
                return True
            return False

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                if not self._due:
                    self._changed.wait()
                    continue
                watch, (deadline, sock) = min(self._due.items(), key=lambda item: item[1][0])
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                del self._due[watch]
                self._fired.add(watch)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _readable(sock: object) -> bool:
    """An idle kept-alive socket with something to read has been closed by the server."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)  # type: ignore[arg-type]
    return bool(poller.poll(0))


def _tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """Certificates and host names always verified; only whose CAs can be chosen."""
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle or certifi.where())


def _proxy_for(endpoint: str, environ: Mapping[str, str]
               ) -> tuple[str, int, dict[str, str]] | None:
    """(host, port, CONNECT headers) of the HTTPS proxy the environment sets, if any."""
    lowered = {name.lower(): value for name, value in environ.items()}
    proxy = lowered.get("https_proxy") or lowered.get("all_proxy")
    target = urlsplit(endpoint)
    if not proxy or _bypassed(target.hostname or "", target.port or 443,
                              lowered.get("no_proxy", "")):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"proxy {parts.scheme}://{parts.hostname or ''} is not supported",
                          "set HTTPS_PROXY to an http://host:port proxy (the tunnel to the "
                          "gateway is TLS either way)")
    headers = {}
    if parts.username:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    return parts.hostname, parts.port or 80, headers


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """NO_PROXY as curl and requests read it: names (and their subdomains), IPs, CIDRs,
    an optional :port, or * for everything."""
    host = host.lower()
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if not name or (entry_port and entry_port != str(port)):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
    return False


def _describe(exc: BaseException) -> str:
    """A few words for what went wrong on the wire (no request content)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
