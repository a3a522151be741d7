"""The fixtures the test modules share; plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plansync.config import Gateway
from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.fake_github import FakeGitHub, serving
from tests.helpers import HostileGateway, Sleeps


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own temp dir, with no PLANSYNC_* from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PLANSYNC_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def emulator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("emulator")
    home.init(folder)
    return folder


@pytest.fixture
def emulator(emulator_dir: Path) -> Iterator[Emulator]:
    with Emulator.start(emulator_dir) as running:
        yield running


@pytest.fixture
def settings(emulator: Emulator, emulator_dir: Path) -> Gateway:
    return Gateway(endpoint=emulator.url, merchant_id="JT01",
                    merchant_key=emulator_dir / home.MERCHANT_PRIVATE,
                    gateway_key=emulator_dir / home.GATEWAY_PUBLIC)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(settings: Gateway, sleeps: Sleeps) -> Iterator[GatewayClient]:
    with GatewayClient.over_http(settings.endpoint, settings.merchant_id, settings.envelope(),
                       read_timeout=5, retry=RetryPolicy(attempts=3), sleep=sleeps) as made:
        yield made


@pytest.fixture
def served(emulator: Emulator, emulator_dir: Path) -> Iterator[dict[str, str]]:
    """Environment that points the command at the in-test emulator."""
    yield {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
           "PLANSYNC_ENDPOINT": emulator.url}


@pytest.fixture
def env(served: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``served``, with a local state of its own in tmp_path/state. A module whose
    commands need other settings defines its own ``env``."""
    return served | {"PLANSYNC_STATE": str(tmp_path / "state" / "state.json")}


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileGateway]]:
    """Start hostile gateways on demand, ``hostile(silent=False)``; all stop after the
    test."""
    started: list[HostileGateway] = []

    def start(silent: bool = False) -> HostileGateway:
        started.append(HostileGateway(silent).start())
        return started[-1]

    yield start
    for gateway in started:
        gateway.stop()


# --- real servers for the state backends (tests/servers.py) ----------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from tests.servers import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, a bucket 'plansync-state' in it, and dummy credentials in the
    environment (inherited by the plansync processes the tests start)."""
    import boto3

    from tests.servers import s3_server

    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    try:
        with s3_server() as endpoint:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="plansync-state")
            yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A stand-in GitHub REST API on 127.0.0.1 (tests/fake_github.py)."""
    with serving(FakeGitHub()) as fake:
        yield fake
