"""`plansync ci fetch-plan` and `plansync ci report`: the GitOps glue the workflows run
(plansync/gitops.py), so that the workflows hold no logic of their own."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from plansync.errors import PlansyncError

BOT = "github-actions[bot]"  # the identity GITHUB_TOKEN posts as


@click.group()
def ci() -> None:
    """GitOps steps for GitHub Actions: fetch the reviewed plan, report the outcome."""


@ci.command("fetch-plan")
@click.option("--sha", required=True, help="The merge commit (GITHUB_SHA).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the reviewed plan, for apply --plan.")
@click.option("--workflow", default="plansync-plan.yml", show_default=True,
              help="The workflow file whose runs save the plans (only its runs count).")
def fetch_plan(sha: str, out: Path, workflow: str) -> int:
    """Save the plan that the merged pull request's review saw: the artifact of the
    plan workflow's successful run on its head commit. Exit 1, saying why, if none (the
    reason is then what --out holds, for `ci report --results`)."""
    from plansync import gitops

    github = gitops.GitHub.from_environment(os.environ)
    try:
        pull = gitops.merged_pull(github, sha)
        _output("pull", str(pull["number"]))
        found = gitops.reviewed_plan(github, sha, workflow)
    except PlansyncError as exc:
        # Why, for `ci report --results` to say on the pull request (no plan to apply).
        out.write_text(json.dumps({"error": exc.message, "hint": exc.hint, "results": []}))
        raise
    out.write_bytes(found.plan)
    _output("plan-run", found.run_url)
    click.echo(f"Saved the plan reviewed on pull request #{found.pull} (head "
               f"{found.head_sha[:12]}, {found.run_url}) to {out}.")
    return 0


@ci.command("report")
@click.option("--pull", "pull", type=int, required=True, help="The pull request number.")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              help="apply --json's output; without it (or empty), nothing was applied.")
@click.option("--exit-code", type=int, default=0, show_default=True,
              help="apply's exit code.")
@click.option("--reason", help="Why nothing was applied (shown on the pull request).")
def report(pull: int, results: Path | None, exit_code: int, reason: str | None) -> int:
    """Post (or update) the pull request comment saying what the merge applied."""
    from plansync import gitops

    document: Any = None
    if results is not None and results.exists() and results.stat().st_size:
        try:
            document = json.loads(results.read_text(encoding="utf-8"))
        except ValueError:
            raise PlansyncError(f"{results} is not apply --json's output") from None
    run_url = "{}/{}/actions/runs/{}".format(os.environ.get("GITHUB_SERVER_URL",
                                                            "https://github.com"),
                                             os.environ.get("GITHUB_REPOSITORY", ""),
                                             os.environ.get("GITHUB_RUN_ID", ""))
    body = gitops.outcome(document, exit_code, run_url, reason)
    gitops.GitHub.from_environment(os.environ).upsert_comment(pull, gitops.APPLY_MARKER,
                                                              body, BOT)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(body)
    click.echo(body)
    return 0


def _output(name: str, value: str) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
