"""`plansync state pull|push|migrate` and `workspace list`: real files, a real PostgreSQL
server and a real S3-compatible server."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from plansync.engine.backends import open_backend
from plansync.engine.state import Entry, Intent, State, document
from tests.helpers import EXAMPLE, PLANSYNC, run, state_location

AT = "2026-11-27T10:00:00.000Z"
URL = "http://127.0.0.1:1/action"


@pytest.mark.parametrize("kind", ["postgres", "s3"])
def test_migrate_copies_state_and_journal_and_verifies(
        env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest, kind: str) -> None:
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    pending = Intent("r:1", "156143", "update", {"amount": "1.00"}, "f", "active", AT)
    local = open_backend(env["PLANSYNC_STATE"], None, os.environ)
    local.append(pending)  # a run killed mid-write left this
    local.close()
    target = state_location(kind, request, tmp_path)
    moved = run("state", "migrate", "--to", target, env=env)
    assert moved.returncode == 0, moved.stderr
    assert "4 plan(s), 1 journal record(s), verified" in moved.stdout
    remote = {**env, "PLANSYNC_STATE": target}
    listed = run("state", "list", env=remote)
    assert "156145  yes" in listed.stdout and "1 write(s) pending" in listed.stdout
    copy = open_backend(target, None, os.environ)
    assert copy.records() == [pending]
    copy.close()
    again = run("state", "migrate", "--to", target, env=env)  # same lineage: allowed
    assert again.returncode == 0, again.stderr
    other = tmp_path / "other" / "state.json"
    assert run("apply", str(EXAMPLE), "--auto-approve",
               env={**env, "PLANSYNC_STATE": str(other)}).returncode == 0
    refused = run("state", "migrate", "--to", target, env={**env, "PLANSYNC_STATE": str(other)})
    assert refused.returncode == 1
    assert "holds a state of another lineage" in refused.stderr


def serial_three(location: str, workspace: str | None = None) -> State:
    """A state written three times (serial 3), with a plan, a pending write and a journal
    record, in a fresh workspace of ``location``."""
    store = open_backend(location, workspace, os.environ)
    state = State("JT01", URL).with_entry("156145", Entry(applied={"status": "cancelled"},
                                                          cancelled=True, cancelled_at=AT))
    state = store.write(store.write(store.write(state)))
    store.append(Intent("r:1", "156143", "update", {"amount": "1.00"}, "f", "active", AT))
    store.close()
    return state


@pytest.mark.parametrize(("source_kind", "target_kind"), [
    ("local", "postgres"), ("local", "s3"), ("postgres", "s3"), ("s3", "postgres"),
    ("postgres", "local"), ("s3", "local")])
def test_migrate_keeps_serial_and_lineage_in_every_direction(
        tmp_path: Path, request: pytest.FixtureRequest, source_kind: str,
        target_kind: str) -> None:
    source = state_location(source_kind, request, tmp_path / "source")
    target = state_location(target_kind, request, tmp_path / "target")
    workspace = f"w{uuid.uuid4().hex[:12]}"
    original = serial_three(source)
    assert original.serial == 3
    moved = run("state", "migrate", "--to", target, "--to-workspace", workspace,
                env={"PLANSYNC_STATE": source})
    assert moved.returncode == 0, moved.stderr
    assert "1 plan(s), 1 journal record(s), verified" in moved.stdout
    copy = open_backend(target, workspace, os.environ)
    try:
        copied = copy.read()
        assert copied is not None
        assert (copied.serial, copied.lineage) == (3, original.lineage)
        assert document(copied) == document(original)
        assert copy.write(copied).serial == 4  # runs go on from the copy's serial
    finally:
        copy.close()
    # The target now holds a later state than the source: migrating again would lose it.
    refused = run("state", "migrate", "--to", target, "--to-workspace", workspace,
                  env={"PLANSYNC_STATE": source})
    assert refused.returncode == 1
    assert "holds a later state of this lineage (serial 4, the source's is 3)" in \
        refused.stderr


def test_the_verification_names_every_difference_of_the_copy() -> None:
    from plansync.commands.state import copy_differences

    source = State("JT01", URL, lineage="L1", serial=3).with_entry("1", Entry(cancelled=True))
    records = [Intent("r:1", "1", "update", {"amount": "1.00"}, "f", "active", AT)]
    assert copy_differences(source, records, source, records) == []
    reset = dataclasses.replace(source, serial=1)  # what migrate used to write
    assert copy_differences(source, records, reset, records) == ["serial 1, not 3"]
    other = dataclasses.replace(source, lineage="L2", plans={})
    assert copy_differences(source, records, other, []) == [
        "lineage L2, not L1", "its plans, pending writes or history differ",
        "its journal holds 0 record(s), the source's 1"]
    assert copy_differences(source, records, None, records) == ["no state was found there"]


def test_push_keeps_the_files_serial(env: dict[str, str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(document(dataclasses.replace(
        State("JT01", URL).with_entry("1", Entry(cancelled=True)), serial=3))))
    pushed = run("state", "push", str(copy), env=env)  # into an empty state
    assert pushed.returncode == 0, pushed.stderr
    assert "as serial 3" in pushed.stdout
    again = run("state", "push", str(copy), env=env)  # the same serial: one more
    assert again.returncode == 0 and "as serial 4" in again.stdout
    copy.write_text(json.dumps(document(dataclasses.replace(
        State("JT01", URL, lineage=json.loads(copy.read_text())["lineage"]).with_entry(
            "1", Entry(cancelled=True)), serial=9))))
    later = run("state", "push", str(copy), env=env)
    assert later.returncode == 0 and "as serial 9" in later.stdout


def test_pull_and_push_guard_serial_and_lineage(env: dict[str, str], tmp_path: Path) -> None:
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    pulled = run("state", "pull", env=env)
    assert pulled.returncode == 0
    copy = tmp_path / "copy.json"
    copy.write_text(pulled.stdout)
    assert json.loads(pulled.stdout)["plans"]["156145"]["cancelled"] is True
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0  # serial +1
    lower = run("state", "push", str(copy), env=env)
    assert lower.returncode == 1 and "lower than the state's" in lower.stderr
    forced = run("state", "push", str(copy), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    stranger = json.loads(pulled.stdout) | {"lineage": "another", "serial": 99}
    copy.write_text(json.dumps(stranger))
    refused = run("state", "push", str(copy), env=env)
    assert refused.returncode == 1 and "of lineage another" in refused.stderr


def test_workspaces_and_the_state_setting_in_the_settings_file(
        env: dict[str, str], emulator_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "plansync.yaml"
    config.write_text((emulator_dir / "plansync.yaml").read_text()
                      .replace("merchant_key: ", f"merchant_key: {emulator_dir}/")
                      .replace("gateway_key: ", f"gateway_key: {emulator_dir}/")
                      + "state: shared/state.json\n")
    mine = {k: v for k, v in env.items() if k != "PLANSYNC_STATE"} | {
        "PLANSYNC_CONFIG": str(config)}
    assert run("apply", str(EXAMPLE), "--auto-approve", env=mine).returncode == 0
    assert (tmp_path / "shared" / "state.json").exists()  # relative to the settings file
    assert run("plan", str(EXAMPLE), "--workspace", "merchant-b", env=mine).returncode == 0
    applied = run("apply", str(EXAMPLE), "--auto-approve", env=mine | {
        "PLANSYNC_WORKSPACE": "merchant-b"})
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "shared" / "workspaces" / "merchant-b" / "state.json").exists()
    listed = run("workspace", "list", "--workspace", "merchant-b", env=mine)
    assert listed.stdout.splitlines() == ["  default", "* merchant-b"]
    bad = run("workspace", "list", "--workspace", "../up", env=mine)
    assert bad.returncode == 1 and "is not 1-64 letters" in bad.stderr


def test_every_command_reads_the_state_its_config_flag_names(
        env: dict[str, str], emulator_dir: Path, tmp_path: Path) -> None:
    """--config FILE (not the variable) with state: and workspace: in it: each command
    that reads the state finds the one the file names, not .plansync/state.json (the
    settings were once resolved by two helpers whose order decided which file won)."""
    config = tmp_path / "conf" / "plansync.yaml"
    config.parent.mkdir()
    config.write_text((emulator_dir / "plansync.yaml").read_text()
                      .replace("merchant_key: ", f"merchant_key: {emulator_dir}/")
                      .replace("gateway_key: ", f"gateway_key: {emulator_dir}/")
                      + "state: custom/state.json\nworkspace: blue\n")
    mine = {k: v for k, v in env.items() if k not in ("PLANSYNC_STATE", "PLANSYNC_CONFIG")}
    flag = ["--config", str(config)]

    def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PLANSYNC, *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env}, cwd=cwd, stdin=subprocess.DEVNULL)

    applied = run("apply", str(EXAMPLE), "--auto-approve", *flag, env=mine, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "conf" / "custom" / "workspaces" / "blue" / "state.json").exists()
    assert not (tmp_path / ".plansync").exists()
    listed = run("state", "list", *flag, env=mine, cwd=tmp_path)
    assert listed.returncode == 0 and "4 plan(s)" in listed.stdout, listed.stderr
    drift = run("drift", str(EXAMPLE), *flag, env=mine, cwd=tmp_path)
    assert drift.returncode == 0, drift.stdout + drift.stderr  # it knows 156145 is cancelled
    imported = run("import", "156145", *flag, env=mine, cwd=tmp_path)
    assert imported.returncode == 0 and "status: cancelled" in imported.stdout, imported.stderr
    plan = run("plan", str(EXAMPLE), "--detailed-exitcode", *flag, env=mine, cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert not (tmp_path / ".plansync").exists()


def test_state_rm_is_the_only_way_a_plan_is_forgotten(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\n"
                       "plans:\n  - {id: '156143', amount: '499.00'}\n")
    assert run("apply", str(smaller), "--auto-approve", env=env).returncode == 0
    listed = run("state", "list", env=env).stdout
    assert "4 plan(s)" in listed and "156145  yes" in listed  # a smaller spec forgets nothing

    missing = run("state", "rm", "156145", "999", env=env)
    assert missing.returncode == 1 and "plan(s) 999 not in the state" in missing.stderr
    local = open_backend(env["PLANSYNC_STATE"], None, os.environ)
    local.append(Intent("r:1", "156142", "update", {"amount": "1.00"}, "f", "active", AT))
    local.close()
    pending = run("state", "rm", "156142", env=env)
    assert pending.returncode == 1 and "plan(s) 156142 have a write" in pending.stderr
    assert "156145  yes" in run("state", "list", env=env).stdout  # nothing was removed

    removed = run("state", "rm", "156145", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "Removed plan 156145 from" in removed.stdout
    assert "plansync forgot what it applied to it and saw of it and that it cancelled the " \
           "plan (at 20" in removed.stdout
    listed = run("state", "list", env=env).stdout
    assert "156145" not in listed and "3 plan(s)" in listed
    assert "1 write(s) pending" in listed  # the journal was folded in, not lost
    history = run("state", "history", "156145", env=env).stdout
    assert "cancel plan \"churned-customer\" (156145): status inactive → cancelled  " \
           "respCode 00" in history  # the audit trail is kept


def test_push_refuses_a_file_that_forgets_a_plan_or_a_cancellation(
        env: dict[str, str], tmp_path: Path) -> None:
    """Only state rm forgets: a pulled file edited to drop a cancelled plan (serial kept)
    would let a later apply write to it."""
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    pulled = json.loads(run("state", "pull", env=env).stdout)
    assert pulled["plans"]["156145"]["cancelled"] is True
    copy = tmp_path / "copy.json"
    dropped = {**pulled, "plans": {k: v for k, v in pulled["plans"].items() if k != "156145"}}
    copy.write_text(json.dumps(dropped))
    refused = run("state", "push", str(copy), env=env)
    assert refused.returncode == 1, refused.stdout
    assert "forgets what the state remembers: plan(s) 156145 missing" in refused.stderr
    assert "plansync state rm ID" in refused.stderr
    uncancelled = json.loads(json.dumps(pulled))
    uncancelled["plans"]["156145"]["cancelled"] = False
    copy.write_text(json.dumps(uncancelled))
    refused = run("state", "push", str(copy), env=env)
    assert refused.returncode == 1 and "the cancellation of 156145" in refused.stderr
    shown = json.loads(run("state", "show", "156145", env=env).stdout)
    assert shown["cancelled"] is True  # nothing was pushed
    assert run("state", "push", str(copy), "--force", env=env).returncode == 0


def test_a_plan_id_with_leading_zeros_names_the_same_plan(env: dict[str, str]) -> None:
    """recurringUniqueID is a number: 0156142 is plan 156142 in the state commands too."""
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    shown = run("state", "show", "0156142", env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"id": "156142"' in shown.stdout
    history = run("state", "history", "00156142", "--format", "json", env=env)
    assert history.returncode == 0, history.stderr
    assert history.stdout.count('"plan": "156142"') >= 1
    removed = run("state", "rm", "0156142", "156142", env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.count("Removed plan 156142") == 1


def test_a_state_that_is_a_folder_is_refused_in_a_workspace_too(tmp_path: Path) -> None:
    """Attack: --state DIR --workspace w made DIR's parent's workspaces/w/DIR the state."""
    (tmp_path / "sdir").mkdir()
    result = run("state", "list", "--state", str(tmp_path / "sdir"), "--workspace", "w")
    assert result.returncode == 1
    assert "names a folder, not a file" in result.stderr
    assert not (tmp_path / "workspaces").exists()
