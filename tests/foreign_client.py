"""A 2C2P client written only from the public description, with raw `cryptography`
(no JOSE library): proof that the emulator speaks the documented envelope, not just
whatever plansync's own code happens to produce."""

from __future__ import annotations

import base64
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def seal(xml: bytes, merchant_key: rsa.RSAPrivateKey, gateway_key: rsa.RSAPublicKey) -> str:
    header = b64(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')
    cek, iv = os.urandom(32), os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, xml, header.encode())
    jwe = ".".join([header, b64(gateway_key.encrypt(cek, OAEP)), b64(iv),
                    b64(sealed[:-16]), b64(sealed[-16:])])
    signing_input = b64(b'{"alg":"PS256","typ":"JWT"}') + "." + b64(jwe.encode())
    signature = merchant_key.sign(signing_input.encode(), PSS, hashes.SHA256())
    return signing_input + "." + b64(signature)


def open_(token: str, merchant_key: rsa.RSAPrivateKey, gateway_key: rsa.RSAPublicKey) -> bytes:
    header, payload, signature = token.split(".")
    assert json.loads(unb64(header))["alg"] == "PS256"
    gateway_key.verify(unb64(signature), f"{header}.{payload}".encode(), PSS, hashes.SHA256())
    jwe_header, key, iv, ciphertext, tag = unb64(payload).decode().split(".")
    assert json.loads(unb64(jwe_header)) == {"alg": "RSA-OAEP", "enc": "A256GCM"}
    cek = merchant_key.decrypt(unb64(key), OAEP)
    return AESGCM(cek).decrypt(unb64(iv), unb64(ciphertext) + unb64(tag), jwe_header.encode())


def keys_in(folder: Path) -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
    """The merchant's private key and the gateway's public key of an emulator folder."""
    from cryptography.hazmat.primitives import serialization

    merchant = serialization.load_pem_private_key(
        (folder / "merchant-private.pem").read_bytes(), None)
    gateway = serialization.load_pem_public_key((folder / "gateway-public.pem").read_bytes())
    assert isinstance(merchant, rsa.RSAPrivateKey) and isinstance(gateway, rsa.RSAPublicKey)
    return merchant, gateway


def call(url: str, fields: dict[str, str], merchant_key: rsa.RSAPrivateKey,
         gateway_key: rsa.RSAPublicKey) -> dict[str, str]:
    root = ET.Element("RecurringMaintenanceRequest")
    for tag, text in fields.items():
        ET.SubElement(root, tag).text = text
    token = seal(ET.tostring(root), merchant_key, gateway_key)
    answer = requests.post(url, data=token, headers={"Content-Type": "text/plain"}, timeout=10)
    answer.raise_for_status()
    xml = open_(answer.text, merchant_key, gateway_key)
    return {child.tag: child.text or "" for child in ET.fromstring(xml)}
