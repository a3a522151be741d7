"""An emulator's folder: its keys, its seed plans, and a plansync.yaml that points at it.

One merchant (``emulator init DIR --merchant JT01``):

    DIR/gateway-private.pem   the emulated 2C2P's private key (signs answers, decrypts)
    DIR/gateway-public.pem    what a merchant configures as gateway_key
    DIR/merchant-private.pem  what a merchant configures as merchant_key
    DIR/merchant-public.pem   what the emulator verifies requests with
    DIR/seed.yaml             the plans it starts with
    DIR/plansync.yaml         client settings for this emulator

Several merchants (``--merchants SG01,TH01``): each merchant's key pair in
DIR/merchants/<ID>/, a plansync.yaml with one project per merchant, and a spec of each
one's sample plans in DIR/specs/<id lowercased>/plans.yaml.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plansync import keys, schema_files
from plansync.emulator.jose import GatewayEnvelope, GatewayKeys
from plansync.emulator.store import StoredPlan
from plansync.errors import ConfigError
from plansync.folders import make_private, read_regular

ACTION_PATH = "/2C2PFrontend/PaymentAction/2.0/action"
DEFAULT_PORT = 8700

GATEWAY_PRIVATE = "gateway-private.pem"
GATEWAY_PUBLIC = "gateway-public.pem"
MERCHANT_PRIVATE = "merchant-private.pem"
MERCHANT_PUBLIC = "merchant-public.pem"
MERCHANTS = "merchants"  # DIR/merchants/<ID>/merchant-*.pem: a key pair per merchant
SPECS = "specs"
SEED = "seed.yaml"
CLIENT_CONFIG = "plansync.yaml"

MERCHANT_ID_RE = re.compile(r"[A-Za-z0-9]{1,15}")  # merchantID is C 15
# The sample plans' ids: 156142 up for the first merchant, 1000 more for each next one,
# so that a plan of one merchant is never mistaken for another's.
FIRST_PLAN_ID = 156142
PLAN_ID_STEP = 1000


def init(folder: Path, merchant_id: str = "JT01", port: int = DEFAULT_PORT) -> list[Path]:
    """Write a new emulator folder for one merchant. Refuses to overwrite anything."""
    names = (GATEWAY_PRIVATE, GATEWAY_PUBLIC, MERCHANT_PRIVATE, MERCHANT_PUBLIC, SEED,
             CLIENT_CONFIG)
    _refuse_existing(folder, [Path(name) for name in names])
    make_private(folder)  # it holds private keys
    _key_pair(folder, GATEWAY_PRIVATE, GATEWAY_PUBLIC)
    _key_pair(folder, MERCHANT_PRIVATE, MERCHANT_PUBLIC)
    _write(folder / SEED, seed_text([merchant_id], datetime.now(UTC).date()).encode())
    _write(folder / CLIENT_CONFIG, _CONFIG_TEMPLATE.format(
        merchant=merchant_id, port=port, path=ACTION_PATH).encode())
    return [folder / name for name in names]


def init_merchants(folder: Path, merchant_ids: Sequence[str],
                   port: int = DEFAULT_PORT) -> list[Path]:
    """Write a new emulator folder for several merchants, each with its own key pair, its
    own sample plans, a project in plansync.yaml and a spec. Refuses to overwrite anything."""
    paths = [Path(GATEWAY_PRIVATE), Path(GATEWAY_PUBLIC)]
    for merchant_id in merchant_ids:
        paths += [merchant_key(merchant_id), merchant_key(merchant_id, public=True)]
    paths += [Path(SEED), Path(CLIENT_CONFIG)]
    paths += [spec_folder(merchant_id) / "plans.yaml" for merchant_id in merchant_ids]
    _refuse_existing(folder, paths)
    make_private(folder)  # it holds private keys
    _key_pair(folder, GATEWAY_PRIVATE, GATEWAY_PUBLIC)
    for merchant_id in merchant_ids:
        make_private(folder / merchant_key(merchant_id).parent)
        _key_pair(folder, merchant_key(merchant_id), merchant_key(merchant_id, public=True))
    _write(folder / SEED, seed_text(merchant_ids, datetime.now(UTC).date()).encode())
    projects = "".join(_PROJECT_TEMPLATE.format(
        project=project_name(merchant_id), specs=spec_folder(merchant_id).as_posix(),
        merchant=merchant_id, key=merchant_key(merchant_id).as_posix())
        for merchant_id in merchant_ids)
    _write(folder / CLIENT_CONFIG, _PROJECTS_CONFIG_TEMPLATE.format(
        port=port, path=ACTION_PATH, projects=projects).encode())
    for index, merchant_id in enumerate(merchant_ids):
        make_private(folder / spec_folder(merchant_id))
        _write(folder / spec_folder(merchant_id) / "plans.yaml",
               spec_text(merchant_id, index).encode())
    return [folder / path for path in paths]


def project_name(merchant_id: str) -> str:
    return merchant_id.lower()


def merchant_key(merchant_id: str, public: bool = False) -> Path:
    """Where a folder of several merchants keeps this merchant's key, relative to it."""
    return Path(MERCHANTS, merchant_id, MERCHANT_PUBLIC if public else MERCHANT_PRIVATE)


