"""`plansync ci fetch-plan` as the apply workflow runs it, against the stand-in GitHub on
loopback (tests/fake_github.py): which run's plan is trusted, which is refused and how
the refusal is worded, GitHub misbehaving, and the step outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.fake_github import PLAN_WORKFLOW, REPO, TOKEN, FakeGitHub, workflow_text, zipped
from tests.helpers import run

PLAN = b'{"plan": "reviewed"}'


@pytest.fixture
def env(github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN,
            "GITHUB_OUTPUT": str(tmp_path / "output")}


def fetch(env: dict[str, str], tmp_path: Path, sha: str, *more: str) -> CompletedProcess[str]:
    out = tmp_path / "reviewed.json"
    fetched = run("ci", "fetch-plan", "--sha", sha, "--out", str(out), *more, env=env)
    assert "Traceback" not in fetched.stderr and TOKEN not in fetched.stderr + fetched.stdout
    if fetched.returncode == 1:  # the reason, for ci report, and nothing else
        saved = json.loads(out.read_text())
        assert set(saved) == {"error", "hint", "results", "from"}
        assert saved["results"] == [] and saved["from"] == "ci fetch-plan"
    return fetched


def refused(env: dict[str, str], tmp_path: Path, sha: str, *more: str) -> str:
    fetched = fetch(env, tmp_path, sha, *more)
    assert fetched.returncode == 1, fetched.stderr
    assert fetched.stderr.startswith("error: ") and fetched.stderr.count("error: ") == 1
    return fetched.stderr


def outputs(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "output"
    return dict(line.split("=", 1) for line in path.read_text().splitlines()) \
        if path.exists() else {}


def test_the_reviewed_plan_is_fetched_through_pages_of_foreign_entries(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.page_size = 1  # every list is many pages
    # The commit is also in an open pull request to release, listed first.
    github.pulls["merge1"] = [{"number": 3, "merged_at": None, "merge_commit_sha": None,
                               "head": {"sha": "merge1"}, "base": {"ref": "release"}}]
    github.merge("merge1", 7, "head1")
    github.plan_run(90, "head1", None, workflow=".github/workflows/evil.yml")
    github.plan_run(101, "head1", PLAN)
    github.artifacts[101].insert(0, {"id": 5, "name": "logs", "size_in_bytes": 9,
                                     "expired": False, "archive_download_url": "x"})
    fetched = fetch(env, tmp_path, "merge1")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "reviewed.json").read_bytes() == PLAN
    assert "pull request #7 (head head1, run 101" in fetched.stdout
    assert outputs(tmp_path) == {"pull": "7",
                                 "plan-run": f"https://github.com/{REPO}/actions/runs/101"}
    assert github.token_leaked == []  # the blob host never saw the token
    assert any(path.startswith("/blobs/1010.zip") for _, path in github.seen)


def test_a_merged_pull_requests_run_listing_no_pull_request_is_its_review(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    """GitHub empties a run's pull_requests once its pull request is merged: fetch-plan,
    which runs after the merge, finds the run by its workflow, head and repository."""
    from plansync.gitops.github import GitHub

    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    listed = GitHub(github.url, REPO, TOKEN).items(
        "/actions/workflows/plansync-plan.yml/runs", "runs", "workflow_runs",
        head_sha="head1")
    assert [r["pull_requests"] for r in listed] == [[]]
    fetched = fetch(env, tmp_path, "merge1")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "reviewed.json").read_bytes() == PLAN
    github.plan_run(102, "head1", b'{"plan": "other"}', pull=9)  # open, on the same head
    assert "(run 102, attempt 1) is for pull request #9, not #7" in refused(
        env, tmp_path, "merge1")


def test_a_pr_merged_into_release_then_fast_forwarded_to_main_is_refused(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.branches["release"] = "root"
    github.merge("merge1", 7, "head1", base="release")
    github.branches["main"] = "merge1"  # fast-forwarded
    github.plan_run(101, "head1", PLAN)
    assert "was merged by pull request #7 into release, not into main" in refused(
        env, tmp_path, "merge1")
    assert "pull" not in outputs(tmp_path)


def test_a_rebase_merge_counts_when_the_push_brought_its_merge_commit(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("rebased1", 7, "head1", merge_commit_sha="rebased1")
    github.commit("rebased2", {"README.md": "docs\n"}, "rebased1")  # the push's last commit
    github.pulls["rebased2"] = github.pulls.pop("rebased1")
    github.branches["main"] = "rebased2"
    github.plan_run(101, "head1", PLAN)
    error = refused(env, tmp_path, "rebased2")
    assert "(merge commit rebased1) did not make commit rebased2" in error
    assert "--before" in error
    assert outputs(tmp_path) == {}
    fetched = fetch(env, tmp_path, "rebased2", "--before", "root")
    assert fetched.returncode == 0, fetched.stderr


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda g: g.plan_run(102, "head1", None, conclusion="failure"),
     "the newest plansync-plan.yml run on head head1 (run 102, attempt 1) concluded "
     "failure: an older successful run does not count"),
    (lambda g: g.plan_run(102, "head1", b'{"plan": "other"}', pull=9),
     "(run 102, attempt 1) is for pull request #9, not #7: a newer run of another pull "
     "request on the same commit is not this review"),
    (lambda g: g.plan_run(102, "head1", b'{"plan": "fork"}', head_repository="mallory/plans"),
     "ran on mallory/plans, not acme/plans: runs from forks are not trusted"),
    (lambda g: g.plan_run(101, "head1", PLAN, run_attempt=2, conclusion="cancelled"),
     "(run 101, attempt 2) concluded cancelled"),
])
def test_only_the_newest_run_of_this_pull_request_counts(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path,
        setup: object, expected: str) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    setup(github)  # type: ignore[operator]
    assert expected in refused(env, tmp_path, "merge1")
    assert outputs(tmp_path) == {"pull": "7"}  # the pull request is told all the same


def test_a_pull_request_that_changed_the_plan_workflow_is_refused(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1", files={PLAN_WORKFLOW: workflow_text() + "# mine\n"})
    github.plan_run(101, "head1", PLAN)
    assert ("error: pull request #7 changed .github/workflows/plansync-plan.yml; its run "
            "is not trusted\n") in refused(env, tmp_path, "merge1")


def test_only_a_run_started_by_mains_trigger_counts(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.commit("moved", {PLAN_WORKFLOW: workflow_text("pull_request_target")}, "root")
    github.branches["main"] = "moved"
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN, event="pull_request")
    assert ("was started by pull_request, not by the plan workflow's trigger on the "
            "default branch (pull_request_target)") in refused(env, tmp_path, "merge1")
    github.plan_run(102, "head1", PLAN, event="pull_request_target")
    assert fetch(env, tmp_path, "merge1").returncode == 0


@pytest.mark.parametrize("how", ["flag", "410"])
def test_an_expired_artifact_says_re_run_the_plan_workflow(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, how: str) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN, expired=how == "flag")
    github.gone = {1010} if how == "410" else set()
    assert ("error: the plan artifact of run 101 expired: re-run the plan workflow on the "
            "pull request\n") in refused(env, tmp_path, "merge1")


def test_the_artifact_size_is_checked_before_downloading(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN, size=600_000)
    error = refused(env, tmp_path, "merge1", "--max-artifact-size", "512KB")
    assert "is 600000 bytes, more than --max-artifact-size (512000 bytes)" in error
    assert not any("/zip" in path or "/blobs/" in path for _, path in github.seen)
    assert fetch(env, tmp_path, "merge1", "--max-artifact-size", "1MB").returncode == 0
    usage = run("ci", "fetch-plan", "--sha", "merge1", "--out", str(tmp_path / "x"),
                "--max-artifact-size", "big", env=env)
    assert usage.returncode == 64 and "'big' is not a size" in usage.stderr


def test_an_artifact_with_more_than_plan_json_is_refused(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", None, entries={"plan.json": PLAN, "run.sh": b"curl x"})
    assert "holds plan.json, run.sh, not exactly one plan.json" in refused(
        env, tmp_path, "merge1")


def test_main_moved_on_to_another_spec_refuses_but_other_changes_do_not(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    github.commit("docs", {"README.md": "more docs\n"}, "merge1")
    github.branches["main"] = "docs"
    assert fetch(env, tmp_path, "merge1").returncode == 0
    github.merge("merge2", 8, "head2")  # main moves on: a spec change
    error = refused(env, tmp_path, "merge1")
    assert ("error: main has moved on to merge2 and its spec differs from this merge's: "
            "nothing is applied; main's own apply applies it (changed: specs/plans.yaml)"
            in error)
    github.commit("config", {"plansync.yaml": "lock_timeout: 5m\n"}, "docs")
    github.branches["main"] = "config"
    assert "(changed: plansync.yaml)" in refused(env, tmp_path, "merge1")
    assert "(changed: plansync.yaml)" in refused(
        env, tmp_path, "merge1", "--spec-path", "plans")  # other folders; config counts


def test_github_answering_html_with_200_is_exit_1_naming_the_endpoint(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.fault("/commits/merge1/pulls", 200, headers={"Content-Type": "text/html"},
                 body=b"<!DOCTYPE html><html>Proxy login</html>")
    error = refused(env, tmp_path, "merge1")
    assert error.startswith("error: GitHub API GET /repos/acme/plans/commits/merge1/pulls "
                            "answered HTTP 200 with text/html that is not JSON")


def test_5xx_and_rate_limits_are_retried(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    github.fault("/commits/merge1/pulls", 502)
    github.fault("/actions/workflows/plansync-plan.yml/runs", 403,
                 headers={"X-RateLimit-Remaining": "0", "Retry-After": "0"})
    github.fault("/actions/artifacts/1010/zip", 429)
    fetched = fetch(env, tmp_path, "merge1")
    assert fetched.returncode == 0, fetched.stderr
    assert all(f.times == 0 for f in github.faults)


def test_a_permission_error_hints_at_the_jobs_permissions(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.fault("/actions/workflows/plansync-plan.yml$", 403, headers={},
                 body=b'{"message": "Resource not accessible by integration"}')
    error = refused(env, tmp_path, "merge1")
    assert ("hint: check the job's permissions: actions: read, pull-requests: write, "
            "contents: read") in error


def test_github_answering_json_nested_too_deeply_is_exit_1_naming_the_endpoint(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.fault("/commits/merge1/pulls", 200, headers={},
                 body=b"[" * 100_000 + b"]" * 100_000)
    error = refused(env, tmp_path, "merge1")
    assert error.startswith("error: GitHub API GET /repos/acme/plans/commits/merge1/pulls "
                            "answered JSON nested too deeply to read, not what the "
                            "endpoint documents\n")


def test_a_next_page_on_another_origin_is_refused_and_never_sent_the_token(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.page_size = 1
    github.pulls["merge1"] = [{"number": 3, "merged_at": None, "merge_commit_sha": None,
                               "head": {"sha": "merge1"}, "base": {"ref": "release"}}]
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    github.link_url = github.blob_url  # http://localhost:PORT: another origin
    port = github.url.rsplit(":", 1)[1]
    error = refused(env, tmp_path, "merge1")
    assert (f"error: GitHub API GET /repos/acme/plans/commits/merge1/pulls: its next page is "
            f"on localhost:{port}, not on GitHub's API (127.0.0.1:{port}): not followed; "
            "the token goes to the API only\n") in error
    assert all(host == f"127.0.0.1:{port}" for host, _ in github.authorized)
    assert not any("page=2" in path for _, path in github.seen)


def test_an_archive_url_on_another_origin_is_refused_and_never_sent_the_token(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    artifact = github.artifacts[101][0]
    artifact["archive_download_url"] = (artifact["archive_download_url"].replace(
        github.url, github.blob_url) + "?sig=s3cr3t")
    port = github.url.rsplit(":", 1)[1]
    error = refused(env, tmp_path, "merge1")
    assert (f"error: the plan artifact of run 101: its download URL is on localhost:{port}, "
            f"not on GitHub's API (127.0.0.1:{port}): not downloaded; the token goes to "
            "the API only\n") in error
    assert "s3cr3t" not in error
    assert all(host == f"127.0.0.1:{port}" for host, _ in github.authorized)
    assert not any("/zip" in path for _, path in github.seen)


def test_a_run_for_the_pull_request_when_it_targeted_another_branch_is_refused(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.lists_closed_pulls = True  # when GitHub does list the merged pull request
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN, pull_base="release")  # retargeted to main after it
    assert ("the newest plansync-plan.yml run on head head1 (run 101, attempt 1) planned "
            "pull request #7 into release, not into main: it was retargeted after its "
            "plan") in refused(env, tmp_path, "merge1")


def test_choose_run_requires_the_runs_pull_request_to_target_the_merged_base() -> None:
    from plansync.gitops.records import Pull, Run, Workflow
    from plansync.gitops.review import NotReviewed, choose_run

    pull = Pull(7, True, "main", "head7", "merge7")
    workflow = Workflow(161, PLAN_WORKFLOW)
    run_ = Run(101, 161, PLAN_WORKFLOW, "pull_request", "head7", REPO, (7,), 101, 1,
               "2026-11-27T09:41:00Z", "completed", "success",
               f"https://github.com/{REPO}/actions/runs/101", ((7, "main"),))
    assert choose_run([run_], pull, workflow, {"pull_request"}, REPO) == run_
    with pytest.raises(NotReviewed, match=r"\(run 101, attempt 1\) planned pull request #7 "
                                          r"into release, not into main: it was retargeted "
                                          r"after its plan"):
        choose_run([run_._replace(pull_bases=((7, "release"),))], pull, workflow,
                   {"pull_request"}, REPO)


def test_items_listed_twice_as_pages_shift_count_once(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    github.page_size = 1
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    github.pulls["merge1"].append(dict(github.pulls["merge1"][0]))  # the same, twice
    github.runs.append(dict(github.runs[0]))
    github.artifacts[101].append(dict(github.artifacts[101][0]))
    fetched = fetch(env, tmp_path, "merge1")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "reviewed.json").read_bytes() == PLAN
    other = dict(github.artifacts[101][0], id=1011)  # another artifact, the same name
    github.artifacts[101].append(other)
    assert ("run 101 saved 2 artifacts named plansync-plan-head1, not exactly one"
            in refused(env, tmp_path, "merge1"))


@pytest.mark.parametrize("api_url", ["http://[::1", "api.github.com"])
def test_an_api_url_that_is_not_a_url_is_refused_at_once_and_the_reason_saved(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, api_url: str) -> None:
    started = time.monotonic()
    error = refused({**env, "GITHUB_API_URL": api_url}, tmp_path, "merge1")
    assert time.monotonic() - started < 10  # not after 15 s of retries
    assert error.startswith(f"error: GITHUB_API_URL {api_url!r} is not a URL")
    assert "Traceback" not in error and github.seen == []


@pytest.mark.parametrize("where", ["link", "archive", "redirect"])
def test_a_malformed_url_from_github_is_exit_1_and_the_reason_saved(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path, where: str) -> None:
    github.merge("merge1", 7, "head1")
    github.plan_run(101, "head1", PLAN)
    if where == "link":
        github.page_size = 1
        github.artifacts[101].insert(0, {"id": 5, "name": "logs", "size_in_bytes": 9,
                                         "expired": False, "archive_download_url": "x"})
        github.link_url = "http://[::1"
    elif where == "archive":
        github.artifacts[101][0]["archive_download_url"] = "http://[::1/zip?sig=s3cr3t"
    else:
        github.fault("/actions/artifacts/1010/zip", 302,
                     headers={"Location": "http://[::1/zip?sig=s3cr3t"})
    error = refused(env, tmp_path, "merge1")
    assert "malformed URL: not " in error and "s3cr3t" not in error
    saved = json.loads((tmp_path / "reviewed.json").read_text())
    assert "malformed URL" in saved["error"]


def test_an_unexpected_failure_still_saves_a_reason_without_its_words(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever stops fetch-plan, --out says why for ci report (nothing was applied); a
    failure that is not plansync's names only its kind (its words may hold a URL)."""
    from plansync import cli
    from plansync.gitops import fetch as fetching

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("http://blob.example/x?sig=s3cr3t")

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(fetching, "reviewed_plan", broken)
    out = tmp_path / "reviewed.json"
    assert cli.main(["ci", "fetch-plan", "--sha", "merge1", "--out", str(out)]) == 70
    saved = json.loads(out.read_text())
    assert saved["error"] == ("ci fetch-plan stopped on an unexpected RuntimeError: "
                              "nothing was fetched, so nothing is applied")
    assert "s3cr3t" not in out.read_text()


