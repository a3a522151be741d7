"""The state lock's note and the rules every backend's lock follows.

Each backend keeps its own lock (a kernel flock, a PostgreSQL advisory lock, an S3 object
created only if absent) and stores a ``LockNote`` beside it: lock id, user, host, pid,
operation, since when, the CI run when there is one, the lock's generation, and (for a
lock that is a lease) the lease. Waiting for a lock, renewing a lease and fencing are
written once, in ``backends/base.py``, on top of each backend's single lock attempt.

Fencing: every time the lock changes hands its generation goes up by one, and the
backend refuses journal appends and state writes from an older generation. A holder
that was frozen (SIGSTOP, a paused VM) or cut off while another run took the lock over
therefore cannot store anything; and because the gateway cannot be fenced, the applier
asks the backend, immediately before each write it sends, whether the lock is still
provably held (``StateBackend.check_lease``).
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from plansync.engine.state import now
from plansync.errors import HolderAliveError, LockError, LockLostError, PlansyncError
from plansync.printable import printable
from plansync.redact import safe_url

POLL_SECONDS = 0.2
_SHOWN = ("id", "user", "host", "pid", "operation", "since", "ci_url")


@dataclasses.dataclass(frozen=True)
class LockNote:
    """Who holds a lock. Read back from storage, where anything may have been put: every
    field may be missing (None), and text is made printable."""

    id: str | None = None
    user: str | None = None
    host: str | None = None
    pid: int | str | None = None  # an int in every note plansync writes
    operation: str | None = None
    since: str | None = None
    ci_url: str | None = None
    lease: float | None = None  # seconds, when the lock is a lease its holder renews (S3)
    generation: int | None = None  # known once the lock is taken
    released: bool = False  # S3 keeps the note object when the lock is released ...
    broken: bool = False  # ... or broken by force-unlock (both keep the generation)

    @classmethod
    def new(cls, operation: str, lease: float | None = None) -> LockNote:
        return cls(str(uuid.uuid4()), getpass.getuser(), socket.gethostname(), os.getpid(),
                   operation, now(), ci_run_url(os.environ), lease)

    @classmethod
    def read(cls, stored: Any) -> LockNote | None:
        """A note as read back from storage, safe to show; None if it is no note."""
        if not isinstance(stored, dict) or not stored:
            return None

        def text(key: str) -> str | None:
            value = stored.get(key)
            return None if value is None else printable(str(value))

        pid = stored.get("pid")
        generation = _number(stored.get("generation"))
        return cls(id=text("id"), user=text("user"), host=text("host"),
                   pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else text("pid"),
                   operation=text("operation"), since=text("since"), ci_url=text("ci_url"),
                   lease=_number(stored.get("lease")),
                   generation=None if generation is None else int(generation),
                   released=bool(stored.get("released")), broken=bool(stored.get("broken")))

    def stored(self) -> dict[str, Any]:
        """The note as every backend stores it (JSON; PostgreSQL's jsonb): the holder's
        fields, then the lease and the generation when there are."""
        return {**{key: getattr(self, key) for key in _SHOWN},
                **{key: value for key in ("lease", "generation")
                   if (value := getattr(self, key)) is not None}}


def _number(value: Any) -> float | None:
    """A finite number from a note (which another program may have written), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


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


def describe(note: LockNote) -> str:
    if not all((note.id, note.user, note.host, note.pid, note.operation, note.since)):
        return "a lock held by an unknown process (its note cannot be read)"
    who = f"{note.user}@{note.host} pid {note.pid}"
    text = f"lock {note.id} held by {who} for {note.operation} since {note.since}"
    # safe_url again: a note an older plansync wrote keeps the URL as it was given.
    return text + (f" (CI run {safe_url(note.ci_url)})" if note.ci_url else "")


def lost(where: str, why: str) -> LockLostError:
    """The error a fenced holder stops with."""
    return LockLostError(
        f"this run no longer holds the lock on the state in {where}: {why}; it sent no "
        "write after that and stores nothing more",
        "another run may be applying now: let it finish, then run plansync plan again "
        "(writes this run sent are in the journal; the next apply settles them)")


def alive_here(note: LockNote) -> bool:
    """Whether the note's process runs on this host (its pid exists here)."""
    if note.host != socket.gethostname() or not isinstance(note.pid, int):
        return False
    try:
        os.kill(note.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def refuse_live(note: LockNote, sign: str, lock_id: str) -> HolderAliveError:
    """force-unlock of a holder that shows signs of life: refused unless forced (the
    command says how)."""
    return HolderAliveError(f"the lock's holder shows signs of life ({sign}): "
                            f"{describe(note)}", held_by=lock_id)


def locked(note: LockNote) -> LockError:
    """The error for a lock held by ``note``'s run; its hint names the lock id (the
    command that waits for locks adds how to wait)."""
    lock_id = note.id or "LOCK_ID"
    return LockError(f"the state is locked: {describe(note)}",
                     f"wait for that run, or if it is gone: plansync force-unlock {lock_id}",
                     held_by=lock_id)


class Superseded(Exception):
    """A lease renewal refused because the note is no longer this holder's."""


class Lease:
    """Renews a lock that is a lease every quarter lease while it is held, and says
    whether the holder can prove it still holds it: a renewal that started less than
    three quarters of a lease ago succeeded, or one made now does. A renewal refused
    because the note changed (``Superseded``) means the lock was broken or taken over:
    lost for good; one that fails otherwise (a PlansyncError: the store unreachable) is
    tried again, and the lease runs out unless one works."""

    def __init__(self, renew: Callable[[], None], lease: float, taken_at: float) -> None:
        self._renew_once = renew
        self._valid_for = lease * 3 / 4  # a quarter for latency and clock rates
        self._valid_until = taken_at + self._valid_for
        self._lost: str | None = None
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, args=(lease / 4,),
                                        name="plansync-lease", daemon=True)
        self._thread.start()

    def _renew(self, period: float) -> None:
        while not self._stop.wait(period) and self._lost is None:
            self.renew()

    def renew(self) -> None:
        with self._renewing:
            if self._lost is not None:
                return
            started = time.monotonic()
            try:
                self._renew_once()
            except Superseded:
                self._lost = "the lock was broken or taken over by another run"
                return
            except PlansyncError:
                return  # not renewed: the lease runs out unless a later renewal works
            self._valid_until = max(self._valid_until, started + self._valid_for)

    def check(self) -> str | None:
        """None while the lock is provably held; else why not."""
        if self._lost is None and time.monotonic() >= self._valid_until:
            self.renew()  # after a freeze or an outage: still ours if the note is
        if self._lost is not None:
            return self._lost
        if time.monotonic() >= self._valid_until:
            return "its lease could not be renewed in time"
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
