"""The state lock: one apply at a time, and who holds it when it is taken.

An advisory ``flock`` on ``<state>.lock``, which the kernel releases if the holder dies
(even by SIGKILL), plus a JSON note in the file saying who holds it: lock id, user,
host, pid, operation, since when, and the CI run when there is one. A note left by a
holder that is gone is reported as stale and taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from plansync.engine.state import now
from plansync.errors import PlansyncError

POLL_SECONDS = 0.2


class LockError(PlansyncError):
    pass


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def ci_run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run this process belongs to, from the usual CI variables."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL", "BUILDKITE_BUILD_URL"):
        if environ.get(name):
            return environ[name]
    return None


def describe(note: Mapping[str, Any]) -> str:
    who = f"{note.get('user')}@{note.get('host')} pid {note.get('pid')}"
    text = (f"lock {note.get('id')} held by {who} for {note.get('operation')} "
            f"since {note.get('since')}")
    return text + (f" (CI run {note['ci_url']})" if note.get("ci_url") else "")


@contextlib.contextmanager
def hold(state_path: Path, operation: str, timeout: float = 0.0,
         warn: Any = None) -> Iterator[dict[str, Any]]:
    """Hold the lock for the duration of the block, waiting up to ``timeout`` seconds."""
    path = lock_path(state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                note = _read_note(path)
                raise LockError(f"the state is locked: {describe(note)}",
                                "wait for that run, retry with --lock-timeout, or if it is "
                                f"gone: plansync force-unlock {note.get('id')}") from None
            time.sleep(POLL_SECONDS)
            continue
        if not _same_file(fd, path):  # force-unlocked between our open and our flock
            os.close(fd)
            continue
        break
    previous = _read_note(path)
    if previous and warn is not None:
        warn(f"taking over a stale lock: {describe(previous)}; that process is gone")
    note = {"id": str(uuid.uuid4()), "user": getpass.getuser(), "host": socket.gethostname(),
            "pid": os.getpid(), "operation": operation, "since": now(),
            "ci_url": ci_run_url(os.environ)}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(note).encode())
    os.fsync(fd)
    try:
        yield note
    finally:
        if _same_file(fd, path):
            path.unlink(missing_ok=True)  # released cleanly: no note left behind
        os.close(fd)


def force_unlock(state_path: Path, lock_id: str) -> dict[str, Any]:
    """Remove a lock after checking its id, for a holder that cannot release it."""
    path = lock_path(state_path)
    note = _read_note(path)
    if not note:
        raise LockError(f"the state at {state_path} is not locked")
    if note.get("id") != lock_id:
        raise LockError(f"the lock's id is {note.get('id')}, not {lock_id}",
                        "copy the id from the error that named the lock")
    path.unlink(missing_ok=True)
    return note


def _read_note(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        note = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
