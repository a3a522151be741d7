"""The emulator's own envelope: interoperates with plansync's, refuses what it must."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from plansync.emulator.jose import GatewayEnvelope
from plansync.errors import EnvelopeError
from plansync.gateway.envelope import Envelope

XML = b"<RecurringMaintenanceRequest><version>2.4</version></RecurringMaintenanceRequest>"


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(65537, 2048)
            for name in ("merchant", "gateway", "stranger")}


@pytest.fixture
def gateway(keys: dict[str, rsa.RSAPrivateKey]) -> GatewayEnvelope:
    return GatewayEnvelope(keys["gateway"], keys["merchant"].public_key())


def merchant_side(keys: dict[str, rsa.RSAPrivateKey], signer: str = "merchant",
                  encrypt_to: str = "gateway") -> Envelope:
    return Envelope(RSAKey.import_key(keys[signer]),
                    RSAKey.import_key(keys[encrypt_to].public_key()))


def test_plansync_and_the_emulator_read_each_other(keys: dict[str, rsa.RSAPrivateKey],
                                                   gateway: GatewayEnvelope) -> None:
    merchant = merchant_side(keys)
    assert gateway.open(merchant.seal(XML).encode()) == XML
    assert merchant.open(gateway.seal(XML)) == XML


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def with_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(("make", "message"), [
    (lambda k: merchant_side(k, signer="stranger").seal(XML), "does not verify"),
    (lambda k: merchant_side(k, encrypt_to="stranger").seal(XML), "not encrypted to the gateway"),
    (lambda k: with_segment(merchant_side(k).seal(XML), 0, b64(b'{"alg":"none"}')),
     "JWS alg 'none' is refused"),
    (lambda k: with_segment(merchant_side(k).seal(XML), 0, b64(b'{"alg":"PS256","zip":"DEF"}')),
     "members that are refused: zip"),
    (lambda k: with_segment(merchant_side(k).seal(XML), 2, "not*base64"), "not base64url"),
    (lambda k: "a.b", "2 parts, expected 3"),
    (lambda k: "", "1 parts, expected 3"),
])
def test_tokens_the_gateway_cannot_read(keys: dict[str, rsa.RSAPrivateKey],
                                        gateway: GatewayEnvelope, make, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError, match=message):
        gateway.open(make(keys).encode())


def test_a_tampered_ciphertext_does_not_authenticate(keys: dict[str, rsa.RSAPrivateKey],
                                                     gateway: GatewayEnvelope) -> None:
    """Re-signed by the merchant after the JWE's ciphertext changed: only GCM can tell."""
    inner = jws.deserialize_compact(merchant_side(keys).seal(XML),
                                    RSAKey.import_key(keys["merchant"].public_key()),
                                    algorithms=["PS256"]).payload.decode()
    parts = inner.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)))
    flipped[0] ^= 1
    parts[3] = b64(bytes(flipped))
    token = jws.serialize_compact({"alg": "PS256"}, ".".join(parts).encode(),
                                  RSAKey.import_key(keys["merchant"]), algorithms=["PS256"])
    with pytest.raises(EnvelopeError, match="does not authenticate"):
        gateway.open(token.encode())


def test_an_answer_signed_by_another_key_is_refused_by_plansync(
        keys: dict[str, rsa.RSAPrivateKey], gateway: GatewayEnvelope) -> None:
    answer = gateway.signed_by(keys["stranger"]).seal(XML)
    with pytest.raises(EnvelopeError, match="signature does not verify"):
        merchant_side(keys).open(answer)
    assert json.loads(base64.urlsafe_b64decode(answer.split(".")[0] + "=="))["alg"] == "PS256"
