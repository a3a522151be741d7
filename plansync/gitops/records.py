"""GitHub's JSON, read into typed records once, at the edge: the decisions in review.py
take these and never a dict. Only the members plansync reads; a member missing or of the
wrong type is a ``GitHubError`` naming the endpoint, not a KeyError later."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

from plansync.gitops.github import GitHubError

T = TypeVar("T")


class Pull(NamedTuple):
    number: int
    merged: bool
    base_ref: str
    head_sha: str
    merge_commit_sha: str | None


class Run(NamedTuple):
    id: int
    workflow_id: int
    path: str  # ".github/workflows/plansync-plan.yml", maybe with "@ref"
    event: str
    head_sha: str
    head_repository: str | None  # full_name; None when GitHub does not say
    pulls: tuple[int, ...]  # the pull requests GitHub ties the run to
    run_number: int
    run_attempt: int
    created_at: str
    status: str
    conclusion: str | None
    url: str
    # Each pull request's base branch as the run lists it (GitHub's pull-request-minimal
    # ``base.ref``); () when not known (records built by hand).
    pull_bases: tuple[tuple[int, str], ...] = ()


class Artifact(NamedTuple):
    id: int
    name: str
    size: int
    expired: bool
    download_url: str


class Workflow(NamedTuple):
    id: int
    path: str


class Comparison(NamedTuple):
    status: str  # ahead, behind, diverged, identical
    commits: tuple[str, ...]
    files: tuple[str, ...]  # every path changed, renamed files under both names


def member(data: Any, dotted: str, kind: type[T], endpoint: str, optional: bool = False
         ) -> T:
    value = data
    for step in dotted.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    if value is None and optional:
        return value  # type: ignore[return-value]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GitHubError(f"GitHub API GET {endpoint} answered without a usable "
                          f"{dotted!r} ({type(value).__name__}), not what the endpoint "
                          "documents",
                          "check GITHUB_API_URL (is it GitHub's REST API?); re-run the job")
    return value


def pull(data: Any, endpoint: str) -> Pull:
    return Pull(member(data, "number", int, endpoint),
                bool(member(data, "merged_at", str, endpoint, optional=True)),
                member(data, "base.ref", str, endpoint),
                member(data, "head.sha", str, endpoint),
                member(data, "merge_commit_sha", str, endpoint, optional=True))


def run(data: Any, endpoint: str) -> Run:
    pulls = member(data, "pull_requests", list, endpoint, optional=True) or []
    bases = tuple((member(p, "number", int, endpoint), member(p, "base.ref", str, endpoint))
                  for p in pulls)
    return Run(member(data, "id", int, endpoint), member(data, "workflow_id", int, endpoint),
               member(data, "path", str, endpoint), member(data, "event", str, endpoint),
               member(data, "head_sha", str, endpoint),
               member(data, "head_repository.full_name", str, endpoint, optional=True),
               tuple(member(p, "number", int, endpoint) for p in pulls),
               member(data, "run_number", int, endpoint),
               member(data, "run_attempt", int, endpoint, optional=True) or 1,
               member(data, "created_at", str, endpoint, optional=True) or "",
               member(data, "status", str, endpoint),
               member(data, "conclusion", str, endpoint, optional=True),
               member(data, "html_url", str, endpoint, optional=True) or "", bases)


def artifact(data: Any, endpoint: str) -> Artifact:
    return Artifact(member(data, "id", int, endpoint), member(data, "name", str, endpoint),
                    member(data, "size_in_bytes", int, endpoint),
                    bool(member(data, "expired", bool, endpoint, optional=True)),
                    member(data, "archive_download_url", str, endpoint))


def workflow(data: Any, endpoint: str) -> Workflow:
    return Workflow(member(data, "id", int, endpoint), member(data, "path", str, endpoint))


def file_text(data: Any, endpoint: str) -> str:
    """The text of a file at one ref, from the contents endpoint's answer."""
    import base64
    import binascii

    if member(data, "type", str, endpoint) != "file" or data.get("encoding") != "base64":
        raise GitHubError(f"GitHub API GET {endpoint} answered something other than a "
                          "file's base64 content",
                          "the workflow file must be a file (not a symlink or folder)")
    try:
        text = base64.b64decode(member(data, "content", str, endpoint)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise GitHubError(f"GitHub API GET {endpoint} answered content that is not "
                          "base64 of UTF-8 text") from None
    return text


def changed_files(items: list[Any], endpoint: str) -> tuple[str, ...]:
    """The paths in a list of changed files (a comparison's, a pull request's): renamed
    files under both names."""
    files: list[str] = []
    for changed in items:
        files.append(member(changed, "filename", str, endpoint))
        previous = member(changed, "previous_filename", str, endpoint, optional=True)
        if previous:
            files.append(previous)
    return tuple(files)


def comparison(pages: list[Any], endpoint: str) -> Comparison:
    commits: list[str] = []
    files: list[str] = []
    for page in pages:
        commits += [member(c, "sha", str, endpoint)
                    for c in member(page, "commits", list, endpoint)]
        files += changed_files(member(page, "files", list, endpoint, optional=True) or [],
                               endpoint)
    status = member(pages[0], "status", str, endpoint) if pages else "identical"
    return Comparison(status, tuple(commits), tuple(files))