def test_a_projects_apply_fetches_only_its_own_plan_for_the_head(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    """The plan workflow's matrix saves a plan a project (plansync-plan-PROJECT-HEAD); the
    apply job of sg takes sg's, never th's, a repository-wide one, or sg's of another
    head; another project's change on main since does not stop sg's."""
    github.page_size = 2  # the artifacts come over several pages
    github.merge("merge1", 7, "head1", files={"specs/sg/plans.yaml": "plans: [sg]\n"})
    github.plan_run(101, "head1", b'{"plan": "sg"}', name="plansync-plan-sg-head1")
    for number, (name, plan) in enumerate([("plansync-plan-th-head1", b'{"plan": "th"}'),
                                           ("plansync-plan-head1", b'{"plan": "all"}'),
                                           ("plansync-plan-sg-head0", b'{"plan": "old"}'),
                                           ("plansync-comment-sg", b"# markdown")]):
        artifact_id = 2000 + number
        github.archives[artifact_id] = zipped({"plan.json": plan})
        github.artifacts[101].insert(0, {
            "id": artifact_id, "name": name, "size_in_bytes": 200, "expired": False,
            "archive_download_url": f"{github.url}/repos/{REPO}/actions/artifacts/"
                                    f"{artifact_id}/zip"})
    github.commit("th-change", {"specs/th/plans.yaml": "plans: [th2]\n"}, "merge1")
    github.branches["main"] = "th-change"
    out = tmp_path / "reviewed.json"
    fetched = fetch(env, tmp_path, "merge1", "--project", "sg", "--spec-path", "specs/sg")
    assert fetched.returncode == 0, fetched.stderr
    assert out.read_bytes() == b'{"plan": "sg"}'
    assert "Saved project sg's plan reviewed on pull request #7" in fetched.stdout
    assert [p for _, p in github.seen if "/artifacts/" in p and p.endswith("/zip")] == [
        f"/repos/{REPO}/actions/artifacts/1010/zip"]  # only sg's was downloaded
    # A project the reviewed run did not plan at all (no plan, no comment of its own):
    # declared since, or untouched then. Nothing to apply, nothing failed: exit 2.
    unplanned = fetch(env, tmp_path, "merge1", "--project", "my", "--spec-path", "specs/my")
    assert unplanned.returncode == 2, unplanned.stderr
    assert "run 101 did not plan project my" in unplanned.stderr
    # A project whose plan job ran but saved no plan (its plan failed): refused, exit 1.
    github.artifacts[101].append({
        "id": 2999, "name": "plansync-comment-my", "size_in_bytes": 20, "expired": False,
        "archive_download_url": f"{github.url}/repos/{REPO}/actions/artifacts/2999/zip"})
    assert "saved no artifacts named plansync-plan-my-head1" in refused(
        env, tmp_path, "merge1", "--project", "my", "--spec-path", "specs/my")
    assert "(changed: specs/th/plans.yaml)" in refused(  # th's apply: main moved on
        env, tmp_path, "merge1", "--project", "th", "--spec-path", "specs/th")
