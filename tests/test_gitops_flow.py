"""The GitOps flow's glue, driven end to end: plansync commands against the emulator,
and a stand-in for GitHub's API on loopback (tests/fake_github.py). The reviewed plan is
the applied plan; whatever happens, the pull request is told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from plansync.gitops.report import PLAN_MARKER
from tests.fake_github import BOT, REPO, FakeGitHub
from tests.helpers import HEAD, accepted_writes, live_fields, run


@pytest.fixture
def env(served: dict[str, str], github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    return served | {"PLANSYNC_STATE": str(tmp_path / "state.json"),
                     "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO,
                     "GITHUB_TOKEN": "test-token", "GITHUB_RUN_ID": "555"}


def reviewed(env: dict[str, str], spec: Path, tmp_path: Path, name: str) -> bytes:
    """What the PR's plan workflow saves: plansync plan --out."""
    out = tmp_path / f"{name}.plan.json"
    made = run("plan", str(spec), "--out", str(out), env=env)
    assert made.returncode == 0, made.stderr
    return out.read_bytes()


def on_merge(env: dict[str, str], sha: str, pull: int, tmp_path: Path) -> str:
    """The apply workflow: fetch the reviewed plan, apply exactly it, report on the PR.
    Returns the comment posted."""
    plan = tmp_path / f"merge-{sha}.json"
    fetched = run("ci", "fetch-plan", "--sha", sha, "--out", str(plan), env=env)
    if fetched.returncode != 0:  # as the workflow: the reason is what --out holds
        reported = run("ci", "report", "--pull", str(pull), "--exit-code", "1",
                       "--results", str(plan), env=env)
    else:
        applied = run("apply", "--plan", str(plan), "--auto-approve", "--json", env=env)
        results = tmp_path / f"results-{sha}.json"
        results.write_text(applied.stdout)
        reported = run("ci", "report", "--pull", str(pull), "--results", str(results),
                       "--exit-code", str(applied.returncode), env=env)
    assert reported.returncode == 0, reported.stderr
    return reported.stdout


def spec_file(tmp_path: Path, body: str) -> Path:
    spec = tmp_path / "specs" / "plans.yaml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(HEAD + "plans:\n" + body)
    return spec


def test_the_reviewed_plan_is_applied_and_the_pr_told(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "  - {id: '156142', amount: '130.00', recurring_count: 24}\n")
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", reviewed(env, spec, tmp_path, "pr7"))
    comment = on_merge(env, "merge1", 7, tmp_path)
    assert "### plansync: the reviewed plan was applied" in comment
    assert "| 156142 | updated | amount, recurring_count |" in comment
    assert live_fields(emulator, "156142")["amount"] == "000000013000"
    posted = [dict(c) for c in github.comments[7]]
    assert len(posted) == 1 and posted[0]["user"] == BOT
    again = on_merge(env, "merge1", 7, tmp_path)  # a re-run of the same job...
    assert again.startswith("The reviewed plan was already applied by ")  # ...succeeds,
    assert github.comments[7] == posted  # leaves the true comment as it is,
    assert accepted_writes(emulator)[("156142", "U")] == 1  # and applies nothing


def test_live_moved_between_review_and_merge_nothing_unreviewed_is_written(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "  - {id: '156142', amount: '130.00', recurring_count: 24}\n"
                               "  - {id: '156143', amount: '450.00'}\n")
    github.merge("merge2", 8, "head2")
    github.plan_run(102, "head2", reviewed(env, spec, tmp_path, "pr8"))
    # Someone changes 156142 in the portal after the review.
    other = tmp_path / "portal.yaml"
    other.write_text(HEAD + "plans:\n  - {id: '156142', amount: '10.00', recurring_count: 60}\n")
    assert run("apply", str(other), "--auto-approve",
               env={**env, "PLANSYNC_STATE": str(tmp_path / "portal.json")}).returncode == 0
    comment = on_merge(env, "merge2", 8, tmp_path)
    assert "applied in part" in comment
    assert "| 156142 | skipped | " in comment  # apply words the detail
    assert "| 156143 | updated |" in comment
    fields = live_fields(emulator, "156142")
    assert (fields["amount"], fields["recurringCount"]) == ("000000001000", "60")


