"""The GitHub client against the stand-in GitHub on loopback (real HTTP), with the sleep
injected: retries and their waits, pagination, answers that are not GitHub's, and the
words of each failure (plansync/gitops/github.py)."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from plansync.gitops.github import PERMISSIONS_HINT, GitHub, GitHubError
from tests.fake_github import BOT, REPO, TOKEN, FakeGitHub, serving


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serving(FakeGitHub()) as github:
        yield github


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeGitHub, waits: list[float]) -> GitHub:
    return GitHub(fake.url, REPO, TOKEN, sleep=waits.append, clock=lambda: 1_000_000.0)


API = "GitHub API GET /repos/acme/plans"


def pulls_path(sha: str = "merge1") -> str:
    return f"/commits/{sha}/pulls"


def test_5xx_is_retried_with_growing_waits_then_succeeds(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.merge("merge1", 7, "head1")
    fake.fault("/pulls", 502, times=3, headers={})
    assert [p["number"] for p in client.items(pulls_path(), "commit merge1")] == [7]
    assert waits == [1.0, 2.0, 4.0]


def test_5xx_that_persists_gives_up_after_a_bounded_number_of_attempts(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.fault("/pulls", 503, times=99)
    with pytest.raises(GitHubError) as caught:
        client.items(pulls_path(), "commit merge1")
    assert caught.value.message == (f"{API}{pulls_path()} failed: HTTP 503: "
                                    "fault 503 after 5 attempts")
    assert "githubstatus" in (caught.value.hint or "")
    assert len(waits) == 4 and len(fake.seen) == 5


def test_429_and_the_secondary_rate_limit_wait_as_retry_after_says(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.fault("/pulls", 429, headers={"Retry-After": "3"})
    fake.fault("/pulls", 403, headers={"Retry-After": "7"})
    assert client.items(pulls_path(), "commit merge1") == []
    assert waits == [3.0, 7.0]


def test_a_spent_rate_limit_waits_until_its_reset_when_that_is_soon(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.fault("/pulls", 403, headers={"X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": "1000020"})
    assert client.items(pulls_path(), "commit merge1") == []
    assert waits == [20.0]


def test_a_rate_limit_that_resets_in_an_hour_is_reported_at_once_without_a_permission_hint(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    reset = 1_000_000 + 3600
    fake.fault("/pulls", 403, headers={"X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": str(reset)})
    with pytest.raises(GitHubError) as caught:
        client.items(pulls_path(), "commit merge1")
    until = time.strftime("%H:%M:%S", time.gmtime(reset))
    assert caught.value.message == (f"{API}{pulls_path()}: the token's rate limit "
                                    f"is used up until {until} UTC (HTTP 403: fault 403)")
    assert caught.value.hint == "re-run the job once the limit resets"
    assert waits == []


def test_a_permission_403_is_not_retried_and_hints_at_permissions(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.fault("/actions/workflows", 403, headers={},
               body=b'{"message": "Resource not accessible by integration"}')
    with pytest.raises(GitHubError) as caught:
        client.get("/actions/workflows/plansync-plan.yml", "workflow plansync-plan.yml")
    assert caught.value.message == (f"{API}/actions/workflows/plansync-plan.yml "
                                    "was refused (HTTP 403: Resource not accessible by "
                                    "integration)")
    assert caught.value.hint == PERMISSIONS_HINT
    assert waits == [] and len(fake.seen) == 1


def test_a_404_says_what_was_not_found_without_the_permission_hint(client: GitHub) -> None:
    with pytest.raises(GitHubError) as caught:
        client.get("/actions/workflows/nope.yml", "workflow nope.yml")
    assert caught.value.message == ("GitHub has no workflow nope.yml (HTTP 404 for "
                                    "GET /repos/acme/plans/actions/workflows/nope.yml)")
    assert "permissions" not in (caught.value.hint or "")


def test_a_post_that_failed_with_5xx_is_not_sent_again(
        fake: FakeGitHub, client: GitHub, waits: list[float]) -> None:
    fake.fault("POST /repos/acme/plans/issues/7/comments", 502, headers={})
    with pytest.raises(GitHubError, match="HTTP 502"):
        client.post("/issues/7/comments", "pull request #7", {"body": "hello"})
    assert waits == [] and fake.comments == {}
    fake.fault("POST /repos/acme/plans/issues/7/comments", 429)  # not done: sent again
    client.post("/issues/7/comments", "pull request #7", {"body": "hello"})
    assert [c["body"] for c in fake.comments[7]] == ["hello"]


def test_lists_follow_the_link_header_to_the_last_page(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.page_size = 2
    for number in range(7):
        fake.comment(3, f"comment {number}", BOT)
    found = client.items("/issues/3/comments", "pull request #3")
    assert [c["body"] for c in found] == [f"comment {n}" for n in range(7)]
    assert sum("/issues/3/comments" in path for _, path in fake.seen) == 4


def test_a_200_with_an_html_body_is_a_clear_error_naming_the_endpoint(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.fault("/pulls", 200, headers={"Content-Type": "text/html"},
               body=b"<html><body>Sign in to the proxy</body></html>")
    with pytest.raises(GitHubError) as caught:
        client.items(pulls_path(), "commit merge1")
    assert caught.value.message == (f"{API}{pulls_path()} answered HTTP 200 with "
                                    "text/html that is not JSON: something other than "
                                    "GitHub's API answered (a proxy or a captive portal?)")


def test_json_of_the_wrong_shape_is_a_clear_error(fake: FakeGitHub, client: GitHub) -> None:
    fake.fault("/pulls", 200, headers={}, body=b'{"message": "not a list"}')
    with pytest.raises(GitHubError, match=r"answered something other than a list of "
                                          "objects, not what the endpoint documents"):
        client.items(pulls_path(), "commit merge1")


def test_the_token_goes_to_the_api_only_never_to_the_blob_host(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.plan_run(101, "head1", b'{"plan": 1}', pull=7)
    url = fake.artifacts[101][0]["archive_download_url"]
    archive = client.download(url, "the plan artifact of run 101", 10_000)
    assert archive == fake.archives[1010]
    assert fake.token_leaked == []
    assert any(path.startswith("/blobs/1010.zip") for _, path in fake.seen)


def test_a_download_larger_than_the_limit_is_not_read_to_the_end(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.plan_run(101, "head1", b"x" * 100_000, pull=7)
    url = fake.artifacts[101][0]["archive_download_url"]
    with pytest.raises(GitHubError, match="the plan artifact of run 101 is larger than 100 "
                                          "bytes; not read"):
        client.download(url, "the plan artifact of run 101", 100)


def test_no_answer_at_all_says_where_and_never_shows_the_token(waits: list[float]) -> None:
    client = GitHub("http://127.0.0.1:9", REPO, TOKEN, sleep=waits.append)
    with pytest.raises(GitHubError) as caught:
        client.get("", "repository acme/plans")
    assert caught.value.message == ("GitHub API GET /repos/acme/plans: no answer from 127.0.0.1 "
                                    "(ConnectionError)")
    assert TOKEN not in str(caught.value) and len(waits) == 4


def test_json_nested_deeper_than_python_reads_is_a_clear_error_naming_the_endpoint(
        fake: FakeGitHub, client: GitHub) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    fake.fault("/pulls", 200, headers={}, body=deep)
    with pytest.raises(GitHubError) as caught:
        client.items(pulls_path(), "commit merge1")
    assert caught.value.message == (f"{API}{pulls_path()} answered JSON nested too deeply "
                                    "to read, not what the endpoint documents")
    fake.fault("/pulls", 404, headers={}, body=deep)  # an error's body is only read for words
    with pytest.raises(GitHubError, match=r"^GitHub has no commit merge1 \(HTTP 404"):
        client.items(pulls_path(), "commit merge1")


DRIPPED = b'{"message": "' + b"x" * 212 + b'"}'  # 227 bytes, a byte every few tenths


def test_an_answer_that_drips_is_given_up_at_the_deadline_not_a_read_timeout_later(
        fake: FakeGitHub, waits: list[float]) -> None:
    assert len(DRIPPED) == 227
    client = GitHub(fake.url, REPO, TOKEN, sleep=waits.append, deadline=1.0)
    fake.fault("GET /repos/acme/plans$", 200, body=DRIPPED, drip=0.2)
    started = time.monotonic()
    with pytest.raises(GitHubError) as caught:
        client.get("", "repository acme/plans")
    assert time.monotonic() - started < 3.0
    assert caught.value.message == (f"{API}: GitHub did not answer in time (not done "
                                    "after 1 s)")
    assert "re-run the job" in (caught.value.hint or "")
    assert len(fake.seen) == 1 and waits == []  # not asked again: the wait stays bounded


def test_the_artifact_download_has_its_own_longer_deadline(
        fake: FakeGitHub, waits: list[float]) -> None:
    client = GitHub(fake.url, REPO, TOKEN, sleep=waits.append, deadline=0.5,
                    download_deadline=1.5)
    fake.plan_run(101, "head1", b'{"plan": 1}', pull=7)
    url = fake.artifacts[101][0]["archive_download_url"]
    fake.fault("/actions/artifacts/1010/zip", 200, body=b"x" * 10, drip=0.4)  # 4 s > 1.5
    started = time.monotonic()
    with pytest.raises(GitHubError, match=r"^GitHub API GET the plan artifact of run 101: "
                                          r"GitHub did not answer in time \(not done after "
                                          r"1.5 s\)\n"):
        client.download(url, "the plan artifact of run 101", 10_000)
    assert 1.0 < time.monotonic() - started < 3.5
    fake.fault("/actions/artifacts/1010/zip", 200, body=b"x" * 3, drip=0.4)  # 1.2 s: in time
    assert client.download(url, "the plan artifact of run 101", 10_000) == b"xxx"


def test_a_redirect_whose_body_drips_is_not_read(fake: FakeGitHub, waits: list[float]) -> None:
    client = GitHub(fake.url, REPO, TOKEN, sleep=waits.append, download_deadline=1.0)
    fake.plan_run(101, "head1", b'{"plan": 1}', pull=7)
    url = fake.artifacts[101][0]["archive_download_url"]
    fake.fault("/actions/artifacts/1010/zip", 302, body=b"r" * 50, drip=0.2,
               headers={"Location": f"{fake.blob_url}/blobs/1010.zip?sig=s3cr3t"})
    started = time.monotonic()
    assert client.download(url, "the plan artifact of run 101", 10_000) == fake.archives[1010]
    assert time.monotonic() - started < 1.0
    assert fake.token_leaked == []


def test_a_next_page_on_another_origin_is_refused_and_never_sent_the_token(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.page_size = 1
    for number in range(3):
        fake.comment(3, f"comment {number}", BOT)
    fake.link_url = fake.blob_url  # localhost:PORT, not 127.0.0.1:PORT
    with pytest.raises(GitHubError) as caught:
        client.items("/issues/3/comments", "pull request #3")
    port = fake.url.rsplit(":", 1)[1]
    assert caught.value.message == (f"{API}/issues/3/comments: its next page is on "
                                    f"localhost:{port}, not on GitHub's API "
                                    f"(127.0.0.1:{port}): not followed; the token goes to "
                                    "the API only")
    assert "page=" not in str(caught.value)  # never the URL itself
    assert [host for host, _ in fake.authorized] == [f"127.0.0.1:{port}"]
    assert not any(path.startswith("/repos/") and "page=2" in path for _, path in fake.seen)


def test_an_archive_url_on_another_origin_is_refused_and_never_sent_the_token(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.plan_run(101, "head1", b'{"plan": 1}', pull=7)
    url = fake.artifacts[101][0]["archive_download_url"].replace(fake.url, fake.blob_url)
    with pytest.raises(GitHubError) as caught:
        client.download(url + "?sig=s3cr3t", "the plan artifact of run 101", 10_000)
    port = fake.url.rsplit(":", 1)[1]
    assert caught.value.message == (f"the plan artifact of run 101: its download URL is on "
                                    f"localhost:{port}, not on GitHub's API "
                                    f"(127.0.0.1:{port}): not downloaded; the token goes to "
                                    "the API only")
    assert "s3cr3t" not in str(caught.value) and fake.seen == [] and fake.authorized == []


def test_a_redirect_within_the_api_keeps_the_token(fake: FakeGitHub, client: GitHub) -> None:
    fake.fault("GET /repos/acme/plans$", 301,
               headers={"Location": f"{fake.url}/repos/acme/plans?moved=1"})
    assert client.get("", "repository acme/plans")["default_branch"] == "main"
    assert [path for _, path in fake.authorized] == ["/repos/acme/plans",
                                                     "/repos/acme/plans?moved=1"]


def test_an_item_listed_twice_as_pages_shift_is_one_item(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.page_size = 1
    for number in range(2):
        fake.comment(3, f"comment {number}", BOT)
    fake.comments[3].insert(1, dict(fake.comments[3][0]))  # pushed down onto page 2
    found = client.items("/issues/3/comments", "pull request #3")
    assert [c["body"] for c in found] == ["comment 0", "comment 1"]


def test_a_next_page_link_that_is_not_a_url_is_a_clear_error(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.page_size = 1
    for number in range(2):
        fake.comment(3, f"comment {number}", BOT)
    fake.link_url = "http://[::1"  # the Link: <http://[::1/repos/...?page=2>
    with pytest.raises(GitHubError) as caught:
        client.items("/issues/3/comments", "pull request #3")
    assert caught.value.message == (f"{API}/issues/3/comments: its next page is a "
                                    "malformed URL: not followed")


def test_an_archive_url_that_is_not_a_url_is_a_clear_error_without_the_url(
        fake: FakeGitHub, client: GitHub) -> None:
    with pytest.raises(GitHubError) as caught:
        client.download("http://[::1/zip?sig=s3cr3t", "the plan artifact of run 101", 10)
    assert caught.value.message == ("the plan artifact of run 101: its download URL is a "
                                    "malformed URL: not downloaded")
    assert "s3cr3t" not in str(caught.value) and fake.seen == []


def test_a_redirect_to_a_malformed_url_is_a_clear_error_without_the_url(
        fake: FakeGitHub, client: GitHub) -> None:
    fake.plan_run(101, "head1", b'{"plan": 1}', pull=7)
    url = fake.artifacts[101][0]["archive_download_url"]
    fake.fault("/actions/artifacts/1010/zip", 302,
               headers={"Location": "http://[::1/zip?sig=s3cr3t"})
    with pytest.raises(GitHubError) as caught:
        client.download(url, "the plan artifact of run 101", 10_000)
    assert caught.value.message == ("GitHub API GET the plan artifact of run 101: GitHub "
                                    "redirected to a malformed URL: not followed")
    assert "s3cr3t" not in str(caught.value) and fake.token_leaked == []


@pytest.mark.parametrize("api_url", ["http://[::1", "api.github.com", "ftp://example.com",
                                     "https://", "http://example.com:99999"])
def test_an_api_url_that_is_not_an_http_url_is_refused_at_once(
        api_url: str, waits: list[float]) -> None:
    with pytest.raises(GitHubError) as caught:
        GitHub(api_url, REPO, TOKEN, sleep=waits.append)
    assert caught.value.message.startswith(f"GITHUB_API_URL {api_url!r} is not a URL")
    assert waits == []


class _Stalls(socketserver.StreamRequestHandler):
    """Reads the request; then says nothing (``silent``), or drips a status line and a
    long header a byte every 0.2 s: every read succeeds well within the read timeout."""

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        if self.server.silent:  # type: ignore[attr-defined]
            time.sleep(5)
            return
        head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * 150 + b"\r\nContent-Length: 2\r\n\r\n{}"
        for byte in head:
            try:
                self.connection.sendall(bytes([byte]))
            except OSError:
                return  # cut off: what the deadline is for
            time.sleep(0.2)


@pytest.mark.parametrize("silent", [False, True], ids=["headers drip", "silent"])
def test_a_call_ends_at_its_deadline_whatever_is_being_read(
        silent: bool, waits: list[float]) -> None:
    """Before: the status line and headers were bounded by the read timeout alone (a
    header dripping at one byte per 29 s would last days), and a silent GitHub was asked
    five times, 30 s each."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Stalls) as server:
        server.daemon_threads = True
        server.silent = silent  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        client = GitHub(f"http://127.0.0.1:{server.server_address[1]}", REPO, TOKEN,
                        sleep=waits.append, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(GitHubError, match="did not answer in time"):
            client.get("", "repository acme/plans")
        took = time.monotonic() - started
        server.shutdown()
    assert took < 4, took
