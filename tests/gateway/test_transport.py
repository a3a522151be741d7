"""The transport: kept-alive connections, a proxy tunnel, NO_PROXY, and stale connections."""

import contextlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from plansync.config import Gateway
from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.gateway.client import GatewayClient
from plansync.gateway.transport import AnswerLost, HttpTransport
from tests.helpers import Sleeps, run


class _Tunnel(socketserver.StreamRequestHandler):
    """An HTTP CONNECT proxy: reads the CONNECT, then copies bytes both ways."""

    server: "_Proxy"

    def handle(self) -> None:
        request = self.rfile.readline().decode()
        headers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        self.server.seen.append((request.split()[1], headers.get("proxy-authorization")))
        host, port = request.split()[1].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as upstream:
            self.connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump = threading.Thread(target=_copy, args=(upstream, self.connection), daemon=True)
            pump.start()
            _copy(self.connection, upstream)
            pump.join(5)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    seen: list[tuple[str, str | None]]


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    with _Proxy(("127.0.0.1", 0), _Tunnel) as running:
        running.seen = []
        threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
        yield running
        running.shutdown()


def test_https_goes_through_the_proxy_the_environment_sets(
        tls: tuple[str, Path], proxy: _Proxy, settings: Gateway,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert_file = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    monkeypatch.setenv("HTTPS_PROXY", f"http://someone:s%3Acret@127.0.0.1:{proxy.server_address[1]}")
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as client:
        assert client.inquire("156142").status == "active"
        assert client.inquire("156143").status == "active"
    port = url.split(":")[2].split("/")[0]
    # One tunnel for both requests, to the gateway's host, with the proxy's credentials.
    assert proxy.seen == [(f"127.0.0.1:{port}", "Basic c29tZW9uZTpzOmNyZXQ=")]


def test_no_proxy_sends_straight_to_the_gateway(
        tls: tuple[str, Path], proxy: _Proxy, settings: Gateway,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert_file = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.0/8")
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as client:
        assert client.inquire("156142").status == "active"
    assert proxy.seen == []


@contextlib.contextmanager
def _tls_proxy(certificate: tuple[Path, Path]) -> Iterator[_Proxy]:
    """The CONNECT proxy, spoken to over TLS (an https:// proxy)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with _Proxy(("127.0.0.1", 0), _Tunnel) as running:
        running.seen = []
        running.socket = context.wrap_socket(running.socket, server_side=True)
        threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
        yield running
        running.shutdown()


def test_an_https_proxy_is_spoken_to_over_tls(
        tls: tuple[str, Path], certificate: tuple[Path, Path], settings: Gateway,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once refused ("not supported"); requests + urllib3 speak TLS to the proxy too."""
    url, cert_file = tls
    with _tls_proxy(certificate) as running:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))  # trusts proxy and gateway
        monkeypatch.setenv("HTTPS_PROXY", f"https://127.0.0.1:{running.server_address[1]}")
        with GatewayClient.over_http(url, "JT01", settings.envelope()) as client:
            assert client.inquire("156142").status == "active"
    assert [target for target, _auth in running.seen] == [url.split("/")[2]]


def test_a_deadline_cuts_a_request_through_an_https_proxy(
        tls: tuple[str, Path], certificate: tuple[Path, Path]) -> None:
    """Through an https:// proxy urllib3 runs the gateway's TLS inside the proxy's, in an
    object with no shutdown(): the first cut killed the deadline's thread, and every
    request after it waited for the 30 s read timeout instead (a stop too)."""
    url, cert_file = tls
    base = url.split(home.ACTION_PATH)[0]
    requests.put(base + "/_emulator/faults", data=json.dumps({"latency_ms": 5_000}),
                 verify=str(cert_file), timeout=10).raise_for_status()
    with _tls_proxy(certificate) as running:
        transport = HttpTransport(url, 1, 5.0, 30.0, user_agent="t", verify=str(cert_file),
                                  deadline=1.0,
                                  proxies={"https": f"https://127.0.0.1:{running.server_address[1]}"})
        try:
            for _ in range(2):  # the second: the deadline's thread is still there
                with pytest.raises(AnswerLost, match="within the 1s request deadline"):
                    transport.post(b"x")
        finally:
            transport.close()


def test_a_connection_the_server_closed_while_idle_is_replaced(
        client: GatewayClient, emulator: Emulator, sleeps: Sleeps) -> None:
    assert client.inquire("156142").status == "active"
    emulator.server.close_connections()  # as a gateway's idle timeout would
    assert client.inquire("156142").status == "active"
    assert sleeps == []  # not a retry: the closed connection was noticed before sending


def test_a_proxy_that_refuses_is_named_not_the_gateway(settings: Gateway) -> None:
    """Before: "cannot connect to <gateway>" for a proxy that was down."""
    from tests.servers import free_port

    port = free_port()  # nothing listens there
    env = {"PLANSYNC_CONFIG": str(_https_config(settings)),
           "HTTPS_PROXY": f"http://someone:pxS3cret@127.0.0.1:{port}"}
    result = run("inquire", "156142", env=env)
    assert result.returncode == 1, result.stderr
    assert f"cannot connect through the proxy 127.0.0.1:{port} (connection refused)" \
        in result.stderr
    assert "gateway.invalid" not in result.stderr.split("proxy")[0]
    assert "pxS3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize("proxy", [
    "http://user:pxS3cret@127.0.0.1:99999",  # a port out of range: urllib3 quotes it all
    "http://user:pxS3cret@[::1",
    "ftp://user:pxS3cret@127.0.0.1:3128",
    "user:pxS3cret@127.0.0.1:3128",  # no scheme: "user" reads as one
    "http://user:pxS3cret@127.0.0.1:0",
])
@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_an_unusable_proxy_url_is_one_error_that_never_shows_its_password(
        settings: Gateway, proxy: str, verbosity: list[str]) -> None:
    env = {"PLANSYNC_CONFIG": str(_https_config(settings)), "HTTPS_PROXY": proxy}
    result = run(*verbosity, "inquire", "156142", env=env)
    assert result.returncode == 1, result.stderr
    assert "the proxy set by HTTPS_PROXY" in result.stderr
    assert "pxS3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _https_config(settings: Gateway) -> Path:
    """Gateway for an https gateway (proxies apply to https only) that is never reached."""
    folder = settings.merchant_key.parent
    config = folder / "https.yaml"
    config.write_text("endpoint: https://gateway.invalid/PaymentAction/2.0/action\n"
                      f"merchant_id: JT01\nmerchant_key: {settings.merchant_key}\n"
                      f"gateway_key: {settings.gateway_key}\n")
    return config


class _HangsUp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()  # the CONNECT line, then nothing: the tunnel never opens


def test_a_tunnel_the_proxy_does_not_open_names_the_proxy(settings: Gateway) -> None:
    """Before: "cannot connect to gateway.invalid (connection closed...)", with a hint to
    check the endpoint, though the gateway was never reached."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HangsUp) as proxy:
        threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
        port = proxy.server_address[1]
        env = {"PLANSYNC_CONFIG": str(_https_config(settings)),
               "HTTPS_PROXY": f"http://127.0.0.1:{port}"}
        result = run("inquire", "156142", env=env)
        proxy.shutdown()
    assert result.returncode == 1, result.stderr
    assert f"cannot connect to gateway.invalid through the proxy 127.0.0.1:{port}" \
        in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
