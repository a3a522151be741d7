"""safe_url: no credential of a URL survives it, whatever the URL, and it never raises."""

from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from plansync.redact import BAD_PORT, UNPARSABLE, safe_url

# Secrets always hold a letter G-Z in upper case; no other part of a generated URL does
# (and percent-encoding writes only 0-9A-F), so finding one in the output is a leak.
_MARK = "GHJKLMNPQRSTUVWXYZ"
_USERINFO = _MARK + "abc019-._~!$&'()*+,;=:"  # RFC 3986 userinfo characters ("%" below)
_PLAIN = "abcdefxyz0189-._~/"


@st.composite
def _secret(draw: st.DrawFn, alphabet: str = _USERINFO) -> str:
    text = draw(st.text(alphabet=alphabet, min_size=0, max_size=12))
    where = draw(st.integers(0, len(text)))
    secret = text[:where] + draw(st.sampled_from(_MARK)) + text[where:]
    # Sometimes percent-encoded, as a URL must carry a delimiter in a password.
    return quote(secret, safe="") if draw(st.booleans()) else secret


_HOST = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,6}){0,2}",
                                fullmatch=True),
                  st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]"))
_NAMES = ["password", "PASSWD", "pass", "token", "access_token", "secret", "client_secret",
          "key", "api-key", "signature", "sig", "X-Amz-Signature", "X-Amz-Credential",
          "X-Amz-Security-Token", "auth", "sessionid"]


@st.composite
def _urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A URL, and the secrets it holds."""
    secrets: list[str] = []
    userinfo = ""
    kind = draw(st.sampled_from(["none", "user", "password", "both"]))
    if kind != "none":
        user = draw(_secret(_USERINFO.replace(":", ""))) if kind != "password" else ""
        password = draw(_secret()) if kind != "user" else None
        secrets += [s for s in (user, password) if s]
        userinfo = user + (f":{password}" if password is not None else "") + "@"
    port = draw(st.one_of(st.none(), st.integers(0, 65535)))
    query = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            value = draw(_secret(_USERINFO.replace("&", "").replace("=", "")))
            query.append(f"{quote(draw(st.sampled_from(_NAMES)))}={value}")
            secrets.append(value)
        else:
            query.append(f"{draw(st.sampled_from(['region', 'job', 'q']))}="
                         f"{draw(st.text(alphabet=_PLAIN, max_size=8))}")
    fragment = draw(st.one_of(st.none(), _secret()))
    if fragment:
        secrets.append(fragment)
    url = (f"{draw(st.sampled_from(['http', 'https', 's3', 'postgres']))}://{userinfo}"
           f"{draw(_HOST)}{'' if port is None else f':{port}'}"
           f"{draw(st.text(alphabet=_PLAIN, max_size=12).map(lambda p: '/' + p))}"
           f"{'?' + '&'.join(query) if query else ''}"
           f"{'' if fragment is None else '#' + fragment}")
    return url, secrets


def _leaks(secret: str, shown: str) -> bool:
    for kept in (UNPARSABLE, *(f"{quote(name)}=" for name in _NAMES)):  # not secrets
        shown = shown.replace(kept, "")
    return secret in shown or unquote(secret) in shown


@given(_urls())
@example(("http://user:pxS3cret@127.0.0.1:99999", ["pxS3cret", "user"]))
@example(("https://jenkins:s3cr3tTok@ci.example/job/7/", ["s3cr3tTok", "jenkins"]))
def test_no_credential_survives(case: tuple[str, list[str]]) -> None:
    url, secrets = case
    shown = safe_url(url)
    for secret in secrets:
        assert not _leaks(secret, shown), (url, shown)


@given(st.text())
def test_anything_at_all_comes_back_as_text(text: str) -> None:
    assert isinstance(safe_url(text), str)


@given(st.text(alphabet=_PLAIN + ":@?#&=[]%", max_size=40), _secret())
def test_a_password_in_a_url_made_of_noise_never_survives(noise: str, secret: str) -> None:
    for url in (f"https://u:{secret}@{noise}", f"{noise}://u:{secret}@h/{noise}",
                f"https://h/?password={quote(secret, safe='')}&{noise}"):
        shown = safe_url(url)
        assert not _leaks(secret, shown), (url, shown)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://jenkins:s3cr3tTok@ci.example/job/7/", "https://***@ci.example/job/7/"),
    ("https://ghp_0123@github.com/o/r", "https://***@github.com/o/r"),
    ("http://user:pxS3cret@127.0.0.1:99999/x?token=1", f"http://***@127.0.0.1:{BAD_PORT}"),
    ("https://github.com/o/r/actions/runs/1", "https://github.com/o/r/actions/runs/1"),
    ("https://h/x?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1&region=x#access_token=zz",
     "https://h/x?X-Amz-Signature=***&X-Amz-Credential=***&region=x"),
    ("s3://b/p?endpoint_url=http://AKIA:s3cret@127.0.0.1:9", "s3://b/p?endpoint_url=http://***@127.0.0.1:9"),
    ("postgres://ops@db:5432/plansync?Password=x&sslmode=require",
     "postgres://***@db:5432/plansync?Password=***&sslmode=require"),
    ("http://[::1]:8700/a", "http://[::1]:8700/a"),
    ("user:pass@host/path", UNPARSABLE),  # no scheme://: where the password ends is a guess
    ("http://[::1", UNPARSABLE),
    ("", UNPARSABLE),
    ("job 42", UNPARSABLE),
])
def test_what_is_shown(url: str, shown: str) -> None:
    assert safe_url(url) == shown
