"""What the pull request is told on merge: applied, skipped and failed plans; or why
nothing was applied and what to do; or, for a re-run of an applied plan, that it was
already applied (the earlier comment stays, it is still true).

``outcome`` is pure: apply's JSON (or fetch-plan's reason) in, the comment out, cut to
GitHub's comment limit. ``existing_comment`` and ``post`` do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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


def already_applied(results: Mapping[str, Any]) -> str | None:
    """``already applied by run N at T`` when apply said the plan was applied before."""
    earlier = results.get("already_applied")
    if not isinstance(earlier, Mapping):
        return None
    by = earlier.get("by")
    number = re.search(r"/runs/(\d+)", by) if isinstance(by, str) else None
    who = f"run {number[1]}" if number else f"{by}" if by else "an earlier run"
    return f"already applied by {who} at {earlier.get('at') or 'an unknown time'}"


def already_applied_comment(line: str, run_url: str) -> str:
    return (f"{APPLY_MARKER}\n### plansync: the reviewed plan was {line}\n\n"
            f"Nothing was written again. [This run]({run_url})\n")


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
