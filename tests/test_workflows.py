"""The workflows plansync ships (examples/github-actions/, and what `plansync init` writes in
both forms) and its action: outputs read are outputs declared, routing by exit code, the
trust model's shape, pinned actions, and zizmor with no findings."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gha import interpolate, runs_if, zizmor
from tests.helpers import run

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples" / "github-actions"
CI = ROOT / ".github" / "workflows" / "ci.yml"  # plansync's own CI
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
PINNED = "acme/plansync@" + "3f2c9a1b" * 5
LOCAL = "./.github/actions/plansync"
# Outputs the other actions the workflows use declare (from their documentation; the
# workflows read none today, so a read of any other name fails the check).
KNOWN_OUTPUTS = {
    "actions/checkout": {"ref", "commit"},
    "actions/setup-python": {"python-version", "python-path", "cache-hit"},
    "actions/upload-artifact": {"artifact-id", "artifact-url", "artifact-digest"},
    "actions/download-artifact": {"download-path"},
    "actions/github-script": {"result"},
    "aws-actions/configure-aws-credentials": {"aws-account-id", "aws-access-key-id",
                                              "aws-secret-access-key", "aws-session-token",
                                              "aws-expiration"},
}
_REF = re.compile(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Repositories as `plansync init` writes them: vendored, and pinned by --action."""
    base = tmp_path_factory.mktemp("init")
    for form, extra in (("vendored", ()), ("pinned", ("--action", PINNED))):
        made = run("init", str(base / form), *extra)
        assert made.returncode == 0, made.stderr
    return {"vendored": base / "vendored", "pinned": base / "pinned"}


def shipped(initialised: dict[str, Path]) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """(label, workflow file, the action.yml its plansync steps run) for every workflow."""
    for path in sorted(EXAMPLES.glob("*.yml")):
        yield f"examples/{path.name}", path, ACTION
    for form, repo in initialised.items():
        vendored = repo / ".github" / "actions" / "plansync" / "action.yml"
        action = yaml.safe_load(vendored.read_text()) if vendored.exists() else ACTION
        for path in sorted((repo / ".github" / "workflows").glob("*.yml")):
            yield f"init {form}: {path.name}", path, action


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def undeclared_outputs(workflow: dict[str, Any], action: dict[str, Any]) -> list[str]:
    """Every ``steps.<id>.outputs.<name>`` a job reads that no earlier step of that job
    declares: for plansync's action, its action.yml's outputs; for a ``run:`` step, what
    it writes to $GITHUB_OUTPUT; for other actions, KNOWN_OUTPUTS; anything else is a
    problem."""
    problems = []
    for job_id, job in workflow["jobs"].items():
        declared: dict[str, set[str] | None] = {}
        for step in job["steps"]:
            for step_id, name in _REF.findall("\n".join(strings(step))):
                outputs = declared.get(step_id)
                if outputs is None:
                    problems.append(f"{job_id}: steps.{step_id}.outputs.{name}: no earlier "
                                    f"step {step_id!r}, or one whose outputs are unknown")
                elif name not in outputs:
                    problems.append(f"{job_id}: steps.{step_id}.outputs.{name} is not "
                                    f"declared (it declares {sorted(outputs)})")
            if "id" in step:
                declared[step["id"]] = step_outputs(step, action)
    return problems


def step_outputs(step: dict[str, Any], action: dict[str, Any]) -> set[str] | None:
    uses = step.get("uses")
    if uses is None:
        return set(re.findall(r'echo "([A-Za-z0-9_-]+)=[^\n]*>> "\$GITHUB_OUTPUT"',
                              step.get("run", "")))
    if uses in (LOCAL, PINNED):
        return set(action["outputs"])
    return KNOWN_OUTPUTS.get(uses.split("@")[0])


def test_every_step_output_a_workflow_reads_is_declared(
        initialised: dict[str, Path]) -> None:
    seen = 0
    for label, path, action in shipped(initialised):
        workflow = yaml.safe_load(path.read_text())
        assert undeclared_outputs(workflow, action) == [], label
        seen += len(_REF.findall(path.read_text()))
    assert seen > 20  # the check did look at the references


def test_the_output_check_catches_the_undeclared_pull() -> None:
    """The bug it guards against: action.yml wrote `pull` but declared only exit-code and
    output-file, so the apply workflow's report step never ran."""
    before = {**ACTION, "outputs": {k: ACTION["outputs"][k]
                                    for k in ("exit-code", "output-file")}}
    workflow = yaml.safe_load((EXAMPLES / "plansync-apply.yml").read_text())
    problems = undeclared_outputs(workflow, before)
    assert any("steps.reviewed.outputs.pull is not declared" in p for p in problems)
    unknown = {"jobs": {"j": {"steps": [{"id": "x", "uses": "someone/else@" + "0" * 40},
                                        {"run": "echo", "if": "steps.x.outputs.y"}]}}}
    assert undeclared_outputs(unknown, ACTION) == [
        "j: steps.x.outputs.y: no earlier step 'x', or one whose outputs are unknown"]


