"""What the pull request is told on merge: applied, skipped and failed plans; or why
nothing was applied and what to do; or, for a re-run of a plan applied before, that it
was already applied — or, when that earlier apply was not complete (it failed or was
stopped part way, or apply did not record it), that it was applied only in part and is
not applied again. Either way the earlier comment stays: it is still true.

``problem`` checks the shape of the document read (apply --json's output, or
fetch-plan's reason) before anything is posted. ``outcome`` is pure: that document in,
the comment out, cut to GitHub's comment limit. ``existing_comment`` and ``post`` do the
I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from plansync.gitops.github import GitHub
from plansync.render.values import cell

PLAN_MARKER = "<!-- plansync-plan -->"
APPLY_MARKER = "<!-- plansync-apply -->"
COMMENT_LIMIT = 65_536  # characters, GitHub's limit for an issue comment body
SUMMARY_LIMIT = 1_000_000  # bytes; GitHub takes up to 1 MiB of a step's job summary


def outcome(results: Mapping[str, Any] | None, exit_code: int, run_url: str,
            reason: str | None = None, *, fit: str = "comment") -> str:
    """The pull request comment for what happened on merge, cut to fit GitHub's comment
    limit; ``fit="summary"``: the job summary's copy (a larger limit); ``"none"``: all
    of it, for the job's log."""
    lines = [APPLY_MARKER]
    if results is not None and results.get("error"):
        reason = reason or f"{results['error']}" + (f" ({results['hint']})"
                                                    if results.get("hint") else "")
        results = None
    if results is None:
        lines += ["### plansync: this merge was **not applied**", "",
                  reason or f"apply exited {exit_code} before writing anything.", "",
                  "Nothing was written to the gateway. Re-plan on a new pull request, or "
                  "run the manual plansync apply workflow (it plans `main` and waits for "
                  f"approval). [The run]({run_url})"]
        return "\n".join(lines) + "\n"
    rows: Sequence[Mapping[str, Any]] = results.get("results", [])
    done = [r for r in rows if r["result"] in ("updated", "cancelled")]
    held = [r for r in rows if r["result"] in ("skipped", "failed", "pending")]
    missing: Sequence[Mapping[str, Any]] = results.get("not_reviewed") or []
    title = ("applied" if exit_code == 0 and not missing
             else "applied in part" if done or exit_code == 0 else "not applied")
    lines += [f"### plansync: the reviewed plan was {title}", "",
              f"{len(done)} written, {len(held)} not written, "
              f"{sum(r['result'] == 'unchanged' for r in rows)} unchanged. "
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
    --json's output, or fetch-plan's ``{"error", "hint", "results": []}``), or None."""
    if not isinstance(document, dict):
        return "not a JSON object"
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
    return Earlier(who, earlier.get("at") or "an unknown time",
                   complete if isinstance(complete, bool) else None)


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
