"""The rules that decide which plan was reviewed for a merge, with literal values
(plansync/gitops/review.py); tests/test_fetch_plan.py drives them through GitHub."""

from __future__ import annotations

import pytest

from plansync.gitops.records import Artifact, Pull, Run, Workflow
from plansync.gitops.review import (
    NotPlanned,
    NotReviewed,
    check_unchanged,
    choose_artifact,
    choose_pull,
    choose_run,
    parse_size,
    pull_request_triggers,
    spec_changes,
    unpack_plan,
)
from tests.fake_github import zipped

REPO = "acme/plans"
WORKFLOW = Workflow(161, ".github/workflows/plansync-plan.yml")
PR = Pull(7, True, "main", "head7", "merge7")
TRIGGERS = frozenset({"pull_request"})


def a_run(id: int, **changes: object) -> Run:
    base = Run(id, 161, ".github/workflows/plansync-plan.yml", "pull_request", "head7", REPO,
               (7,), id, 1, f"2026-11-27T09:{id % 60:02d}:00Z", "completed", "success",
               f"https://github.com/{REPO}/actions/runs/{id}")
    return base._replace(**changes)


# --- the pull request ---------------------------------------------------------------------

def test_the_merged_pull_request_into_the_default_branch_is_chosen_among_foreign_ones() -> None:
    open_one = Pull(3, False, "main", "head3", None)
    release = Pull(4, True, "release", "head4", "merge7")
    assert choose_pull([open_one, release, PR], "merge7", "main") == PR


def test_a_commit_no_pull_request_merged_is_refused() -> None:
    with pytest.raises(NotReviewed, match="merge7 was not merged from a pull request"):
        choose_pull([Pull(3, False, "main", "head3", None)], "merge7", "main")


def test_a_merge_into_release_fast_forwarded_to_main_is_refused() -> None:
    with pytest.raises(NotReviewed, match=r"#4 into release, not into main"):
        choose_pull([Pull(4, True, "release", "head4", "merge7")], "merge7", "main")


def test_a_merge_commit_that_is_not_the_push_is_refused_unless_the_push_brought_it() -> None:
    rebased = PR._replace(merge_commit_sha="rebased-top")
    with pytest.raises(NotReviewed, match="did not make commit merge7: its review"):
        choose_pull([rebased], "merge7", "main")
    with pytest.raises(NotReviewed, match="nor among the commits this push brought"):
        choose_pull([rebased], "merge7", "main", pushed=["other"])
    assert choose_pull([rebased], "merge7", "main", pushed=["rebased-top", "merge7"]) == rebased


def test_two_pull_requests_for_one_push_are_refused() -> None:
    one, two = PR._replace(merge_commit_sha="a"), PR._replace(number=8, merge_commit_sha="b")
    with pytest.raises(NotReviewed, match=r"several pull requests \(#7, #8\)"):
        choose_pull([one, two], "merge7", "main", pushed=["a", "b"])


# --- the workflow -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "found"), [
    ("on: pull_request_target\n", {"pull_request_target"}),
    ("on: [push, pull_request]\n", {"pull_request"}),
    ("'on':\n  pull_request_target:\n    paths: [specs/**]\n  push:\n",
     {"pull_request_target"}),
    ("on:\n  pull_request:\n  pull_request_target:\n", {"pull_request", "pull_request_target"}),
])
def test_the_pull_request_triggers_are_read_as_yaml_1_2(text: str, found: set[str]) -> None:
    assert pull_request_triggers("name: plan\n" + text + "jobs: {}\n", "plan.yml") == found


def test_a_workflow_not_started_by_pull_requests_is_refused() -> None:
    with pytest.raises(NotReviewed, match=r"not started by pull requests \(on: \['push'\]\)"):
        pull_request_triggers("on: push\n", "plan.yml")
    with pytest.raises(NotReviewed, match="is not YAML"):
        pull_request_triggers("on: [push\n", "plan.yml")


def test_a_pull_request_that_changed_the_plan_workflow_is_refused() -> None:
    check_unchanged(PR, "w.yml", ["specs/a.yaml"])
    with pytest.raises(NotReviewed, match=r"^pull request #7 changed w.yml; its run is not "
                                          "trusted\n"):
        check_unchanged(PR, "w.yml", ["specs/a.yaml", "w.yml"])


