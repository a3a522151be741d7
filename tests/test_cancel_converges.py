"""A cancel whose first answer was lost or refused converges, end to end: real `plansync
apply` processes against the emulator, which commits the cancel and then answers HTTP
400 (or drops the answer), and, as a gateway may, answers 16 "transaction does not
exist" to a cancel of a plan already cancelled. The emulator's log is the witness that
exactly one cancel was committed."""

import json
import time
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import HEAD, accepted_writes, admin, faults, live_fields, quick_reads, run


@pytest.fixture
def env(served: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return quick_reads(served | {"PLANSYNC_STATE": str(tmp_path / "state" / "state.json")},
                       tmp_path / "config")


def spec(tmp_path: Path, status: str) -> str:
    path = tmp_path / f"spec-{status}.yaml"
    path.write_text(HEAD + f"plans:\n  - {{id: '156143', status: {status}}}\n")
    return str(path)


def cancels(emulator: Emulator) -> list[tuple[str, str | None]]:
    return [(e["respCode"], e["fault"]) for e in admin(emulator, "GET", "/_emulator/log")
            if e["processType"] == "C"]


@pytest.mark.parametrize("code", [16, 12])
def test_a_cancel_committed_but_answered_400_converges_on_the_next_run(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, code: int) -> None:
    faults(emulator, commit_error_rate=1.0, cancelled_write_code=code)
    first = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "plan 156143: failed: gateway answered HTTP 400" in first.stdout
    assert live_fields(emulator, "156143")["cancelled"] is True  # it did commit

    faults(emulator, cancelled_write_code=code)
    second = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", "--settle-window",
                 "1s", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "plan 156143: cancelled: the cancel sent at 20" in second.stdout
    assert (f"(answered HTTP 400) took effect: a second cancel was answered {code} and "
            "inquiry shows the plan inactive") in second.stdout
    assert cancels(emulator) == [("00", "commit-error"), (f"{code}", None)]
    assert accepted_writes(emulator)[("156143", "C")] == 1  # exactly one cancel committed
    shown = json.loads(run("state", "show", "156143", env=env).stdout)
    assert shown["cancelled"] is True
    assert "took effect: a second cancel was answered" in shown["cancelled_how"]
    history = run("state", "history", "156143", env=env).stdout.splitlines()
    assert [line.split("respCode ")[1].split()[0] for line in history] == ["HTTP", f"{code}"]

    third = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert third.returncode == 0 and len(cancels(emulator)) == 2  # converged: nothing sent


def test_a_paused_plans_cancel_whose_answer_was_dropped_converges_after_the_window(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    assert run("apply", spec(tmp_path, "inactive"), "--auto-approve", env=env).returncode == 0
    faults(emulator, drop_rate=1.0, cancelled_write_code=16)
    first = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", "--settle-window",
                "1s", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "plan 156143: pending: the cancel does not show yet" in first.stdout  # paused alike

    time.sleep(1.1)
    faults(emulator, cancelled_write_code=16)
    second = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", "--settle-window",
                 "1s", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert ("plan 156143 (cancel): the cancel took effect: its answer was lost and the plan "
            "was paused, so it was sent again: answered 16, so the first had taken effect"
            ) in second.stdout
    assert cancels(emulator) == [("00", "drop"), ("16", None)]
    shown = json.loads(run("state", "show", "156143", env=env).stdout)
    assert shown["cancelled"] is True and "answered 16" in shown["cancelled_how"]

