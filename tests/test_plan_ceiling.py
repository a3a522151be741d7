"""A saved plan is a ceiling, not an instruction: `apply --plan` writes only what the
file and a plan recomputed from the spec and live agree on exactly. Each attack edits a
real plan file the way a careless or hostile hand would and runs a real `plansync apply`
against the emulator, whose request log is the witness of what was written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, HEAD, accepted_writes, live_fields, run


def saved_plan(env: dict[str, str], spec: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "plan.json"
    made = run("plan", str(spec), "--out", str(out), env=env)
    assert made.returncode == 0, made.stderr
    return out, json.loads(out.read_text())


def edited(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def change(document: dict[str, Any], plan_id: str) -> dict[str, Any]:
    return next(c for c in document["changes"] if c["id"] == plan_id)


def apply_plan(env: dict[str, str], path: Path, *more: str) -> Any:
    return run("apply", "--plan", str(path), "--auto-approve", *more, env=env)


def test_an_edited_amount_is_refused_and_nothing_is_sent(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    change(document, "156142")["after"]["amount"] = "12.00"
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1, result.stdout
    assert ("plan 156142: the plan file sets amount to 12.00, the spec says 120.00"
            in result.stderr)
    assert "Traceback" not in result.stderr
    assert accepted_writes(emulator) == {}  # not even the plans the file left alone
    assert live_fields(emulator, "156142")["amount"] == "000000009990"


def test_a_no_op_turned_into_a_cancel_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    forged = change(document, "156143")
    assert forged["action"] == "no-op"
    forged.update(action="cancel", after={"status": "cancelled"}, changed_fields=["status"])
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1
    assert "plan 156143: the plan file says cancel, the spec does not" in result.stderr
    assert accepted_writes(emulator) == {}
    assert live_fields(emulator, "156143")["recurringStatus"] == "Y"


def test_a_cancel_the_spec_does_not_ask_for_is_refused_even_without_prevent_cancel(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '120.00'}\n")
    _, document = saved_plan(env, spec, tmp_path)
    change(document, "156142").update(action="cancel", before={"status": "active"},
                                      after={"status": "cancelled"},
                                      changed_fields=["status"])
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1
    assert "plan 156142: the plan file says cancel, the spec does not" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_change_repeated_in_the_file_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    document["changes"] += [change(document, "156142")] * 4
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1
    assert "plan 156142 appears 5 times in the plan file" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_plan_the_spec_does_not_declare_is_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    stranger = dict(change(document, "156142"), id="156147", name=None)
    document["changes"].append(stranger)
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1
    assert ("plan 156147: the plan file says update, but the spec does not declare this plan"
            in result.stderr)
    assert accepted_writes(emulator) == {}


def test_changed_fields_that_disagree_with_the_values_are_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    change(document, "156142")["changed_fields"] = ["amount"]  # hides recurring_count
    result = apply_plan(env, edited(tmp_path, document))
    assert result.returncode == 1
    assert "do not match its own before and after values" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_change_the_file_lacks_is_listed_not_written(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    document["changes"] = [c for c in document["changes"] if c["id"] != "156144"]
    result = apply_plan(env, edited(tmp_path, document), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["not_reviewed"] == [{"id": "156144", "name": "tokyo-lite",
                                    "action": "update",
                                    "changed_fields": ["status"]}]
    assert "plan 156144: the spec now means update" in result.stderr
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156145", "C"): 1}


def test_a_change_nobody_reviewed_does_not_count_against_the_guardrails(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    document["changes"] = [c for c in document["changes"] if c["id"] in ("156142", "156143")]
    result = apply_plan(env, edited(tmp_path, document), "--max-changes", "1")
    assert result.returncode == 0, result.stderr  # one write: 156142; the rest not reviewed
    assert accepted_writes(emulator) == {("156142", "U"): 1}


def test_a_saved_plan_forgets_no_plan_whatever_its_unmanaged_list_says(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '130.00'}\n")
    _, document = saved_plan(env, spec, tmp_path)
    assert document["unmanaged"] == ["156143", "156144", "156145"]
    document["unmanaged"] = ["156142", "156145"]  # 156142 is still declared
    assert apply_plan(env, edited(tmp_path, document)).returncode == 0
    managed = run("state", "list", env=env).stdout
    assert all(plan_id in managed for plan_id in ("156142", "156143", "156144", "156145"))
    assert "156145  yes" in managed  # its cancellation is remembered


def test_live_moved_to_the_reviewed_value_is_unchanged_not_resent(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - {id: '156142', amount: '120.00'}\n"
                           "  - {id: '156144', status: inactive}\n")
    path, _ = saved_plan(env, spec, tmp_path)
    other = tmp_path / "other-state.json"  # someone else applies the same spec first
    assert run("apply", str(spec), "--auto-approve",
               env=env | {"PLANSYNC_STATE": str(other)}).returncode == 0
    before = accepted_writes(emulator)
    result = apply_plan(env, path, "--json")
    assert result.returncode == 0, result.stderr
    assert {r["result"] for r in json.loads(result.stdout)["results"]} == {"unchanged"}
    assert accepted_writes(emulator) == before


def test_a_re_run_of_an_applied_plan_succeeds_and_says_by_whom(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    path, _ = saved_plan(env, EXAMPLE, tmp_path)
    ci = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/plans",
          "GITHUB_RUN_ID": "4242"}
    assert apply_plan(env | ci, path).returncode == 0
    again = apply_plan(env | ci | {"GITHUB_RUN_ID": "4243"}, path, "--json")
    assert again.returncode == 0, again.stderr
    done = json.loads(again.stdout)["already_applied"]
    assert done["by"] == "https://github.com/acme/plans/actions/runs/4242"
    assert done["at"].endswith("Z")
    assert f"was already applied by {done['by']} at {done['at']}" in again.stderr
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156144", "U"): 1, ("156145", "C"): 1}


def test_the_ceiling_refuses_a_cancel_that_prevent_cancel_forbids() -> None:
    """The loader already refuses such a spec; the ceiling holds on its own all the same."""
    from datetime import UTC, datetime

    from plansync.engine.ceiling import forgeries
    from plansync.engine.plan import Action, Change, Plan
    from plansync.fields import PlanFields
    from plansync.spec.model import DesiredPlan, Location

    spec = DesiredPlan("156142", None, PlanFields(), True, None, True, frozenset(),
                       Location("spec.yaml", 1, 1))
    reviewed = Plan(datetime.now(UTC), "JT01", "http://gw", "sha256:x", "k", "0",
                    (Change("156142", None, Action.CANCEL, {"status": "active"},
                            {"status": "cancelled"}, ("status",)),))
    assert forgeries(reviewed, [spec]) == [
        "plan 156142: the plan file says cancel, the spec forbids it "
        "(lifecycle.prevent_cancel)"]


def test_target_or_exclude_with_a_saved_plan_is_a_usage_error(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    path, _ = saved_plan(env, EXAMPLE, tmp_path)
    for flag in ("--exclude", "--target"):
        result = apply_plan(env, path, flag, "156145")
        assert result.returncode == 64, result.stderr
        assert "--target and --exclude choose plans when a plan is made" in result.stderr
    assert accepted_writes(emulator) == {}  # the excluded cancel above all


def test_whole_numbers_written_as_floats_are_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    # Issue 20: counts and intervals are whole numbers wherever they enter, saved plans
    # included (24.0 was taken as 24 here; elsewhere 7.0 reached the wire as "7.0").
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    change(document, "156142")["after"]["recurring_count"] = 24.0
    result = apply_plan(env, edited(tmp_path, document), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not a plansync plan: plan 156142: after.recurring_count: 24.0 is not a whole " \
        "number from 0 to 99999" in result.stderr
    assert accepted_writes(emulator) == {}


def test_a_re_run_of_a_partial_apply_fails_and_sends_nothing(
        env: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    path, _ = saved_plan(env, EXAMPLE, tmp_path)
    moved = tmp_path / "moved.yaml"  # live moves away from the review for one plan
    moved.write_text(HEAD + "plans:\n  - {id: '156144', recurring_interval: 14}\n")
    assert run("apply", str(moved), "--auto-approve",
               env=env | {"PLANSYNC_STATE": str(tmp_path / "other.json")}).returncode == 0
    first = apply_plan(env, path)
    assert first.returncode == 1  # 156144 skipped: changed since review
    before = accepted_writes(emulator)
    again = apply_plan(env, path, "--json")
    assert again.returncode == 1, again.stdout
    assert json.loads(again.stdout)["already_applied"]["complete"] is False
    assert "only in part" in again.stderr and "Traceback" not in again.stderr
    assert accepted_writes(emulator) == before


@pytest.mark.parametrize("edit, says", [
    (lambda d: d.update(created_at="not-a-date"), "created_at"),
    (lambda d: change(d, "156142")["after"].update(charge_next_date="2026-02-30"),
     "plan 156142"),
    (lambda d: change(d, "156142")["impact"]["after"]["next_charge"].update(date="2026-13-01"),
     "plan 156142"),
    (lambda d: change(d, "156142").update(currency=None), "plan 156142"),
])
def test_values_the_schema_lets_through_but_mean_nothing_are_refused(
        env: dict[str, str], emulator: Emulator, tmp_path: Path, edit: Any, says: str) -> None:
    _, document = saved_plan(env, EXAMPLE, tmp_path)
    edit(document)
    path = edited(tmp_path, document)
    for command in (("apply", "--plan", str(path), "--auto-approve"), ("show", str(path))):
        result = run(*command, env=env)
        assert result.returncode == 1, result.stderr
        assert f"is not a plansync plan: {says}" in result.stderr, result.stderr
    assert accepted_writes(emulator) == {}
