"""Just enough HTTP/1.1 for the emulator: requests in, one-write answers out.

http.server parses every request's headers with the email package and answers in two
writes; at hundreds of requests a second that was a sixth of the emulator's CPU.
This reads a request line, header lines and a body (Content-Length or chunked), and
builds each answer as one byte string, so it leaves in one write. Keep-alive is the
default for HTTP/1.1 and off for HTTP/1.0, as RFC 9112 says.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from io import BufferedIOBase

MAX_LINE = 8192
MAX_HEADERS = 100


class HttpProblem(Exception):
    """A request that cannot be served; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # names in lower case
    keep_alive: bool


def read_head(rfile: BufferedIOBase) -> HttpRequest | None:
    """The next request's line and headers; None when the client closed the connection."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before a request
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise HttpProblem(414, "request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpProblem(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        header = rfile.readline(MAX_LINE + 1)
        if header in (b"\r\n", b"\n", b""):
            break
        name, colon, value = header.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise HttpProblem(400, "malformed header line")
        headers[name.lower()] = value.strip()
    else:
        raise HttpProblem(431, "too many header lines")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return HttpRequest(method, target.split("?", 1)[0], headers, keep_alive)


def read_body(rfile: BufferedIOBase, request: HttpRequest, limit: int) -> bytes:
    """The body, from Content-Length or chunked transfer coding; at most ``limit`` bytes."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return _read_chunked(rfile, limit)
    length = request.headers.get("content-length")
    if length is None:  # no Content-Length nor chunked coding: no body (RFC 9112, 6.3)
        return b""
    if not length.isdigit():
        raise HttpProblem(400, "Content-Length is not a number")
    if int(length) > limit:
        raise HttpProblem(413, "request too large")
    body = rfile.read(int(length))
    if len(body) < int(length):
        raise HttpProblem(400, "body shorter than its Content-Length")
    return body


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    """Some HTTP clients stream a body in chunks instead of sending its length."""
    body = b""
    while True:
        size_line = rfile.readline(64).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HttpProblem(400, "malformed chunked body") from None
        if size == 0:
            while rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return body
        if len(body) + size > limit:
            raise HttpProblem(413, "request too large")
        body += rfile.read(size)
        rfile.readline(8)  # the CRLF after each chunk


def answer(status: int, body: bytes, content_type: str = "text/plain",
           headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    """A whole response, status line to body, to be sent in one write."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
             f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
