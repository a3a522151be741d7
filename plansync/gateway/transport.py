"""POSTs to one endpoint over a few kept-alive connections: the client's only socket I/O.

The standard library's http.client speaks the protocol; this adds what a gateway client
needs around it: at most ``size`` connections (callers beyond that wait their turn), TLS
verified against certifi's CA bundle or REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, an HTTPS
proxy from HTTPS_PROXY (and NO_PROXY) through a CONNECT tunnel, separate connect and read
timeouts, and errors that say whether any of the request can have left this machine.

(This replaced requests + urllib3, whose per-request machinery cost about a third of the
CPU the client spends holding the GIL, outside cryptography.)
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import select
import ssl
import threading
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
                 environ: Mapping[str, str], user_agent: str, max_body: int = 1 << 20) -> None:
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
        self._tls = _tls_context(environ) if https else None
        # Plain http is only ever the local emulator (config refuses it elsewhere): no proxy.
        self._proxy = _proxy_for(endpoint, environ) if https else None
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[http.client.HTTPConnection] = []
        self._idle_lock = threading.Lock()

    def post(self, body: bytes) -> Answer:
        with self._slots:
            connection = self._reuse() or self._connect()
            try:
                connection.request("POST", self._target, body=body, headers=self._headers)
                response = connection.getresponse()
                # Never more than max_body + 1 bytes: enough for the caller to see the
                # answer is too large, without holding whatever a broken peer sends.
                data = response.read(self._max_body + 1)
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise AnswerLost(_describe(exc)) from exc
            if response.will_close or not response.isclosed():  # closed, or left unread
                connection.close()
            else:
                with self._idle_lock:
                    self._idle.append(connection)
            return Answer(response.status, data, response.getheader("Retry-After"))

    def close(self) -> None:
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

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._proxy is not None:
            host, port, headers = self._proxy
            connection = http.client.HTTPSConnection(host, port, timeout=self._connect_timeout,
                                                     context=self._tls)
            connection.set_tunnel(self._host, self._port, headers=headers)
        elif self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port,
                                                     timeout=self._connect_timeout,
                                                     context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port,
                                                    timeout=self._connect_timeout)
        try:
            connection.connect()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            connection.close()
            raise TlsFailed(_describe(exc)) from exc
        except OSError as exc:
            connection.close()
            raise NotSent(_describe(exc)) from exc
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)  # from here on, waits are reads
        return connection


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
