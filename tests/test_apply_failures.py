"""apply under failure: killed mid-write, faults on, interrupted, and run twice at once.

Each test ends on the same property: every plan converged, and the emulator's log shows
no plan received the same write twice.
"""

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.conftest import PLANSYNC, admin, quick_reads, run

HEAD = "apiVersion: plansync/v1\nkind: RecurringPlans\n"
N = 24


@pytest.fixture
def many(emulator_dir: Path, tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str], Path]]:
    """An emulator with N plans, a spec that changes every one, and the environment."""
    seed, spec = seed_and_spec(tmp_path)
    with Emulator.start(emulator_dir, seed=seed) as running:
        env = {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
               "PLANSYNC_ENDPOINT": running.url,
               "PLANSYNC_STATE": str(tmp_path / ".plansync" / "state.json")}
        yield running, env, spec


def seed_and_spec(tmp_path: Path) -> tuple[Path, Path]:
    """N active plans for the emulator, and a spec that changes every one (and cancels
    every sixth)."""
    seed = tmp_path / "seed.yaml"
    seed.write_text("plans:\n" + "".join(
        f"  - {{recurringUniqueID: '{700000 + i}', merchantID: JT01, recurringStatus: 'Y',"
        f" currency: '702', amount: '000000001000', recurringInterval: 30,"
        f" recurringCount: 12, currentCount: 1}}\n" for i in range(N)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{700000 + i}', amount: '{11 + i}.00', status: "
        f"{'cancelled' if i % 6 == 5 else 'active'}}}\n" for i in range(N)))
    return seed, spec


def processed_writes(emulator: Emulator) -> Counter[tuple[str, str]]:
    return Counter((e["recurringUniqueID"], e["processType"])
                   for e in admin(emulator, "GET", "/_emulator/log")
                   if e["processType"] in ("U", "C") and e["respCode"] == "00")


def assert_converged_once(emulator: Emulator) -> None:
    plans = {p["recurringUniqueID"]: p for p in admin(emulator, "GET", "/_emulator/plans")}
    writes = processed_writes(emulator)
    for i in range(N):
        plan_id = str(700000 + i)
        if i % 6 == 5:
            assert plans[plan_id]["cancelled"], plan_id
            assert writes[(plan_id, "C")] == 1 and writes[(plan_id, "U")] == 0, plan_id
        else:
            assert plans[plan_id]["amount"] == f"{1100 + 100 * i:012d}", plan_id
            assert writes[(plan_id, "U")] == 1 and writes[(plan_id, "C")] == 0, plan_id


def start_apply(env: dict[str, str], spec: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*PLANSYNC, "apply", str(spec), "--auto-approve", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def wait_for_writes(emulator: Emulator, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(processed_writes(emulator).values()) < count:
        assert time.monotonic() < deadline, "apply made no progress"
        time.sleep(0.05)


def test_sigkill_mid_apply_then_a_rerun_converges_without_double_writes(
        many: tuple[Emulator, dict[str, str], Path]) -> None:
    emulator, env, spec = many
    admin(emulator, "PUT", "/_emulator/faults", {"latency_ms": 150})
    victim = start_apply(env, spec, "--parallelism", "3")
    wait_for_writes(emulator, 4)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert 0 < sum(processed_writes(emulator).values()) < N
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
    done = sum(processed_writes(emulator).values())
    assert 0 < done < N
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
        f"Apply complete: 0 updated, 0 cancelled, {N} unchanged, 0 failed.")
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
