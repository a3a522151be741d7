"""The 2C2P envelope: XML inside JWE (RSA-OAEP + A256GCM) inside JWS (PS256).

Sealing encrypts to the peer's public key, then signs with our private key; the JWS
payload is the JWE compact string itself. Opening is the reverse. Only these algorithms
are accepted, so ``none``, ``HS256``, ``RS256``, ``RSA1_5``, ``dir`` and friends are
refused before any key is used.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from joserfc import jwe, jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwe import JWERegistry
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry

from plansync.errors import EnvelopeError
from plansync.gateway import assumptions

JWS_HEADER = {"alg": "PS256", "typ": "JWT"}
JWE_HEADER = {"alg": "RSA-OAEP", "enc": "A256GCM"}
JWS_ALGORITHMS = ["PS256"]
JWE_ALGORITHMS = ["RSA-OAEP", "A256GCM"]
# The allow-lists as registries, built once: joserfc would build one per call otherwise.
_JWS = JWSRegistry(algorithms=JWS_ALGORITHMS)
_JWE = JWERegistry(algorithms=JWE_ALGORITHMS)
# Header members that change nothing about how a token is checked; anything else
# (zip, jku, x5u, crit, …) is refused rather than interpreted.
_HARMLESS_MEMBERS = {"alg", "enc", "typ", "cty", "kid"}


class Envelope:
    """One side's view: our private key, and the public key of whoever we talk to."""

    def __init__(self, own_key: RSAKey, peer_key: RSAKey) -> None:
        self._own_key = own_key
        self._peer_key = peer_key

    def fingerprint(self) -> str:
        """Names both keys without revealing anything: their RFC 7638 thumbprints."""
        return f"{self._own_key.thumbprint()}:{self._peer_key.thumbprint()}"

    def seal(self, xml: bytes) -> str:
        encrypted = jwe.encrypt_compact(JWE_HEADER, xml, self._peer_key,
                                        registry=_JWE)
        return jws.serialize_compact(JWS_HEADER, encrypted, self._own_key,
                                     registry=_JWS)

    def open(self, token: str | bytes) -> bytes:
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        text = text.strip()
        if len(text) > assumptions.MAX_TOKEN_BYTES:
            raise EnvelopeError(f"token of {len(text)} bytes is larger than the "
                                f"{assumptions.MAX_TOKEN_BYTES}-byte limit")
        _check_header(text, 3, "JWS", {"alg": JWS_ALGORITHMS[0]})
        try:
            signed = jws.deserialize_compact(text, self._peer_key, registry=_JWS)
        except BadSignatureError:
            raise EnvelopeError(
                "signature does not verify with the configured 2C2P key",
                "check that the configured 2C2P key is the one that signed this "
                "(sandbox and production keys differ)") from None
        except JoseError as exc:
            raise EnvelopeError(f"JWS token is malformed: {exc.description}") from None
        inner = signed.payload.decode("ascii", "replace")
        _check_header(inner, 5, "JWE", {"alg": JWE_ALGORITHMS[0], "enc": JWE_ALGORITHMS[1]})
        try:
            return jwe.decrypt_compact(inner, self._own_key, registry=_JWE).plaintext or b""
        except JoseError:
            raise EnvelopeError(
                "the signed content cannot be decrypted with the configured merchant_key",
                "the 2C2P side encrypted to a different public key; check that merchant_key "
                "matches the key registered with it") from None


def _check_header(token: str, parts: int, kind: str, expected: Mapping[str, str]) -> None:
    """Refuse a token whose shape or header is not what the envelope allows."""
    segments = token.count(".") + 1
    if segments != parts:
        raise EnvelopeError(f"not a {kind} compact token ({segments} parts, "
                            f"expected {parts})")
    header = _decode_header(token[:token.index(".")], kind)
    unknown = set(header) - _HARMLESS_MEMBERS
    if unknown:
        raise EnvelopeError(f"{kind} header has members that are refused: "
                            f"{', '.join(sorted(unknown))}")
    for member, allowed in expected.items():
        if header.get(member) != allowed:
            raise EnvelopeError(f"{kind} {member} {header.get(member)!r} is refused; "
                                f"only {allowed} is accepted")


@functools.lru_cache(maxsize=64)  # every token of a run carries the same few headers
def _decode_header(segment: str, kind: str) -> Mapping[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{kind} header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise EnvelopeError(f"{kind} header is not a JSON object")
    return MappingProxyType(header)
