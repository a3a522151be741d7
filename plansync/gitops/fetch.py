"""Fetching the reviewed plan for a merge: GitHub's answers in, review.py's rules applied,
in the order that lets each refusal name what failed. The pull request is reported to
``on_pull`` as soon as it is known, so that it can be told even when a later check
refuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from plansync.gitops import records, review
from plansync.gitops.github import GitHub, GitHubError
from plansync.gitops.records import Pull

NO_COMMIT = "0" * 40  # github.event.before when a push created the branch


class ReviewedPlan(NamedTuple):
    pull: int
    head_sha: str
    run_id: int
    run_url: str
    plan: bytes


class Settings(NamedTuple):
    sha: str
    before: str | None
    workflow_file: str
    spec_paths: Sequence[str]
    max_size: int
    project: str | None = None  # the project of plansync.yaml's projects: whose plan


def reviewed_plan(github: GitHub, settings: Settings,
                  on_pull: Callable[[Pull], None] = lambda pull: None) -> ReviewedPlan:
    """The plan saved by the plan workflow's trusted run for the pull request that
    ``settings.sha`` merged (``settings.project``'s plan, for a project). Raises
    NotReviewed, saying why, when there is none."""
    sha = settings.sha
    default = default_branch(github)
    pull = _merged_pull(github, sha, settings.before, default)
    on_pull(pull)
    _check_not_superseded(github, sha, default, settings.spec_paths)

    file = settings.workflow_file
    endpoint = f"/actions/workflows/{file}"
    workflow = records.workflow(github.get(endpoint, f"workflow {file}"),
                                github.where(endpoint))
    expected = f".github/workflows/{file}"
    if workflow.path != expected:
        raise review.NotReviewed(f"the workflow {file} is {workflow.path}, not {expected}",
                                 "pass the plan workflow's file name as --workflow")
    on_default = _file_at(github, expected, default)
    if on_default is None:
        raise review.NotReviewed(f"{expected} is not on {default}",
                                 "install the plan workflow (plansync init)")
    triggers = review.pull_request_triggers(on_default, expected)
    endpoint = f"/pulls/{pull.number}/files"
    changed = records.changed_files(github.items(endpoint, f"pull request #{pull.number}"),
                                    github.where(endpoint))
    review.check_unchanged(pull, expected, changed)

    endpoint = f"/actions/workflows/{file}/runs"
    runs = [records.run(r, github.where(endpoint)) for r in github.items(
        endpoint, f"runs of {file}", "workflow_runs", head_sha=pull.head_sha)]
    run = review.choose_run(runs, pull, workflow, triggers, github.repository)

    endpoint = f"/actions/runs/{run.id}/artifacts"
    artifacts = [records.artifact(a, github.where(endpoint)) for a in github.items(
        endpoint, f"artifacts of run {run.id}", "artifacts")]
    artifact = review.choose_artifact(artifacts, run, pull.head_sha, settings.max_size,
                                      settings.project)
    try:
        archive = github.download(artifact.download_url,
                                  f"the plan artifact of run {run.id}", settings.max_size)
    except GitHubError as exc:
        if exc.status == 410:
            raise review.expired(run) from None
        raise
    plan = review.unpack_plan(archive, run, settings.max_size)
    return ReviewedPlan(pull.number, pull.head_sha, run.id, run.url, plan)


def default_branch(github: GitHub) -> str:
    data = github.get("", f"repository {github.repository}")
    branch = data.get("default_branch")
    if not isinstance(branch, str) or not branch:
        raise GitHubError(f"GitHub API GET /repos/{github.repository} answered without a "
                          "default_branch, not what the endpoint documents")
    return branch


def _merged_pull(github: GitHub, sha: str, before: str | None, default: str) -> Pull:
    endpoint = f"/commits/{sha}/pulls"
    pulls = [records.pull(p, github.where(endpoint)) for p in github.items(
        endpoint, f"commit {sha}", None)]
    pushed: tuple[str, ...] | None = None
    rebased = any(p.merged and p.base_ref == default and p.merge_commit_sha != sha
                  for p in pulls)
    if before and before != NO_COMMIT and rebased:
        pushed = _compare(github, before, sha).commits
    return review.choose_pull(pulls, sha, default, pushed)


def _check_not_superseded(github: GitHub, sha: str, default: str,
                          spec_paths: Sequence[str]) -> None:
    """Refuse when the default branch has moved on from ``sha`` to a different spec:
    that newer spec is what its own apply applies."""
    endpoint = f"/branches/{default}"
    head = records.member(github.get(endpoint, f"branch {default}"), "commit.sha", str,
                          github.where(endpoint))
    if head == sha:
        return
    comparison = _compare(github, sha, head)
    changed = review.spec_changes(comparison.files, spec_paths)
    if comparison.status not in ("ahead", "identical"):
        raise review.NotReviewed(f"{default} is now at {head[:12]}, which does not contain "
                                 f"this merge ({sha[:12]}; {comparison.status}): nothing is "
                                 f"applied; {default}'s own apply applies its spec",
                                 "nothing to do here; re-plan on a new pull request if "
                                 "this change is still wanted")
    if changed:
        shown = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
        raise review.NotReviewed(f"{default} has moved on to {head[:12]} and its spec "
                                 f"differs from this merge's: nothing is applied; "
                                 f"{default}'s own apply applies it (changed: {shown})",
                                 "nothing to do here; re-plan on a new pull request if "
                                 "this change is still wanted")


def _compare(github: GitHub, base: str, head: str) -> records.Comparison:
    endpoint = f"/compare/{base}...{head}"
    return records.comparison(list(github.pages(endpoint, f"comparison {base}...{head}")),
                              github.where(endpoint))


def _file_at(github: GitHub, path: str, ref: str) -> str | None:
    endpoint = f"/contents/{path}"
    try:
        data = github.get(endpoint, f"{path} at {ref}", ref=ref)
    except GitHubError as exc:
        if exc.status == 404:
            return None
        raise
    return records.file_text(data, github.where(endpoint))