def entry(project: str, *specs: str) -> dict[str, Any]:
    """The contexts of one matrix job: ``plansync projects --github-matrix``'s entry."""
    return {"matrix": {"project": project, "specs": list(specs) or ["specs"]},
            "github": {"event": {"pull_request": {"head": {"sha": "f00d" * 10}}}}}


def environment(job: dict[str, Any], project: str) -> str:
    return interpolate(job["environment"], entry(project))


def job(name: str, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())["jobs"][job_id]
    return found


def step_named(steps: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(s for s in steps if s.get("name", "").startswith(start))


@pytest.mark.parametrize(("code", "saved", "commented", "failed"), [
    ("0", True, True, False), ("2", True, True, False),
    ("3", False, True, True),   # a guardrail breach: shown on the PR, the check fails
    ("1", False, True, True),   # no plan: the comment says why, the check fails
])
def test_the_plan_workflow_routes_each_exit_code(code: str, saved: bool, commented: bool,
                                                 failed: bool) -> None:
    steps = job("plansync-plan.yml", "plan")["steps"]
    plan = next(s for s in steps if s.get("id") == "plan")
    assert code in plan["with"]["ok-exit-codes"].split()  # the step itself passes
    contexts = {"steps": {"plan": {"outputs": {"exit-code": code,
                                               "output-file": "/tmp/out.md"}}}}
    assert runs_if(step_named(steps, "Save the reviewed plan")["if"], contexts) is saved
    for kept in ("Keep the plan's Markdown", "Save them for the comment job"):
        assert runs_if(step_named(steps, kept)["if"], contexts) is commented
    assert runs_if(step_named(steps, "Fail when")["if"], contexts) is failed


@pytest.mark.parametrize(("fetched", "applied", "reported", "failed"), [
    ("0", "0", True, False), ("0", "1", True, True), ("0", "3", True, True),
    ("1", None, True, True),     # no reviewed plan for a merged PR: the PR is told why
    # The reviewed run did not plan this project (declared since, or untouched then):
    # nothing applied, nothing failed, nothing to tell.
    ("2", None, False, False),
])
def test_the_apply_workflow_tells_the_pull_request_on_every_path(
        fetched: str, applied: str | None, reported: bool, failed: bool) -> None:
    steps = job("plansync-apply.yml", "apply-reviewed")["steps"]
    reviewed = {"exit-code": fetched, "output-file": "/t/out", "pull": "7", "plan-run": ""}
    contexts: dict[str, Any] = {"steps": {"reviewed": {"outputs": reviewed}}}
    apply = next(s for s in steps if s.get("id") == "apply")
    assert runs_if(apply.get("if"), contexts) is (applied is not None)
    if applied is not None:
        assert applied in apply["with"]["ok-exit-codes"].split()
        contexts["steps"]["apply"] = {"outputs": {"exit-code": applied}}
    report = step_named(steps, "Tell the pull request")
    assert runs_if(report["if"], contexts) is reported
    assert runs_if(report["if"], contexts, status="failure") is reported
    assert runs_if(step_named(steps, "Fail unless")["if"], contexts) is failed
    no_pull = {"steps": {"reviewed": {"outputs": {**reviewed, "pull": ""}}}}
    assert runs_if(report["if"], no_pull) is False  # a push that no PR merged


def test_no_pull_request_code_runs_with_the_key() -> None:
    workflow = yaml.safe_load((EXAMPLES / "plansync-plan.yml").read_text())
    trigger = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert list(trigger) == ["pull_request_target"]  # defined by the default branch
    jobs = workflow["jobs"]
    plan = jobs["plan"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert jobs["projects"]["if"] == same_repo
    assert plan["if"].startswith(same_repo + " && ")
    assert "environment" not in jobs["projects"] and "environment" not in jobs["comment"]
    assert "secrets." not in yaml.safe_dump(jobs["projects"]) + yaml.safe_dump(jobs["comment"])
    assert environment(plan, "") == "plansync-plan"  # as before projects
    assert environment(plan, "sg") == "plansync-plan-sg"
    base, pr = [s for s in plan["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert base["with"] == {"ref": "${{ github.event.repository.default_branch }}",
                            "persist-credentials": False}
    assert pr["with"] == {"ref": "${{ github.event.pull_request.head.sha }}",
                          "path": ".plansync-pr", "sparse-checkout": "specs",
                          "persist-credentials": False}
    step = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert step["uses"] == LOCAL  # from the workspace: the default branch's checkout
    assert interpolate(step["with"]["paths"], entry("")) == ".plansync-pr/specs"
    assert interpolate(step["with"]["paths"], entry("sg", "specs/sg", "specs/sg2")) == \
        ".plansync-pr/specs/sg .plansync-pr/specs/sg2"
    assert "PLANSYNC_CONFIG" not in yaml.safe_dump(workflow)  # plansync.yaml: main's


def test_the_apply_compares_with_the_default_branch_as_it_is_now() -> None:
    for job_id in ("apply-reviewed", "apply-main"):
        steps = job("plansync-apply.yml", job_id)["steps"]
        checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"
        apply = next(s for s in steps if s.get("with", {}).get("command") == "apply")
        assert interpolate(apply["with"]["paths"], entry("")) == "specs"
        assert interpolate(apply["with"]["project"], entry("")) == ""  # no --project
    fetch = next(s for s in job("plansync-apply.yml", "apply-reviewed")["steps"]
                 if s.get("id") == "reviewed")
    assert "--before ${{ github.event.before }}" in fetch["with"]["args"]


def test_least_permissions_environments_and_no_persisted_credentials() -> None:
    wanted = {
        ("plansync-plan.yml", "projects"): {"contents": "read"},
        ("plansync-plan.yml", "plan"): {"contents": "read", "id-token": "write"},
        ("plansync-plan.yml", "comment"): {"contents": "read", "pull-requests": "write"},
        ("plansync-apply.yml", "projects"): {"contents": "read"},
        ("plansync-drift.yml", "projects"): {"contents": "read"},
        ("plansync-apply.yml", "apply-reviewed"): {"contents": "read", "actions": "read",
                                                   "pull-requests": "write",
                                                   "id-token": "write"},
        ("plansync-apply.yml", "plan-main"): {"contents": "read", "id-token": "write"},
        ("plansync-apply.yml", "apply-main"): {"contents": "read", "id-token": "write"},
        ("plansync-drift.yml", "drift"): {"contents": "read", "issues": "write",
                                          "id-token": "write"},
    }
    for path in sorted(EXAMPLES.glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {}, path.name
        for job_id, body in workflow["jobs"].items():
            assert body["permissions"] == wanted[path.name, job_id], (path.name, job_id)
            keyed = [s for s in body["steps"] if "merchant-key" in s.get("with", {})]
            if keyed:  # the keys are environment secrets, released only to the default branch
                assert environment(body, "") in ("plansync-plan", "plansync-apply"), job_id
                assert environment(body, "sg") == environment(body, "") + "-sg", job_id
            else:
                assert "environment" not in body and "secrets." not in str(body), job_id
            for step in body["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, job_id)
                assert "${{" not in step.get("run", ""), (path.name, job_id)  # via env only


def test_the_token_reaches_only_the_steps_that_call_github() -> None:
    """GITHUB_TOKEN goes as the action's `github-token` to the `ci` steps, which hold no
    key; never in a workflow's or job's env, where the steps holding the merchant key
    (and pip's install in every plansync step) would have it too."""
    ci_steps = 0
    for path in sorted(EXAMPLES.glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        assert "GITHUB_TOKEN" not in (workflow.get("env") or {}), path.name
        for job_id, body in workflow["jobs"].items():
            assert "GITHUB_TOKEN" not in (body.get("env") or {}), (path.name, job_id)
            for step in body["steps"]:
                given = step.get("with") or {}
                assert "GITHUB_TOKEN" not in (step.get("env") or {}), (path.name, job_id)
                if step.get("uses") != LOCAL:
                    continue
                calls_github = given["command"].startswith("ci ")
                ci_steps += calls_github
                assert ("github-token" in given) is calls_github, (path.name, step)
                if calls_github:
                    assert given["github-token"] == "${{ github.token }}"
                    assert not {"merchant-key", "gateway-key"} & set(given), step
    assert ci_steps == 3  # comment-plan, fetch-plan, report


def test_every_third_party_action_is_pinned_by_commit_with_its_tag() -> None:
    files = [*sorted(EXAMPLES.glob("*.yml")), ROOT / "action.yml", CI]
    pins: dict[str, set[str]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            found = re.search(r"uses: (\S+)(.*)", line)
            if not found or found.group(1) == LOCAL:
                continue
            name, _, ref = found.group(1).partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref), line
            assert re.fullmatch(r" # v\d+\.\d+\.\d+", found.group(2)), line  # the tag
            pins.setdefault(name, set()).add(found.group(1) + found.group(2))
    assert set(pins) == set(KNOWN_OUTPUTS)
    assert all(len(refs) == 1 for refs in pins.values()), pins  # one commit per action


def test_every_zizmor_suppression_says_why() -> None:
    for path in [*sorted(EXAMPLES.glob("*.yml")), ROOT / "action.yml", CI]:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "zizmor: ignore[" in line:
                reason = line.split("]", 1)[1].strip()
                assert len(reason) > 20, f"{path.name}:{number + 1} gives no reason"


def test_zizmor_finds_nothing_in_the_action_and_the_workflows_init_writes(
        initialised: dict[str, Path]) -> None:
    """The default persona, offline (no network here or in CI's test job)."""
    inputs = [[str(ROOT / "action.yml"), *map(str, sorted(EXAMPLES.glob("*.yml")))],
              [str(initialised["vendored"])], [str(initialised["pinned"])], [str(CI)]]
    for names in inputs:
        result = zizmor(*names)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "No findings to report" in output, output
    collected = zizmor(str(initialised["vendored"])).stderr
    for name in ("plansync-plan.yml", "plansync-apply.yml", "plansync-drift.yml",
                 "actions/plansync/action.yml"):
        assert f"{name}" in collected, collected  # every file init writes was audited


def test_plansyncs_own_ci_reads_only_and_persists_no_credentials() -> None:
    """The repository's own CI: no token beyond reading, none left in .git, and the same
    steps as before (the tests as .ci/run runs them; ruff and mypy)."""
    workflow = yaml.safe_load(CI.read_text())
    assert workflow["permissions"] == {}
    for job_id, body in workflow["jobs"].items():
        assert body["permissions"] == {"contents": "read"}, job_id
        checkouts = [s for s in body["steps"]
                     if s.get("uses", "").startswith("actions/checkout@")]
        assert checkouts, job_id
        for step in checkouts:
            assert step["with"]["persist-credentials"] is False, job_id
    runs = [s["run"] for body in workflow["jobs"].values() for s in body["steps"]
            if "run" in s]
    assert runs == ["bash .ci/run",
                    "python -m venv .venv && .venv/bin/pip install -e '.[dev]'",
                    ".venv/bin/ruff check . && .venv/bin/mypy"]


def test_the_plan_job_refuses_links_in_the_pull_requests_files(tmp_path: Path) -> None:
    """A link in the PR's specs could make plansync read a file outside them (a key, or
    /proc/self/environ) and show it in the comment."""
    step = step_named(job("plansync-plan.yml", "plan")["steps"], "Refuse links")
    specs = tmp_path / ".plansync-pr" / "specs"
    specs.mkdir(parents=True)
    (specs / "plans.yaml").write_text("plans: []\n")
    plain = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path,
                           capture_output=True, text=True, timeout=30)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    (specs / "keys.yaml").symlink_to("/proc/self/environ")
    linked = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert linked.returncode == 1
    assert "::error::the pull request's specs hold symbolic links" in linked.stdout
    assert ".plansync-pr/specs/keys.yaml" in linked.stdout
    (specs / "keys.yaml").unlink()
    (tmp_path / ".plansync-pr" / "README.md").symlink_to("specs/plans.yaml")
    outside = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=30)
    assert outside.returncode == 0  # a link elsewhere in the PR's tree is never read


def test_the_comment_job_is_the_check_that_fails_when_a_plan_failed() -> None:
    """Review: the plan jobs' checks are named per project (`plan sg`), so branch
    protection needs one stable check that fails when any plan failed."""
    comment = job("plansync-plan.yml", "comment")
    ran = {"needs": {"projects": {"result": "success"}, "plan": {"result": "failure"}}}
    assert runs_if(comment["if"], ran, status="failure") is True  # it still comments
    assert runs_if(comment["if"], ran, status="cancelled") is False  # a newer push won
    gate = step_named(comment["steps"], "Fail when any project's plan failed")
    assert runs_if(gate["if"], ran) is True
    ran["needs"]["plan"]["result"] = "skipped"  # a PR that touches no project: green
    assert runs_if(gate["if"], ran) is False


def test_every_artifact_a_rerun_saves_again_is_overwritten() -> None:
    """Review: artifact names are unique per run across attempts (upload-artifact v4):
    without overwrite, "Re-run failed jobs" fails on the name forever."""
    for name in ("plansync-plan.yml", "plansync-apply.yml"):
        workflow = yaml.safe_load((EXAMPLES / name).read_text())
        uploads = [step for each in workflow["jobs"].values() for step in each["steps"]
                   if step.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads and all(step["with"].get("overwrite") is True for step in uploads)
