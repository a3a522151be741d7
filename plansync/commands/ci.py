"""`plansync ci fetch-plan`, `plansync ci report` and `plansync ci comment-plan`: the
GitOps glue the workflows run (plansync/gitops/), so that the workflows hold no logic of
their own."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from plansync.errors import PlansyncError
from plansync.printable import quoted
from plansync.redact import safe_url

BOT = "github-actions[bot]"  # the identity GITHUB_TOKEN posts as
PULL_NUMBER = re.compile(r"[1-9][0-9]{0,17}", re.ASCII)  # 18 digits: int() reads them


def _project(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--project: a name plansync.yaml's projects: may hold ("" is none: the workflows'
    matrix entry of a repository without projects)."""
    from plansync.projects import NAME_RE

    if not value:
        return None
    if not NAME_RE.fullmatch(value):
        raise click.BadParameter(f"{quoted(value)} is not a project name (1-40 lower-case "
                                 "letters, digits, '-' or '_')")
    return value


project_option = click.option(
    "--project", callback=_project, metavar="NAME",
    help="The project of plansync.yaml's projects: this step is about (the workflows' "
         "matrix.project; empty: a repository without projects).")


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from plansync.gitops.review import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def ci() -> None:
    """GitOps steps for GitHub Actions: post the plan, fetch the reviewed plan, report the
    outcome."""


@ci.command("fetch-plan")
@click.option("--sha", required=True, help="The merge commit (GITHUB_SHA).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the reviewed plan, for apply --plan.")
@click.option("--workflow", default="plansync-plan.yml", show_default=True,
              help="The workflow file whose runs save the plans (only its runs count).")
@click.option("--before", help="The commit the push started from "
              "(github.event.before): a rebase merge's pull request counts when its merge "
              "commit is among the pushed commits.")
@click.option("--spec-path", "spec_paths", multiple=True, default=("specs",),
              show_default=True, help="A folder of specs (repeatable): when the default "
              "branch has moved on and changed a file under one (or plansync.yaml), "
              "nothing is fetched.")
@click.option("--max-artifact-size", default="10MB", callback=_size, show_default=True,
              help="The largest plan artifact accepted, zipped or unpacked "
              "(10MB, 512KB or bytes).")
@project_option
def fetch_plan(sha: str, out: Path, workflow: str, before: str | None,
               spec_paths: Sequence[str], max_artifact_size: int,
               project: str | None) -> int:
    """Save the plan that the merged pull request's review saw: the artifact of the
    plan workflow's trusted run on its head commit (with --project, that project's
    artifact: plansync-plan-PROJECT-HEAD). Exit 1, saying which check failed,
    if there is none (the reason is then what --out holds, for `ci report --results`);
    exit 2 when the reviewed run did not plan the project at all (nothing to apply)."""
    from plansync.gitops import fetch
    from plansync.gitops.github import GitHub
    from plansync.gitops.report import FETCH_PLAN
    from plansync.gitops.review import NotPlanned

    settings = fetch.Settings(sha, before, workflow, spec_paths, max_artifact_size, project)
    try:
        found = fetch.reviewed_plan(GitHub.from_environment(os.environ), settings,
                                    on_pull=lambda pull: _output("pull", str(pull.number)))
        out.write_bytes(found.plan)
    except NotPlanned as exc:  # not a failure: exit 2, and nothing is fetched or applied
        click.echo(f"::warning::{exc.message}" if os.environ.get("GITHUB_ACTIONS") == "true"
                   else f"warning: {exc.message}", err=True)
        click.echo(f"  hint: {exc.hint}", err=True)
        return 2
    except Exception as exc:
        # Why, for `ci report --results` to say on the pull request: nothing was fetched,
        # so nothing is applied. Any failure, not only a refusal; one that is not
        # plansync's own is named by its kind only (its words may hold a signed URL).
        if isinstance(exc, PlansyncError):
            why, hint = exc.message, exc.hint
        else:
            why = (f"ci fetch-plan stopped on an unexpected {type(exc).__name__}: nothing "
                   "was fetched, so nothing is applied")
            hint = "re-run the job; the job's log says more"
        from plansync.views.json import error_document

        with contextlib.suppress(OSError):  # the failure itself is what the step says
            out.write_text(json.dumps({**error_document(why, hint), "from": FETCH_PLAN}))
        raise
    run_url = safe_url(found.run_url)  # GitHub's html_url: no secret, unless a proxy adds one
    _output("plan-run", run_url)
    whose = f"project {project}'s plan" if project else "the plan"
    click.echo(f"Saved {whose} reviewed on pull request #{found.pull} (head "
               f"{found.head_sha[:12]}, run {found.run_id} {run_url}) to {out}.")
    return 0


