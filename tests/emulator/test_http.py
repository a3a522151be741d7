"""The emulator's HTTP/1.1 face (the standard library's http.server), spoken to byte by
byte over a real socket: what clients and the benchmark rely on."""

import socket
from collections.abc import Iterator

import pytest

from plansync.emulator.server import Emulator


@pytest.fixture
def conn(emulator: Emulator) -> Iterator[socket.socket]:
    host, port = emulator.server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5) as sock:
        yield sock


def exchange(sock: socket.socket, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read one response (status, headers, body)."""
    sock.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_requests_share_a_kept_alive_connection(conn: socket.socket) -> None:
    for _ in range(3):
        status, headers, body = exchange(conn, b"GET /_emulator/faults HTTP/1.1\r\n"
                                               b"Host: x\r\n\r\n")
        assert status == 200 and headers["content-type"] == "application/json"
        assert b"latency_ms" in body and "connection" not in headers


@pytest.mark.parametrize("raw", [
    b"GET /_emulator/faults HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"GET /_emulator/faults HTTP/1.0\r\n\r\n",
])
def test_close_is_honoured(conn: socket.socket, raw: bytes) -> None:
    status, headers, _ = exchange(conn, raw)
    assert status == 200 and headers["connection"] == "close"
    assert closed_by_server(conn)


ACTION = b"POST /2C2PFrontend/PaymentAction/2.0/action HTTP/1.1\r\n"


@pytest.mark.parametrize(("raw", "status", "message"), [
    (ACTION + b"Content-Length: 99999999\r\n\r\n", 413, b"request too large"),
    (ACTION + b"Content-Length: 1x\r\n\r\n", 400, b"Content-Length is not a number"),
    (ACTION + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
     b"conflicting Content-Length headers"),
    (ACTION + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411,
     b"send the body with a Content-Length"),
    (b"POST /elsewhere HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 404, b"not found"),
])
def test_requests_that_cannot_be_served_get_a_status_and_a_closed_connection(
        conn: socket.socket, raw: bytes, status: int, message: bytes) -> None:
    got, headers, body = exchange(conn, raw)
    assert got == status and message in body and headers["connection"] == "close"
    assert closed_by_server(conn)


def test_answers_leave_in_one_segment_sized_write(emulator: Emulator,
                                                  conn: socket.socket) -> None:
    """Header and body arrive together: no second small write for delayed ACK to stall."""
    conn.sendall(b"GET /_emulator/faults HTTP/1.1\r\n\r\n")
    first = conn.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    length = int(dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                 [b"Content-Length"])
    assert len(body) == length


def test_a_bodyless_post_to_an_admin_endpoint_works(conn: socket.socket) -> None:
    """As `curl -X POST …/_emulator/reset` sends it: no Content-Length, so no body
    (RFC 9112, 6.3) — once answered 411."""
    status, _headers, body = exchange(conn, b"POST /_emulator/reset HTTP/1.1\r\n\r\n")
    assert status == 200 and b'"plans"' in body
