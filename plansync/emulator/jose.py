"""The emulated gateway's side of the envelope, written from RFC 7515, 7516 and 7518 and
2C2P's description with `cryptography` alone.

plansync's client seals requests and opens answers with its own Envelope (joserfc). Were
the emulator to use that same code, a mistake made the same way on both sides would pass
every test; written separately, each test of the client checks it against an
independent implementation. (It also costs the emulator less CPU than joserfc's object
model around the same RSA calls.)

Requests: JWS (PS256, signed by the merchant) whose payload is a JWE (RSA-OAEP + A256GCM,
to the gateway's key). Answers: the same, the other way round. The merchant that signed a
request is named only inside it, so the gateway decrypts first, then verifies the
signature with the key of the merchant the request names.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plansync.errors import EnvelopeError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not base64url") from None


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 7518 3.5
_JWS_HEADER = _b64(b'{"alg":"PS256","typ":"JWT"}')
_JWE_HEADER = _b64(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')
_ALLOWED_MEMBERS = {"alg", "enc", "typ", "cty", "kid"}  # anything else (zip, crit…) refused


class GatewayEnvelope:
    """The gateway's private key, and the public key of the merchant it talks to."""

    def __init__(self, own_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPublicKey) -> None:
        self._own_key = own_key
        self._merchant_key = merchant_key

    def signed_by(self, other_key: rsa.RSAPrivateKey) -> GatewayEnvelope:
        """Answers signed by a key that is not the gateway's (the wrong_key fault)."""
        return GatewayEnvelope(other_key, self._merchant_key)

    def seal(self, xml: bytes) -> str:
        cek, iv = os.urandom(32), os.urandom(12)
        sealed = AESGCM(cek).encrypt(iv, xml, _JWE_HEADER.encode("ascii"))
        jwe = ".".join([_JWE_HEADER, _b64(self._merchant_key.encrypt(cek, _OAEP)), _b64(iv),
                        _b64(sealed[:-16]), _b64(sealed[-16:])])
        signing_input = f"{_JWS_HEADER}.{_b64(jwe.encode('ascii'))}"
        signature = self._own_key.sign(signing_input.encode("ascii"), _PSS, hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def open(self, token: bytes) -> bytes:
        """The XML a merchant sealed; EnvelopeError says why a token cannot be read."""
        return self.verify(decrypt(self._own_key, token))

    def verify(self, request: Unverified) -> bytes:
        """The content of a decrypted request, once its signature verifies with this
        merchant's key."""
        try:
            self._merchant_key.verify(request.signature, request.signing_input, _PSS,
                                      hashes.SHA256())
        except InvalidSignature:
            raise EnvelopeError("the signature does not verify with the merchant's key") from None
        return request.content


@dataclass(frozen=True)
class Unverified:
    """A request decrypted, its signature not checked yet: which merchant's key must
    verify it is named only inside (merchantID), so a gateway of several merchants reads
    the content first. Only that name is read before GatewayEnvelope.verify."""

    content: bytes
    signing_input: bytes
    signature: bytes


class GatewayKeys:
    """The gateway's private key and the public key of each merchant it serves.

    ``default_key`` (an emulator folder of one merchant) is the key of every merchant
    without a key of its own."""

    def __init__(self, own_key: rsa.RSAPrivateKey,
                 merchant_keys: Mapping[str, rsa.RSAPublicKey],
                 default_key: rsa.RSAPublicKey | None = None) -> None:
        self._own_key = own_key
        self._envelopes = {merchant_id: GatewayEnvelope(own_key, key)
                           for merchant_id, key in merchant_keys.items()}
        self._default = None if default_key is None else GatewayEnvelope(own_key, default_key)
        self.merchants = frozenset(merchant_keys)

    def decrypt(self, token: bytes) -> Unverified:
        return decrypt(self._own_key, token)

    def envelope(self, merchant_id: str) -> GatewayEnvelope | None:
        """The envelope between the gateway and this merchant; None: no key for it."""
        return self._envelopes.get(merchant_id, self._default)


def decrypt(own_key: rsa.RSAPrivateKey, token: bytes) -> Unverified:
    """A merchant's request, decrypted with the gateway's key; EnvelopeError says why a
    token cannot be read."""
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise EnvelopeError("the token is not ASCII") from None
    parts = text.split(".")
    if len(parts) != 3:
        raise EnvelopeError(f"not a JWS compact token ({len(parts)} parts, expected 3)")
    _check_header(parts[0], "JWS", {"alg": "PS256"})
    signature = _unb64(parts[2], "the JWS signature")
    inner = _unb64(parts[1], "the JWS payload").decode("ascii", "replace").split(".")
    if len(inner) != 5:
        raise EnvelopeError(f"the signed payload is not a JWE compact token "
                            f"({len(inner)} parts, expected 5)")
    _check_header(inner[0], "JWE", {"alg": "RSA-OAEP", "enc": "A256GCM"})
    try:
        cek = own_key.decrypt(_unb64(inner[1], "the encrypted key"), _OAEP)
    except ValueError:
        raise EnvelopeError("the content key was not encrypted to the gateway's key") from None
    iv, tag = _unb64(inner[2], "the IV"), _unb64(inner[4], "the tag")
    if len(cek) != 32 or len(iv) != 12 or len(tag) != 16:
        raise EnvelopeError("the content key, IV or tag has the wrong length for A256GCM")
    try:
        content = AESGCM(cek).decrypt(iv, _unb64(inner[3], "the ciphertext") + tag,
                                      inner[0].encode("ascii"))
    except InvalidTag:
        raise EnvelopeError("the encrypted content does not authenticate") from None
    return Unverified(content, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _check_header(segment: str, kind: str, expected: dict[str, str]) -> None:
    try:
        header: Any = json.loads(_unb64(segment, f"the {kind} header"))
    except ValueError:
        raise EnvelopeError(f"the {kind} header is not JSON") from None
    if not isinstance(header, dict):
        raise EnvelopeError(f"the {kind} header is not a JSON object")
    unknown = set(header) - _ALLOWED_MEMBERS
    if unknown:
        raise EnvelopeError(f"the {kind} header has members that are refused: "
                            f"{', '.join(sorted(unknown))}")
    for member, allowed in expected.items():
        if header.get(member) != allowed:
            raise EnvelopeError(f"{kind} {member} {header.get(member)!r} is refused; "
                                f"only {allowed} is accepted")
