"""Where the state, its journal and its lock live: the StateBackend seam (base.py).

Every backend keeps, per workspace (one merchant and endpoint each), one state with
compare-and-set on its serial, a journal whose records are durable before a request is
sent, and a lock with its holder's note. The engine sees only StateBackend's public
methods; the names of files, tables and objects belong to each backend. Backends:

    local       a path (default .plansync/state.json): files, a kernel flock
    postgres    postgres://user@host/db: tables, a session advisory lock
    s3          s3://bucket/prefix: objects, conditional writes (If-Match, If-None-Match)
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from plansync.engine.backends.base import StaleStateError, StateBackend
from plansync.engine.journal import fold
from plansync.engine.state import State, bound
from plansync.errors import ConfigError
from plansync.printable import quoted
from plansync.workspaces import DEFAULT as DEFAULT_WORKSPACE
from plansync.workspaces import check_name

__all__ = ["DEFAULT_WORKSPACE", "StaleStateError", "StateBackend", "checkpoint", "current",
           "open_backend"]

# A state URL's scheme → the backend that keeps it (imported only when used: each pulls
# in its client library). A new backend is its module and its line here.
SCHEMES = {
    "postgres": "plansync.engine.backends.postgres:PostgresBackend",
    "postgresql": "plansync.engine.backends.postgres:PostgresBackend",
    "s3": "plansync.engine.backends.s3:S3Backend",
}


def open_backend(location: str, workspace: str | None,
                 environ: Mapping[str, str]) -> StateBackend:
    """The backend a ``--state`` value names: a path, or a postgres:// or s3:// URL
    (whose ``?workspace=`` a --workspace flag overrides)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in location):  # no path or URL holds one
        raise ConfigError(f"state {quoted(location)} holds a control character",
                          "use a path, postgres://user@host/db or s3://bucket/prefix")
    scheme, query = "", {}
    if "://" in location:
        try:
            parts = urlsplit(location)
            parts.port  # noqa: B018 - refuses a port that is not a number, here
        except ValueError:  # postgres://u@[::1/db: "Invalid IPv6 URL"
            # Neither the URL nor the parser's words about it are echoed (a password with
            # a '/' in it ends the host early: the parser quotes it as the port).
            raise ConfigError(f"state URL {location.split('://')[0][:20]}://... is not a URL "
                              "(a host in brackets that do not close, or a port that is "
                              "not a number)", "use a path, postgres://user@host/db or "
                              "s3://bucket/prefix; percent-encode a '/', '?' or '#' in a "
                              "password") from None
        scheme, query = parts.scheme, parse_qs(parts.query)
    name = check_name(workspace or (query.get("workspace") or [DEFAULT_WORKSPACE])[0])
    if scheme in SCHEMES:
        module, backend = SCHEMES[scheme].split(":")
        opened: StateBackend = getattr(import_module(module), backend)(location, name, environ)
        return opened
    if scheme:
        raise ConfigError(f"state {scheme}:// is not a backend plansync knows",
                          "use a path, postgres://user@host/db or s3://bucket/prefix")
    from pathlib import Path

    from plansync.engine.backends.local import LocalBackend

    path = Path(location)
    # (A folder by its name; in a workspace also one that is there: DIR would become
    # workspaces/NAME/DIR, a state file beside the folder's parent. In the default
    # workspace the state file's own checks name it.)
    if not path.name or location.endswith(("/", "/.", "/..")) or path.name in (".", "..") \
            or (name != DEFAULT_WORKSPACE and path.is_dir()):
        raise ConfigError(f"state {quoted(location)} names a folder, not a file",
                          "name the state file: a path such as .plansync/state.json")
    return LocalBackend(path, name)


def current(backend: StateBackend, merchant_id: str, endpoint: str) -> State:
    """The state as the last run left it: stored state with its journal folded in."""
    return fold(bound(backend.read(), merchant_id, endpoint, backend.where),
                backend.records())


def checkpoint(backend: StateBackend, state: State) -> State:
    """Write the state (which holds everything journalled), then clear the journal."""
    saved = backend.write(state)
    backend.clear_journal()
    return saved
