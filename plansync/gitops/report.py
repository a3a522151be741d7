"""What the pull request is told on merge: applied, skipped and failed plans; or why
nothing was applied and what to do; or, for a re-run of a plan applied before, that it
was already applied — or, when that earlier apply was not complete (it failed or was
stopped part way, or apply did not record it), that it was applied only in part and is
not applied again. Either way the earlier comment stays: it is still true.

Only what is known is said. "Nothing was written" only after a fetch-plan refusal
(its ``{"error", "hint", "results": [], "from": "ci fetch-plan"}``: no plan was
fetched, so none was applied). apply's own error (the same record without ``from``) may
come after writes, so the comment points at the run's log. The reviewed plan itself
given as the results (the workflow passes it when the apply step left no output: it did
not start, failed, or the job was cancelled or timed out) and no results with a failing
exit code: whether anything was written is not known; re-running the job finds out.

Every text is cut to fit where it goes: GitHub's 65,536 characters for a comment (with a
link to the run, whose log has it all), 1 MiB for the job summary.

``problem`` checks the shape of the document read (apply --json's output, fetch-plan's
reason, or a plansync plan) before anything is posted. ``outcome`` is pure: that
document in, the comment out. ``existing_comment`` and ``post`` do the I/O.

The plan workflow's comment (``ci comment-plan``) goes through the same two:
``plan_comment`` is ``plan --markdown``'s output under ``PLAN_MARKER``, within the limit;
``plans_comment`` is one comment for a matrix of projects, a section each (a project
whose job failed says so), each section within its share of the limit.

With projects (plansync.yaml's ``projects:``) each project's apply job tells the pull
request in a comment of its own (``apply_marker``, ``for_project``): the jobs run at once,
and one comment written by several would lose all but the last.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from plansync import schema_files
from plansync.engine.applier import ResultKind
from plansync.gitops.github import GitHub
from plansync.render.values import cell

PLAN_MARKER = "<!-- plansync-plan -->"
APPLY_MARKER = "<!-- plansync-apply -->"
COMMENT_LIMIT = 65_536  # characters, GitHub's limit for an issue comment body
SUMMARY_LIMIT = 1_000_000  # bytes; GitHub takes up to 1 MiB of a step's job summary
FETCH_PLAN = "ci fetch-plan"  # the "from" of fetch-plan's reason: nothing was fetched
PLAN_SCHEMA = "plan.schema.json"
WHAT_TO_DO = ("Re-plan on a new pull request, or run the manual plansync apply workflow "
              "(it plans `main` and waits for approval).")
NOT_KNOWN = "whether any reviewed change was written is not known"
RERUN_JOB = ("Re-run this job: it applies the plan if it was never applied (and the "
             "default branch's spec is still the one reviewed), and otherwise says what "
             "was.")
WRITTEN = (ResultKind.UPDATED, ResultKind.CANCELLED)
NOT_WRITTEN = (ResultKind.SKIPPED, ResultKind.FAILED, ResultKind.PENDING, ResultKind.NOT_STARTED)


def run_url(environ: Mapping[str, str]) -> str:
    """The URL of the workflow run this step is part of (GitHub Actions' variables)."""
    return "{}/{}/actions/runs/{}".format(
        environ.get("GITHUB_SERVER_URL", "https://github.com"),
        environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_RUN_ID", ""))


def plan_comment(markdown: str, run_url: str) -> str:
    """The pull request's plan comment: ``PLAN_MARKER``'s line, then ``plan --markdown``'s
    output (or, when it printed nothing, that it did), within GitHub's comment limit.
    plan keeps a plan under it; a failure's error and problems can pass it: then the text
    is cut at a line, a code block the cut leaves open is closed (or the pointer to the
    run would show as code), and the run's job summary has all of it."""
    if not markdown.strip():
        markdown = (f"### plansync plan printed nothing\n\nThe log of [the run]({run_url}) "
                    "says why.\n")
    note = f"\n… cut: see the whole plan in the job summary of [the run]({run_url})\n"
    return _cut(f"{PLAN_MARKER}\n{markdown}", COMMENT_LIMIT, note)


def _cut(body: str, limit: int, note: str) -> str:
    """``body`` cut at a line to ``limit`` characters with ``note`` after it, closing a
    code block the cut leaves open (or the note would show as code)."""
    if len(body) <= limit:
        return body
    fence = "```\n"
    kept = body[:max(limit - len(note) - len(fence), 0)]
    kept = kept[:kept.rfind("\n") + 1]
    if sum(line.startswith("```") for line in kept.splitlines()) % 2:
        kept += fence
    return kept + note


class Section(NamedTuple):
    """One project's part of the plan comment: what its plan job saved (None: the job
    saved nothing) and its plan's exit code."""
    project: str  # "": a repository without projects
    markdown: str | None
    exit_code: int | None


COMMENT_ARTIFACT = "plansync-comment"  # a plan job's Markdown and exit code, for the comment
_FAILED = {1: "plansync could not make a plan", 3: "the plan breaks a guardrail"}


def comment_artifact(project: str) -> str:
    """What a plan job names the artifact holding its Markdown and exit code."""
    return f"{COMMENT_ARTIFACT}-{project}" if project else COMMENT_ARTIFACT


def read_section(folder: Path, project: str) -> Section:
    """A project's section from the downloaded artifacts (``folder``/<artifact name>/
    plan.md and exit-code), as the comment job finds them; a missing or unreadable one:
    the job saved nothing."""
    from plansync.folders import read_regular

    where = folder / comment_artifact(project)
    try:
        markdown = read_regular(where / "plan.md").decode("utf-8")
        code = read_regular(where / "exit-code").decode("ascii").strip()
    except (OSError, ValueError):
        return Section(project, None, None)
    return Section(project, markdown, int(code) if code.isdigit() else None)


def plans_comment(sections: Sequence[Section], run_url: str) -> str:
    """The pull request's plan comment over a matrix of projects: a section a project,
    each saying whether its job failed; for a repository without projects (one section,
    project "") the plan comment as it always was."""
    run = f"[the run]({run_url})"
    if len(sections) == 1 and not sections[0].project:
        only = sections[0]
        if only.markdown is not None:
            return plan_comment(only.markdown, run_url)
        return (f"{PLAN_MARKER}\n#### plansync plan failed\n\nThe plan job failed before "
                f"it saved a plan to show; the log of {run} says why.\n")
    if not sections:
        return (f"{PLAN_MARKER}\n#### plansync plan: this pull request changes no project's "
                f"specs\n\nNothing to plan ({run}).\n")
    failed = [s.project for s in sections if s.markdown is None or s.exit_code not in (0, 2)]
    head = (f"{PLAN_MARKER}\n#### plansync plan: {len(sections)} project(s)"
            + (f", **failed: {', '.join(failed)}**" if failed else "") + "\n\n")
    share = (COMMENT_LIMIT - len(head)) // len(sections)
    note = f"\n… cut: see the whole plan in the job summary of {run}\n"
    parts = []
    for section in sections:
        title = f"### Project `{section.project}`\n\n"
        if section.markdown is None:
            said = (f"**Failed**: its plan job failed before it saved a plan to show; the "
                    f"log of {run} says why.\n")
        elif not section.markdown.strip():
            said = f"plansync plan printed nothing; the log of {run} says why.\n"
        elif section.exit_code in (0, 2):
            said = section.markdown
        else:
            why = _FAILED.get(section.exit_code or 0, "plansync stopped")
            said = (f"**Failed** (exit code {section.exit_code}: {why}):\n\n"
                    f"{section.markdown}")
        parts.append(_cut(title + said.rstrip("\n") + "\n\n", share, note + "\n"))
    return head + "".join(parts).rstrip("\n") + "\n"


def apply_marker(project: str | None) -> str:
    """The apply comment's marker: one comment a project."""
    return f"<!-- plansync-apply:{project} -->" if project else APPLY_MARKER


def for_project(body: str, project: str | None) -> str:
    """An apply comment (``outcome``, ``Earlier.comment``) as the project's own: its
    marker, and its title naming the project."""
    if not project or not body.startswith(APPLY_MARKER + "\n"):
        return body
    rest = body[len(APPLY_MARKER) + 1:]
    if rest.startswith("### plansync: "):
        rest = f"### plansync, project `{project}`: " + rest[len("### plansync: "):]
    return f"{apply_marker(project)}\n{rest}"


def is_plan(document: Any) -> bool:
    """A plansync plan (``plan --out``): what the workflow passes as the results when the
    apply step never wrote its output."""
    return (isinstance(document, dict) and "results" not in document
            and schema_files.first_problem(PLAN_SCHEMA, document) is None)


def outcome(results: Mapping[str, Any] | None, exit_code: int, run_url: str,
            reason: str | None = None, *, fit: str = "comment") -> str:
    """The pull request comment for what happened on merge, cut to fit GitHub's comment
    limit; ``fit="summary"``: the job summary's copy (a larger limit); ``"none"``: all
    of it, for the job's log."""
    lines = [APPLY_MARKER]
    if results is None or is_plan(results) or results.get("error"):
        return _nothing_to_show(results, exit_code, run_url, reason, fit)
    rows: Sequence[Mapping[str, Any]] = results.get("results", [])
    done = [r for r in rows if r["result"] in WRITTEN]
    held = [r for r in rows if r["result"] in NOT_WRITTEN]
    missing: Sequence[Mapping[str, Any]] = results.get("not_reviewed") or []
    title = ("applied" if exit_code == 0 and not missing
             else "applied in part" if done or exit_code == 0 else "not applied")
    lines += [f"### plansync: the reviewed plan was {title}", "",
              f"{len(done)} written, {len(held)} not written, "
              f"{sum(r['result'] == ResultKind.UNCHANGED for r in rows)} unchanged. "
              f"[The run]({run_url})", ""]
    head = "\n".join(lines)
    table: list[str] = []
    if done or held:
        table += ["| plan | result | detail |", "|---|---|---|"]
        table += [f"| {r['id']} | {r['result']} | {cell((r.get('detail') or '')[:300])} |"
                  for r in [*done, *held]]
    tail: list[str] = []
    if held:
        tail += ["", "Plans not written were left as they are: a plan whose live state "
                     "moved since review is never written; re-plan them on a new pull "
                     "request."]
    if missing:
        tail += ["", f"{len(missing)} change(s) the spec implies were not in the reviewed "
                     "plan, so they were **not written** (nobody reviewed them); re-plan "
                     "them on a new pull request:", ""]
        tail += [f"- {cell(str(m.get('id')))}: {cell(str(m.get('action')))}"
                 for m in missing]
    if fit == "none":
        return "\n".join([head, *table, *tail]) + "\n"
    if fit == "summary":
        return _within_limit(head, table, tail, SUMMARY_LIMIT, _bytes,
                             "\n… cut: the job's log has the full report\n")
    return _within_limit(head, table, tail, COMMENT_LIMIT, len,
                         f"\n… cut: see the full report in [the run]({run_url})\n")


def _nothing_to_show(document: Mapping[str, Any] | None, exit_code: int, run_url: str,
                     reason: str | None, fit: str) -> str:
    """No results to list: fetch-plan refused, apply stopped with an error, the apply
    step did not report, or apply wrote nothing. Each says only what is known."""
    link = f"[The run]({run_url})"
    error = document.get("error") if document is not None else None
    if error:
        hint = document.get("hint") if document is not None else None
        said = reason or f"{error}" + (f" ({hint})" if hint else "")
        if document is not None and document.get("from") == FETCH_PLAN:
            title, tail = ("this merge was **not applied**",
                           f"Nothing was written to the gateway: no reviewed plan was "
                           f"fetched. {WHAT_TO_DO} {link}")
        else:
            title, tail = ("apply stopped with an error",
                           f"The log of [the run]({run_url}) says whether anything was "
                           f"written before it stopped. {WHAT_TO_DO}")
    elif document is not None and is_plan(document):
        title = "the apply step did not report"
        said = reason or ("The apply step did not report (it did not start, failed, or "
                          f"the job was cancelled or timed out): {NOT_KNOWN}.")
        tail = f"{RERUN_JOB} {link}"
    elif reason:
        title, said, tail = "this merge was **not applied**", reason, f"{WHAT_TO_DO} {link}"
    elif exit_code:
        title = "the apply step did not report"
        said = f"apply exited {exit_code} and wrote no report: {NOT_KNOWN}."
        tail = f"{RERUN_JOB} {link}"
    else:
        title = "nothing to report"
        said = f"apply exited 0 and wrote no report: there was nothing to report. {link}"
        tail = ""
    head = f"{APPLY_MARKER}\n### plansync: {title}\n\n"
    end = f"\n\n{tail}\n" if tail else "\n"
    if fit == "none":
        return head + said + end
    limit, size, note = ((SUMMARY_LIMIT, _bytes, " … (cut: the job's log has the whole "
                                                  "text)")
                         if fit == "summary" else
                         (COMMENT_LIMIT, len, f" … (cut: the whole text is in [the run]"
                                              f"({run_url}))"))
    if size(head + said + end) > limit:
        said = _prefix(said, limit - size(head) - size(end) - size(note), size) + note
    return cap(head + said + end, limit, size, note)


def cap(text: str, limit: int, size: Callable[[str], int], note: str) -> str:
    """``text``, or as much of it as fits ``limit`` with ``note`` after it."""
    if size(text) <= limit:
        return text
    return _prefix(text, limit - size(note) - 1, size).rstrip("\n") + note + "\n"


def fit_comment(text: str, run_url: str) -> str:
    """Any comment body, within GitHub's comment limit."""
    return cap(text, COMMENT_LIMIT, len, f"\n… cut: see the full report in [the run]"
                                         f"({run_url})")


def fit_summary(text: str) -> str:
    """Any job summary text, within the step summary's limit."""
    return cap(text, SUMMARY_LIMIT, _bytes, "\n… cut: the job's log has the full report")


def _prefix(text: str, budget: int, size: Callable[[str], int]) -> str:
    """The longest start of ``text`` whose ``size`` is at most ``budget``."""
    budget = max(budget, 0)
    if size is len:
        return text[:budget]
    return text.encode("utf-8")[:budget].decode("utf-8", "ignore")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _within_limit(head: str, table: list[str], tail: list[str], limit: int,
                  size: Callable[[str], int], note: str) -> str:
    """The text, its table (and then its list) cut so that it fits ``limit``; the marker
    and headline always stay."""
    full = "\n".join([head, *table, *tail]) + "\n"
    if size(full) <= limit:
        return full
    budget = limit - size(head) - size(note) - 2
    kept: list[str] = []
    for line in [*table, *tail]:
        if budget - size(line) - 1 < 0:
            break
        kept.append(line)
        budget -= size(line) + 1
    return "\n".join([head, *kept]) + note


def problem(document: Any) -> str | None:
    """What is wrong with the shape of ``document`` as ``ci report`` reads it (apply
    --json's output, fetch-plan's ``{"error", "hint", "results": [], "from"}``, or a
    plansync plan: the reviewed plan, when the apply step did not report), or None."""
    if not isinstance(document, dict):
        return "not a JSON object"
    if is_plan(document):
        return None
    rows = document.get("results")
    if not isinstance(rows, list):
        return "results is not a list"
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"results[{n}] is not an object"
        for key in ("id", "result"):
            if not isinstance(row.get(key), str):
                return f"results[{n}].{key} is not a string"
        if not isinstance(row.get("detail"), (str, type(None))):
            return f"results[{n}].detail is not a string or null"
    missing = document.get("not_reviewed")
    if missing is not None:
        if not isinstance(missing, list):
            return "not_reviewed is not a list"
        for n, change in enumerate(missing):
            if not isinstance(change, dict):
                return f"not_reviewed[{n}] is not an object"
    earlier = document.get("already_applied")
    if earlier is not None:
        if not isinstance(earlier, dict):
            return "already_applied is not an object"
        if not isinstance(earlier.get("at"), str):
            return "already_applied.at is not a string"
        if not isinstance(earlier.get("by"), (str, type(None))):
            return "already_applied.by is not a string or null"
        if not isinstance(earlier.get("complete"), (bool, type(None))):
            return "already_applied.complete is not true, false or null"
    if not isinstance(document.get("error"), (str, type(None))):
        return "error is not a string"
    if not isinstance(document.get("hint"), (str, type(None))):
        return "hint is not a string or null"
    if not isinstance(document.get("from"), (str, type(None))):
        return "from is not a string or null"
    return None


class Earlier(NamedTuple):
    """apply's ``already_applied``: the plan file was applied before, by ``who`` at
    ``at``; ``complete``: every reviewed change was written (None: not recorded)."""
    who: str
    at: str
    complete: bool | None

    def said(self) -> str:
        """For the job's summary and log."""
        if self.complete:
            return (f"The reviewed plan was already applied by {self.who} at {self.at}; "
                    "nothing was written again.\n")
        return f"The reviewed plan was {self._partly()}; {AGAIN}.\n"

    def comment(self, run_url: str) -> str:
        """For a pull request with no comment of ours yet."""
        if self.complete:
            return (f"{APPLY_MARKER}\n### plansync: the reviewed plan was already applied "
                    f"by {self.who} at {self.at}\n\nNothing was written again. "
                    f"[This run]({run_url})\n")
        return (f"{APPLY_MARKER}\n### plansync: the reviewed plan was {self._partly()}\n\n"
                f"{AGAIN[0].upper()}{AGAIN[1:]}. [This run]({run_url})\n")

    def _partly(self) -> str:
        how = " only in part" if self.complete is False else ", not known to be complete"
        return f"applied by {self.who} at {self.at}{how}"


AGAIN = "it is not applied again: re-plan the rest on a new pull request"


def already_applied(results: Mapping[str, Any]) -> Earlier | None:
    """When apply said the plan file was applied before: by whom, when, and whether in
    full (``complete``; older apply output lacks it: not known)."""
    earlier = results.get("already_applied")
    if not isinstance(earlier, Mapping):
        return None
    by = earlier.get("by")
    number = re.search(r"/runs/(\d+)", by) if isinstance(by, str) else None
    who = f"run {number[1]}" if number else f"{by}" if by else "an earlier run"
    complete = earlier.get("complete")
    return Earlier(_short(who), _short(earlier.get("at") or "an unknown time"),
                   complete if isinstance(complete, bool) else None)


def _short(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[:most] + "…"


def existing_comment(github: GitHub, number: int, marker: str,
                     author: str) -> dict[str, Any] | None:
    """The one comment ``author`` posted on the pull request with ``marker``, if any."""
    path = f"/issues/{number}/comments"
    for comment in github.items(path, f"pull request #{number}", None):
        user = comment.get("user")
        body = comment.get("body")
        if (isinstance(body, str) and body.startswith(marker) and isinstance(user, dict)
                and user.get("login") == author and isinstance(comment.get("id"), int)):
            return comment
    return None


def post(github: GitHub, number: int, body: str, existing: Mapping[str, Any] | None) -> None:
    """Update ``existing`` in place, or post a new comment."""
    if existing is not None:
        github.patch(f"/issues/comments/{existing['id']}", f"comment {existing['id']}",
                     {"body": body})
    else:
        github.post(f"/issues/{number}/comments", f"pull request #{number}", {"body": body})