def spec_folder(merchant_id: str) -> Path:
    return Path(SPECS, project_name(merchant_id))


def merchants_with_keys(folder: Path) -> list[str]:
    """The merchants that have a key pair of their own in ``folder`` (none: a folder of
    one merchant, whose key is DIR/merchant-public.pem)."""
    return sorted(path.parent.name
                  for path in (folder / MERCHANTS).glob(f"*/{MERCHANT_PUBLIC}"))


def plan_ids(index: int) -> list[str]:
    """The sample plans' ids of the ``index``-th merchant of a folder."""
    first = FIRST_PLAN_ID + PLAN_ID_STEP * index
    return [str(first + offset) for offset in range(_SAMPLE_PLANS)]


def seed_text(merchant_ids: Sequence[str], today: date) -> str:
    """The sample plans of each merchant, their next charges a few weeks after ``today``
    (so that none is about to charge, whenever the folder is made)."""
    dates = {
        "in_6_weeks": (today + timedelta(days=42)).strftime("%Y%m%d"),  # as the sample answer
        "in_2_weeks": (today + timedelta(days=14)).strftime("%d%m%Y"),  # as the specification
        "in_3_weeks": (today + timedelta(days=21)).strftime("%d%m%Y"),
    }
    return _SEED_HEADER + "".join(
        _SEED_PLANS.format(merchant=merchant_id, ids=plan_ids(index), **dates)
        for index, merchant_id in enumerate(merchant_ids))


def spec_text(merchant_id: str, index: int) -> str:
    """The example spec (specs.example/plans.yaml: some of the sample plans, declared to
    differ from the seed), for this merchant's own plan ids."""
    example = schema_files.shipped("specs.example", "plans.yaml").read_text(encoding="utf-8")
    body = example[example.index("apiVersion:"):]
    body = re.sub(r'(?m)^(\s*- id: )"([0-9]+)"',
                  lambda found: f'{found[1]}"{int(found[2]) + PLAN_ID_STEP * index}"', body)
    return _SPEC_HEADER.format(merchant=merchant_id) + body


def client_port(folder: Path) -> int | None:
    """The port of the endpoint in ``folder``'s plansync.yaml; None when the folder has no
    such file, or its endpoint names no port."""
    path = folder / CLIENT_CONFIG
    if not path.exists():
        return None
    data = _read_yaml(path, "settings file")
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str):
        return None
    try:
        return urlsplit(endpoint).port
    except ValueError:
        raise ConfigError(f"settings file {path}: the port of endpoint {endpoint!r} is not "
                          "a number from 0 to 65535",
                          "fix the endpoint, or pass --port") from None


