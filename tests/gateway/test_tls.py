"""HTTPS, as the real gateway speaks it: the emulator behind TLS (the tls fixture)."""

from pathlib import Path

import pytest

from plansync import errors
from plansync.config import Gateway
from plansync.gateway.client import GatewayClient


def test_https_with_the_configured_ca_bundle(tls: tuple[str, Path], settings: Gateway,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert_file = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as client:
        assert client.inquire("156142").status == "active"
        assert client.inquire("156143").status == "active"  # over the same connection


def test_ssl_cert_file_is_honoured_as_well(tls: tuple[str, Path], settings: Gateway,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL's variable, which requests alone ignores (it trusts certifi's bundle)."""
    url, cert_file = tls
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with GatewayClient.over_http(url, "JT01", settings.envelope()) as client:
        assert client.inquire("156142").status == "active"


def test_a_ca_bundle_that_does_not_exist_is_a_setting_error(
        tls: tuple[str, Path], settings: Gateway, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    url, _ = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "nowhere.pem"))
    with pytest.raises(errors.ConfigError, match="REQUESTS_CA_BUNDLE names .*nowhere.pem, "
                                                 "which does not exist"):
        GatewayClient.over_http(url, "JT01", settings.envelope())


def test_an_unknown_certificate_is_refused_and_not_retried(
        tls: tuple[str, Path], settings: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with (GatewayClient.over_http(url, "JT01", settings.envelope()) as client,
          pytest.raises(errors.TransportError, match="TLS with 127.0.0.1") as info):
        client.inquire("156142")
    assert not info.value.retryable and "certificate verify failed" in info.value.message
    assert "check the endpoint URL and the machine's CA certificates" in str(info.value.hint)
