"""A total deadline per request: a gateway that drips its answer cannot hang plansync.

The dripping gateway is a real socket server on 127.0.0.1 that reads the request, then
sends a valid-looking answer one byte every 0.2 s: each read succeeds well within the
read timeout, so only a deadline on the whole request ends it.
"""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plansync import errors
from plansync.config import Gateway
from plansync.emulator import home
from plansync.gateway.client import GatewayClient, RetryPolicy
from tests.helpers import HEAD, HostileGateway, Sleeps, run


@pytest.fixture
def dripping(hostile: Callable[..., HostileGateway]) -> str:
    """The URL of a gateway that drips its answer, one byte every 0.2 s."""
    return hostile().url


def test_a_dripping_answer_ends_at_the_deadline(dripping: str, settings: Gateway,
                                                sleeps: Sleeps) -> None:
    with GatewayClient.over_http(dripping, "JT01", settings.envelope(), read_timeout=5,
                       request_deadline=1.0, retry=RetryPolicy(attempts=2),
                       sleep=sleeps) as client:
        started = time.monotonic()
        with pytest.raises(errors.TransportError,
                           match="no complete answer within the 1s request deadline"):
            client.inquire("156142")
        assert time.monotonic() - started < 10  # the whole answer would take 17 minutes
        assert len(sleeps) == 1  # an inquiry is retried after its deadline
        with pytest.raises(errors.OutcomeUnknownError, match="1s request deadline"):
            # A write past its deadline may have been applied.
            client.send(client.cancel_write("156142", None))


def test_plan_and_apply_end_at_the_deadline_and_release_the_lock(
        dripping: str, emulator_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "plansync.yaml"
    config.write_text(f"endpoint: {dripping}\nmerchant_id: JT01\n"
                      f"merchant_key: {emulator_dir / home.MERCHANT_PRIVATE}\n"
                      f"gateway_key: {emulator_dir / home.GATEWAY_PUBLIC}\n"
                      "request_deadline: 0.5\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '1.00'}\n")
    env = {"PLANSYNC_CONFIG": str(config)}
    for command in (["plan", str(spec)], ["apply", str(spec), "--auto-approve"]):
        result = run(*command, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "0.5s request deadline" in result.stdout + result.stderr
    assert not (tmp_path / ".plansync" / "state.json.lock").exists()