def gateway_keys(folder: Path) -> GatewayKeys:
    """The emulated gateway's private key, and the public key of each merchant: those in
    DIR/merchants/<ID>/, and DIR/merchant-public.pem for every other merchant (a folder
    of one merchant has only that one)."""
    own = keys.load_private_key(folder / GATEWAY_PRIVATE, None, what="emulator gateway key")
    assert own.private_key is not None  # load_private_key refuses files without one
    merchants = {merchant_id: _public_key(folder / merchant_key(merchant_id, public=True),
                                          f"emulator key of merchant {merchant_id}")
                 for merchant_id in merchants_with_keys(folder)}
    default = folder / MERCHANT_PUBLIC
    default_key = (_public_key(default, "emulator merchant key")
                   if default.exists() or not merchants else None)
    return GatewayKeys(own.private_key, merchants, default_key)


def gateway_envelope(folder: Path) -> GatewayEnvelope:
    """The emulated gateway's side for a folder of one merchant: its private key, the
    merchant's public key."""
    own = keys.load_private_key(folder / GATEWAY_PRIVATE, None, what="emulator gateway key")
    assert own.private_key is not None  # load_private_key refuses files without one
    return GatewayEnvelope(own.private_key,
                           _public_key(folder / MERCHANT_PUBLIC, "emulator merchant key"))


def load_seed(path: Path) -> list[StoredPlan]:
    """Seed plans, validated against schemas/emulator-seed.schema.json."""
    data = _read_yaml(path, "seed file")
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


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(read_regular(path).decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None


def _public_key(path: Path, what: str) -> rsa.RSAPublicKey:
    key: rsa.RSAPublicKey = keys.load_public_key(path, what=what).public_key
    return key


def _refuse_existing(folder: Path, paths: Sequence[Path]) -> None:
    existing = [path.as_posix() for path in paths if (folder / path).exists()]
    if existing:
        raise ConfigError(f"{folder} already holds {', '.join(existing)}",
                          "choose an empty folder, or remove those files first")


def _key_pair(folder: Path, private_name: Path | str, public_name: Path | str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(folder / private_name, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), private=True)
    _write(folder / public_name, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


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

# Several merchants: the lead's `projects:` (config.py), one per merchant, each taking
# the top-level settings and its own merchant, key and specs.
_PROJECTS_CONFIG_TEMPLATE = """\
# Client settings for the local plansync emulator in this folder: one project per
# merchant, each with its own key and specs; endpoint and gateway_key are shared.
# Start it with:  plansync emulator serve --dir <this folder>
# Paths are relative to this file.
endpoint: http://127.0.0.1:{port}{path}
gateway_key: gateway-public.pem
projects:
{projects}"""

_PROJECT_TEMPLATE = """\
  {project}:
    specs: [{specs}]
    merchant_id: {merchant}
    merchant_key: {key}
"""

_SPEC_HEADER = """\
# The recurring plans of merchant {merchant} in this emulator, as plansync should keep
# them: some of its sample plans (seed.yaml), declared to differ from how they start.
# Only the fields a plan declares are managed; anything left out stays as it is live.
"""

# Wire formats, as an inquiry answer gives them. Quote anything with leading zeros.
_SEED_HEADER = """\
# Plans the emulator starts with, in 2C2P's own field names and wire formats.
# Amounts are 12 digits of minor units; currency is ISO 4217 numeric (702 = SGD).
plans:
"""

_SAMPLE_PLANS = 7
_SEED_PLANS = """\
  - recurringUniqueID: "{ids[0]}"
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
  - recurringUniqueID: "{ids[1]}"
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
  - recurringUniqueID: "{ids[2]}"
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
  - recurringUniqueID: "{ids[3]}"
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
  - recurringUniqueID: "{ids[4]}"
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
  - recurringUniqueID: "{ids[5]}"
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
  - recurringUniqueID: "{ids[6]}"
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