def test_a_second_merge_whose_plan_is_stale_is_reported_not_applied(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    first = "  - {id: '156142', amount: '130.00'}\n"
    second = "  - {id: '156143', amount: '450.00'}\n"
    github.merge("mergeA", 9, "headA")
    github.plan_run(103, "headA", reviewed(env, spec_file(tmp_path, first), tmp_path, "A"))
    plan_b = reviewed(env, spec_file(tmp_path, second), tmp_path, "B")  # branched at root
    spec_file(tmp_path, first)  # main after merge A
    assert "was applied" in on_merge(env, "mergeA", 9, tmp_path)
    github.merge("mergeB", 10, "headB", since="root")
    github.plan_run(104, "headB", plan_b)
    spec_file(tmp_path, first + second)  # main after merge B: not what B's review saw
    comment = on_merge(env, "mergeB", 10, tmp_path)
    assert "### plansync: apply stopped with an error" in comment
    assert "the spec" in comment and "nothing was sent" in comment  # apply words why
    assert "Re-plan on a new pull request" in comment
    assert accepted_writes(emulator)[("156143", "U")] == 0


def test_a_forged_run_or_comment_is_never_applied(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "  - {id: '156145', status: cancelled, "
                               "lifecycle: {prevent_cancel: false}}\n")
    forged = reviewed(env, spec, tmp_path, "forged")
    github.merge("merge3", 11, "head3")
    github.comment(11, PLAN_MARKER + "\nspec `sha256:" + "0" * 64 + "`",
                   {"login": "mallory", "type": "User"})
    github.plan_run(105, "head3", forged, workflow=".github/workflows/evil.yml")
    comment = on_merge(env, "merge3", 11, tmp_path)
    assert "not applied" in comment and "has no plansync-plan.yml run on its head" in comment
    assert accepted_writes(emulator) == {}
    assert not live_fields(emulator, "156145")["cancelled"]


def test_a_push_to_main_without_a_pull_request_applies_nothing(
        env: dict[str, str], tmp_path: Path) -> None:
    fetched = run("ci", "fetch-plan", "--sha", "direct", "--out", str(tmp_path / "p.json"),
                  env=env)
    assert fetched.returncode == 1
    assert "was not merged from a pull request" in fetched.stderr
    assert "plan" not in json.loads((tmp_path / "p.json").read_text())  # only the reason


def test_a_stale_rerun_does_not_undo_a_newer_merge_and_the_pr_is_told(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    """PR 1 (99.90 -> 110.00) merged, its apply failed on GitHub's 502s; PR 2 reverted it
    and was applied; re-running PR 1's apply job writes nothing and tells PR 1 why."""
    before = "  - {id: '156142', amount: '99.90'}\n"
    after = "  - {id: '156142', amount: '110.00'}\n"
    github.merge("merge1", 1, "head1", spec=after)
    github.plan_run(101, "head1", reviewed(env, spec_file(tmp_path, after), tmp_path, "pr1"))
    github.fault("/commits/merge1/pulls", 502, times=5)  # every attempt of the first job
    out = tmp_path / "first.json"
    first = run("ci", "fetch-plan", "--sha", "merge1", "--out", str(out), env=env)
    assert first.returncode == 1 and "HTTP 502: fault 502 after 5 attempts" in first.stderr
    github.merge("merge2", 2, "head2", spec=before)  # the revert
    github.plan_run(102, "head2", reviewed(env, spec_file(tmp_path, before), tmp_path, "pr2"))
    assert "### plansync: the reviewed plan was applied" in on_merge(env, "merge2", 2,
                                                                     tmp_path)
    spec_file(tmp_path, after)  # the re-run checks out merge1
    comment = on_merge(env, "merge1", 1, tmp_path)
    assert "### plansync: this merge was **not applied**" in comment
    assert ("main has moved on to merge2 and its spec differs from this merge's: nothing "
            "is applied; main's own apply applies it") in comment
    assert live_fields(emulator, "156142")["amount"] == "000000009990"
    assert accepted_writes(emulator).get(("156142", "U"), 0) == 0


def test_a_rerun_of_a_merge_applied_in_part_is_told_so_not_called_applied(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "  - {id: '156142', amount: '130.00', recurring_count: 24}\n"
                               "  - {id: '156143', amount: '450.00'}\n")
    github.merge("merge2", 8, "head2")
    github.plan_run(102, "head2", reviewed(env, spec, tmp_path, "pr8"))
    other = tmp_path / "portal.yaml"  # 156142 moves in the portal after the review
    other.write_text(HEAD + "plans:\n  - {id: '156142', amount: '10.00', recurring_count: 60}\n")
    assert run("apply", str(other), "--auto-approve",
               env={**env, "PLANSYNC_STATE": str(tmp_path / "portal.json")}).returncode == 0
    assert "applied in part" in on_merge(env, "merge2", 8, tmp_path)
    posted = [dict(c) for c in github.comments[8]]
    again = on_merge(env, "merge2", 8, tmp_path)  # the failed job, re-run
    assert again.startswith("The reviewed plan was applied by ")
    assert (" only in part; it is not applied again: re-plan the rest on a new pull "
            "request.\n") in again
    assert "already applied" not in again
    assert github.comments[8] == posted  # the earlier comment is still true
    assert accepted_writes(emulator)[("156143", "U")] == 1


def test_an_apply_step_that_never_reported_is_told_and_a_rerun_applies(
        env: dict[str, str], github: FakeGitHub, emulator: Emulator, tmp_path: Path) -> None:
    """fetch-plan saved the plan, then the apply step left no output (its install failed,
    the job was cancelled): the workflow passes the reviewed plan as --results."""
    spec = spec_file(tmp_path, "  - {id: '156142', amount: '130.00'}\n")
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", reviewed(env, spec, tmp_path, "pr7"))
    plan = tmp_path / "reviewed-plan.json"
    assert run("ci", "fetch-plan", "--sha", "merge1", "--out", str(plan),
               env=env).returncode == 0
    told = run("ci", "report", "--pull", "7", "--exit-code", "1", "--results", str(plan),
               env=env)
    assert told.returncode == 0, told.stderr
    [comment] = github.comments[7]
    assert "### plansync: the apply step did not report" in comment["body"]
    assert "whether any reviewed change was written is not known" in comment["body"]
    assert accepted_writes(emulator) == {}
    again = on_merge(env, "merge1", 7, tmp_path)  # re-run this job, as the comment says
    assert "### plansync: the reviewed plan was applied" in again
    assert "the reviewed plan was applied" in github.comments[7][0]["body"]  # in place
    assert live_fields(emulator, "156142")["amount"] == "000000013000"
