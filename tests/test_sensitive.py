"""Nothing sensitive leaves, and nothing a spec or a gateway writes reaches the terminal
as a control sequence — even from a hostile or broken gateway."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from plansync import errors
from plansync.config import Gateway, endpoint_url
from plansync.gateway import messages
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.helpers import SAMPLE_INQUIRY_ANSWER, run

TOKEN = "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.ZXlKaGJHY2lPaUpT.c2lnbmF0dXJl"


class _Refuses(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = (f"96 cannot decrypt {TOKEN} \x1b[2J\x07 details: " + "x" * 500).encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/PaymentAction/2.0/action"
    server.shutdown()
    server.server_close()


def test_an_error_body_is_never_echoed_raw(refusing: str, settings: Gateway) -> None:
    with GatewayClient.over_http(refusing, "JT01", settings.envelope(),
                       retry=RetryPolicy(attempts=1)) as client, \
            pytest.raises(errors.GatewayUnavailableError) as info:
        client.inquire("156142")
    message = info.value.message
    assert "eyJ" not in message and "\x1b" not in message and "\x07" not in message
    assert "HTTP 400 request refused (96 cannot decrypt [token] \\x1b[2J\\x07 details: xxx" \
        in message
    assert len(message) < 150


@pytest.mark.parametrize("url", ["https://user:s3cret@gateway.example/action",
                                 "https://:s3cret@gateway.example/action",
                                 "https://user@gateway.example/action",
                                 "https://gateway.example/action?token=s3cret",
                                 "https://gateway.example/action?api_key=s3cret&a=b",
                                 "https://gateway.example/action#s3cret"])
def test_credentials_in_the_endpoint_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(errors.ConfigError, match="holds credentials") as info:
        endpoint_url(url)
    assert "s3cret" not in str(info.value) and "user" not in str(info.value).split("(")[0]


def test_credentials_in_the_endpoint_are_refused_by_every_command(
        served: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n  - id: '1'\n")
    result = run("plan", str(spec), "--endpoint", "https://ops:s3cret@gateway.example/a",
                 env=served)
    assert result.returncode == 1
    assert "holds credentials" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:s3cret@bucket/plans",
                                 "s3://:s3cret@bucket/plans"])
def test_credentials_in_an_s3_state_url_are_refused_without_echoing_them(url: str) -> None:
    result = run("state", "list", "--state", url)
    assert result.returncode == 1
    assert "the s3:// state URL holds credentials" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "AKIAEXAMPLE" not in result.stdout + result.stderr


def test_control_characters_from_a_spec_are_shown_escaped(
        served: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text('apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n'
                    '  - id: "156142"\n    name: "\\e[2Jgold\\u202e"\n    amount: "1.00"\n')
    result = run("plan", str(spec), env=served)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert 'plan "\\x1b[2Jgold\\u202e" (156142) will be updated' in result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text('apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n'
                      '  - id: "156142"\n    status: "\\e]0;pwned\\a"\n')
    result = run("validate", str(broken), env=served)
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_text_from_an_answer_is_escaped() -> None:
    root = etree.fromstring(SAMPLE_INQUIRY_ANSWER)
    # XML refuses C0 controls such as ESC; C1 controls (CSI) and bidi overrides pass.
    root.find("invoicePrefix").text = "INV\x9b31m\u202e"  # type: ignore[union-attr]
    root.find("respReason").text = "ok\x9b2J"  # type: ignore[union-attr]
    answer = messages.read_response(etree.tostring(root))
    assert answer.reason == "ok\\x9b2J"
    assert messages.live_plan(answer).invoice_prefix == "INV\\x9b31m\\u202e"


@pytest.mark.parametrize(("url", "says"), [
    ("s3://bucket/plans?endpoint_url=http://AKIAEXAMPLE:s3cret@127.0.0.1:9",
     "the s3:// state URL's endpoint_url holds credentials"),
    ("postgres://plansync@127.0.0.1:9/db?password=s3cret", "the state URL holds a password"),
    ("postgres://plansync@127.0.0.1:9/db?sslpassword=s3cret", "the state URL holds a password"),
])
def test_credentials_in_a_state_urls_query_are_refused_without_echoing_them(
        url: str, says: str) -> None:
    result = run("state", "list", "--state", url)
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "AKIAEXAMPLE" not in result.stdout + result.stderr


@pytest.mark.parametrize("rate", ["nan", "inf", "1e-300", "0", "-1"])
def test_a_rate_limit_that_is_no_rate_is_a_usage_error(rate: str) -> None:
    result = run("plan", "specs", "--rate-limit", rate)
    assert result.returncode == 64, result.stderr  # was exit 70 (1e-300) or accepted (nan)
    assert "--rate-limit" in result.stderr and "Traceback" not in result.stderr
