"""`plansync ci report` and `plansync ci comment-plan` against the stand-in GitHub: what
the pull request is told for apply's outcomes, a re-run of an applied plan, changes nobody
reviewed, a report longer than GitHub's comment limit, and a --pull the workflow could not
fill; the plan comment updated in place, never anyone else's, on any page of the list."""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from plansync.gitops.report import APPLY_MARKER, COMMENT_LIMIT, PLAN_MARKER, SUMMARY_LIMIT
from tests.fake_github import BOT, REPO, TOKEN, FakeGitHub
from tests.helpers import run

RUN_URL = f"https://github.com/{REPO}/actions/runs/555"


@pytest.fixture
def env(github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN,
            "GITHUB_RUN_ID": "555", "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def report(env: dict[str, str], tmp_path: Path, results: dict[str, Any], *more: str,
           pull: str = "7") -> CompletedProcess[str]:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return run("ci", "report", "--pull", pull, "--results", str(path), *more, env=env)


def applied(*rows: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"dry_run": False, "results": list(rows), "summary": {}, **more}


def test_a_rerun_of_an_applied_plan_leaves_the_true_comment_as_it_is(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    first = report(env, tmp_path, applied({"id": "156142", "result": "updated",
                                           "detail": "amount"}))
    assert first.returncode == 0, first.stderr
    comment = github.comments[7][0]["body"]
    assert "the reviewed plan was applied" in comment
    again = report(env, tmp_path, applied(already_applied={
        "at": "2026-11-27T10:05:00Z", "by": f"https://github.com/{REPO}/actions/runs/444",
        "complete": True}), "--exit-code", "0")
    assert again.returncode == 0, again.stderr
    assert github.comments[7] == [{**github.comments[7][0], "body": comment}]  # unchanged
    line = ("The reviewed plan was already applied by run 444 at 2026-11-27T10:05:00Z; "
            "nothing was written again.\n")
    assert again.stdout == line
    assert (tmp_path / "summary.md").read_text().endswith(line)


def test_an_already_applied_plan_with_no_comment_yet_is_said_once(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.comment(7, APPLY_MARKER + "\nforged", {"login": "mallory", "type": "User"})
    done = report(env, tmp_path, applied(already_applied={"at": "2026-11-27T10:05:00Z",
                                                          "by": None, "complete": True}))
    assert done.returncode == 0, done.stderr
    ours = [c for c in github.comments[7] if c["user"] == BOT]
    assert len(ours) == 1
    assert ours[0]["body"].startswith(APPLY_MARKER + "\n### plansync: the reviewed plan was "
                                      "already applied by an earlier run at "
                                      "2026-11-27T10:05:00Z")
    assert github.comments[7][0]["body"] == APPLY_MARKER + "\nforged"  # not ours: untouched


def test_changes_nobody_reviewed_are_listed(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = report(env, tmp_path, applied(
        {"id": "156142", "result": "updated", "detail": "amount"},
        not_reviewed=[{"id": "156143", "action": "update"},
                      {"id": "156145", "action": "cancel"}]))
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert "### plansync: the reviewed plan was applied in part" in body
    assert ("2 change(s) the spec implies were not in the reviewed plan, so they were "
            "**not written**") in body
    assert "- 156143: update\n- 156145: cancel\n" in body


def test_plans_a_stopped_apply_never_started_are_counted_and_listed_as_not_written(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    """A run stopped by a signal (or fenced) leaves plans not started: the comment must
    not make them vanish from its counts and its table."""
    done = report(env, tmp_path, applied(
        {"id": "156142", "result": "updated", "detail": "amount"},
        {"id": "156143", "result": "not-started", "detail": "the run stopped first"}),
        "--exit-code", "130")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert "1 written, 1 not written, 0 unchanged." in body
    assert "| 156143 | not-started | the run stopped first |" in body


def test_a_report_longer_than_githubs_limit_is_cut_with_a_link_to_the_run(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    rows = [{"id": str(900000 + n), "result": "failed",
             "detail": "the gateway answered 99: unable to complete " * 3}
            for n in range(5000)]
    done = report(env, tmp_path, applied(*rows), "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(APPLY_MARKER + "\n### plansync: the reviewed plan was not applied")
    assert "0 written, 5000 not written, 0 unchanged." in body
    assert "| 900000 | failed |" in body and "| 904999 |" not in body
    assert body.endswith(f"\n… cut: see the full report in [the run]({RUN_URL})\n")
    assert "| 904999 | failed |" in (tmp_path / "summary.md").read_text()  # all of it there


def test_a_fetch_plan_refusal_is_told(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = report(env, tmp_path, {"error": "pull request #7 changed .github/workflows/"
                                           "plansync-plan.yml; its run is not trusted",
                                  "hint": "change it on its own", "results": [],
                                  "from": "ci fetch-plan"},
                  "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert "### plansync: this merge was **not applied**" in body
    assert "its run is not trusted (change it on its own)" in body
    assert "Nothing was written to the gateway" in body  # true: nothing was fetched


NOT_KNOWN = "whether any reviewed change was written is not known"


def test_an_apply_error_is_told_without_claiming_nothing_was_written(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    # apply --json's own error: it may have stopped after writing (a journal it could
    # not write, a state it could not save).
    done = report(env, tmp_path, {"error": "the journal could not be written",
                                  "hint": None, "results": []}, "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert body.startswith(f"{APPLY_MARKER}\n### plansync: apply stopped with an error\n")
    assert "the journal could not be written" in body
    assert "Nothing was written" not in body
    assert "says whether anything was written before it stopped" in body


def test_the_reviewed_plan_given_as_results_says_the_apply_step_did_not_report(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    """The workflow passes fetch-plan's --out when apply left no output: the install
    failed, or the job was cancelled or timed out mid-apply."""
    plan = json.loads((Path(__file__).parent / "golden" / "plan.json").read_text())
    done = report(env, tmp_path, plan, "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert body == (f"{APPLY_MARKER}\n### plansync: the apply step did not report\n\n"
                    "The apply step did not report (it did not start, failed, or the job "
                    f"was cancelled or timed out): {NOT_KNOWN}.\n\nRe-run this job: it "
                    "applies the plan if it was never applied (and the default branch's "
                    "spec is still the one reviewed), and otherwise says what was. "
                    f"[The run]({RUN_URL})\n")
    assert (tmp_path / "summary.md").read_text() == body


def test_no_results_and_a_failed_apply_do_not_claim_nothing_was_written(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = run("ci", "report", "--pull", "7", "--exit-code", "143", "--results",
               str(tmp_path / "missing.json"), env=env)
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert "### plansync: the apply step did not report" in body
    assert f"apply exited 143 and wrote no report: {NOT_KNOWN}" in body
    assert "Nothing was written" not in body


def test_no_results_and_exit_0_says_there_was_nothing_to_report(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = run("ci", "report", "--pull", "7", "--exit-code", "0", env=env)
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert body == (f"{APPLY_MARKER}\n### plansync: nothing to report\n\napply exited 0 "
                    f"and wrote no report: there was nothing to report. [The run]({RUN_URL})"
                    "\n")
    assert "before writing anything" not in body


def guardrail_error(plans: int) -> str:
    return ("the plan exceeds a guardrail; nothing was sent: "
            + "; ".join(f"plan {100000 + n}: amount rises 120% (limit 50%)"
                        for n in range(plans)))


def test_a_long_apply_error_is_cut_to_githubs_limit_with_a_link_to_the_run(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    error = guardrail_error(5_860)
    assert 255_000 < len(error) < 260_000
    done = report(env, tmp_path, {"error": error, "hint": "review the plan",
                                  "results": []}, "--exit-code", "3")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(f"{APPLY_MARKER}\n### plansync: apply stopped with an error\n")
    assert error[:60_000] in body
    assert f"… (cut: the whole text is in [the run]({RUN_URL}))" in body
    assert body.endswith(f"[the run]({RUN_URL}) says whether anything was written before "
                         "it stopped. Re-plan on a new pull request, or run the manual "
                         "plansync apply workflow (it plans `main` and waits for "
                         "approval).\n")
    assert error in (tmp_path / "summary.md").read_text()  # within the summary's limit
    assert error in done.stdout  # and the log has all of it


def test_a_long_reason_is_cut_to_githubs_limit_with_a_link_to_the_run(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    reason = "the state backend refused the lock: " + "x" * 70_000
    done = run("ci", "report", "--pull", "7", "--exit-code", "1", "--reason", reason,
               env=env)
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(f"{APPLY_MARKER}\n### plansync: this merge was **not applied**")
    assert f"… (cut: the whole text is in [the run]({RUN_URL}))" in body
    assert "Nothing was written" not in body  # --reason says why, not what was written


def test_a_summary_longer_than_its_limit_is_cut(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    error = "é" * 600_000  # 1.2 MB in UTF-8, in 600,000 characters
    done = report(env, tmp_path, {"error": error, "results": []}, "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "summary.md").read_bytes()
    assert len(summary) <= SUMMARY_LIMIT
    assert "(cut: the job's log has the whole text)" in summary.decode("utf-8")
    assert len(github.comments[7][0]["body"]) <= COMMENT_LIMIT


def test_an_already_applied_record_with_long_words_is_cut(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = report(env, tmp_path, applied(already_applied={
        "at": "t" * 70_000, "by": "someone " * 10_000, "complete": True}))
    assert done.returncode == 0, done.stderr
    [posted] = github.comments[7]
    assert len(posted["body"]) <= COMMENT_LIMIT
    assert posted["body"].startswith(f"{APPLY_MARKER}\n### plansync: the reviewed plan was "
                                     "already applied by ")


@pytest.mark.parametrize("value", ["", "--exit-code", "x7", "0", "\u0663", "7\u0663",
                                   "07", "+7"])
def test_a_pull_the_workflow_could_not_fill_is_a_clear_usage_error(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, value: str) -> None:
    done = report(env, tmp_path, applied(), pull=value)
    assert done.returncode == 64
    assert f"{value!r} is not a pull request number" in done.stderr
    assert "Traceback" not in done.stderr and github.comments == {}


PARTLY = ("The reviewed plan was applied by run 444 at 2026-11-27T10:05:00Z only in part; "
          "it is not applied again: re-plan the rest on a new pull request.\n")
UNKNOWN = ("The reviewed plan was applied by run 444 at 2026-11-27T10:05:00Z, not known to "
           "be complete; it is not applied again: re-plan the rest on a new pull request.\n")


@pytest.mark.parametrize(("complete", "line"), [(False, PARTLY), (None, UNKNOWN)])
def test_a_rerun_of_a_plan_applied_only_in_part_is_not_called_applied(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, complete: bool | None,
        line: str) -> None:
    first = report(env, tmp_path, applied(
        {"id": "156142", "result": "updated", "detail": "amount"},
        {"id": "156143", "result": "failed", "detail": "the gateway answered 99"}),
        "--exit-code", "1")
    assert first.returncode == 0, first.stderr
    comment = github.comments[7][0]["body"]
    assert "applied in part" in comment
    again = report(env, tmp_path, applied(already_applied={
        "at": "2026-11-27T10:05:00Z", "by": f"https://github.com/{REPO}/actions/runs/444",
        "complete": complete}), "--exit-code", "1")
    assert again.returncode == 0, again.stderr  # apply's exit 1 already fails the job
    assert [c["body"] for c in github.comments[7]] == [comment]  # still true: left as is
    assert again.stdout == line
    assert (tmp_path / "summary.md").read_text().endswith(line)
    assert "already applied" not in again.stdout


@pytest.mark.parametrize(("complete", "title"), [
    (False, "applied by run 444 at 2026-11-27T10:05:00Z only in part"),
    (None, "applied by run 444 at 2026-11-27T10:05:00Z, not known to be complete"),
])
def test_a_plan_applied_only_in_part_with_no_comment_yet_is_told_so(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, complete: bool | None,
        title: str) -> None:
    earlier = {"at": "2026-11-27T10:05:00Z",
               "by": f"https://github.com/{REPO}/actions/runs/444"}
    if complete is not None:
        earlier["complete"] = complete  # type: ignore[assignment]
    done = report(env, tmp_path, applied(already_applied=earlier), "--exit-code", "1")
    assert done.returncode == 0, done.stderr
    [posted] = github.comments[7]
    assert posted["body"] == (f"{APPLY_MARKER}\n### plansync: the reviewed plan was {title}"
                              "\n\nIt is not applied again: re-plan the rest on a new pull "
                              f"request. [This run]({RUN_URL})\n")


@pytest.mark.parametrize(("document", "problem"), [
    ({"results": [{"id": 1}]}, "results[0].id is not a string"),
    ({"results": [{"id": "1"}]}, "results[0].result is not a string"),
    ({"results": "x"}, "results is not a list"),
    ({"results": ["x"]}, "results[0] is not an object"),
    ({"dry_run": False}, "results is not a list"),
    ({"results": [{"id": "1", "result": "updated", "detail": 3}]},
     "results[0].detail is not a string"),
    ({"results": [], "not_reviewed": "x"}, "not_reviewed is not a list"),
    ({"results": [], "not_reviewed": [3]}, "not_reviewed[0] is not an object"),
    ({"results": [], "already_applied": "yes"}, "already_applied is not an object"),
    ({"results": [], "already_applied": {"at": 1, "by": None}},
     "already_applied.at is not a string"),
    ({"results": [], "already_applied": {"at": "t", "by": 4}},
     "already_applied.by is not a string or null"),
    ({"results": [], "already_applied": {"at": "t", "by": None, "complete": "yes"}},
     "already_applied.complete is not true, false or null"),
    ({"results": [], "error": 5}, "error is not a string"),
    ({"results": [], "error": "x", "hint": 5}, "hint is not a string or null"),
    ([], "not a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply to read"),
    ("{", "not JSON"),
])
def test_a_malformed_results_file_is_exit_1_naming_it_and_nothing_is_posted(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, document: Any,
        problem: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    done = run("ci", "report", "--pull", "7", "--results", str(path), env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {path} is not apply --json's output: {problem}")
    assert "Traceback" not in done.stderr
    assert github.seen == [] and github.comments == {}


# --- ci comment-plan: the plan workflow's comment ---------------------------------------

PLAN = ("#### plansync plan: 1 to update, 3 unchanged\n\n| | Plan | Name | Action | Fields |\n"
        "|---|---|---|---|---|\n| ~ | 156142 | Gold | update | amount |\n")
MALLORY = {"login": "mallory", "type": "User"}


def comment_plan(env: dict[str, str], tmp_path: Path, markdown: str, *more: str,
                 pull: str = "7") -> CompletedProcess[str]:
    path = tmp_path / "plan.md"
    path.write_text(markdown, encoding="utf-8")
    return run("ci", "comment-plan", "--pull", pull, "--file", str(path), *more, env=env)


def test_the_plan_comment_is_posted_then_updated_in_place(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    first = comment_plan(env, tmp_path, PLAN)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Posted the plan comment on pull request #7.\n"
    [posted] = github.comments[7]
    assert posted["body"] == f"{PLAN_MARKER}\n{PLAN}" and posted["user"] == BOT
    again = comment_plan(env, tmp_path, PLAN.replace("amount", "amount, recurring_count"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == "Updated the plan comment on pull request #7.\n"
    [updated] = github.comments[7]  # the same comment, not a second one
    assert updated["id"] == posted["id"]
    assert updated["body"].endswith("| amount, recurring_count |\n")
    assert TOKEN not in first.stdout + first.stderr + again.stdout + again.stderr


def test_a_comment_by_anyone_else_with_the_marker_is_never_touched(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    forged = PLAN_MARKER + "\n#### plansync plan: no changes\n"
    github.comment(7, forged, MALLORY)
    github.comment(7, APPLY_MARKER + "\nthe apply's comment", BOT)  # ours, another marker
    done = comment_plan(env, tmp_path, PLAN)
    assert done.returncode == 0, done.stderr
    assert [(c["user"]["login"], c["body"]) for c in github.comments[7]] == [
        ("mallory", forged), (BOT["login"], APPLY_MARKER + "\nthe apply's comment"),
        (BOT["login"], f"{PLAN_MARKER}\n{PLAN}")]
    assert not any(method == "PATCH" for method, _ in github.seen)


def test_the_bots_comment_on_a_later_page_is_found_and_updated(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.page_size = 2
    for n in range(5):
        github.comment(7, f"looks good {n}", MALLORY)
    github.comment(7, f"{PLAN_MARKER}\nthe plan of an earlier push", BOT)  # page 3
    github.comment(7, f"{PLAN_MARKER}\nforged, later", MALLORY)
    done = comment_plan(env, tmp_path, PLAN)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Updated the plan comment on pull request #7.\n"
    assert [c["body"] for c in github.comments[7]][5:] == [
        f"{PLAN_MARKER}\n{PLAN}", f"{PLAN_MARKER}\nforged, later"]
    assert len(github.comments[7]) == 7
    assert any("page=3" in path for method, path in github.seen if method == "GET")


def test_a_plan_longer_than_githubs_limit_is_cut_with_a_link_to_the_run(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    problems = "".join(f"| `specs/plans.yaml:{n}:5` | {100000 + n} | amount | must be "
                       "an exact decimal in major units |\n" for n in range(2000))
    markdown = ("### plansync could not make a plan\n\n```text\nerror: 2000 problem(s)\n"
                + "  detail\n" * 20_000 + "```\n\n| where | plan | field | problem |\n"
                "|---|---|---|---|\n" + problems)
    assert len(markdown) > 2 * COMMENT_LIMIT
    done = comment_plan(env, tmp_path, markdown)
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(f"{PLAN_MARKER}\n### plansync could not make a plan\n")
    # Cut at a line, and the code block it cut into is closed: the pointer is not code.
    assert body.endswith("  detail\n```\n\n… cut: see the whole plan in the job summary of "
                         f"[the run]({RUN_URL})\n"), body[-200:]


def test_the_plan_comments_link_to_the_run_shows_no_credential(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    server = "https://octo:ghp_s3cr3t@ghe.example"  # a proxy's or an admin's mistake
    done = comment_plan({**env, "GITHUB_SERVER_URL": server}, tmp_path, "")
    assert done.returncode == 0, done.stderr
    body = github.comments[7][0]["body"]
    assert f"[the run](https://***@ghe.example/{REPO}/actions/runs/555)" in body, body
    assert "ghp_s3cr3t" not in body + done.stdout + done.stderr


def test_a_plan_that_printed_nothing_says_so(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = comment_plan(env, tmp_path, "")
    assert done.returncode == 0, done.stderr
    assert github.comments[7][0]["body"] == (
        f"{PLAN_MARKER}\n### plansync plan printed nothing\n\nThe log of "
        f"[the run]({RUN_URL}) says why.\n")


@pytest.mark.parametrize("value", ["", "x7", "0", "\u0663", "07", "+7", "-1"])
def test_a_bad_pull_for_the_plan_comment_is_a_clear_usage_error(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, value: str) -> None:
    done = comment_plan(env, tmp_path, PLAN, pull=value)
    assert done.returncode == 64, done.stderr
    assert f"{value!r} is not a pull request number" in done.stderr
    assert "github.event.pull_request.number" in done.stderr  # where it comes from
    assert "Traceback" not in done.stderr and github.seen == []


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "name too long",
                                  "not utf-8"])
def test_a_plan_file_that_cannot_be_read_is_one_clear_error_and_nothing_is_posted(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, kind: str) -> None:
    import os

    path = tmp_path / "plan.md"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "name too long":  # unreadable even as root (tests may run as root)
        path = tmp_path / ("p" * 300)
    elif kind == "not utf-8":
        path.write_bytes(b"#### plansync plan \xff\n")
    done = run("ci", "comment-plan", "--pull", "7", "--file", str(path), env=env)
    assert done.returncode == 1, done.stderr
    [line, hint] = done.stderr.splitlines()
    why = {"missing": "No such file or directory", "name too long": "File name too long",
           "not utf-8": "not UTF-8 text"}.get(kind, "not a regular file (a named pipe, "
                                                    "a device or a folder)")
    assert line == f"error: cannot read the plan to post, {path}: {why}"
    assert hint == ("  hint: pass the plan step's output-file (plansync plan --markdown's "
                    "output)")
    assert github.seen == [] and github.comments == {}


def test_the_plan_comment_without_a_token_says_what_to_set(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = comment_plan({**env, "GITHUB_TOKEN": ""}, tmp_path, PLAN)
    assert done.returncode == 1
    assert done.stderr.startswith("error: GITHUB_TOKEN not set\n")
    assert "GITHUB_TOKEN: ${{ github.token }}" in done.stderr
    assert "Traceback" not in done.stderr and github.comments == {}


def test_a_refused_comment_is_one_clear_error(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.fault("POST /repos/.*/issues/7/comments", 403, headers={})
    done = comment_plan(env, tmp_path, PLAN)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: GitHub API POST /repos/{REPO}/issues/7/comments was refused (HTTP 403: "
        "fault 403)",
        "  hint: check the job's permissions: actions: read, pull-requests: write, "
        "contents: read"]


# --- a matrix of projects: one plan comment, an apply comment a project -----------------

def plan_job_artifacts(folder: Path, project: str, markdown: str, code: int) -> None:
    """What a plan job of the matrix saves for the comment job (plansync-plan.yml), as
    download-artifact unpacks it: a folder per artifact."""
    saved = folder / ("plansync-comment" + (f"-{project}" if project else ""))
    saved.mkdir(parents=True)
    (saved / "plan.md").write_text(markdown, encoding="utf-8")
    (saved / "exit-code").write_text(f"{code}\n")


def comment_matrix(env: dict[str, str], tmp_path: Path, *projects: str
                   ) -> CompletedProcess[str]:
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps({"include": [{"project": p, "specs": [f"specs/{p}"]}
                                              for p in projects]}))
    return run("ci", "comment-plan", "--pull", "7", "--matrix", str(matrix),
               "--plans", str(tmp_path / "plans"), env=env)


def test_one_plan_comment_has_a_section_per_project_and_says_which_failed(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plan_job_artifacts(plans, "sg", PLAN, 2)
    plan_job_artifacts(plans, "th", "#### plansync plan: refused by a guardrail\n", 3)
    plan_job_artifacts(plans, "vn", "", 0)  # printed nothing
    # my: its job failed before it saved anything (an environment's approval, an install).
    done = comment_matrix(env, tmp_path, "sg", "th", "my", "vn")
    assert done.returncode == 0, done.stderr
    [posted] = github.comments[7]
    body = posted["body"]
    assert body.startswith(f"{PLAN_MARKER}\n#### plansync plan: 4 project(s), **failed: th, "
                           "my**\n")
    sections = body.split("### Project ")[1:]
    assert [s.split("`")[1] for s in sections] == ["sg", "th", "my", "vn"]
    assert PLAN in sections[0] and "Failed" not in sections[0]
    assert sections[1].startswith("`th`\n\n**Failed** (exit code 3: the plan breaks a "
                                  "guardrail):\n\n#### plansync plan: refused")
    assert ("**Failed**: its plan job failed before it saved a plan to show; the log of "
            f"[the run]({RUN_URL}) says why.") in sections[2]
    assert "plansync plan printed nothing" in sections[3]
    again = comment_matrix(env, tmp_path, "sg")  # a later push touches sg only
    assert again.returncode == 0, again.stderr
    [updated] = github.comments[7]
    assert updated["id"] == posted["id"] and "`th`" not in updated["body"]


def test_the_matrix_comment_of_a_repository_without_projects_is_the_plan_comment(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    plan_job_artifacts(tmp_path / "plans", "", PLAN, 2)
    assert comment_matrix(env, tmp_path, "").returncode == 0
    assert [c["body"] for c in github.comments[7]] == [f"{PLAN_MARKER}\n{PLAN}"]  # as ever
    no_change = comment_matrix(env, tmp_path)  # a push that touches no project
    assert no_change.returncode == 0, no_change.stderr
    assert "this pull request changes no project's specs" in github.comments[7][0]["body"]


def test_the_matrix_comment_fits_githubs_limit_with_every_projects_section(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    long = PLAN + "".join(f"| ~ | {n} | Gold | update | amount |\n" for n in range(9000))
    for name in ("sg", "th", "my"):
        plan_job_artifacts(tmp_path / "plans", name, long, 2)
    assert comment_matrix(env, tmp_path, "sg", "th", "my").returncode == 0
    body = github.comments[7][0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.count("… cut: see the whole plan in the job summary") == 3
    assert all(f"### Project `{name}`" in body for name in ("sg", "th", "my"))


def test_a_matrix_naming_a_folder_outside_is_refused_and_nothing_is_posted(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    done = comment_matrix(env, tmp_path, "../../etc")
    assert done.returncode == 1
    assert "names the project '../../etc', which is not a project name" in done.stderr
    assert github.comments == {}
    both = run("ci", "comment-plan", "--pull", "7", env=env)
    assert both.returncode == 64 and "give --file (one plan), or --matrix and --plans" \
        in both.stderr


def test_each_projects_apply_is_told_in_its_own_comment(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    row = {"id": "156142", "result": "updated", "detail": "amount"}
    assert report(env, tmp_path, applied(row), "--project", "sg").returncode == 0
    assert report(env, tmp_path, applied(), "--project", "th", "--exit-code",
                  "1").returncode == 0
    assert report(env, tmp_path, applied(row), "--project", "sg").returncode == 0  # re-run
    bodies = [c["body"] for c in github.comments[7]]
    assert len(bodies) == 2
    assert bodies[0].startswith("<!-- plansync-apply:sg -->\n### plansync, project `sg`: "
                                "the reviewed plan was applied")
    assert bodies[1].startswith("<!-- plansync-apply:th -->\n### plansync, project `th`: ")
    assert report(env, tmp_path, applied(row)).returncode == 0  # no project: as before
    assert github.comments[7][2]["body"].startswith(f"{APPLY_MARKER}\n### plansync: ")
    bad = report(env, tmp_path, applied(row), "--project", "S G")
    assert bad.returncode == 64 and "'S G' is not a project name" in bad.stderr
