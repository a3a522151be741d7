"""An emulator's folder: its keys, its seed plans, and a plansync.yaml that points at it.

    DIR/gateway-private.pem   the emulated 2C2P's private key (signs answers, decrypts)
    DIR/gateway-public.pem    what a merchant configures as gateway_key
    DIR/merchant-private.pem  what a merchant configures as merchant_key
    DIR/merchant-public.pem   what the emulator verifies requests with
    DIR/seed.yaml             the plans it starts with
    DIR/plansync.yaml         client settings for this emulator
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plansync import keys, schema_files
from plansync.emulator.jose import GatewayEnvelope
from plansync.emulator.store import StoredPlan
from plansync.errors import ConfigError
from plansync.folders import make_private, read_regular

ACTION_PATH = "/2C2PFrontend/PaymentAction/2.0/action"
DEFAULT_PORT = 8700

GATEWAY_PRIVATE = "gateway-private.pem"
GATEWAY_PUBLIC = "gateway-public.pem"
MERCHANT_PRIVATE = "merchant-private.pem"
MERCHANT_PUBLIC = "merchant-public.pem"
SEED = "seed.yaml"
CLIENT_CONFIG = "plansync.yaml"


def init(folder: Path, merchant_id: str = "JT01", port: int = DEFAULT_PORT) -> list[Path]:
    """Write a new emulator folder. Refuses to overwrite anything already there."""
    names = (GATEWAY_PRIVATE, GATEWAY_PUBLIC, MERCHANT_PRIVATE, MERCHANT_PUBLIC, SEED,
             CLIENT_CONFIG)
    existing = [name for name in names if (folder / name).exists()]
    if existing:
        raise ConfigError(f"{folder} already holds {', '.join(existing)}",
                          "choose an empty folder, or remove those files first")
    make_private(folder)  # it holds private keys
    for private_name, public_name in ((GATEWAY_PRIVATE, GATEWAY_PUBLIC),
                                      (MERCHANT_PRIVATE, MERCHANT_PUBLIC)):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(folder / private_name, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), private=True)
        _write(folder / public_name, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    _write(folder / SEED, seed_text(merchant_id, datetime.now(UTC).date()).encode())
    _write(folder / CLIENT_CONFIG, _CONFIG_TEMPLATE.format(
        merchant=merchant_id, port=port, path=ACTION_PATH).encode())
    return [folder / name for name in names]


def seed_text(merchant_id: str, today: date) -> str:
    """The sample plans, their next charges a few weeks after ``today`` (so that none is
    about to charge, whenever the folder is made)."""
    return _SEED_TEMPLATE.format(
        merchant=merchant_id,
        in_6_weeks=(today + timedelta(days=42)).strftime("%Y%m%d"),  # as the sample answer
        in_2_weeks=(today + timedelta(days=14)).strftime("%d%m%Y"),  # as the specification
        in_3_weeks=(today + timedelta(days=21)).strftime("%d%m%Y"))


def gateway_envelope(folder: Path) -> GatewayEnvelope:
    """The emulated gateway's side: its private key, the merchant's public key."""
    own = keys.load_private_key(folder / GATEWAY_PRIVATE, None, what="emulator gateway key")
    merchant = keys.load_public_key(folder / MERCHANT_PUBLIC, what="emulator merchant key")
    assert own.private_key is not None  # load_private_key refuses files without one
    return GatewayEnvelope(own.private_key, merchant.public_key)


def load_seed(path: Path) -> list[StoredPlan]:
    """Seed plans, validated against schemas/emulator-seed.schema.json."""
    try:
        data = yaml.safe_load(read_regular(path).decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"seed file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"seed file {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"seed file {path} is not valid YAML: {exc}") from None
    problem = schema_files.first_problem("emulator-seed.schema.json", data)
    if problem is not None:
        raise ConfigError(f"seed file {path}: {problem}",
                          "see schemas/emulator-seed.schema.json")
    plans = []
    for entry in data["plans"]:
        cancelled = bool(entry.pop("cancelled", False))
        fields = {tag: str(value) for tag, value in entry.items()}
        merchant_id = fields.pop("merchantID")
        plan_id = fields.pop("recurringUniqueID")
        plans.append(StoredPlan(merchant_id, plan_id, fields, cancelled))
    return plans


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


_CONFIG_TEMPLATE = """\
# Client settings for the local plansync emulator in this folder.
# Start it with:  plansync emulator serve --dir <this folder>
# Paths are relative to this file.
endpoint: http://127.0.0.1:{port}{path}
merchant_id: {merchant}
merchant_key: merchant-private.pem
gateway_key: gateway-public.pem
"""

# Wire formats, as an inquiry answer gives them. Quote anything with leading zeros.
_SEED_TEMPLATE = """\
# Plans the emulator starts with, in 2C2P's own field names and wire formats.
# Amounts are 12 digits of minor units; currency is ISO 4217 numeric (702 = SGD).
plans:
  - recurringUniqueID: "156142"
    merchantID: {merchant}
    recurringStatus: "Y"
    invoicePrefix: "030321135205"
    currency: "702"
    amount: "000000009990"
    maskedCardNo: "XXXXXXXXXXXX1111"
    allowAccumulate: "N"
    maxAccumulateAmount: "000000001000"
    recurringInterval: 30
    recurringCount: 12
    currentCount: 3
    chargeNextDate: "{in_6_weeks}"
  - recurringUniqueID: "156143"
    merchantID: {merchant}
    recurringStatus: "Y"
    invoicePrefix: "030321135206"
    currency: "764"
    amount: "000000049900"
    maskedCardNo: "XXXXXXXXXXXX4242"
    allowAccumulate: "Y"
    maxAccumulateAmount: "000000100000"
    recurringInterval: 7
    recurringCount: 0
    currentCount: 10
    chargeNextDate: "{in_2_weeks}"
  - recurringUniqueID: "156144"
    merchantID: {merchant}
    recurringStatus: "Y"
    invoicePrefix: "030321135207"
    currency: "392"
    amount: "000000001500"
    maskedCardNo: "XXXXXXXXXXXX0005"
    allowAccumulate: "N"
    recurringInterval: 30
    recurringCount: 24
    currentCount: 0
    chargeNextDate: "{in_3_weeks}"
    chargeOnDate: "1512"
  - recurringUniqueID: "156145"
    merchantID: {merchant}
    recurringStatus: "N"
    invoicePrefix: "030321135208"
    currency: "702"
    amount: "000000002500"
    maskedCardNo: "XXXXXXXXXXXX5100"
    allowAccumulate: "N"
    recurringInterval: 90
    recurringCount: 4
    currentCount: 1
  - recurringUniqueID: "156146"
    merchantID: {merchant}
    recurringStatus: "N"
    invoicePrefix: "030321135209"
    currency: "702"
    amount: "000000019900"
    maskedCardNo: "XXXXXXXXXXXX0004"
    allowAccumulate: "N"
    recurringInterval: 365
    recurringCount: 3
    currentCount: 2
    cancelled: true
  - recurringUniqueID: "156147"
    merchantID: {merchant}
    recurringStatus: "Y"
    invoicePrefix: "030321135210"
    currency: "048"
    amount: "000000012345"
    maskedCardNo: "XXXXXXXXXXXX0019"
    allowAccumulate: "N"
    recurringInterval: 365
    recurringCount: 3
    currentCount: 1
    chargeNextDate: "{in_3_weeks}"
  - recurringUniqueID: "156148"
    merchantID: {merchant}
    recurringStatus: "Y"
    invoicePrefix: "030321135211"
    currency: "702"
    amount: "000000001990"
    maskedCardNo: "XXXXXXXXXXXX0027"
    allowAccumulate: "N"
    recurringInterval: 30
    recurringCount: 6
    currentCount: 6
"""