# --- the run ------------------------------------------------------------------------------

def choose(*runs: Run, triggers: frozenset[str] = TRIGGERS) -> Run:
    return choose_run(list(runs), PR, WORKFLOW, triggers, REPO)


def test_the_newest_successful_run_of_the_plan_workflow_on_the_head_is_chosen() -> None:
    older, newer = a_run(101), a_run(102)
    other_workflow = a_run(200, workflow_id=162, path=".github/workflows/evil.yml")
    copied_path = a_run(201, workflow_id=999)  # a workflow elsewhere under the same name
    other_head = a_run(202, head_sha="elsewhere")
    assert choose(older, newer, other_workflow, copied_path, other_head) == newer
    assert choose(a_run(103, path=WORKFLOW.path + "@refs/pull/7/merge")).id == 103


def test_attempts_count_a_rerun_attempt_is_newer() -> None:
    first = a_run(101, run_attempt=1, conclusion="failure")
    again = a_run(101, run_attempt=2)
    assert choose(first, again) == again


def test_a_newer_failed_run_beats_an_older_green_one() -> None:
    with pytest.raises(NotReviewed, match=r"newest plansync-plan.yml run on head head7 "
                                          r"\(run 102, attempt 1\) concluded failure"):
        choose(a_run(101), a_run(102, conclusion="failure"))


def test_a_newer_run_of_another_pull_request_on_the_same_head_is_refused() -> None:
    with pytest.raises(NotReviewed, match=r"run 102.*is for pull request #9, not #7"):
        choose(a_run(101), a_run(102, pulls=(9,)))


def test_a_run_listing_no_pull_request_counts_github_empties_the_list_on_merge() -> None:
    # GitHub empties a run's pull_requests once its pull request is merged or closed (and
    # for a fork's); fetch-plan runs after the merge, so the list is usually empty.
    emptied = a_run(102, pulls=())
    assert choose(a_run(101), emptied) == emptied
    with pytest.raises(NotReviewed, match=r"run 102.*concluded failure"):
        choose(a_run(101), a_run(102, pulls=(), conclusion="failure"))
    with pytest.raises(NotReviewed, match=r"run 102.*ran on mallory/plans"):
        choose(a_run(101), a_run(102, pulls=(), head_repository="mallory/plans"))


def test_the_base_is_checked_on_this_pull_requests_entry_only_when_listed() -> None:
    listed = a_run(101, pulls=(9, 7), pull_bases=((9, "release"), (7, "main")))
    assert choose(listed) == listed
    with pytest.raises(NotReviewed, match=r"planned pull request #7 into release"):
        choose(a_run(101, pulls=(9, 7), pull_bases=((9, "main"), (7, "release"))))
    with pytest.raises(NotReviewed, match=r"is for pull request #9, not #7"):
        choose(a_run(101, pulls=(9,), pull_bases=((9, "main"),)))


def test_a_run_from_a_fork_is_refused() -> None:
    with pytest.raises(NotReviewed, match="ran on mallory/plans, not acme/plans: runs from "
                                          "forks are not trusted"):
        choose(a_run(101), a_run(102, head_repository="mallory/plans", pulls=()))


def test_a_run_started_by_another_event_than_mains_trigger_is_refused() -> None:
    with pytest.raises(NotReviewed, match=r"started by pull_request, not by the plan "
                                          r"workflow's trigger on the default branch "
                                          r"\(pull_request_target\)"):
        choose(a_run(101), triggers=frozenset({"pull_request_target"}))
    target = a_run(102, event="pull_request_target")
    assert choose(target, triggers=frozenset({"pull_request_target"})) == target


def test_no_run_and_an_unfinished_run_are_refused() -> None:
    with pytest.raises(NotReviewed, match="#7 has no plansync-plan.yml run on its head"):
        choose(a_run(101, head_sha="other"))
    with pytest.raises(NotReviewed, match=r"has not finished \(in_progress\)"):
        choose(a_run(101), a_run(102, status="in_progress", conclusion=None))


# --- the artifact -------------------------------------------------------------------------

def an_artifact(**changes: object) -> Artifact:
    return Artifact(1010, "plansync-plan-head7", 900, False, "https://x/zip")._replace(**changes)


