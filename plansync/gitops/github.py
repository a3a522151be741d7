"""GitHub's REST API as it behaves: the one place plansync's GitOps glue talks HTTP.

- Retries: 5xx, 429 and the rate-limit 403 (``X-RateLimit-Remaining: 0``) are retried a
  bounded number of times, waiting what GitHub asks (``Retry-After`` seconds, or until
  the ``X-RateLimit-Reset`` epoch), each wait capped; a wait longer than the cap is not
  waited for but reported. Hand-written because urllib3's ``Retry`` cannot tell a
  rate-limit 403 from a permission 403 and does not read ``X-RateLimit-Reset``.
  A POST is retried only when GitHub says it did not process it (429, rate limit).
- Lists follow the ``Link: <...>; rel="next"`` header to the end. An object GitHub
  lists with an ``id`` (artifacts, runs, pull requests, comments) is taken once: a list
  that shifts while it is read page by page shows an item on two pages.
- An answer that is not the JSON the endpoint documents (a proxy's HTML page with 200,
  JSON nested too deeply to parse, say) is a ``GitHubError`` naming the endpoint, never a
  traceback.
- Time: every call has a total deadline, ``API_DEADLINE`` (60 s) for an API call and
  ``DOWNLOAD_DEADLINE`` (300 s) for the artifact download, on top of the per-read
  ``READ_TIMEOUT`` (30 s). Past the deadline the connection's socket is shut down (the
  gateway transport's ``Deadlines``), whatever is being read: the status line, headers
  dripping in, the body. A read timeout or a dropped connection is asked again only
  within the same deadline. An answer not done by the deadline is a ``GitHubError``
  ("did not answer in time") and is not asked again: the wait stays bounded.
  Redirects are followed here (GET only, at most ``MAX_REDIRECTS``) and a redirect's
  body is never read.
- The token goes only to the API's own origin (scheme, host and port of
  ``GITHUB_API_URL``). A ``Link`` next page or an artifact's ``archive_download_url`` on
  another origin is refused, naming the host (never the URL: it may be signed); a
  redirect to another origin (GitHub's 302 from the archive URL to its blob store) is
  followed without the token.
- A URL that is not one (``GITHUB_API_URL``, a next-page link, an artifact's download
  URL or a redirect's ``Location``) is a ``GitHubError``: ``GITHUB_API_URL`` must be an
  http(s) URL with a host, refused at once otherwise; the others are named only as "a
  malformed URL" (they may be signed).
- Errors say what was asked and why it failed; the permission hint only for a 401/403
  that is not a rate limit. The token is never printed, nor an artifact's signed URL.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from plansync.errors import PlansyncError
from plansync.gateway.transport import Deadlines
from plansync.redact import safe_url

PERMISSIONS_HINT = ("check the job's permissions: actions: read, pull-requests: write, "
                    "contents: read")
RETRIES = 4  # after the first attempt
MAX_WAIT = 60.0  # seconds, for one wait
MAX_PAGES = 1000  # a Link header that never ends is GitHub misbehaving, not data
API_DEADLINE = 60.0  # seconds for one API call, its body read to the end
DOWNLOAD_DEADLINE = 300.0  # seconds for the artifact download
READ_TIMEOUT = 30.0  # seconds for the connection, and for any one read
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
SLOW_HINT = "GitHub or the network may be slow (www.githubstatus.com); re-run the job"


class GitHubError(PlansyncError):
    """A GitHub API call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None
                 ) -> None:
        super().__init__(message, hint)
        self.status = status


class Answer(NamedTuple):
    """A response, its body read in full (within the deadline)."""
    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def next_page(self) -> str | None:
        links = requests.utils.parse_header_links(self.headers.get("Link", ""))
        return next((link.get("url") or None for link in links
                     if link.get("rel") == "next"), None)


