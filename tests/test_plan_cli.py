"""`plansync validate`, `plan` and `show` end to end: real files, subprocesses, emulator."""

import json
from pathlib import Path

import jsonschema
import pytest

from plansync import schema_files
from plansync.emulator.server import Emulator
from tests.helpers import EXAMPLE, HEAD, admin, run, seeded_date

MATCHING = HEAD + """plans:
  - id: "156142"
    status: active
    amount: "99.90"
    currency: SGD
    recurring_count: 12
  - id: "156143"
    amount: 499
"""


def spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def inquiries(emulator: Emulator) -> list[str]:
    return [e["recurringUniqueID"] for e in admin(emulator, "GET", "/_emulator/log")]


def test_validate(tmp_path: Path) -> None:
    ok = run("validate", str(EXAMPLE))
    assert (ok.returncode, ok.stdout) == (0, "Valid: 4 plans in 1 file.\n")
    bad = run("validate", spec(tmp_path, HEAD + "plans:\n  - id: '1'\n    amout: 1\n"))
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        f"{tmp_path}/spec.yaml:5:5: plan 1: amout: unknown field (did you mean 'amount'?)",
        "error: 1 problem(s) in the specs; nothing was done",
        "  hint: fix them and run again (plansync validate checks without network)"]


def test_plan_shows_the_changes(served: dict[str, str]) -> None:
    gold, tokyo = seeded_date(42), seeded_date(21)
    result = run("plan", str(EXAMPLE), env=served)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "plansync will perform the following actions:",
        "",
        '  # plan "gold-member-42" (156142) will be updated in-place',
        "  ~ amount          = 99.90 -> 120.00",
        "  ~ recurring_count = 12 -> 24",
        "    (3 unchanged attributes hidden)",
        f"    next charge: {gold}, 99.90 SGD -> {gold}, 120.00 SGD",
        "    remaining:   9 charges, 899.10 SGD -> 21 charges, 2520.00 SGD",
        "    MRR:         99.90 SGD -> 120.00 SGD (+20.10 SGD)",
        "",
        '  # plan "tokyo-lite" (156144) will be updated in-place',
        '  ~ status = "active" -> "inactive"',
        "    (3 unchanged attributes hidden)",
        f"    next charge: {tokyo}, 1500 JPY -> no further charges",
        "    remaining:   24 charges, 36000 JPY -> none",
        "    MRR:         1500 JPY -> 0 JPY (-1500 JPY)",
        "",
        '  # plan "churned-customer" (156145) will be CANCELLED — this cannot be undone',
        '  - status = "inactive" -> "cancelled"',
        "    next charge: no further charges -> no further charges",  # it was paused
        "    remaining:   none -> none",
        "    MRR:         0.00 SGD -> 0.00 SGD",
        "",
        "Plan: 2 to update, 1 to cancel, 1 unchanged.",
        "",
        "Impact, per currency (MRR: amount x 30 / interval in days):",
        "  JPY: MRR 1500 JPY -> 0 JPY (-1500 JPY, -100.0%); pauses suspend 1500 JPY; "
        "remaining contract +0 JPY / -36000 JPY; 1 customer; 0 charged within 24 h, "
        "0 within 7 days",
        "  SGD: MRR 99.90 SGD -> 120.00 SGD (+20.10 SGD, +20.1%); remaining contract "
        "+1620.90 SGD / -0.00 SGD; 2 customers; 0 charged within 24 h, 0 within 7 days",
    ]
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_no_changes_and_detailed_exit_codes(served: dict[str, str], tmp_path: Path
                                            ) -> None:
    path = spec(tmp_path, MATCHING)
    result = run("plan", path, "--detailed-exitcode", env=served)
    assert (result.returncode, result.stdout) == (
        0, "No changes. Live plans match the specification.\n")
    changed = run("plan", str(EXAMPLE), "--detailed-exitcode", env=served)
    assert changed.returncode == 2


def test_one_plans_error_does_not_stop_the_others(served: dict[str, str],
                                                  tmp_path: Path) -> None:
    path = spec(tmp_path, MATCHING + '  - id: "156144"\n    currency: SGD\n'
                                     '  - id: "999"\n    amount: 1\n')
    result = run("plan", path, "--detailed-exitcode", "--json", env=served)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema_files.load("plan.schema.json"))
    impact = document["summary"].pop("impact")  # format_version 2: money per currency
    assert document["summary"] == {"update": 0, "cancel": 0, "no_op": 2, "error": 2}
    assert [i["currency"] for i in impact] == ["SGD", "THB"] and impact[0]["customers"] == 0
    errors = {c["id"]: c["error"] for c in document["changes"] if c["action"] == "error"}
    assert errors == {
        "156144": "the live plan is in JPY, not SGD as declared; a plan's currency cannot be "
                  "changed",
        "999": "inquiry failed: gateway answered 16 transaction does not exist (Transaction "
               "does not exist); check the plan id (recurringUniqueID) and merchant_id",
    }


