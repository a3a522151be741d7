"""A stand-in for GitHub's REST API on 127.0.0.1: real HTTP, answers in the shape
GitHub's documented responses have (only the members plansync reads, plus a few it must
ignore), and GitHub's habits: every list is paginated with ``Link`` headers (``page_size``
makes pages small), lists hold entries that are not the caller's (runs of other
workflows and pull requests on the same commit, pull requests of other branches),
artifact downloads redirect (302) to a blob host that must not see the token, expired
artifacts answer 410, a run's ``pull_requests`` come back empty once its pull
request is merged or closed, as GitHub's do (``lists_closed_pulls`` keeps them, as while
it was open), and ``fault`` makes any endpoint answer 5xx, 429, a rate-limit
403 or a proxy's HTML page, or drip its body a byte at a time (``drip``). ``link_url``
sends ``Link`` headers to another origin; ``authorized`` records which host was sent a
token. A tiny git history (commits with trees, branches) answers
``contents``, ``compare`` and ``branches``. It keeps the comments posted to it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

REPO = "acme/plans"
TOKEN = "test-token"
BOT = {"login": "github-actions[bot]", "type": "Bot"}
PLAN_WORKFLOW = ".github/workflows/plansync-plan.yml"
WORKFLOW_IDS = {"plansync-plan.yml": 161, "evil.yml": 162, "plansync-apply.yml": 163}


def workflow_text(trigger: str = "pull_request") -> str:
    return (f"name: plansync plan\non:\n  {trigger}:\n    paths: ['specs/**']\n"
            "permissions:\n  contents: read\njobs:\n  plan:\n    runs-on: ubuntu-latest\n"
            "    steps:\n      - run: plansync plan --out plan.json\n")


def blob_sha(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def zipped(entries: dict[str, bytes]) -> bytes:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return bundle.getvalue()


@dataclass
class Fault:
    pattern: str  # a regex searched in "METHOD /path"
    status: int
    headers: dict[str, str]
    body: bytes
    times: int
    drip: float = 0.0  # seconds between the body's bytes


@dataclass
class FakeGitHub:
    url: str = ""
    blob_url: str = ""  # the same server under another host name: the token must not go
    link_url: str = ""  # where Link headers point ("" = url): another origin is refused
    page_size: int = 100
    default_branch: str = "main"
    # GitHub empties a workflow run's pull_requests once the pull request is merged or
    # closed; True lists them anyway (a run read while its pull request was open).
    lists_closed_pulls: bool = False
    commits: dict[str, tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # commit -> pulls
    pull_files: dict[int, list[str]] = field(default_factory=dict)  # what each PR changed
    runs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    archives: dict[int, bytes] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)  # artifacts whose download answers 410
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)  # method, path (+query)
    token_leaked: list[str] = field(default_factory=list)  # blob paths sent the token
    authorized: list[tuple[str, str]] = field(default_factory=list)  # Host, path: token sent

    def __post_init__(self) -> None:
        self.commit("root", {PLAN_WORKFLOW: workflow_text(), "plansync.yaml": "{}\n",
                             "specs/plans.yaml": "plans: []\n"})
        self.branches["main"] = "root"

    # --- recording the world ---------------------------------------------------------

    def commit(self, sha: str, files: dict[str, str | None], parent: str | None = None,
               *more_parents: str) -> str:
        """A commit whose tree is its first parent's with ``files`` changed (None
        deletes)."""
        tree = dict(self.commits[parent][1]) if parent else {}
        for path, text in files.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text
        self.commits[sha] = (tuple(p for p in (parent, *more_parents) if p), tree)
        return sha

    def merge(self, merge_sha: str, number: int, head_sha: str, *, base: str = "main",
              spec: str | None = None, files: dict[str, str | None] | None = None,
              since: str | None = None, merge_commit_sha: str | None = None,
              push: bool = True) -> dict[str, Any]:
        """Pull request ``number`` (head ``head_sha`` branched at ``since``, default the
        base's head) merged into ``base`` as ``merge_sha``; the base branch moves there."""
        changes = {"specs/plans.yaml": spec or f"plans: [{number}]\n", **(files or {})}
        self.commit(head_sha, changes, since or self.branches[base])
        tip = self.branches[base]
        self.commit(merge_sha, {path: self.commits[head_sha][1].get(path)
                                for path in changes}, tip, head_sha)
        pull = {"id": 50_000 + number, "number": number, "state": "closed",
                "merged_at": "2026-11-27T10:00:00Z",
                "merge_commit_sha": merge_commit_sha or merge_sha,
                "head": {"sha": head_sha, "ref": f"change-{number}",
                         "repo": {"full_name": REPO}},
                "base": {"ref": base, "sha": tip, "repo": {"full_name": REPO}},
                "html_url": f"https://github.com/{REPO}/pull/{number}"}
        self.pulls.setdefault(merge_sha, []).append(pull)
        self.pull_files[number] = sorted(changes)
        if push:
            self.branches[base] = merge_sha
        return pull

    def _closed(self, number: int) -> bool:
        return any(p["number"] == number and p.get("state") == "closed"
                   for ps in self.pulls.values() for p in ps)

    def _listed(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run as GitHub lists it now: without its closed pull requests."""
        if self.lists_closed_pulls:
            return run
        return run | {"pull_requests": [p for p in run["pull_requests"]
                                        if not self._closed(p["number"])]}

    def pull_of(self, head_sha: str) -> int | None:
        return next((p["number"] for ps in self.pulls.values() for p in ps
                     if p["head"]["sha"] == head_sha), None)

    def plan_run(self, run_id: int, head_sha: str, plan: bytes | None, *,
                 workflow: str = PLAN_WORKFLOW, name: str | None = None,
                 pull: int | None = None, event: str = "pull_request",
                 conclusion: str | None = "success", status: str = "completed",
                 head_repository: str = REPO, run_number: int | None = None,
                 run_attempt: int = 1, entries: dict[str, bytes] | None = None,
                 expired: bool = False, size: int | None = None,
                 pull_base: str | None = None) -> None:
        """A run of ``workflow`` on ``head_sha`` for pull request ``pull`` (by default
        the one whose head it is) that saved ``plan`` as its artifact; ``pull_base``: the
        base branch GitHub lists for that pull request on the run (default: its base)."""
        number = pull if pull is not None else self.pull_of(head_sha)
        base = pull_base or next((p["base"]["ref"] for ps in self.pulls.values()
                                  for p in ps if p["number"] == number), "main")
        file = workflow.rsplit("/", 1)[-1].split("@")[0]
        self.runs.append({
            "id": run_id, "name": "plansync plan", "workflow_id": WORKFLOW_IDS.get(file, 999),
            "path": workflow, "event": event, "head_sha": head_sha,
            "head_branch": f"change-{number}", "status": status, "conclusion": conclusion,
            "run_number": run_number if run_number is not None else run_id,
            "run_attempt": run_attempt,
            "created_at": f"2026-11-27T09:{run_id % 60:02d}:00Z",
            "head_repository": {"full_name": head_repository},
            "repository": {"full_name": REPO},
            "pull_requests": ([] if number is None or head_repository != REPO
                              else [{"number": number, "head": {"sha": head_sha},
                                     "base": {"ref": base, "sha": "0" * 40,
                                              "repo": {"name": "plans"}}}]),
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}"})
        if plan is not None or entries is not None:
            archive = zipped(entries if entries is not None else {"plan.json": plan or b""})
            artifact_id = run_id * 10
            self.archives[artifact_id] = archive
            self.artifacts.setdefault(run_id, []).append({
                "id": artifact_id, "name": name or f"plansync-plan-{head_sha}",
                "size_in_bytes": size if size is not None else len(archive),
                "expired": expired,
                "archive_download_url": f"{self.url}/repos/{REPO}/actions/artifacts/"
                                        f"{artifact_id}/zip"})

    def comment(self, number: int, body: str, user: dict[str, str]) -> None:
        thread = self.comments.setdefault(number, [])
        thread.append({"id": 1000 + sum(map(len, self.comments.values())), "body": body,
                       "user": user})

    def fault(self, pattern: str, status: int, *, times: int = 1,
              headers: dict[str, str] | None = None, body: bytes | None = None,
              drip: float = 0.0) -> None:
        """The next ``times`` requests matching ``pattern`` ("GET /repos/.../pulls")
        answer ``status``; 5xx, 429 and 403 say Retry-After: 0 unless ``headers`` say
        otherwise, so that tests do not wait; ``drip``: the body is sent a byte every
        ``drip`` seconds."""
        default = {"Retry-After": "0"} if status >= 500 or status in (403, 429) else {}
        self.faults.append(Fault(pattern, status, headers if headers is not None else default,
                                 body if body is not None else
                                 json.dumps({"message": f"fault {status}"}).encode(), times,
                                 drip))

    # --- the git history -----------------------------------------------------------------

    def _resolve(self, ref: str) -> str | None:
        sha = self.branches.get(ref, ref)
        return sha if sha in self.commits else None

    def _ancestors(self, sha: str) -> list[str]:
        order, todo = [], [sha]
        while todo:
            current = todo.pop(0)
            if current not in order:
                order.append(current)
                todo += self.commits[current][0]
        return order

    def _compare(self, base: str, head: str) -> dict[str, Any] | None:
        base_sha, head_sha = self._resolve(base), self._resolve(head)
        if base_sha is None or head_sha is None:
            return None
        below_head, below_base = self._ancestors(head_sha), self._ancestors(base_sha)
        merge_base = next(c for c in below_head if c in below_base)
        status = ("identical" if base_sha == head_sha else "ahead" if merge_base == base_sha
                  else "behind" if merge_base == head_sha else "diverged")
        before, after = self.commits[merge_base][1], self.commits[head_sha][1]
        files = [{"filename": path, "status": "modified"} for path in sorted(
            set(before) | set(after)) if before.get(path) != after.get(path)]
        commits = [{"sha": c} for c in reversed(below_head) if c not in below_base]
        return {"status": status, "merge_base_commit": {"sha": merge_base},
                "ahead_by": len(commits), "commits": commits, "files": files}

    # --- answering ---------------------------------------------------------------------

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]
              ) -> tuple[list[Any], dict[str, str]]:
        size = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * size:page * size]
        headers = {}
        if page * size < len(items):
            following = {k: v[0] for k, v in query.items()} | {"page": str(page + 1)}
            last = {**following, "page": str(-(-len(items) // size))}
            origin = self.link_url or self.url
            headers["Link"] = (f'<{origin}{path}?{urlencode(following)}>; rel="next", '
                               f'<{origin}{path}?{urlencode(last)}>; rel="last"')
        return chunk, headers

    def answer(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        prefix = f"/repos/{REPO}"
        if path == prefix:
            return 200, {"full_name": REPO, "default_branch": self.default_branch,
                         "private": True}, {}
        if not path.startswith(prefix + "/"):
            return 404, {"message": "Not Found"}, {}
        parts = path[len(prefix) + 1:].split("/")
        if parts[0] == "commits" and parts[2:] == ["pulls"]:
            chunk, links = self._page(self.pulls.get(parts[1], []), path, query)
            return 200, chunk, links
        if parts[0] == "pulls" and parts[2:] == ["files"] and int(parts[1]) in self.pull_files:
            files = [{"filename": f, "status": "modified", "sha": "0" * 40}
                     for f in self.pull_files[int(parts[1])]]
            chunk, links = self._page(files, path, query)
            return 200, chunk, links
        if parts[0] == "branches" and len(parts) == 2 and parts[1] in self.branches:
            return 200, {"name": parts[1], "commit": {"sha": self.branches[parts[1]]}}, {}
        if parts[0] == "compare" and len(parts) == 2 and "..." in parts[1]:
            found = self._compare(*parts[1].split("...", 1))
            if found is None:
                return 404, {"message": "Not Found"}, {}
            commits, links = self._page(found["commits"], path, query)
            first = query.get("page", ["1"])[0] == "1"  # files only on the first page
            return 200, found | {"commits": commits,
                                 "files": found["files"] if first else []}, links
        if parts[0] == "contents":
            sha = self._resolve(query.get("ref", [self.default_branch])[0])
            text = self.commits[sha][1].get("/".join(parts[1:])) if sha else None
            if text is None:
                return 404, {"message": "Not Found"}, {}
            encoded = base64.encodebytes(text.encode()).decode()
            return 200, {"type": "file", "encoding": "base64", "content": encoded,
                         "sha": blob_sha(text), "path": "/".join(parts[1:])}, {}
        if parts[:2] == ["actions", "workflows"] and len(parts) == 3:
            if parts[2] not in WORKFLOW_IDS:
                return 404, {"message": "Not Found"}, {}
            return 200, {"id": WORKFLOW_IDS[parts[2]], "name": parts[2], "state": "active",
                         "path": f".github/workflows/{parts[2]}"}, {}
        if parts[:2] == ["actions", "workflows"] and parts[3:] == ["runs"]:
            # Filtered by head_sha only: a list that also holds other workflows' runs
            # is what a careless filter (or a moved workflow file) gives; newest first.
            head = query.get("head_sha", [None])[0]
            runs = [self._listed(r) for r in self.runs
                    if head is None or r["head_sha"] == head]
            runs.sort(key=lambda r: -r["id"])
            chunk, links = self._page(runs, path, query)
            return 200, {"total_count": len(runs), "workflow_runs": chunk}, links
        if parts[:2] == ["actions", "runs"] and parts[3:] == ["artifacts"]:
            found = self.artifacts.get(int(parts[2]), [])
            chunk, links = self._page(found, path, query)
            return 200, {"total_count": len(found), "artifacts": chunk}, links
        if parts[:2] == ["actions", "artifacts"] and parts[3:] == ["zip"]:
            artifact_id = int(parts[2])
            if artifact_id in self.gone:
                return 410, {"message": "Artifact has expired"}, {}
            return 302, b"", {"Location": f"{self.blob_url}/blobs/{artifact_id}.zip?sig=s3cr3t"}
        if parts[0] == "issues" and parts[2:] == ["comments"]:
            number = int(parts[1])
            if method == "POST":
                self.comment(number, body["body"], BOT)
                return 201, self.comments[number][-1], {}
            chunk, links = self._page(self.comments.get(number, []), path, query)
            return 200, chunk, links
        if parts[:2] == ["issues", "comments"] and method == "PATCH":
            for thread in self.comments.values():
                for comment in thread:
                    if comment["id"] == int(parts[2]):
                        comment["body"] = body["body"]
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def blob(self, path: str, authorization: str | None) -> tuple[int, Any, dict[str, str]]:
        if authorization is not None:
            self.token_leaked.append(path)
            return 403, {"message": "the blob host was sent the API token"}, {}
        match = re.fullmatch(r"/blobs/(\d+)\.zip", path)
        if not match or int(match[1]) not in self.archives:
            return 404, b"<Error>BlobNotFound</Error>", {"Content-Type": "application/xml"}
        return 200, self.archives[int(match[1])], {"Content-Type": "application/zip"}

    def take_fault(self, request: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and re.search(fault.pattern, request):
                fault.times -= 1
                return fault
        return None


@contextmanager
def serving(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.seen.append((self.command, self.path))
            if self.headers.get("Authorization") is not None:
                fake.authorized.append((self.headers.get("Host", ""), self.path))
            headers: dict[str, str]
            drip = 0.0
            fault = fake.take_fault(f"{self.command} {self.path}")
            if parts.path.startswith("/blobs/"):
                status, payload, headers = fake.blob(parts.path,
                                                     self.headers.get("Authorization"))
            elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, payload, headers = 401, {"message": "Bad credentials"}, {}
            elif fault is not None:
                status, payload, headers = fault.status, fault.body, fault.headers
                drip = fault.drip
            else:
                status, payload, headers = fake.answer(self.command, parts.path,
                                                       parse_qs(parts.query), body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8",
                                **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not drip:
                self.wfile.write(data)
                return
            for byte in data:  # a byte at a time, until the client gives up
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(drip)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    fake.url = f"http://127.0.0.1:{port}"
    fake.blob_url = f"http://localhost:{port}"  # another host name: requests drops the token
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
