"""The state lock's note, shared by every backend: who holds the lock, and how to say it.

Each backend keeps its own lock (a kernel flock, a PostgreSQL advisory lock, an S3 object
created only if absent) and stores this note beside it: lock id, user, host, pid,
operation, since when, the CI run when there is one, and the lock's generation.

Fencing: every time the lock changes hands its generation goes up by one, and the
backend refuses journal appends and state writes from an older generation. A holder
that was frozen (SIGSTOP, a paused VM) or cut off while another run took the lock over
therefore cannot store anything; and because the gateway cannot be fenced, the applier
asks the backend, immediately before each write it sends, whether the lock is still
provably held (``StateBackend.check_lease``).
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from plansync.engine.state import now
from plansync.errors import HolderAliveError, LockError, LockLostError
from plansync.printable import printable
from plansync.redact import safe_url

POLL_SECONDS = 0.2


def new_note(operation: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "user": getpass.getuser(), "host": socket.gethostname(),
            "pid": os.getpid(), "operation": operation, "since": now(),
            "ci_url": ci_run_url(os.environ)}


def ci_run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run this process belongs to, from the usual CI variables, without the
    credentials such a URL may hold (Jenkins' BUILD_URL can be ``user:token@``): it is
    shown in lock errors and kept in the state's history."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return safe_url(f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/"
                        f"{environ['GITHUB_RUN_ID']}")
    for name in ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL", "BUILDKITE_BUILD_URL"):
        if environ.get(name):
            return safe_url(environ[name])
    return None


def lost(where: str, why: str) -> LockLostError:
    """The error a fenced holder stops with."""
    return LockLostError(
        f"this run no longer holds the lock on the state in {where}: {why}; it sent no "
        "write after that and stores nothing more",
        "another run may be applying now: let it finish, then run plansync plan again "
        "(writes this run sent are in the journal; the next apply settles them)")


def alive_here(note: Mapping[str, Any]) -> bool:
    """Whether the note's process runs on this host (its pid exists here)."""
    if note.get("host") != socket.gethostname() or not isinstance(note.get("pid"), int):
        return False
    try:
        os.kill(note["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def refuse_live(note: Mapping[str, Any], sign: str, lock_id: str) -> HolderAliveError:
    """force-unlock of a holder that shows signs of life: refused unless forced (the
    command says how)."""
    return HolderAliveError(f"the lock's holder shows signs of life ({sign}): "
                            f"{describe(note)}", held_by=lock_id)


def describe(note: Mapping[str, Any]) -> str:
    if not all(note.get(k) for k in ("id", "user", "host", "pid", "operation", "since")):
        return "a lock held by an unknown process (its note cannot be read)"
    who = f"{note['user']}@{note['host']} pid {note['pid']}"
    text = f"lock {note['id']} held by {who} for {note['operation']} since {note['since']}"
    # safe_url again: a note an older plansync wrote keeps the URL as it was given.
    return text + (f" (CI run {safe_url(note['ci_url'])})" if note.get("ci_url") else "")


def clean(note: Any) -> dict[str, Any]:
    """A note as read back from storage, safe to show (or empty if it is no note)."""
    if not isinstance(note, dict):
        return {}
    return {str(k): v if v is None or isinstance(v, int | float) else printable(str(v))
            for k, v in note.items()}


def locked(note: Mapping[str, Any]) -> LockError:
    """The error for a lock held by ``note``'s run; its hint names the lock id (the
    command that waits for locks adds how to wait)."""
    lock_id = str(note.get("id") or "LOCK_ID")
    return LockError(f"the state is locked: {describe(note)}",
                     f"wait for that run, or if it is gone: plansync force-unlock {lock_id}",
                     held_by=lock_id)


def check_id(note: Mapping[str, Any], lock_id: str, where: str) -> None:
    """Refuse a force-unlock whose id is not the lock's."""
    if not note:
        raise LockError(f"the state in {where} is not locked")
    if note.get("id") != lock_id:
        raise LockError(f"the lock's id is {note.get('id', 'unreadable')}, not {lock_id}",
                        "copy the id from the error that named the lock")
