"""What CI systems see: annotations on spec lines, validate --json, errors in the PR
comment instead of an empty one."""

import json
from pathlib import Path

from tests.helpers import HEAD, run


def broken(tmp_path: Path) -> Path:
    spec = tmp_path / "specs" / "plans.yaml"
    spec.parent.mkdir()
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: 'lots, 100%'\n"
                    "  - id: '156143'\n    status: paused\n")
    return spec


def test_spec_problems_become_github_annotations_on_their_lines(tmp_path: Path) -> None:
    spec = broken(tmp_path)
    plain = run("validate", str(spec))
    assert plain.returncode == 1 and "::error" not in plain.stderr
    annotated = run("validate", str(spec), env={"GITHUB_ACTIONS": "true"})
    assert annotated.returncode == 1
    lines = [line for line in annotated.stderr.splitlines() if line.startswith("::error ")]
    assert len(lines) == 2
    assert lines[0].startswith(f"::error file={spec},line=5,col=13,title=plan 156142 amount::")
    assert "lots%2C 100%25" not in lines[0] and "lots, 100%25" in lines[0]  # data escaping
    assert lines[1].startswith(f"::error file={spec},line=7,col=13,title=plan 156143 status::")


def test_validate_json_for_other_ci_systems(tmp_path: Path) -> None:
    result = run("validate", str(broken(tmp_path)), "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False and document["files"] == 1
    assert [(p["line"], p["plan"], p["field"]) for p in document["problems"]] == [
        (5, "156142", "amount"), (7, "156143", "status")]
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "plans:\n  - id: '156142'\n")
    ok = run("validate", str(good), "--json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == {"valid": True, "plans": 1, "files": 1, "problems": []}


def test_a_failed_plan_is_the_pr_comment_not_an_empty_one(
        served: dict[str, str], tmp_path: Path) -> None:
    spec = broken(tmp_path)
    result = run("plan", str(spec), "--markdown", "--detailed-exitcode", env=served)
    assert result.returncode == 1
    assert result.stdout.startswith("### plansync could not make a plan")
    assert "2 problem(s) in the specs" in result.stdout
    assert "| `" in result.stdout and "156143" in result.stdout and "status" in result.stdout
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "plans:\n  - id: '156142'\n")
    misconfigured = run("plan", str(good), "--markdown",
                        env={**served, "PLANSYNC_ENDPOINT": "http://example.com/x"})
    assert misconfigured.returncode == 1
    assert "plain http to a host that is not loopback" in misconfigured.stdout


def test_plan_out_says_where_the_plan_went_and_how_to_apply_it(
        served: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n  - id: '156142'\n    amount: '1.00'\n")
    result = run("plan", str(spec), "--out", str(tmp_path / "plan.json"), env=served)
    assert result.returncode == 0
    assert (f"Saved the plan to {tmp_path / 'plan.json'}; apply exactly it with: "
            f"plansync apply --plan {tmp_path / 'plan.json'}") in result.stderr
