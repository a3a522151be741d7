"""HTTPS, as the real gateway speaks it: the emulator behind TLS (the tls fixture)."""

from pathlib import Path

import pytest

from plansync import errors
from plansync.config import Settings
from plansync.gateway.client import GatewayClient


def test_https_with_the_configured_ca_bundle(tls: tuple[str, Path], settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert_file = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    with GatewayClient(url, "JT01", settings.envelope()) as client:
        assert client.inquire("156142").status == "active"
        assert client.inquire("156143").status == "active"  # over the same connection


def test_an_unknown_certificate_is_refused_and_not_retried(
        tls: tuple[str, Path], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with (GatewayClient(url, "JT01", settings.envelope()) as client,
          pytest.raises(errors.TransportError, match="TLS with 127.0.0.1") as info):
        client.inquire("156142")
    assert not info.value.retryable and "certificate verify failed" in info.value.message
    assert "check the endpoint URL and the machine's CA certificates" in str(info.value.hint)