def test_json_amounts_are_strings(served: dict[str, str]) -> None:
    document = json.loads(run("plan", str(EXAMPLE), "--json", env=served).stdout)
    gold = next(c for c in document["changes"] if c["id"] == "156142")
    assert gold["before"]["amount"] == "99.90" and gold["after"]["amount"] == "120.00"
    assert gold["changed_fields"] == ["amount", "recurring_count"]
    assert document["merchant_id"] == "JT01" and document["spec_digest"].startswith("sha256:")


def test_target_and_exclude(served: dict[str, str], emulator: Emulator) -> None:
    targeted = run("plan", str(EXAMPLE), "--target", "156145", "--json", env=served)
    assert [c["id"] for c in json.loads(targeted.stdout)["changes"]] == ["156145"]
    assert inquiries(emulator) == ["156145"]
    zeros = run("plan", str(EXAMPLE), "--target", "0156145", "--json", env=served)
    assert [c["id"] for c in json.loads(zeros.stdout)["changes"]] == ["156145"]  # one plan
    excluded = run("plan", str(EXAMPLE), "--exclude", "156145", "--exclude", "156142",
                   "--json", env=served)
    assert [c["id"] for c in json.loads(excluded.stdout)["changes"]] == ["156143", "156144"]
    unknown = run("plan", str(EXAMPLE), "--target", "42", env=served)
    assert unknown.returncode == 64  # EX_USAGE, never "changes present"
    assert "42 names no plan in the specs" in unknown.stderr


def test_a_bad_spec_inquires_nothing(served: dict[str, str], emulator: Emulator,
                                     tmp_path: Path) -> None:
    result = run("plan", spec(tmp_path, HEAD + "plans:\n  - id: '1'\n    amount: x\n"),
                 env=served)
    assert result.returncode == 1
    assert "spec.yaml:5:13: plan 1: amount: must be an exact decimal" in result.stderr
    assert inquiries(emulator) == []


def test_saved_plan_and_show(served: dict[str, str], tmp_path: Path) -> None:
    saved = tmp_path / "out" / "plan.json"
    made = run("plan", str(EXAMPLE), "--out", str(saved), env=served)
    assert made.returncode == 0
    document = json.loads(saved.read_text())
    jsonschema.validate(document, schema_files.load("plan.schema.json"))
    assert all(c["live_fingerprint"].startswith("sha256:") for c in document["changes"])
    assert ":" in document["key_fingerprint"] and document["tool_version"]
    shown = run("show", str(saved))
    assert shown.stdout == made.stdout
    assert run("show", str(saved), "--json").stdout == json.dumps(document, indent=2) + "\n"
    assert run("show", str(saved), "--markdown").stdout.startswith(
        "#### plansync plan: 2 to update, 1 to cancel, 1 unchanged")
    (tmp_path / "broken.json").write_text('{"format_version": 1}')
    broken = run("show", str(tmp_path / "broken.json"))
    assert broken.returncode == 1
    assert "is not a plansync plan" in broken.stderr


@pytest.mark.parametrize("flag", ["--no-color", "NO_COLOR"])
def test_no_colour_in_logs(served: dict[str, str], flag: str) -> None:
    env = served | ({"NO_COLOR": "1"} if flag == "NO_COLOR" else {})
    result = run("plan", str(EXAMPLE), *(["--no-color"] if flag == "--no-color" else []),
                 env=env)
    assert "\x1b[" not in result.stdout


def test_rate_limit_spaces_requests(served: dict[str, str], emulator: Emulator) -> None:
    result = run("plan", str(EXAMPLE), "--rate-limit", "20", "--parallelism", "4", env=served)
    assert result.returncode == 0
    times = sorted(e["time"] for e in admin(emulator, "GET", "/_emulator/log"))
    from datetime import datetime

    stamps = [datetime.fromisoformat(t) for t in times]
    # 4 requests at 20/s: 3 gaps of 0.05 s, less the first request's longer way in (a
    # new connection); unlimited, the four arrive within a few milliseconds.
    assert (stamps[-1] - stamps[0]).total_seconds() >= 0.1
