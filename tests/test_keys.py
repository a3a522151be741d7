import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc.jwk import RSAKey

from plansync import keys
from plansync.errors import KeyFileError

Enc = serialization.Encoding
Fmt = serialization.PrivateFormat


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    import datetime as dt

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "2C2P test")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def same_key(loaded: RSAKey, key: rsa.RSAPrivateKey) -> bool:
    return loaded.as_dict()["n"] == RSAKey.import_key(key.public_key()).as_dict()["n"]


@pytest.mark.parametrize(("name", "fmt", "encoding"), [
    ("pkcs1.pem", Fmt.TraditionalOpenSSL, Enc.PEM),
    ("pkcs8.pem", Fmt.PKCS8, Enc.PEM),
    ("pkcs8.der", Fmt.PKCS8, Enc.DER),
])
def test_private_key_formats(tmp_path: Path, key: rsa.RSAPrivateKey, name: str,
                             fmt: serialization.PrivateFormat, encoding: Enc) -> None:
    path = write(tmp_path / name, key.private_bytes(encoding, fmt, serialization.NoEncryption()))
    loaded = keys.load_private_key(path, None)
    assert loaded.is_private and same_key(loaded, key)


@pytest.mark.parametrize("fmt", [Fmt.TraditionalOpenSSL, Fmt.PKCS8])
def test_encrypted_pem(tmp_path: Path, key: rsa.RSAPrivateKey,
                       fmt: serialization.PrivateFormat) -> None:
    path = write(tmp_path / "enc.pem", key.private_bytes(
        Enc.PEM, fmt, serialization.BestAvailableEncryption(b"s3cret")))
    assert same_key(keys.load_private_key(path, "s3cret"), key)
    with pytest.raises(KeyFileError, match=f"{path} cannot be read: wrong password"):
        keys.load_private_key(path, "nope")
    with pytest.raises(KeyFileError, match="encrypted and no password was given") as info:
        keys.load_private_key(path, None)
    assert "PLANSYNC_MERCHANT_KEY_PASSWORD" in str(info.value)
    with pytest.raises(KeyFileError, match="encrypted and an empty password was given"):
        keys.load_private_key(path, "")  # PLANSYNC_MERCHANT_KEY_PASSWORD= (set, but empty)


def test_password_for_an_unencrypted_key(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = write(tmp_path / "plain.pem", key.private_bytes(
        Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="not encrypted but a password was given"):
        keys.load_private_key(path, "s3cret")


@pytest.mark.parametrize("suffix", [".p12", ".pfx"])
def test_pkcs12(tmp_path: Path, key: rsa.RSAPrivateKey, suffix: str) -> None:
    bundle = pkcs12.serialize_key_and_certificates(
        b"merchant", key, certificate(key), None,
        serialization.BestAvailableEncryption(b"pfx-pass"))
    path = write(tmp_path / f"merchant{suffix}", bundle)
    assert same_key(keys.load_private_key(path, "pfx-pass"), key)
    with pytest.raises(KeyFileError, match=f"{path} cannot be read: wrong password"):
        keys.load_private_key(path, "wrong")


@pytest.mark.parametrize(("name", "data"), [
    ("cert.pem", lambda k: certificate(k).public_bytes(Enc.PEM)),
    ("cert.cer", lambda k: certificate(k).public_bytes(Enc.DER)),
    ("public.pem", lambda k: k.public_key().public_bytes(
        Enc.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
    ("public.der", lambda k: k.public_key().public_bytes(
        Enc.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
    ("pkcs1-public.pem", lambda k: k.public_key().public_bytes(
        Enc.PEM, serialization.PublicFormat.PKCS1)),
])
def test_gateway_key_formats(tmp_path: Path, key: rsa.RSAPrivateKey, name: str,
                             data: object) -> None:
    path = write(tmp_path / name, data(key), 0o644)  # type: ignore[operator]
    loaded = keys.load_public_key(path)
    assert not loaded.is_private and same_key(loaded, key)


def test_wrong_files_name_the_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    cert = write(tmp_path / "gw.cer", certificate(key).public_bytes(Enc.PEM), 0o644)
    with pytest.raises(KeyFileError, match=f"merchant key file {cert} holds no private key"):
        keys.load_private_key(cert, None)
    private = write(tmp_path / "merchant.pem", key.private_bytes(
        Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match=f"gateway key file {private} holds a private key"):
        keys.load_public_key(private)
    garbage = write(tmp_path / "notes.txt", b"hello")
    with pytest.raises(KeyFileError, match=f"{garbage} cannot be read"):
        keys.load_private_key(garbage, None)
    with pytest.raises(KeyFileError, match=f"{garbage} is neither an X.509 certificate"):
        keys.load_public_key(garbage)
    with pytest.raises(KeyFileError, match=f"{tmp_path / 'missing.pem'} does not exist"):
        keys.load_private_key(tmp_path / "missing.pem", None)


def test_keys_of_the_wrong_kind(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = write(tmp_path / "ec.pem", ec_key.private_bytes(
        Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="not an RSA key"):
        keys.load_private_key(path, None)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = write(tmp_path / "small.pem", small.private_bytes(
        Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="1024-bit RSA key; at least 2048"):
        keys.load_private_key(path, None)


def test_warns_when_a_private_key_is_readable_by_others(
        tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    data = key.private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption())
    with caplog.at_level(logging.WARNING):
        keys.load_private_key(write(tmp_path / "private.pem", data, 0o600), None)
        assert caplog.records == []
        shared = write(tmp_path / "shared.pem", data, 0o644)
        keys.load_private_key(shared, None)
    assert [r.getMessage() for r in caplog.records] == [
        f"private key {shared} is readable by group or others; run: chmod 600 {shared}"]


@pytest.mark.parametrize("form", ["public.pem", "public.der", "certificate.cer"])
def test_a_public_key_as_the_merchant_key_is_named_so_before_any_file_mode_warning(
        tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture,
        form: str) -> None:
    """A public key or certificate is the usual first-hour mistake for --merchant-key:
    world-readable is right for it, so the mode warning would only mislead."""
    public = key.public_key()
    data = {"public.pem": public.public_bytes(Enc.PEM, serialization.PublicFormat.
                                              SubjectPublicKeyInfo),
            "public.der": public.public_bytes(Enc.DER, serialization.PublicFormat.
                                              SubjectPublicKeyInfo),
            "certificate.cer": certificate(key).public_bytes(Enc.PEM)}[form]
    path = write(tmp_path / form, data, 0o644)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyFileError) as raised:
        keys.load_private_key(path, None)
    assert f"{path} holds no private key" in str(raised.value)
    assert caplog.records == []
