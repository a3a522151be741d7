import base64
import hashlib
import hmac
import json
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwe, jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import OctKey, RSAKey

from plansync.errors import EnvelopeError
from plansync.gateway.envelope import Envelope

SEED_TOKENS = Path(__file__).parents[1] / "data" / "seed_tokens.txt"


def seed_tokens() -> list[str]:
    lines = SEED_TOKENS.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {"merchant": new_key(), "gateway": new_key()}


def side(own: rsa.RSAPrivateKey, peer: rsa.RSAPrivateKey) -> Envelope:
    return Envelope(RSAKey.import_key(own), RSAKey.import_key(peer.public_key()))


@pytest.fixture
def merchant(keys: dict[str, rsa.RSAPrivateKey]) -> Envelope:
    return side(keys["merchant"], keys["gateway"])


@pytest.fixture
def gateway(keys: dict[str, rsa.RSAPrivateKey]) -> Envelope:
    return side(keys["gateway"], keys["merchant"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header(token: str) -> dict[str, str]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_round_trip_both_ways(merchant: Envelope, gateway: Envelope) -> None:
    assert gateway.open(merchant.seal(b"<ping/>")) == b"<ping/>"
    assert merchant.open(gateway.seal(b"<pong/>")) == b"<pong/>"


def test_sealed_token_has_the_documented_shape(merchant: Envelope) -> None:
    token = merchant.seal(b"<x/>")
    assert header(token) == {"alg": "PS256", "typ": "JWT"}
    payload = token.split(".")[1]
    inner = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert inner.count(".") == 4  # the JWS payload is the JWE compact string itself
    assert header(inner) == {"alg": "RSA-OAEP", "enc": "A256GCM"}


def test_seed_tokens_are_read_structurally_and_refused_under_other_keys(
        merchant: Envelope) -> None:
    tokens = seed_tokens()
    assert len(tokens) == 6  # request and answer for inquiry, update and cancel
    for token in tokens:
        assert header(token) == {"alg": "PS256", "typ": "JWT"}
        with pytest.raises(EnvelopeError,
                           match="signature does not verify with the configured 2C2P key"):
            merchant.open(token)


def test_a_token_sealed_for_someone_else_does_not_decrypt(
        keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    stranger = new_key()
    other = side(keys["gateway"], stranger)  # encrypts to the stranger, signs correctly
    with pytest.raises(EnvelopeError, match="cannot be decrypted with the configured merchant_key"):
        merchant.open(other.seal(b"<x/>"))


def test_wrong_signer_is_refused(keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    impostor = side(new_key(), keys["merchant"])
    with pytest.raises(EnvelopeError, match="signature does not verify"):
        merchant.open(impostor.seal(b"<x/>"))


def test_tampered_payload_is_refused(merchant: Envelope, gateway: Envelope) -> None:
    head, payload, signature = gateway.seal(b"<x/>").split(".")
    flipped = payload[:-5] + ("A" if payload[-5] != "A" else "B") + payload[-4:]
    with pytest.raises(EnvelopeError):
        merchant.open(f"{head}.{flipped}.{signature}")


# --- algorithm confusion: each token below is refused before any key is trusted ---------


def inner_jwe(keys: dict[str, rsa.RSAPrivateKey], alg: str = "RSA-OAEP") -> str:
    with warnings.catch_warnings():  # RSA1_5 is deprecated: exactly why it must be refused
        warnings.simplefilter("ignore", SecurityWarning)
        return jwe.encrypt_compact({"alg": alg, "enc": "A256GCM"}, b"<x/>",
                               RSAKey.import_key(keys["merchant"].public_key()),
                               algorithms=[alg, "A256GCM"])


def test_alg_none_is_refused(keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    token = f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(inner_jwe(keys).encode())}."
    with pytest.raises(EnvelopeError, match="'none' is refused; only PS256"):
        merchant.open(token)


def test_hs256_keyed_with_the_gateway_public_key_is_refused(
        keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    public_pem = keys["gateway"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # The classic attack: HMAC with the public key's PEM bytes as the secret (built by
    # hand, since joserfc rightly refuses to make it).
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(inner_jwe(keys).encode())
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    with pytest.raises(EnvelopeError, match="'HS256' is refused"):
        merchant.open(token)


def test_rs256_is_refused(keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    token = jws.serialize_compact({"alg": "RS256"}, inner_jwe(keys),
                                  RSAKey.import_key(keys["gateway"]), algorithms=["RS256"])
    with pytest.raises(EnvelopeError, match="'RS256' is refused"):
        merchant.open(token)


def test_a_ps256_header_over_an_rs256_signature_does_not_verify(
        keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    signing_input = b64(b'{"alg":"PS256"}') + "." + b64(inner_jwe(keys).encode())
    signature = keys["gateway"].sign(signing_input.encode(), padding.PKCS1v15(),
                                     hashes.SHA256())
    with pytest.raises(EnvelopeError, match="signature does not verify"):
        merchant.open(f"{signing_input}.{b64(signature)}")


@pytest.mark.parametrize("alg", ["RSA1_5", "RSA-OAEP-256"])
def test_other_key_wrapping_is_refused(alg: str, keys: dict[str, rsa.RSAPrivateKey],
                                       merchant: Envelope) -> None:
    token = jws.serialize_compact({"alg": "PS256"}, inner_jwe(keys, alg),
                                  RSAKey.import_key(keys["gateway"]), algorithms=["PS256"])
    with pytest.raises(EnvelopeError, match=f"JWE alg '{alg}' is refused"):
        merchant.open(token)


def test_direct_encryption_is_refused(keys: dict[str, rsa.RSAPrivateKey],
                                      merchant: Envelope) -> None:
    inner = jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, b"<x/>",
                                OctKey.generate_key(256), algorithms=["dir", "A256GCM"])
    token = jws.serialize_compact({"alg": "PS256"}, inner, RSAKey.import_key(keys["gateway"]),
                                  algorithms=["PS256"])
    with pytest.raises(EnvelopeError, match="JWE alg 'dir' is refused"):
        merchant.open(token)


def test_compression_and_unknown_header_members_are_refused(
        keys: dict[str, rsa.RSAPrivateKey], merchant: Envelope) -> None:
    inner = jwe.encrypt_compact({"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF"}, b"<x/>",
                                RSAKey.import_key(keys["merchant"].public_key()),
                                algorithms=["RSA-OAEP", "A256GCM", "DEF"])
    token = jws.serialize_compact({"alg": "PS256"}, inner, RSAKey.import_key(keys["gateway"]),
                                  algorithms=["PS256"])
    with pytest.raises(EnvelopeError, match="refused: zip"):
        merchant.open(token)


@pytest.mark.parametrize(("token", "message"), [
    ("", "not a JWS compact token"),
    ("a.b", "not a JWS compact token"),
    ("!!!.b.c", "not base64url-encoded JSON"),
    (b64(b"[1]") + ".b.c", "not a JSON object"),
    ("96 Unable to decrypt", "not a JWS compact token"),
    ("x" * 70000, "larger than"),
])
def test_garbage_is_refused_clearly(token: str, message: str, merchant: Envelope) -> None:
    with pytest.raises(EnvelopeError, match=message):
        merchant.open(token)
