"""apply under failure: killed mid-write, faults on, interrupted, and run twice at once.

Each test ends on the same property: every plan converged, and the emulator's log shows
no plan received the same write twice.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import (
    MANY,
    PLANSYNC,
    accepted_writes,
    admin,
    assert_converged_once,
    quick_reads,
    run,
    seed_and_spec,
    wait_for_writes,
)


@pytest.fixture
def many(emulator_dir: Path, tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str], Path]]:
    """An emulator with MANY plans, a spec that changes every one, and the environment."""
    seed, spec = seed_and_spec(tmp_path)
    with Emulator.start(emulator_dir, seed=seed) as running:
        env = {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
               "PLANSYNC_ENDPOINT": running.url,
               "PLANSYNC_STATE": str(tmp_path / ".plansync" / "state.json")}
        yield running, env, spec


def start_apply(env: dict[str, str], spec: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*PLANSYNC, "apply", str(spec), "--auto-approve", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def test_sigkill_mid_apply_then_a_rerun_converges_without_double_writes(
        many: tuple[Emulator, dict[str, str], Path]) -> None:
    emulator, env, spec = many
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 150})
    victim = start_apply(env, spec, "--parallelism", "3")
    wait_for_writes(emulator, 4)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert 0 < sum(accepted_writes(emulator).values()) < MANY
    admin(emulator, "PUT", "/_emulator/faults", {})
    rerun = run("apply", str(spec), "--auto-approve", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "taking over a stale lock" in rerun.stderr
    assert "left open by an earlier run" in rerun.stdout
    assert_converged_once(emulator)
    assert run("plan", str(spec), "--detailed-exitcode", env=env).returncode == 0


def test_with_faults_on_reruns_converge_and_nothing_is_written_twice(
        many: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = many
    env = quick_reads(env, tmp_path)  # for --settle-window 1s
    admin(emulator, "PUT", "/_emulator/faults", {
        "error_rate": 0.15, "reset_rate": 0.1, "drop_rate": 0.3, "latency_ms": 5,
        "jitter_ms": 10, "seed": 11})
    codes = []
    for _ in range(8):
        # A write whose answer was lost stays pending for the settle window: wait it out.
        result = run("apply", str(spec), "--auto-approve", "--settle-window", "1s", env=env)
        codes.append(result.returncode)
        if result.returncode == 0:
            break
        time.sleep(1.1)
    assert codes[-1] == 0 and len(codes) > 1, codes  # the faults did bite, and were overcome
    log = admin(emulator, "GET", "/_emulator/log")
    assert {e["fault"] for e in log} >= {"drop", "error", "reset"}
    assert_converged_once(emulator)


def test_sigterm_stops_new_writes_saves_state_and_exits_143(
        many: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = many
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 150})
    victim = start_apply(env, spec, "--parallelism", "2")
    wait_for_writes(emulator, 2)
    victim.send_signal(signal.SIGTERM)
    out, err = victim.communicate(timeout=30)
    assert victim.returncode == 143, err
    assert "Stopped by SIGTERM" in out
    done = sum(accepted_writes(emulator).values())
    assert 0 < done < MANY
    state = json.loads((tmp_path / ".plansync" / "state.json").read_text())
    assert len(state["plans"]) >= done  # what was applied is remembered
    assert not (tmp_path / ".plansync" / "state.json.lock").exists()
    admin(emulator, "PUT", "/_emulator/faults", {})
    assert run("apply", str(spec), "--auto-approve", env=env).returncode == 0
    assert_converged_once(emulator)


def test_a_second_apply_fails_at_once_naming_the_first_or_waits(
        many: tuple[Emulator, dict[str, str], Path], tmp_path: Path) -> None:
    emulator, env, spec = many
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 60})
    first = start_apply(env, spec, "--parallelism", "4")
    lock = tmp_path / ".plansync" / "state.json.lock"
    deadline = time.monotonic() + 20
    while not (lock.exists() and lock.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = run("apply", str(spec), "--auto-approve", env=env)
    assert second.returncode == 1
    note = json.loads(lock.read_text())
    assert (f"the state is locked: lock {note['id']} held by {note['user']}@{note['host']} "
            f"pid {first.pid} for apply since {note['since']}") in second.stderr
    assert f"plansync force-unlock {note['id']}" in second.stderr
    assert "retry with --lock-timeout" in second.stderr  # apply's flag, worded by apply
    third = run("apply", str(spec), "--auto-approve", "--lock-timeout", "60s", env=env)
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert third.returncode == 0, third.stderr
    assert third.stdout.splitlines()[-1] == (
        f"Apply complete: 0 updated, 0 cancelled, {MANY} unchanged, 0 failed.")
    assert_converged_once(emulator)


def test_force_unlock_checks_the_id(many: tuple[Emulator, dict[str, str], Path],
                                    tmp_path: Path) -> None:
    _emulator, env, _spec = many
    lock = tmp_path / ".plansync" / "state.json.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"id": "abc", "user": "ci", "host": "elsewhere", "pid": 1,
                                "operation": "apply", "since": "2026-11-26T00:00:00Z",
                                "ci_url": "https://ci.example/run/7"}))
    wrong = run("force-unlock", "xyz", env=env)
    assert wrong.returncode == 1 and "the lock's id is abc, not xyz" in wrong.stderr
    right = run("force-unlock", "abc", env=env)
    assert right.returncode == 0
    assert right.stdout == ("Removed lock abc held by ci@elsewhere pid 1 for apply since "
                            "2026-11-26T00:00:00Z (CI run https://ci.example/run/7); a run "
                            "still holding it is fenced.\n")
    assert not lock.exists()


def test_answers_that_do_not_verify_or_parse_are_asked_again_and_apply_converges(
        many: tuple[Emulator, dict[str, str], Path]) -> None:
    """5% malformed and 5% foreign-signed answers: inquiries are retried like other
    inquiry failures, lost write answers are settled by inquiry, one run converges."""
    emulator, env, spec = many
    admin(emulator, "PUT", "/_emulator/faults", {
        "malformed_rate": 0.05, "wrong_key_rate": 0.05, "seed": 3})
    result = run("apply", str(spec), "--auto-approve", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {e["fault"] for e in admin(emulator, "GET", "/_emulator/log")} >= {
        "malformed", "wrong_key"}
    assert_converged_once(emulator)
