"""Errors that hit every plan stop the run at once and are said once (issue: 300 plans,
28 s and 300 identical lines). The emulator's request log shows how little was sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import HEAD, admin, run, seed_file

N = 500


@pytest.fixture
def five_hundred(emulator_dir: Path, tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str],
                                                                      Path]]:
    seed = seed_file(tmp_path / "seed.yaml", range(900000, 900000 + N))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{900000 + i}', amount: '12.00'}}\n" for i in range(N)))
    with Emulator.start(emulator_dir, seed=seed) as running:
        yield running, {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
                        "PLANSYNC_ENDPOINT": running.url,
                        "PLANSYNC_STATE": str(tmp_path / "state.json")}, spec


def requests_received(emulator: Emulator) -> int:
    return len(admin(emulator, "GET", "/_emulator/log"))


def test_a_wrong_gateway_key_over_500_plans_is_one_error(
        five_hundred: tuple[Emulator, dict[str, str], Path]) -> None:
    emulator, env, spec = five_hundred
    admin(emulator, "PUT", "/_emulator/faults", {"wrong_key_rate": 1.0})
    for command in (["plan", str(spec)], ["apply", str(spec), "--auto-approve"]):
        result = run(*command, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert "signature does not verify" in errors[0]
        assert "3 requests in a row failed alike, so plansync stopped" in errors[0]
        assert f"of the {N} plans were not tried" in errors[0]
        assert "could not be planned" not in result.stdout  # no line per plan
    # A handful of requests per run (those in flight when it tripped, and their retries),
    # not four attempts for each of 500 plans.
    assert requests_received(emulator) < 100


def test_an_unreachable_endpoint_is_one_error(
        five_hundred: tuple[Emulator, dict[str, str], Path]) -> None:
    _emulator, env, spec = five_hundred
    from tests.servers import free_port

    nowhere = f"http://127.0.0.1:{free_port()}/2C2PFrontend/PaymentAction/2.0/action"
    ids = [str(900000 + i) for i in range(20)]
    # inquire and import printed a line per plan (20 lines, 17 of them "not tried").
    for command in (["plan", str(spec)], ["inquire", *ids, "--parallelism", "1"],
                    ["import", *ids]):
        result = run(*command, env={**env, "PLANSYNC_ENDPOINT": nowhere})
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "cannot connect to 127.0.0.1" in errors[0], result.stderr
        assert "so plansync stopped" in errors[0] and "were not tried" in errors[0]


def test_plan_specific_errors_still_go_per_plan(
        five_hundred: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    _emulator, env, _spec = five_hundred
    spec = tmp_path / "missing.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{800 + i}', amount: '1.00'}}\n" for i in range(5)))  # 16: not found
    result = run("plan", str(spec), env=env)
    assert result.returncode == 1
    assert result.stdout.count("transaction does not exist") == 5
