"""The GitOps glue the workflows run, as code with tests rather than YAML scripts.

On merge, apply must write exactly the plan a reviewer saw: ``reviewed_plan`` finds the
pull request a commit merged, the successful run of the plan workflow *file* on that
pull request's head commit, and the plan that run saved as an artifact. Comments are
never read (anyone can write one); only our own workflow's artifacts count. ``outcome``
words what apply did (or why nothing was applied) for the pull request. GitHub's REST
API through requests.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from plansync.errors import PlansyncError
from plansync.render.values import cell

PLAN_MARKER = "<!-- plansync-plan -->"
APPLY_MARKER = "<!-- plansync-apply -->"
PLAN_FILE = "plan.json"


def artifact_name(head_sha: str) -> str:
    """What the plan workflow names its saved plan: tied to the reviewed commit."""
    return f"plansync-plan-{head_sha}"


class NotReviewed(PlansyncError):
    """No plan reviewed for this merge can be found; nothing may be applied."""


@dataclass(frozen=True)
class ReviewedPlan:
    pull: int
    head_sha: str
    run_url: str
    plan: bytes


class GitHub:
    def __init__(self, api_url: str, repository: str, token: str,
                 session: requests.Session | None = None) -> None:
        self._base = f"{api_url.rstrip('/')}/repos/{repository}"
        self._session = session or requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {token}",
                                      "Accept": "application/vnd.github+json",
                                      "X-GitHub-Api-Version": "2022-11-28"})

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GitHub:
        missing = [n for n in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not environ.get(n)]
        if missing:
            raise PlansyncError(f"{' and '.join(missing)} not set",
                                "run this in a GitHub Actions step with "
                                "GITHUB_TOKEN: ${{ github.token }}")
        return cls(environ.get("GITHUB_API_URL", "https://api.github.com"),
                   environ["GITHUB_REPOSITORY"], environ["GITHUB_TOKEN"])

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self._base + path
        try:
            answer = self._session.request(method, url, timeout=30, **kwargs)
            answer.raise_for_status()
        except requests.RequestException as exc:
            status = getattr(exc.response, "status_code", None)
            raise PlansyncError(f"GitHub API {method} {path} failed"
                                + (f" (HTTP {status})" if status else ""),
                                "check the job's permissions (actions: read, "
                                "pull-requests: write)") from None
        return answer

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params).json()

    def download(self, url: str) -> bytes:
        return self._call("GET", url).content

    def comments(self, number: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.get(f"/issues/{number}/comments", per_page=100, page=page)
            found += batch
            if len(batch) < 100:
                return found
            page += 1

    def upsert_comment(self, number: int, marker: str, body: str, author: str) -> None:
        """Post ``body``, or update the one comment ``author`` posted with ``marker``."""
        mine = [c for c in self.comments(number) if c.get("body", "").startswith(marker)
                and c.get("user", {}).get("login") == author]
        if mine:
            self._call("PATCH", f"/issues/comments/{mine[0]['id']}", json={"body": body})
        else:
            self._call("POST", f"/issues/{number}/comments", json={"body": body})


def merged_pull(github: GitHub, sha: str) -> dict[str, Any]:
    pulls = [p for p in github.get(f"/commits/{sha}/pulls") if p.get("merged_at")]
    if not pulls:
        raise NotReviewed(f"commit {sha} was not merged from a pull request: nothing was "
                          "reviewed, so nothing is applied",
                          "merge specs through a pull request, or run the manual "
                          "workflow_dispatch path (plan, approval, apply)")
    return dict(pulls[0])


def reviewed_plan(github: GitHub, sha: str, workflow_file: str) -> ReviewedPlan:
    """The plan saved by the plan workflow for the head commit of the pull request that
    ``sha`` merged. Raises NotReviewed, saying why, when there is none."""
    pull = merged_pull(github, sha)
    head = pull["head"]["sha"]
    runs = github.get(f"/actions/workflows/{workflow_file}/runs", head_sha=head,
                      event="pull_request", status="success", per_page=100)
    ours = [r for r in runs.get("workflow_runs", [])
            if r.get("head_sha") == head and r.get("conclusion") == "success"
            and r.get("path", "").split("@")[0].endswith(f".github/workflows/{workflow_file}")]
    if not ours:
        raise NotReviewed(f"pull request #{pull['number']} has no successful "
                          f"{workflow_file} run on its head commit {head[:12]}",
                          "push to the pull request (or re-run its plan) and merge again")
    run = max(ours, key=lambda r: (r.get("created_at", ""), r.get("run_attempt", 0)))
    artifacts = github.get(f"/actions/runs/{run['id']}/artifacts",
                           name=artifact_name(head)).get("artifacts", [])
    usable = [a for a in artifacts if a.get("name") == artifact_name(head)
              and not a.get("expired")]
    if not usable:
        raise NotReviewed(f"the plan of pull request #{pull['number']} (run "
                          f"{run.get('html_url', run['id'])}) is missing or expired",
                          "re-run the pull request's plan workflow, or use the manual "
                          "workflow_dispatch path")
    archive = github.download(usable[0]["archive_download_url"])
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            plan = bundle.read(PLAN_FILE)
    except (zipfile.BadZipFile, KeyError):
        raise NotReviewed(f"the artifact of run {run['id']} holds no {PLAN_FILE}") from None
    return ReviewedPlan(pull["number"], head, str(run.get("html_url", "")), plan)


def outcome(results: Mapping[str, Any] | None, exit_code: int, run_url: str,
            reason: str | None = None) -> str:
    """The pull request comment for what happened on merge: applied, skipped and failed
    plans; or, when nothing was applied, why and what to do."""
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
    title = "applied" if exit_code == 0 else "applied in part" if done else "not applied"
    lines += [f"### plansync: the reviewed plan was {title}", "",
              f"{len(done)} written, {len(held)} not written, "
              f"{sum(r['result'] == 'unchanged' for r in rows)} unchanged. "
              f"[The run]({run_url})", ""]
    if done or held:
        lines += ["| plan | result | detail |", "|---|---|---|"]
        lines += [f"| {r['id']} | {r['result']} | {cell((r.get('detail') or '')[:300])} |"
                  for r in [*done, *held]]
    if held:
        lines += ["", "Plans not written were left as they are: a plan whose live state "
                      "moved since review is never written; re-plan them on a new pull "
                      "request."]
    return "\n".join(lines) + "\n"


