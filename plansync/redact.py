"""URLs made safe to print, log or store: ``safe_url`` is the one place that decides.

A URL from the environment or a setting (a CI run's ``BUILD_URL``, a proxy, a state or
endpoint URL) may carry credentials, so none is shown or saved before it went through
``safe_url``, which

- replaces the userinfo (``user:password@``; the user part alone can be a token) by
  ``***@``;
- replaces the value of every query parameter whose name looks secret (it contains
  ``pass``, ``pwd``, ``secret``, ``token``, ``key``, ``sig``, ``credential``, ``auth`` or
  ``session``, ignoring case and punctuation: ``password``, ``access_token``,
  ``X-Amz-Signature``, ``X-Amz-Credential``, ``api-key``...) by ``***``, keeping its name
  so that the reader sees one was there;
- cleans a parameter value that is itself a URL the same way (``endpoint_url=...``);
- drops the fragment (it never reaches a server, and OAuth puts tokens there).

Anything it cannot take apart as ``scheme://host...`` (no scheme or host, brackets that
do not close) comes back as ``UNPARSABLE``, never as itself: a value that cannot be
parsed cannot be cleaned. A port that is not one (``:99999``) shows as ``BAD_PORT``, and
nothing after it. The path is kept as it is; userinfo is what RFC 3986 says it is (a
``/``, ``?`` or ``#`` in a password must be percent-encoded, or the host ends there).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

UNPARSABLE = "<a URL that cannot be parsed>"
HIDDEN = "***"
BAD_PORT = "<not a port>"
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth|session")


def safe_url(url: str) -> str:
    """``url`` without its credentials (see the module's docstring); never raises."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # brackets that do not close (newer Pythons: a bad port too)
        return UNPARSABLE
    if not parts.scheme or not host:
        return UNPARSABLE
    shown = (f"{HIDDEN}@" if "@" in parts.netloc else "") + \
        (f"[{host}]" if ":" in host else host)
    try:
        port = parts.port
    except ValueError:  # where the authority ends is in doubt: show no more than this
        return f"{parts.scheme}://{shown}:{BAD_PORT}"
    netloc = shown + (f":{port}" if port is not None else "")
    query = urlencode([(name, _safe_value(name, value)) for name, value in pairs],
                      safe="/:@,*", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _safe_value(name: str, value: str) -> str:
    if _SECRET_NAME.search(re.sub(r"[^a-z0-9]", "", name.lower())):
        return HIDDEN
    if value.startswith("//"):  # scheme-relative: an authority, maybe with userinfo
        return safe_url("x:" + value)[2:]
    if "@" in value and "://" not in value:
        return HIDDEN  # user:password@host, or an address: not ours to show
    return safe_url(value) if "://" in value else value


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")


def safe_text(text: str) -> str:
    """``text`` (another library's message) with every URL in it made safe_url."""
    return _URL_IN_TEXT.sub(lambda found: safe_url(found[0]), text)
