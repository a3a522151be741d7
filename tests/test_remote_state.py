"""plansync apply against shared state, end to end: real plansync processes in different
working directories, a real PostgreSQL server and a real S3-compatible server, the
emulator's log as the witness that nothing is written twice."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import (
    HEAD,
    MANY,
    accepted_writes,
    admin,
    assert_converged_once,
    quick_reads,
    run_in,
    seed_and_spec,
    start_in,
    state_location,
    wait_for_writes,
)


@pytest.fixture(params=["postgres", "s3"])
def shared(request: pytest.FixtureRequest, emulator_dir: Path, tmp_path: Path
           ) -> Iterator[tuple[Emulator, dict[str, str], Path]]:
    """MANY plans to change, a spec, and an environment whose state is remote."""
    seed, spec = seed_and_spec(tmp_path)
    with Emulator.start(emulator_dir, seed=seed) as running:
        yield running, {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
                        "PLANSYNC_ENDPOINT": running.url,
                        "PLANSYNC_STATE": state_location(request.param, request, tmp_path)
                        }, spec


def test_two_applies_from_two_directories_never_both_write(
        shared: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = shared
    # Slow enough (about 6 s of writes) that the second run, however slowly a busy
    # machine starts it, finds the first still holding the lock.
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 250})
    first = start_in(env, tmp_path / "runner-a", "apply", str(spec), "--auto-approve",
                  "--parallelism", "4")
    wait_for_writes(emulator, 1)
    second = run_in(env, tmp_path / "runner-b", "apply", str(spec), "--auto-approve")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "the state is locked: lock " in second.stderr
    assert f"pid {first.pid} for apply since" in second.stderr
    waiting = run_in(env, tmp_path / "runner-c", "apply", str(spec), "--auto-approve",
                     "--lock-timeout", "90s")
    out, err = first.communicate(timeout=90)
    assert first.returncode == 0, out + err
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    assert waiting.stdout.splitlines()[-1] == (
        f"Apply complete: 0 updated, 0 cancelled, {MANY} unchanged, 0 failed.")
    assert_converged_once(emulator)


def test_sigkill_mid_apply_then_a_third_directory_converges_and_remembers(
        shared: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = shared
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 100, "drop_rate": 0.2,
                                                  "seed": 5})
    victim = start_in(env, tmp_path / "runner-a", "apply", str(spec), "--auto-approve",
                   "--parallelism", "3")
    wait_for_writes(emulator, 5)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert 0 < sum(accepted_writes(emulator).values()) < MANY
    admin(emulator, "PUT", "/_emulator/faults", {})
    said = ""
    quick = quick_reads(env, tmp_path)  # for --settle-window 1s
    for _ in range(4):  # writes in flight at the kill stay pending for the settle window
        rerun = run_in(quick, tmp_path / "runner-c", "apply", str(spec), "--auto-approve",
                       "--settle-window", "1s", "--lock-timeout", "30s")
        said += rerun.stderr
        if rerun.returncode != 1 or "pending" not in rerun.stdout:
            break
        time.sleep(1.1)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # The killed holder's lock is taken over, naming it (S3: once its 2 s lease is over).
    assert "taking over a stale lock: lock " in said and f"pid {victim.pid}" in said
    assert_converged_once(emulator)
    for i in range(5, MANY, 6):  # every cancellation is remembered, from yet another directory
        shown = run_in(env, tmp_path / "runner-d", "state", "show", str(700000 + i))
        assert json.loads(shown.stdout)["cancelled"] is True, shown.stderr
    reactivate = tmp_path / "reactivate.yaml"
    reactivate.write_text(HEAD + "plans:\n  - {id: '700005', status: active}\n")
    refused = run_in(env, tmp_path / "runner-d", "plan", str(reactivate))
    assert refused.returncode == 1
    assert "cancellation is final" in refused.stdout
