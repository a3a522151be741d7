"""A stand-in for GitHub's REST API on 127.0.0.1: real HTTP, answers recorded in the
shape GitHub's documented responses have (only the members plansync reads, plus a few
it must ignore). It keeps the comments posted to it. The edge where nothing real can run
here: GitHub itself."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = "acme/plans"
BOT = {"login": "github-actions[bot]", "type": "Bot"}


class FakeGitHub:
    def __init__(self) -> None:
        self.pulls: dict[str, list[dict[str, Any]]] = {}  # commit sha -> pulls
        self.runs: list[dict[str, Any]] = []
        self.artifacts: dict[int, list[dict[str, Any]]] = {}
        self.archives: dict[str, bytes] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.url = ""

    # --- recording the world ---------------------------------------------------------

    def merge(self, merge_sha: str, number: int, head_sha: str) -> None:
        self.pulls[merge_sha] = [{"number": number, "merged_at": "2026-11-27T10:00:00Z",
                                  "head": {"sha": head_sha, "ref": f"change-{number}"},
                                  "base": {"ref": "main"}}]

    def plan_run(self, run_id: int, head_sha: str, plan: bytes | None,
                 workflow: str = ".github/workflows/plansync-plan.yml",
                 name: str | None = None) -> None:
        """A successful run of ``workflow`` on ``head_sha`` that saved ``plan``."""
        self.runs.append({"id": run_id, "head_sha": head_sha, "event": "pull_request",
                          "status": "completed", "conclusion": "success",
                          "path": workflow, "run_attempt": 1,
                          "created_at": f"2026-11-27T09:{run_id % 60:02d}:00Z",
                          "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}"})
        if plan is not None:
            bundle = io.BytesIO()
            with zipfile.ZipFile(bundle, "w") as archive:
                archive.writestr("plan.json", plan)
            key = f"/blobs/{run_id}.zip"
            self.archives[key] = bundle.getvalue()
            self.artifacts[run_id] = [{
                "id": run_id * 10, "name": name or f"plansync-plan-{head_sha}",
                "expired": False,
                "archive_download_url": f"{self.url}/repos/{REPO}/actions/artifacts/"
                                        f"{run_id * 10}/zip"}]

    def comment(self, number: int, body: str, user: dict[str, str]) -> None:
        thread = self.comments.setdefault(number, [])
        thread.append({"id": 1000 + sum(map(len, self.comments.values())), "body": body,
                       "user": user})

    # --- answering ---------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        prefix = f"/repos/{REPO}"
        if path in self.archives:
            return 200, self.archives[path], {"Content-Type": "application/zip"}
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        rest = path[len(prefix):]
        parts = rest.strip("/").split("/")
        if parts[:1] == ["commits"] and parts[2:] == ["pulls"]:
            return 200, self.pulls.get(parts[1], []), {}
        if parts[:2] == ["actions", "workflows"] and parts[3:] == ["runs"]:
            head = query.get("head_sha", [""])[0]
            runs = [r for r in self.runs if r["head_sha"] == head]  # GitHub filters by sha,
            return 200, {"total_count": len(runs), "workflow_runs": runs}, {}  # not path
        if parts[:2] == ["actions", "runs"] and parts[3:] == ["artifacts"]:
            found = self.artifacts.get(int(parts[2]), [])
            return 200, {"total_count": len(found), "artifacts": found}, {}
        if parts[:2] == ["actions", "artifacts"] and parts[3:] == ["zip"]:
            return 302, b"", {"Location": f"{self.url}/blobs/{int(parts[2]) // 10}.zip"}
        if parts[:1] == ["issues"] and parts[2:] == ["comments"]:
            number = int(parts[1])
            if method == "POST":
                self.comment(number, body["body"], BOT)
                return 201, self.comments[number][-1], {}
            page = int(query.get("page", ["1"])[0])
            return 200, self.comments.get(number, [])[(page - 1) * 100:page * 100], {}
        if parts[:2] == ["issues", "comments"] and method == "PATCH":
            for thread in self.comments.values():
                for comment in thread:
                    if comment["id"] == int(parts[2]):
                        comment["body"] = body["body"]
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}


@contextmanager
def serving(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            assert self.headers["Authorization"] == "Bearer test-token"
            status, payload, headers = fake.answer(self.command, parts.path,
                                                   parse_qs(parts.query), body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
