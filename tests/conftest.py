from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from plansync.config import Gateway
from plansync.emulator import home
from plansync.emulator.server import Emulator
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.fake_github import FakeGitHub, serving


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


class Sleeps(list[float]):
    """Stands in for time.sleep: records the backoff delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(settings: Gateway, sleeps: Sleeps) -> Iterator[GatewayClient]:
    with GatewayClient.over_http(settings.endpoint, settings.merchant_id, settings.envelope(),
                       read_timeout=5, retry=RetryPolicy(attempts=3), sleep=sleeps) as made:
        yield made


PLANSYNC = [sys.executable, "-m", "plansync"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLANSYNC, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture
def served(emulator: Emulator, emulator_dir: Path) -> Iterator[dict[str, str]]:
    """Environment that points the command at the in-test emulator."""
    yield {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
           "PLANSYNC_ENDPOINT": emulator.url}


def quick_reads(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with its settings file copied to ``folder`` with ``read_timeout: 1``: a
    settle window may be no shorter than the read timeout, and tests wait out windows of
    one second (--settle-window 1s). The emulator answers in milliseconds."""
    source = Path(env["PLANSYNC_CONFIG"])
    text = (source.read_text().replace("merchant_key: ", f"merchant_key: {source.parent}/")
            .replace("gateway_key: ", f"gateway_key: {source.parent}/"))
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "quick-reads.yaml"
    config.write_text(text + "read_timeout: 1\n")
    return env | {"PLANSYNC_CONFIG": str(config)}


def seeded_date(days: int) -> date:
    """The sample plans' next charges are this many days after the day they were made."""
    return datetime.now(UTC).date() + timedelta(days=days)


def admin(emulator: Emulator, method: str, path: str, payload: Any = None) -> Any:
    answer = requests.request(method, emulator.server.base_url + path, json=payload, timeout=5)
    answer.raise_for_status()
    return answer.json()


def live_fields(emulator: Emulator, plan_id: str) -> dict[str, Any]:
    plans = admin(emulator, "GET", "/_emulator/plans")
    return next(p for p in plans if p["recurringUniqueID"] == plan_id)


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


def state_location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state of the given backend kind, for one test."""
    import uuid

    if kind == "local":
        return str(tmp_path / ".plansync" / "state.json")
    if kind == "postgres":
        return request.getfixturevalue("postgres_url") + f"?workspace=t{uuid.uuid4().hex[:12]}"
    endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://plansync-state/t{uuid.uuid4().hex[:12]}?endpoint_url={endpoint}&lease=2"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A stand-in GitHub REST API on 127.0.0.1 (tests/fake_github.py)."""
    with serving(FakeGitHub()) as fake:
        yield fake