class _Session(requests.Session):
    """A session that leaves redirects to ``GitHub._attempt``: requests reads a
    redirect's whole body, with no deadline, even when told not to follow it."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class GitHub:
    def __init__(self, api_url: str, repository: str, token: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 deadline: float = API_DEADLINE,
                 download_deadline: float = DOWNLOAD_DEADLINE) -> None:
        self.repository = repository
        self._api = api_url.rstrip("/")
        origin = _origin(self._api)
        if origin is None or origin[0] not in ("http", "https") or not origin[1]:
            # As given, to show what is wrong with it, unless it may hold a credential
            # (userinfo, a query or a fragment).
            shown = safe_url(api_url) if any(c in api_url for c in "@?#") else api_url
            shown = shown if len(shown) <= 200 else shown[:200] + "…"
            raise GitHubError(f"GITHUB_API_URL {shown!r} is not a URL of GitHub's REST API "
                              "(http or https, with a host)",
                              "unset it (GitHub Actions sets it: https://api.github.com), or "
                              "set it to your GitHub Enterprise Server's "
                              "https://HOST/api/v3")
        self._origin = origin
        self._base = f"{self._api}/repos/{repository}"
        self._session = _Session()
        self._deadlines = Deadlines()  # a call's deadline covers its status line and headers
        self._deadlines.mount(self._session)
        self._session.headers.update({"Accept": "application/vnd.github+json",
                                      "X-GitHub-Api-Version": "2022-11-28"})
        self._token = {"Authorization": f"Bearer {token}"}  # for the API's origin only
        self._sleep = sleep
        self._clock = clock  # GitHub's wall clock, for X-RateLimit-Reset
        self._deadline = deadline
        self._download_deadline = download_deadline

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
        data = _json(answer, "GET", where)
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
            yield _json(answer, "GET", path)
            following = answer.next_page()
            url = _join(url, following) if following else None
            if following and url is None:
                raise GitHubError(f"GitHub API GET {path}: its next page is a malformed "
                                  "URL: not followed",
                                  "check GITHUB_API_URL (is it GitHub's REST API?); "
                                  "re-run the job")
            if url is not None and _origin(url) != self._origin:
                raise GitHubError(f"GitHub API GET {path}: its next page is on "
                                  f"{_host(url)}, not on GitHub's API ({_host(self._api)})"
                                  ": not followed; the token goes to the API only",
                                  "check GITHUB_API_URL (is it GitHub's REST API?); "
                                  "re-run the job")
            query = None  # the next link carries the query itself

    def items(self, path: str, what: str, key: str | None = None,
              **params: Any) -> list[dict[str, Any]]:
        """Every item of a list endpoint: each page is a list of objects, or (``key``) an
        object holding one under ``key``. An item with an integer ``id`` seen on an
        earlier page too (the list shifted between pages) is one item: in its first
        place, as the later page says it is."""
        found: dict[object, dict[str, Any]] = {}
        where = self.where(path)
        for page in self.pages(path, what, **params):
            batch = page.get(key) if key is not None and isinstance(page, dict) else page
            if not isinstance(batch, list) or not all(isinstance(i, dict) for i in batch):
                wanted = f"an object with a list {key!r}" if key else "a list"
                raise _shape(where, f"something other than {wanted} of objects")
            for item in batch:
                ident = item.get("id")
                if isinstance(ident, int) and not isinstance(ident, bool):
                    found[("id", ident)] = item
                else:
                    found[("at", len(found))] = item
        return list(found.values())

    def download(self, url: str, what: str, limit: int) -> bytes:
        """The body at ``url`` (an artifact's ``archive_download_url``; GitHub answers
        with a redirect to its blob store), refusing more than ``limit`` bytes."""
        if _origin(url) is None:
            raise GitHubError(f"{what}: its download URL is a malformed URL: not downloaded",
                              "check GITHUB_API_URL (is it GitHub's REST API?); "
                              "re-run the job")
        if _origin(url) != self._origin:
            raise GitHubError(f"{what}: its download URL is on {_host(url)}, not on "
                              f"GitHub's API ({_host(self._api)}): not downloaded; the "
                              "token goes to the API only",
                              "check GITHUB_API_URL (is it GitHub's REST API?); "
                              "re-run the job")
        return self._call("GET", url, what, what, limit=limit,
                          deadline=self._download_deadline).body

    # --- writing ------------------------------------------------------------------------

    def post(self, path: str, what: str, body: Mapping[str, Any]) -> None:
        self._call("POST", self._base + path, self.where(path), what, json=body)

    def patch(self, path: str, what: str, body: Mapping[str, Any]) -> None:
        self._call("PATCH", self._base + path, self.where(path), what, json=body)

    def where(self, path: str) -> str:
        """The endpoint as GitHub's documentation names it, for messages."""
        return f"/repos/{self.repository}{path}"

    # --- the one place requests are sent --------------------------------------------------

    def _call(self, method: str, url: str, path: str, what: str, *,
              limit: int | None = None, deadline: float | None = None,
              **kwargs: Any) -> Answer:
        """Send, retrying what GitHub says is worth retrying; the answer is a 2xx, its
        body read within ``deadline`` (and, given ``limit``, at most that many bytes)."""
        allowed = self._deadline if deadline is None else deadline
        # An attempt's deadline; one retried for want of an answer keeps the one before
        # (a silent GitHub took 5 read timeouts, 166 s), one GitHub asked to wait for
        # gets its own.
        ends = time.monotonic() + allowed
        for attempt in range(RETRIES + 1):
            try:
                answer = self._attempt(method, url, path, limit, ends, allowed, **kwargs)
            except _NoAnswer as exc:
                backoff = min(2.0 ** attempt, MAX_WAIT)
                if method != "GET" or attempt == RETRIES or \
                        time.monotonic() + backoff >= ends:
                    raise GitHubError(f"GitHub API {method} {path}: no answer from "
                                      f"{exc.host} ({exc.kind})",
                                      "check GITHUB_API_URL and the runner's network; "
                                      "re-run the job") from None
                self._sleep(backoff)
                continue
            if answer.ok:
                return answer
            wait = self._retry_wait(method, answer, attempt)
            if wait is None:
                raise self._failure(method, path, what, answer, attempt)
            self._sleep(wait)
            ends = time.monotonic() + allowed
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, method: str, url: str, path: str, limit: int | None, ends: float,
                 allowed: float, **kwargs: Any) -> Answer:
        """One request, its GET redirects followed (the token only to the API's origin),
        and its body read by ``ends``: past it, the socket is shut down, even while the
        status line and headers drip in."""
        for _ in range(MAX_REDIRECTS + 1):
            with self._deadlines.within(max(0.0, ends - time.monotonic())) as flight:
                try:
                    got = self._once(method, url, path, limit, ends, allowed, **kwargs)
                except _NoAnswer:
                    if flight.cut is None:
                        raise
                    raise _late(method, path, allowed) from None
            if isinstance(got, Answer):
                return got
            url = got  # a GET redirected: the new URL carries its query
            kwargs.pop("params", None)
        raise GitHubError(f"GitHub API {method} {path}: more than {MAX_REDIRECTS} "
                          "redirects", "check GITHUB_API_URL; re-run the job")

    def _once(self, method: str, url: str, path: str, limit: int | None, ends: float,
              allowed: float, **kwargs: Any) -> Answer | str:
        """One request: its answer, or the URL a GET is redirected to."""
        headers = self._token if _origin(url) == self._origin else {}
        try:
            response = self._session.request(method, url, headers=headers,
                                              timeout=READ_TIMEOUT, stream=True,
                                              allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise _NoAnswer(_hostname(url), type(exc).__name__) from None
        with response:
            location = response.headers.get("Location")
            if method == "GET" and response.status_code in REDIRECTS and location:
                joined = _join(url, location)  # its body is never read
                if joined is None or _origin(joined) is None:
                    raise GitHubError(f"GitHub API {method} {path}: GitHub redirected "
                                      "to a malformed URL: not followed",
                                      "re-run the job; if it persists, GitHub or a "
                                      "proxy is answering wrongly")
                return joined
            ok = response.ok
            body = _read(response, url, path, method, ends, allowed,
                         limit if ok else CHUNK, truncate=not ok)
            if ok and limit is not None and len(body) > limit:
                raise GitHubError(f"{path} is larger than {limit} bytes; not read",
                                  "raise --max-artifact-size if the plan is that big")
            return Answer(response.status_code, response.headers, body)

    def _retry_wait(self, method: str, answer: Answer,
                    attempt: int) -> float | None:
        """How long to wait before sending again, or None not to."""
        limited = _rate_limited(answer)
        if not (limited or answer.status >= 500) or attempt == RETRIES:
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

    def _failure(self, method: str, path: str, what: str, answer: Answer,
                 attempt: int) -> GitHubError:
        status = answer.status
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


class _NoAnswer(Exception):
    def __init__(self, host: str | None, kind: str) -> None:
        super().__init__(host, kind)
        self.host, self.kind = host, kind


def _read(response: requests.Response, url: str, path: str, method: str, ends: float,
          allowed: float, limit: int | None, truncate: bool) -> bytes:
    """The body as it arrives, a chunk at a time (``read1`` returns what one read
    brings, not a full chunk), until ``ends``; past ``limit`` bytes it stops (the caller
    refuses, or, ``truncate``, keeps the start: an error's words)."""
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # urllib3 < 2.3 has no read1
    body = bytearray()
    try:
        while True:
            if time.monotonic() > ends:
                raise _late(method, path, allowed)
            chunk = read(CHUNK, decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if limit is not None and len(body) > limit:
                return bytes(body[:limit]) if truncate else bytes(body)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise _NoAnswer(_hostname(url), type(exc).__name__) from None


def _late(method: str, path: str, allowed: float) -> GitHubError:
    return GitHubError(f"GitHub API {method} {path}: GitHub did not answer in time (not "
                       f"done after {allowed:g} s)", SLOW_HINT)


def _join(base: str, link: str) -> str | None:
    """``link`` read against ``base``, or None when either is not a URL."""
    try:
        return urljoin(base, link)
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port; None when ``url`` is not a URL (``http://[::1``, a port
    that is not one)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), port or {"https": 443, "http": 80}.get(scheme)


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _host(url: str) -> str:
    """Where ``url`` points, host and port, without the rest (it may be signed)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "a malformed URL"
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "an unnamed host"
    return f"{host}:{port}" if port else host


def _rate_limited(answer: Answer) -> bool:
    if answer.status == 429:
        return True
    return answer.status == 403 and (
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


def _message(answer: Answer) -> str:
    try:
        said = json.loads(answer.body).get("message")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return f": {str(said)[:200]}" if said else ""


def _json(answer: Answer, method: str, path: str) -> Any:
    kind = answer.headers.get("Content-Type", "").split(";")[0].strip() or "untyped"
    try:
        return json.loads(answer.body)
    except RecursionError:
        raise _shape(path, "JSON nested too deeply to read") from None
    except ValueError:
        raise GitHubError(f"GitHub API {method} {path} answered HTTP {answer.status} with "
                          f"{kind} that is not JSON: something other than GitHub's API "
                          "answered (a proxy or a captive portal?)",
                          "check GITHUB_API_URL and the runner's proxy settings; "
                          "re-run the job") from None


def _shape(path: str, found: str) -> GitHubError:
    return GitHubError(f"GitHub API GET {path} answered {found}, not what the endpoint "
                       "documents",
                       "check GITHUB_API_URL (is it GitHub's REST API?); re-run the job")
