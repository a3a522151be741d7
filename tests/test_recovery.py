"""Recovery that never forgets: what the journal holds always reaches the state.

Real processes, real files, real HTTP to the emulator; the emulator's log witnesses that
no plan received a write twice.
"""

import json
import shutil
from pathlib import Path

from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, HEAD, accepted_writes, admin, run


def spec(tmp_path: Path, status: str) -> str:
    path = tmp_path / f"{status}.yaml"
    path.write_text(HEAD + "plans:\n  - id: '156145'\n    status: " + status + "\n")
    return str(path)


def test_a_cancel_whose_state_write_failed_is_remembered(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    assert run("apply", spec(tmp_path, "active"), "--auto-approve", env=env).returncode == 0
    # Every outcome is journalled, but the state cannot be written (a directory is in the
    # way of its backup, as a full disk or a read-only folder would be).
    (folder / "state.json.backup").unlink(missing_ok=True)
    (folder / "state.json.backup").mkdir()
    failed = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert failed.returncode == 1, failed.stderr
    assert f"cannot write the state file {folder / 'state.json'}" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert accepted_writes(emulator)[("156145", "C")] == 1
    (folder / "state.json.backup").rmdir()

    # Read-only commands fold the journal in: the cancellation is known...
    shown = run("state", "show", "156145", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cancelled"] is True
    reactivate = run("plan", spec(tmp_path, "active"), env=env)
    assert reactivate.returncode == 1
    assert "plansync cancelled this plan earlier and cancellation is final" in reactivate.stdout
    # ...and the next apply writes it into the state before clearing the journal.
    again = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (folder / "state.json.journal").exists()
    saved = json.loads((folder / "state.json").read_text())
    assert saved["plans"]["156145"]["cancelled"] is True
    assert accepted_writes(emulator)[("156145", "C")] == 1  # never sent twice


def test_a_journal_left_with_every_outcome_is_folded_not_deleted(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    """Killed between the last outcome and the state write: the journal is complete,
    the state file is old. Simulated by restoring the state file as it was."""
    folder = tmp_path / "state"
    assert run("apply", spec(tmp_path, "active"), "--auto-approve", env=env).returncode == 0
    before = (folder / "state.json").read_bytes()
    journal_kept = tmp_path / "journal"
    cancel = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert cancel.returncode == 0
    assert accepted_writes(emulator)[("156145", "C")] == 1
    # Rebuild the journal that run wrote from what it saved, as the kill would leave it.
    entry = json.loads((folder / "state.json").read_text())["plans"]["156145"]
    intent = {"key": "run:156145", "plan": "156145", "action": "cancel",
              "after": {"status": "cancelled"}, "fingerprint": "sha256:x",
              "before_status": "active", "at": "2026-11-27T10:00:00.000Z"}
    journal_kept.write_text(
        json.dumps({"kind": "intent", **intent}) + "\n"
        + json.dumps({"kind": "outcome", "key": "run:156145", "plan": "156145",
                      "result": "applied", "entry": entry,
                      "at": "2026-11-27T10:00:01.000Z"}) + "\n")
    (folder / "state.json").write_bytes(before)
    shutil.copy(journal_kept, folder / "state.json.journal")

    listed = run("state", "list", env=env)
    assert "156145  yes" in listed.stdout, listed.stdout
    assert run("plan", spec(tmp_path, "active"), env=env).returncode == 1
    rerun = run("apply", spec(tmp_path, "cancelled"), "--auto-approve", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads((folder / "state.json").read_text())["plans"]["156145"]["cancelled"]
    assert not (folder / "state.json.journal").exists()
    assert accepted_writes(emulator)[("156145", "C")] == 1
    assert admin(emulator, "GET", "/_emulator/plans")


def test_a_missing_state_with_its_backup_present_is_refused(
        env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "state"
    assert run("apply", spec(tmp_path, "active"), "--auto-approve", env=env).returncode == 0
    assert run("apply", spec(tmp_path, "active"), "--auto-approve", env=env).returncode == 0
    (folder / "state.json").unlink()
    result = run("plan", spec(tmp_path, "active"), env=env)
    assert result.returncode == 1
    assert "state.json is missing, but its backup" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_saved_plan_applies_once(env: dict[str, str], emulator: Emulator,
                                   tmp_path: Path) -> None:
    saved = tmp_path / "reviewed.plan.json"
    made = run("plan", spec(tmp_path, "cancelled"), "--out", str(saved), env=env)
    assert made.returncode == 0, made.stderr
    assert saved.stat().st_mode & 0o777 == 0o600
    first = run("apply", "--plan", str(saved), "--auto-approve", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert accepted_writes(emulator)[("156145", "C")] == 1
    second = run("apply", "--plan", str(saved), "--auto-approve", env=env)
    assert second.returncode == 0  # a re-run succeeds, and sends nothing
    assert f"Plan file {saved} was already applied at 20" in second.stdout
    assert accepted_writes(emulator)[("156145", "C")] == 1  # the cancel was not sent again


def test_state_history_shows_every_write_sent_and_no_secret(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    ci = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/plans",
          "GITHUB_RUN_ID": "77"}
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env | ci).returncode == 0
    history = run("state", "history", env=env)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert len(lines) == sum(accepted_writes(emulator).values()) == 3
    cancel = next(line for line in lines if "(156145)" in line)
    assert "(CI run https://github.com/acme/plans/actions/runs/77)" in cancel
    assert 'cancel plan "churned-customer" (156145): status inactive → cancelled  ' \
           "respCode 00 (success)" in cancel
    gold = run("state", "history", "156142", "--json", env=env)
    [record] = json.loads(gold.stdout)
    assert record["process_type"] == "U" and record["resp_code"] == "00"
    assert record["sent"]["amount"] == "000000012000" and "merchantID" not in record["sent"]
    cancel_sent = json.loads(run("state", "history", "156145", "--json", env=env).stdout)[0]
    assert cancel_sent["sent"] == {"recurringStatus": "N", "amount": "000000002500",
                                   "allowAccumulate": "N"}  # as the guide's sample
    for secret in ("eyJ", "PRIVATE KEY", "maskedCardNo", "XXXX"):
        assert secret not in history.stdout + gold.stdout
