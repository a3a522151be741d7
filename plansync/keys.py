"""Loading the two RSA keys plansync needs, from the files merchants actually hold.

The merchant's private key: PEM (PKCS#1 or PKCS#8, maybe passphrase-encrypted), DER,
or PKCS#12 (.pfx/.p12 with a password). 2C2P's public key: an X.509 certificate
(.cer, PEM or DER) or a PEM/DER public key. Every failure names the file.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from joserfc.jwk import RSAKey

from plansync.errors import KeyFileError
from plansync.folders import read_regular

log = logging.getLogger(__name__)

MIN_KEY_BITS = 2048
_PKCS12_SUFFIXES = {".p12", ".pfx"}


def load_private_key(path: Path, password: str | None, what: str = "merchant key") -> RSAKey:
    data = _read(path, what)
    secret = password.encode() if password is not None else None
    try:
        if path.suffix.lower() in _PKCS12_SUFFIXES:
            key: Any = _from_pkcs12(path, data, secret, what)
        elif b"-----BEGIN" in data:
            if b"PRIVATE KEY" not in data:
                raise KeyFileError(
                    f"{what} file {path} holds no private key (a certificate or public key?)",
                    "point it at the merchant's private key (PEM, DER or .p12/.pfx)")
            # cryptography checks the key here (OpenSSL's RSA_check_key: p and q prime,
            # the CRT parts consistent): about a quarter of a one-plan `plan`'s CPU, and
            # kept: an unchecked malformed key is undefined behaviour in OpenSSL, and a
            # merchant key is user-supplied. (Skipping it would need the same guarantee
            # kept another way, e.g. a record that these exact bytes passed the check.)
            key = serialization.load_pem_private_key(data, secret or None)
        else:
            key = serialization.load_der_private_key(data, secret or None)
    except TypeError as exc:  # cryptography's way of saying "password needed / not needed"
        if not secret:
            given = "an empty password was given" if secret == b"" else "no password was given"
            raise KeyFileError(f"{what} file {path} is encrypted and {given}",
                               "set PLANSYNC_MERCHANT_KEY_PASSWORD to its password") from None
        raise KeyFileError(f"{what} file {path} is not encrypted but a password was given",
                           "unset PLANSYNC_MERCHANT_KEY_PASSWORD") from exc
    except (ValueError, UnsupportedAlgorithm):
        if _public(data) is not None:
            raise KeyFileError(f"{what} file {path} holds no private key (a certificate or "
                               "public key)", "point it at the merchant's private key (PEM, "
                               "DER or .p12/.pfx)") from None
        raise KeyFileError(f"{what} file {path} cannot be read: wrong password, or not a "
                           "private key in PEM, DER or PKCS#12 form") from None
    loaded = _rsa(key, rsa.RSAPrivateKey, path, what)
    # Only now that it is known to be a private key: a public key given by mistake is
    # rightly readable by anyone, and a warning about its mode would mislead.
    _warn_if_shared(path)
    return loaded


def load_public_key(path: Path, what: str = "gateway key") -> RSAKey:
    data = _read(path, what)
    if b"PRIVATE KEY" in data:
        raise KeyFileError(f"{what} file {path} holds a private key",
                           "use 2C2P's public certificate (.cer) here; keep private keys private")
    key = _public(data)
    if key is not None:
        return _rsa(key, rsa.RSAPublicKey, path, what)
    raise KeyFileError(f"{what} file {path} is neither an X.509 certificate nor a public key "
                       "(PEM or DER)", "use the .cer file 2C2P gave you for this endpoint")


def _public(data: bytes) -> Any:
    """The public key of an X.509 certificate or a public key, PEM or DER; else None."""
    loaders: tuple[Callable[[], Any], ...] = (
        lambda: x509.load_pem_x509_certificate(data).public_key(),
        lambda: x509.load_der_x509_certificate(data).public_key(),
        lambda: serialization.load_pem_public_key(data),
        lambda: serialization.load_der_public_key(data),
    )
    for load in loaders:
        try:
            return load()
        except (ValueError, UnsupportedAlgorithm):
            continue
    return None


def _read(path: Path, what: str) -> bytes:
    try:
        return read_regular(path)
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{what} file {path} cannot be read: {exc.strerror}") from None
    except ValueError:  # a NUL character, which no path can hold
        raise KeyFileError(f"{what} file {str(path)!r} cannot be read: a path cannot hold "
                           "a NUL character", "check the merchant_key and gateway_key "
                           "settings") from None


def _from_pkcs12(path: Path, data: bytes, secret: bytes | None, what: str) -> Any:
    key, _cert, _chain = pkcs12.load_key_and_certificates(data, secret)
    if key is None:
        raise KeyFileError(f"{what} file {path} is a PKCS#12 bundle without a private key")
    return key


def _rsa(key: Any, kind: type[Any], path: Path, what: str) -> RSAKey:
    if not isinstance(key, kind):
        raise KeyFileError(f"{what} file {path} holds a {type(key).__name__}, not an RSA key",
                           "2C2P's envelope uses RSA (PS256 and RSA-OAEP)")
    if key.key_size < MIN_KEY_BITS:
        raise KeyFileError(f"{what} file {path} holds a {key.key_size}-bit RSA key; "
                           f"at least {MIN_KEY_BITS} bits are needed")
    return RSAKey.import_key(key)


def _warn_if_shared(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("private key %s is readable by group or others; run: chmod 600 %s",
                    path, path)
