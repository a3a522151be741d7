"""The state lock: one apply at a time, and who holds it when it is taken.

An advisory ``flock`` on ``<state>.lock``, which the kernel releases if the holder dies
(even by SIGKILL), plus a JSON note in the file saying who holds it: lock id, user,
host, pid, operation, since when, and the CI run when there is one. The note is complete
before the path names it (see ``_take``). A note left by a holder that is gone is
reported as stale and taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from plansync.engine.state import now, writing
from plansync.errors import PlansyncError
from plansync.printable import printable

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
    if not all(note.get(k) for k in ("id", "user", "host", "pid", "operation", "since")):
        return "a lock held by an unknown process (its note cannot be read)"
    who = f"{note['user']}@{note['host']} pid {note['pid']}"
    text = f"lock {note['id']} held by {who} for {note['operation']} since {note['since']}"
    return text + (f" (CI run {note['ci_url']})" if note.get("ci_url") else "")


@contextlib.contextmanager
def hold(state_path: Path, operation: str, timeout: float = 0.0,
         warn: Any = None) -> Iterator[dict[str, Any]]:
    """Hold the lock for the duration of the block, waiting up to ``timeout`` seconds."""
    path = lock_path(state_path)
    note = {"id": str(uuid.uuid4()), "user": getpass.getuser(), "host": socket.gethostname(),
            "pid": os.getpid(), "operation": operation, "since": now(),
            "ci_url": ci_run_url(os.environ)}
    with writing(path, "lock file"):
        fd = _take(path, note, time.monotonic() + timeout, warn)
    try:
        yield note
    finally:
        if _same_file(fd, path):
            path.unlink(missing_ok=True)  # released cleanly: no note left behind
        os.close(fd)


def _take(path: Path, note: dict[str, Any], deadline: float, warn: Any) -> int:
    """The lock file's descriptor, flocked, once ``path`` names our note.

    The note is written whole to a private temp file and flocked before ``path`` names
    it (a hard link, or a rename over a stale note): a reader of ``path`` never sees a
    note half written, and whoever opens ``path`` finds it locked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        os.write(fd, json.dumps(note).encode())
        os.fsync(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this file yet
        while True:
            try:
                os.link(tmp, path)
                return fd
            except FileExistsError:
                pass
            if _taken_over(path, tmp, warn):
                return fd
            if time.monotonic() >= deadline:
                held = _read_note(path)
                if not held and not path.exists():
                    continue  # released between our link and our read: try again
                raise LockError(f"the state is locked: {describe(held)}",
                                "wait for that run, retry with --lock-timeout, or if it is "
                                f"gone: plansync force-unlock {held.get('id', 'LOCK_ID')}")
            time.sleep(POLL_SECONDS)
    except BaseException:
        os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _taken_over(path: Path, tmp: str, warn: Any) -> bool:
    """If the note at ``path`` belongs to a holder that is gone (its flock released),
    replace it with ours; False while someone holds it."""
    try:
        old = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # released meanwhile: try the link again
    try:
        try:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _same_file(old, path):
            return False  # replaced between our open and our flock
        previous = _read_note(path)
        os.replace(tmp, path)  # still holding the old note's flock: nobody slips in
        if warn is not None:
            warn(f"taking over a stale lock: {describe(previous)}; that process is gone")
        return True
    finally:
        os.close(old)


def force_unlock(state_path: Path, lock_id: str) -> dict[str, Any]:
    """Remove a lock after checking its id, for a holder that cannot release it."""
    path = lock_path(state_path)
    note = _read_note(path)
    if not path.exists():
        raise LockError(f"the state at {state_path} is not locked")
    if note.get("id") != lock_id:
        raise LockError(f"the lock's id is {note.get('id', 'unreadable')}, not {lock_id}",
                        "copy the id from the error that named the lock")
    path.unlink(missing_ok=True)
    return note


def _read_note(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        note = json.loads(text) if text else {}
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(note, dict):
        return {}
    return {str(k): v if v is None or isinstance(v, int) else printable(str(v))
            for k, v in note.items()}


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
