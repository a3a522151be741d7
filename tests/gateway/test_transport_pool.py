"""The transport's pool of ``size`` connections under answers it does not read to the
end, requests that end as another begins, and a stop: no connection is lost, none is
shut under another request, nothing leaves once the run stops."""

from __future__ import annotations

import http.server
import os
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.response

from plansync.gateway.transport import HttpTransport, NotSent


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers each POST as its path says: /big 5,000 bytes (Content-Length), /chunked
    5,000 bytes in chunks, /slow "ok" after half a second, anything else "ok"."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts += 1
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(5):
                self.wfile.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/slow":
            time.sleep(0.5)
        body = b"x" * 5000 if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    posts = 0


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server(("127.0.0.1", 0), _Answers) as running:
        threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
        yield running
        running.shutdown()


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def _within(seconds: float, work: Any) -> Any:
    """``work()``'s result, or a failure if it has not returned in time (a hang)."""
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert done, f"still waiting after {seconds}s: a connection was lost from the pool"
    return done[0]


@pytest.mark.parametrize("path", ["/big", "/chunked"])
def test_answers_cut_at_the_size_cap_keep_every_connection(server: _Server,
                                                            path: str) -> None:
    transport = HttpTransport(_url(server, path), 2, 2.0, 2.0, user_agent="t",
                              max_body=1000, deadline=5.0)
    try:
        sizes = _within(20, lambda: [len(transport.post(b"hi").body) for _ in range(5)])
    finally:
        transport.close()
    assert sizes == [1001] * 5  # max_body + 1: the caller sees the answer is too large


def test_a_deadline_never_shuts_a_connection_back_in_the_pool(
        server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Request A's answer is complete (its connection back in the pool) when its deadline
    passes; request B has that connection by then. Mocked edge: urllib3's close of A's
    answer is slowed, to hold open the window (microseconds otherwise) in which A's
    thread is not done yet and B already sends on A's old connection."""
    transport = HttpTransport(_url(server, "/slow"), 1, 2.0, 5.0, user_agent="t",
                              deadline=5.0)
    outcomes: dict[str, Any] = {}

    def post(name: str, allowed: float | None) -> None:
        try:
            outcomes[name] = transport.post(name.encode(), before=lambda: allowed).status
        except Exception as exc:  # the outcome, whatever it is, is what is asserted
            outcomes[name] = f"{type(exc).__name__}: {exc}"

    second = threading.Thread(target=post, args=("B", None), name="B")
    close = urllib3.response.HTTPResponse.close

    def slow_close(self: urllib3.response.HTTPResponse) -> None:
        if threading.current_thread().name == "A" and not second.is_alive():
            second.start()
            time.sleep(0.9)  # A's deadline (0.6 s from its start) passes here
        close(self)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "close", slow_close)
    first = threading.Thread(target=post, args=("A", 0.6), name="A")
    first.start()
    first.join(10)
    second.join(10)
    transport.close()
    assert outcomes == {"A": 200, "B": 200}


def test_nothing_is_sent_once_the_run_stops(server: _Server) -> None:
    transport = HttpTransport(_url(server, "/"), 2, 2.0, 2.0, user_agent="t")
    assert transport.post(b"before").status == 200
    transport.abort()
    with pytest.raises(NotSent):
        transport.post(b"after")
    transport.close()
    assert server.posts == 1


def test_a_closed_transport_holds_no_connection_and_sends_nothing(server: _Server) -> None:
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    transport = HttpTransport(_url(server, "/"), 2, 2.0, 2.0, user_agent="t")
    assert transport.post(b"one").status == 200
    transport.close()
    waited = time.monotonic() + 5  # the server's side closes once it reads the end
    while open_files() != before and time.monotonic() < waited:
        time.sleep(0.05)
    assert open_files() == before
    with pytest.raises(NotSent):
        transport.post(b"after")
    assert server.posts == 1
