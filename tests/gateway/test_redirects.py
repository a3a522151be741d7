"""Nothing signed goes anywhere but the endpoint (issue 21, part 2).

Before: a 307 or 308 was followed, the signed request POSTed to the Location's host
(over plain http), four times per inquiry, and the error blamed the original host. The
endpoint and the host it points to are real HTTP servers on 127.0.0.1; the second one
counts what reaches it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from plansync import errors
from plansync.config import Gateway
from plansync.fields import PlanFields
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.helpers import Sleeps


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    status = 307
    location = ""
    received = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received += 1
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _serve(status: int, location: str = "") -> _Server:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.status, server.location = status, location
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    """Where a redirect points: it answers 200 to anything, and counts."""
    server = _serve(200)
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("operation", ["inquire", "cancel", "update"])
def test_a_redirect_is_one_error_naming_where_it_pointed_and_is_not_followed(
        elsewhere: _Server, settings: Gateway, sleeps: Sleeps, status: int,
        operation: str) -> None:
    port = elsewhere.server_address[1]
    endpoint = _serve(status, f"http://user:s3cret@127.0.0.1:{port}/steal?token=abc")
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/PaymentAction/2.0/action"
    try:
        with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps,
                                     retry=RetryPolicy(attempts=4)) as client, \
                pytest.raises(errors.TransportError) as raised:
            if operation == "inquire":
                client.inquire("156142")
            elif operation == "cancel":
                client.send(client.cancel_write("156142", None))
            else:
                client.send(client.update_write("156142", PlanFields(recurring_interval=30), "SGD"))
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    message = str(raised.value)
    assert f"answered HTTP {status}, pointing to 127.0.0.1:{port}" in message
    assert "never follows a redirect" in message
    assert "s3cret" not in message and "token" not in message and "/steal" not in message
    assert elsewhere.received == 0  # nothing signed went there
    assert endpoint.received == 1  # and it is not asked again: every request would be
    assert sleeps == []


@pytest.mark.parametrize(("location", "named"), [
    ("http://[::1", "an unreadable location"),  # requests' own redirect code crashed on it
    ("", "no location"),
    ("/elsewhere", "(another path)"),
])
def test_a_redirect_to_a_malformed_or_missing_location_is_one_error(
        settings: Gateway, sleeps: Sleeps, location: str, named: str) -> None:
    endpoint = _serve(302, location)
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/PaymentAction/2.0/action"
    try:
        with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as client, \
                pytest.raises(errors.TransportError, match="answered HTTP 302, pointing to ") \
                as raised:
            client.inquire("156142")
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    assert named in str(raised.value)


def test_redirects_stop_a_run_after_a_few_plans(settings: Gateway, sleeps: Sleeps) -> None:
    endpoint = _serve(308, "https://elsewhere.invalid/action")
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/PaymentAction/2.0/action"
    try:
        with GatewayClient.over_http(url, "JT01", settings.envelope(), sleep=sleeps) as client:
            for _ in range(3):
                with pytest.raises(errors.TransportError, match="pointing to elsewhere.invalid"):
                    client.inquire("156142")
            assert client.breaker.tripped is not None
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    assert endpoint.received == 3
