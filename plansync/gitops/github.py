"""GitHub's REST API as it behaves: the one place plansync's GitOps glue talks HTTP.

- Retries: 5xx, 429 and the rate-limit 403 (``X-RateLimit-Remaining: 0``) are retried a
  bounded number of times, waiting what GitHub asks (``Retry-After`` seconds, or until
  the ``X-RateLimit-Reset`` epoch), each wait capped; a wait longer than the cap is not
  waited for but reported. Hand-written because urllib3's ``Retry`` cannot tell a
  rate-limit 403 from a permission 403 and does not read ``X-RateLimit-Reset``.
  A POST is retried only when GitHub says it did not process it (429, rate limit).
- Lists follow the ``Link: <...>; rel="next"`` header to the end.
- An answer that is not the JSON the endpoint documents (a proxy's HTML page with 200,
  say) is a ``GitHubError`` naming the endpoint, never a traceback.
- Errors say what was asked and why it failed; the permission hint only for a 401/403
  that is not a rate limit. The token is never printed, nor an artifact's signed URL.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from plansync.errors import PlansyncError

PERMISSIONS_HINT = ("check the job's permissions: actions: read, pull-requests: write, "
                    "contents: read")
RETRIES = 4  # after the first attempt
MAX_WAIT = 60.0  # seconds, for one wait
MAX_PAGES = 1000  # a Link header that never ends is GitHub misbehaving, not data


class GitHubError(PlansyncError):
    """A GitHub API call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None
                 ) -> None:
        super().__init__(message, hint)
        self.status = status


