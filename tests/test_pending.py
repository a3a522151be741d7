"""Late commits and replayed answers, end to end: real processes, real HTTP, the
emulator's log as the witness that no plan receives the same write twice."""

import time
from pathlib import Path

from plansync.emulator.server import Emulator
from tests.helpers import HEAD, accepted_writes, admin, faults, live_fields, quick_reads, run

LATE_MS = 6000  # later than a busy machine takes to inquire after the write and re-run


def spec(tmp_path: Path, amount: str) -> str:
    path = tmp_path / f"spec-{amount}.yaml"
    path.write_text(HEAD + f"plans:\n  - id: '156142'\n    amount: '{amount}'\n")
    return str(path)


def wait_for_late_commits(emulator: Emulator, count: int) -> None:
    deadline = time.monotonic() + 20
    while sum(e["fault"] == "late-commit" for e in admin(emulator, "GET", "/_emulator/log")
              ) < count:
        assert time.monotonic() < deadline, "the late write never landed"
        time.sleep(0.05)


def test_a_write_that_lands_late_is_pending_never_resent(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    faults(emulator, late_commit_rate=1.0, late_commit_ms=LATE_MS)
    first = run("apply", spec(tmp_path, "50.00"), "--auto-approve", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "plan 156142: pending: the update does not show yet" in first.stdout
    assert first.stdout.splitlines()[-1].endswith("0 failed, 1 pending.")

    # Within the window a re-run does not write the plan again, even for a newer spec:
    # the older value could land after the newer one.
    faults(emulator)
    again = run("apply", spec(tmp_path, "60.00"), "--auto-approve", env=env)
    assert again.returncode == 1
    assert "plan 156142: pending: it may still land" in again.stdout
    assert accepted_writes(emulator)[("156142", "U")] == 0  # the late write has not landed yet

    wait_for_late_commits(emulator, 1)
    assert live_fields(emulator, "156142")["amount"] == "000000005000"
    settled = run("apply", spec(tmp_path, "60.00"), "--auto-approve", env=env)
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "plan 156142 (update): the update took effect" in settled.stdout
    assert live_fields(emulator, "156142")["amount"] == "000000006000"
    log = [e for e in admin(emulator, "GET", "/_emulator/log") if e["processType"] == "U"]
    assert [(e["respCode"], e["fault"]) for e in log] == [
        ("", "late"), ("00", "late-commit"), ("00", None)]  # each value written once


def test_after_the_window_a_write_that_never_landed_is_settled_and_sent_again(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    env = quick_reads(env, tmp_path)  # for --settle-window 1s
    faults(emulator, late_commit_rate=1.0, late_commit_ms=60_000)  # lands after we stop
    first = run("apply", spec(tmp_path, "50.00"), "--auto-approve", "--settle-window",
                "1s", env=env)
    assert first.returncode == 1 and "pending" in first.stdout
    time.sleep(1.1)
    faults(emulator)
    second = run("apply", spec(tmp_path, "50.00"), "--auto-approve", "--settle-window",
                 "1s", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "the gateway did not apply the update" in second.stdout
    assert accepted_writes(emulator)[("156142", "U")] == 1
    assert live_fields(emulator, "156142")["amount"] == "000000005000"


def test_a_replayed_answer_is_refused_not_believed(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    as_live = spec(tmp_path, "99.90")
    assert run("plan", as_live, "--detailed-exitcode", env=env).returncode == 0
    time.sleep(1.1)  # timeStamp has whole seconds: the next request's is another
    changed = run("apply", spec(tmp_path, "10.00"), "--auto-approve", env=env)
    assert changed.returncode == 0
    faults(emulator, replay_rate=1.0)  # every inquiry answered with the first one
    replayed = run("plan", as_live, "--detailed-exitcode", env=env)
    assert replayed.returncode == 1, replayed.stdout
    assert "No changes" not in replayed.stdout
    assert "timeStamp (a replayed or stale answer)" in replayed.stdout
    assert {e["fault"] for e in admin(emulator, "GET", "/_emulator/log")} >= {"replay"}