def _pull_number(source: str) -> Callable[[click.Context, click.Parameter, str], int]:
    """--pull's check; ``source`` says where the workflow takes the number from."""
    def check(ctx: click.Context, param: click.Parameter, value: str) -> int:
        if not PULL_NUMBER.fullmatch(value):  # ASCII only: int() reads any script's digits
            raise click.BadParameter(f"{quoted(value)} is not a pull request number; "
                                     f"{source}")
        return int(value)
    return check


@ci.command("report")
@click.option("--pull", "pull", required=True, callback=_pull_number(
                  "the apply workflow passes ci fetch-plan's step output `pull`, and calls "
                  "ci report only when it is set"),
              help="The pull request number (ci fetch-plan's step output `pull`).")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              help="apply --json's output; fetch-plan's --out when it refused, or "
              "(the reviewed plan) when the apply step did not report; without it (or "
              "empty), apply wrote no report.")
@click.option("--exit-code", type=int, default=0, show_default=True,
              help="apply's exit code.")
@click.option("--reason", help="Why nothing was applied (shown on the pull request).")
@project_option
def report(pull: int, results: Path | None, exit_code: int, reason: str | None,
           project: str | None) -> int:
    """Post (or update) the pull request comment saying what the merge applied. A re-run
    of an applied plan leaves the earlier comment as it is, and says whether that apply
    was complete. A malformed --results file is exit 1, and nothing is posted. Every
    text is cut to GitHub's limits (65,536 characters a comment, 1 MiB a job summary).
    With --project, the comment is that project's own (`<!-- plansync-apply:NAME -->`)."""
    from plansync.gitops import report as words
    from plansync.gitops.github import GitHub

    document: Any = None
    if results is not None and results.exists() and results.stat().st_size:
        wrong = f"{results} is not apply --json's output"
        hint = "pass apply --json's stdout, or fetch-plan's --out when it refused"
        try:
            document = json.loads(results.read_text(encoding="utf-8"))
        except RecursionError:
            raise PlansyncError(f"{wrong}: JSON nested too deeply to read", hint) from None
        except ValueError:
            raise PlansyncError(f"{wrong}: not JSON", hint) from None
        problem = words.problem(document)
        if problem is not None:  # before anything is asked of GitHub or posted
            raise PlansyncError(f"{wrong}: {problem}", hint)
    run_url = safe_url("{}/{}/actions/runs/{}".format(
        os.environ.get("GITHUB_SERVER_URL", "https://github.com"),
        os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")))
    github = GitHub.from_environment(os.environ)
    existing = words.existing_comment(github, pull, words.apply_marker(project), BOT)
    earlier = words.already_applied(document) if document is not None else None
    if earlier is not None:
        # A re-run: the earlier comment says what was written and what was not, and is
        # still true; keep it. In part (or not known to be complete): it is not applied
        # again, and apply's own exit code fails the job, so this step succeeds.
        if existing is None:
            words.post(github, pull, words.fit_comment(
                words.for_project(earlier.comment(run_url), project), run_url), None)
        text = shown = earlier.said()
    else:
        body = words.for_project(words.outcome(document, exit_code, run_url, reason), project)
        words.post(github, pull, words.fit_comment(body, run_url), existing)
        shown = words.outcome(document, exit_code, run_url, reason, fit="summary")
        text = words.outcome(document, exit_code, run_url, reason, fit="none")
    shown = words.fit_summary(shown)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(shown)
    click.echo(text, nl=False)
    return 0


@ci.command("comment-plan")
@click.option("--pull", "pull", required=True, callback=_pull_number(
                  "the plan workflow passes github.event.pull_request.number"),
              help="The pull request number (github.event.pull_request.number).")
@click.option("--file", "file", type=click.Path(path_type=Path),
              help="plan --markdown's output (the plan step's output-file).")
@click.option("--matrix", "matrix", type=click.Path(path_type=Path),
              help="The plan jobs' matrix (plansync projects --github-matrix): a section "
                   "for each of its projects, from --plans.")
@click.option("--plans", "plans", type=click.Path(file_okay=False, path_type=Path),
              help="With --matrix: the folder the plan jobs' artifacts were downloaded to "
                   "(plansync-comment[-PROJECT]/plan.md and exit-code each).")
def comment_plan(pull: int, file: Path | None, matrix: Path | None,
                 plans: Path | None) -> int:
    """Post the plan as the pull request's `<!-- plansync-plan -->` comment, or update
    that comment in place: only one written by github-actions[bot] (one by anyone else
    is never touched). A plan longer than GitHub's 65,536 characters is cut, with a
    link to the run, whose job summary has all of it. With --matrix and --plans: one
    comment over the plan jobs of a matrix, a section a project, saying which failed."""
    from plansync.gitops import report as words
    from plansync.gitops.github import GitHub

    if (file is None) == (matrix is None) or (matrix is None) != (plans is None):
        raise click.UsageError("give --file (one plan), or --matrix and --plans (a matrix "
                               "of plan jobs)")
    run_url = safe_url(words.run_url(os.environ))
    if file is not None:  # before anything is asked of GitHub or posted
        body = words.plan_comment(_read_plan_markdown(file), run_url)
    else:
        assert matrix is not None and plans is not None
        body = words.plans_comment([words.read_section(plans, name)
                                    for name in _matrix_projects(matrix)], run_url)
    github = GitHub.from_environment(os.environ)
    existing = words.existing_comment(github, pull, words.PLAN_MARKER, BOT)
    words.post(github, pull, body, existing)
    click.echo(f"{'Posted' if existing is None else 'Updated'} the plan comment on pull "
               f"request #{pull}.")
    return 0


def _read_plan_markdown(file: Path) -> str:
    from plansync.folders import read_regular

    try:
        return read_regular(file).decode("utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, a NUL in the path
        why = ("not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
               else getattr(exc, "strerror", None) or exc)
        raise PlansyncError(f"cannot read the plan to post, {file}: {why}",
                            "pass the plan step's output-file (plansync plan --markdown's "
                            "output)") from None


def _matrix_projects(path: Path) -> list[str]:
    """The projects of the matrix file (``{"include": [{"project": NAME}, ...]}``): names
    only, each a project name or "" (none), since each names a folder to read."""
    from plansync.folders import read_regular
    from plansync.projects import NAME_RE

    hint = "pass the projects job's output matrix (plansync projects --github-matrix)"
    try:
        document = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        why = getattr(exc, "strerror", None) or "not JSON"
        raise PlansyncError(f"cannot read the matrix {path}: {why}", hint) from None
    entries = document.get("include") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PlansyncError(f"the matrix {path} is not {{\"include\": [{{\"project\": "
                            "...}}, ...]}}", hint)
    names = [e.get("project") for e in entries]
    for name in names:
        if not isinstance(name, str) or (name and not NAME_RE.fullmatch(name)):
            raise PlansyncError(f"the matrix {path} names the project {quoted(str(name))}, "
                                "which is not a project name", hint)
    return [str(name) for name in names]


def _output(name: str, value: str) -> None:
    """A step output (the action declares `pull` and `plan-run`)."""
    target = os.environ.get("GITHUB_OUTPUT")
    if target and "\n" not in value:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