class GitHub:
    def __init__(self, api_url: str, repository: str, token: str, *,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self._api = api_url.rstrip("/")
        self._base = f"{self._api}/repos/{repository}"
        self._session = session or requests.Session()
        # requests drops this header when a redirect leads to another host (the
        # artifact blob store), so the token goes to GitHub's API only.
        self._session.headers.update({"Authorization": f"Bearer {token}",
                                      "Accept": "application/vnd.github+json",
                                      "X-GitHub-Api-Version": "2022-11-28"})
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GitHub:
        missing = [n for n in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not environ.get(n)]
        if missing:
            raise PlansyncError(f"{' and '.join(missing)} not set",
                                "run this in a GitHub Actions step with "
                                "GITHUB_TOKEN: ${{ github.token }}")
        return cls(environ.get("GITHUB_API_URL") or "https://api.github.com",
                   environ["GITHUB_REPOSITORY"], environ["GITHUB_TOKEN"])

    # --- reading ------------------------------------------------------------------------

    def get(self, path: str, what: str, **params: Any) -> dict[str, Any]:
        """The JSON object at ``path`` (relative to the repository). ``what`` names the
        thing for a 404 ("the workflow plansync-plan.yml")."""
        where = self.where(path)
        answer = self._call("GET", self._base + path, where, what, params=params)
        data = _json(answer, where)
        if not isinstance(data, dict):
            raise _shape(where, f"a JSON {type(data).__name__}, not an object")
        return data

    def pages(self, path: str, what: str, **params: Any) -> Iterator[Any]:
        """Every page of a list endpoint, as parsed JSON, following ``Link: rel="next"``."""
        url: str | None = self._base + path
        path = self.where(path)
        seen: set[str] = set()
        query: dict[str, Any] | None = {"per_page": 100, **params}
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise _shape(path, "a Link header that leads back or never ends")
            seen.add(url)
            answer = self._call("GET", url, path, what, params=query)
            yield _json(answer, path)
            url = answer.links.get("next", {}).get("url") or None
            query = None  # the next link carries the query itself

    def items(self, path: str, what: str, key: str | None = None,
              **params: Any) -> list[dict[str, Any]]:
        """Every item of a list endpoint: each page is a list of objects, or (``key``) an
        object holding one under ``key``."""
        found: list[dict[str, Any]] = []
        where = self.where(path)
        for page in self.pages(path, what, **params):
            batch = page.get(key) if key is not None and isinstance(page, dict) else page
            if not isinstance(batch, list) or not all(isinstance(i, dict) for i in batch):
                wanted = f"an object with a list {key!r}" if key else "a list"
                raise _shape(where, f"something other than {wanted} of objects")
            found += batch
        return found

    def download(self, url: str, what: str, limit: int) -> bytes:
        """The body at ``url`` (an artifact's ``archive_download_url``; GitHub answers
        with a redirect to its blob store), refusing more than ``limit`` bytes."""
        answer = self._call("GET", url, what, what, stream=True)
        with answer:
            body = bytearray()
            for chunk in answer.iter_content(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise GitHubError(f"{what} is larger than {limit} bytes; not read",
                                      "raise --max-artifact-size if the plan is that big")
        return bytes(body)

    # --- writing ------------------------------------------------------------------------

    def post(self, path: str, what: str, body: Mapping[str, Any]) -> None:
        self._call("POST", self._base + path, self.where(path), what, json=body)

    def patch(self, path: str, what: str, body: Mapping[str, Any]) -> None:
        self._call("PATCH", self._base + path, self.where(path), what, json=body)

    def where(self, path: str) -> str:
        """The endpoint as GitHub's documentation names it, for messages."""
        return f"/repos/{self.repository}{path}"

    # --- the one place requests are sent --------------------------------------------------

    def _call(self, method: str, url: str, path: str, what: str,
              **kwargs: Any) -> requests.Response:
        """Send, retrying what GitHub says is worth retrying; the answer is a 2xx."""
        for attempt in range(RETRIES + 1):
            try:
                answer = self._session.request(method, url, timeout=30, **kwargs)
            except requests.RequestException as exc:
                if method != "GET" or attempt == RETRIES:
                    host = urlsplit(url).hostname
                    raise GitHubError(f"GitHub API {method} {path}: no answer from {host} "
                                      f"({type(exc).__name__})",
                                      "check GITHUB_API_URL and the runner's network; "
                                      "re-run the job") from None
                self._sleep(min(2.0 ** attempt, MAX_WAIT))
                continue
            if answer.ok:
                return answer
            wait = self._retry_wait(method, answer, attempt)
            if wait is None:
                raise self._failure(method, path, what, answer, attempt)
            answer.close()
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_wait(self, method: str, answer: requests.Response,
                    attempt: int) -> float | None:
        """How long to wait before sending again, or None not to."""
        limited = _rate_limited(answer)
        if not (limited or answer.status_code >= 500) or attempt == RETRIES:
            return None
        if method != "GET" and not limited:
            return None  # a POST that failed with 5xx may have been done: not again
        wait = _seconds(answer.headers.get("Retry-After"), self._clock())
        if wait is None and answer.headers.get("X-RateLimit-Remaining") == "0":
            reset = answer.headers.get("X-RateLimit-Reset", "")
            wait = max(0.0, float(reset) - self._clock()) if reset.isdigit() else None
        if wait is None:
            wait = min(2.0 ** attempt, MAX_WAIT)
        return wait if wait <= MAX_WAIT else None

    def _failure(self, method: str, path: str, what: str, answer: requests.Response,
                 attempt: int) -> GitHubError:
        status = answer.status_code
        said = _message(answer)
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if _rate_limited(answer):
            reset = answer.headers.get("X-RateLimit-Reset", "")
            until = (time.strftime(" until %H:%M:%S UTC", time.gmtime(int(reset)))
                     if reset.isdigit() else "")
            return GitHubError(f"GitHub API {method} {path}: the token's rate limit is "
                               f"used up{until} (HTTP {status}{said}){tries}",
                               "re-run the job once the limit resets", status)
        if status in (401, 403):
            return GitHubError(f"GitHub API {method} {path} was refused (HTTP {status}"
                               f"{said})", PERMISSIONS_HINT, status)
        if status == 404:
            return GitHubError(f"GitHub has no {what} (HTTP 404 for {method} {path})",
                               "check the name; a token that cannot see the repository "
                               "also gets 404", status)
        if status == 410:
            return GitHubError(f"{what} is gone (HTTP 410)", None, status)
        if status >= 500:
            return GitHubError(f"GitHub API {method} {path} failed: HTTP {status}{said}"
                               f"{tries}",
                               "GitHub may be having trouble (www.githubstatus.com); "
                               "re-run the job", status)
        return GitHubError(f"GitHub API {method} {path} failed: HTTP {status}{said}",
                           None, status)


def _rate_limited(answer: requests.Response) -> bool:
    if answer.status_code == 429:
        return True
    return answer.status_code == 403 and (
        answer.headers.get("X-RateLimit-Remaining") == "0"
        or "Retry-After" in answer.headers)  # GitHub's secondary rate limit


def _seconds(value: str | None, now: float) -> float | None:
    """``Retry-After``: seconds, or an HTTP date."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _message(answer: requests.Response) -> str:
    try:
        said = answer.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {str(said)[:200]}" if said else ""


def _json(answer: requests.Response, path: str) -> Any:
    kind = answer.headers.get("Content-Type", "").split(";")[0].strip() or "untyped"
    try:
        return answer.json()
    except ValueError:
        raise GitHubError(f"GitHub API GET {path} answered HTTP {answer.status_code} with "
                          f"{kind} that is not JSON: something other than GitHub's API "
                          "answered (a proxy or a captive portal?)",
                          "check GITHUB_API_URL and the runner's proxy settings; "
                          "re-run the job") from None


def _shape(path: str, found: str) -> GitHubError:
    return GitHubError(f"GitHub API GET {path} answered {found}, not what the endpoint "
                       "documents",
                       "check GITHUB_API_URL (is it GitHub's REST API?); re-run the job")