def test_exactly_one_artifact_with_the_name_within_the_limit() -> None:
    run = a_run(101)
    wanted = an_artifact()
    assert choose_artifact([an_artifact(name="logs"), wanted], run, "head7", 1000) == wanted
    with pytest.raises(NotReviewed, match="saved no artifacts named plansync-plan-head7"):
        choose_artifact([an_artifact(name="plansync-plan-other")], run, "head7", 1000)
    with pytest.raises(NotReviewed, match="saved 2 artifacts named .*, not exactly one"):
        choose_artifact([wanted, wanted], run, "head7", 1000)
    with pytest.raises(NotReviewed, match="is 1001 bytes, more than --max-artifact-size "
                                          r"\(1000 bytes\); it was not downloaded"):
        choose_artifact([an_artifact(size=1001)], run, "head7", 1000)
    with pytest.raises(NotReviewed, match="^the plan artifact of run 101 expired: re-run "
                                          "the plan workflow on the pull request\n"):
        choose_artifact([an_artifact(expired=True)], run, "head7", 1000)


def test_a_projects_artifact_is_named_for_the_project_and_the_head() -> None:
    run = a_run(101)
    sg = an_artifact(name="plansync-plan-sg-head7")
    listed = [an_artifact(name="plansync-plan-th-head7"), an_artifact(),  # th's, no project's
              an_artifact(name="plansync-plan-sg-head6"), sg]  # sg's of another head
    assert choose_artifact(listed, run, "head7", 1000, "sg") == sg
    assert choose_artifact(listed, run, "head7", 1000).name == "plansync-plan-head7"
    with pytest.raises(NotPlanned, match="run 101 did not plan project my"):
        choose_artifact(listed, run, "head7", 1000, "my")  # no job of its own at all
    failed = [*listed, an_artifact(name="plansync-comment-my")]  # its job ran, its plan failed
    with pytest.raises(NotReviewed, match="saved no artifacts named plansync-plan-my-head7"):
        choose_artifact(failed, run, "head7", 1000, "my")


def test_the_zip_holds_exactly_one_plan_json_within_the_limit() -> None:
    run = a_run(101)
    assert unpack_plan(zipped({"plan.json": b"{}"}), run, 100) == b"{}"
    with pytest.raises(NotReviewed, match="holds plan.json, evil.sh, not exactly one"):
        unpack_plan(zipped({"plan.json": b"{}", "evil.sh": b""}), run, 100)
    with pytest.raises(NotReviewed, match="holds other.json, not exactly one plan.json"):
        unpack_plan(zipped({"other.json": b"{}"}), run, 100)
    with pytest.raises(NotReviewed, match="is not a readable zip"):
        unpack_plan(b"<html>not a zip</html>", run, 100)
    bomb = zipped({"plan.json": b"0" * 5_000_000})  # 5 MB of zeros: a few KB zipped
    assert len(bomb) < 10_000
    with pytest.raises(NotReviewed, match="unpacks to 5000000 bytes, more than"):
        unpack_plan(bomb, run, 1_000_000)


def test_a_zip_whose_header_lies_about_the_size_is_read_no_further_than_the_limit() -> None:
    big = zipped({"plan.json": b"0" * 5_000_000})
    # Rewrite the declared uncompressed size (local header and central directory) to 10.
    lying = bytearray(big)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = bytes(lying).index(signature)
        lying[at + offset:at + offset + 4] = (10).to_bytes(4, "little")
    with pytest.raises(NotReviewed):
        unpack_plan(bytes(lying), a_run(101), 1000)


# --- the spec, sizes ------------------------------------------------------------------

def test_spec_changes_are_files_under_a_spec_folder_or_plansync_yaml() -> None:
    files = ["README.md", "specs/a.yaml", "specsheet.txt", "plansync.yaml", "more/b.yaml",
             "docs/plansync.yaml"]
    assert spec_changes(files, ["specs"]) == ["plansync.yaml", "specs/a.yaml"]
    assert spec_changes(files, ["specs/", "more"]) == ["more/b.yaml", "plansync.yaml",
                                                       "specs/a.yaml"]


@pytest.mark.parametrize(("text", "size"), [("10MB", 10_000_000), ("512KB", 512_000),
                                            ("2MiB", 2 * 1024 * 1024), ("1234", 1234),
                                            ("7 mb", 7_000_000)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_size_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="'ten' is not a size"):
        parse_size("ten")
