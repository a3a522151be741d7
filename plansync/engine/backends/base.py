"""What every state backend shares, written once: the serial rule of a write, waiting
for the lock, the lease and fencing, and force-unlock's rules.

A backend is a subclass that implements only what its store does differently (as
Terraform's statemgr: storage, then one lock *attempt*):

    storage   read(); put_state(state, expected): one conditional write
    journal   append(record); records(); clear_journal()
    lock      try_lock(note): one attempt; release(hold); holder(); break_lock(holder);
              and, to prove it still holds the lock, fence_generation() (the generation
              now) or, for a lock that is a lease (``lease`` seconds), renew(hold)
    workspace create_workspace(); delete_workspace(); workspaces()
    also      close(); where, workspace, shared; for a store behind a
              client, ``failures`` (what the client raises when the store or the network
              fails) and ``check`` (what to check then): ``with self._errors(doing)``
              turns them into one error

While the lock is held, a backend's own stores refuse to store anything once a later
generation exists (``generation`` is this run's, ``check_generation`` says it is lost).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from plansync.engine import lock
from plansync.engine.journal import Record
from plansync.engine.lock import LockNote
from plansync.engine.state import State
from plansync.errors import LockError, PlansyncError

Warn = Callable[[str], None]

# Every error of a store that failed ends so: a run stopped by it loses nothing.
SETTLES = "nothing done is lost: the next apply settles it from the journal"
# The hints for a state or journal something else wrote, in a store of plansync's only.
RESTORE = "restore it with plansync state push"
FOREIGN = "it was written by something else; inquire the plans it names, then delete it"


class StaleStateError(PlansyncError):
    """Someone else wrote the state since it was read: nothing was written."""


@dataclasses.dataclass
class Hold:
    """A lock's holder: its note, what the backend needs to renew, release or break its
    lock (a file descriptor, a database session, an ETag), and (found by ``holder``) a
    sign of life the backend sees, which a force-unlock refusal names."""

    note: LockNote
    token: Any = None
    alive: str | None = None
    lease: lock.Lease | None = None  # renewing it, while this run holds a lease


@dataclasses.dataclass
class Taken:
    """A lock attempt that took the lock (its generation raised, in ``hold.note``)."""

    hold: Hold
    stale: LockNote | None = None  # the note of a holder that was gone, replaced
    gone: str = "that process is gone"  # how that is known, for the warning
    # The store cannot refuse an old holder's state write by generation (S3): rewrite the
    # state, so that its compare-and-set fails.
    rewrite_state: bool = False


class StateBackend(abc.ABC):
    """One workspace's state (compare-and-set on its serial), its journal (each record
    durable before the request it announces is sent) and its lock (with its holder's
    note). The engine and the commands see only the public methods."""

    where: str  # how messages name this state (never with a secret in it)
    workspace: str
    shared: ClassVar[bool]  # seen by other machines (a local file is not: CI forgets it)
    lease: float | None = None  # seconds: the lock is a lease its holder renews
    failures: ClassVar[tuple[type[Exception], ...]] = ()  # the store's client's errors
    check: ClassVar[str] = ""  # what to check when one is raised

    _hold: Hold | None = None  # while this backend holds the lock

    # --- what each backend implements ------------------------------------------------

    @abc.abstractmethod
    def read(self) -> State | None:
        """The state as last written, or None when there is none yet."""

    @abc.abstractmethod
    def put_state(self, state: State, expected: int) -> int | None:
        """Store ``state`` if the stored serial is still ``expected`` (0: none stored), in
        one atomic step; None when stored, else the serial found. While this run holds
        the lock, as append and clear_journal: nothing once a later generation exists
        (LockLostError)."""

    @abc.abstractmethod
    def append(self, record: Record) -> None:
        """Add a journal record; durable when this returns."""

    @abc.abstractmethod
    def records(self) -> list[Record]:
        """The journal, in the order appended."""

    @abc.abstractmethod
    def clear_journal(self) -> None:
        """Only after a write() that holds every record has succeeded."""

    @abc.abstractmethod
    def try_lock(self, note: LockNote) -> Taken | LockNote:
        """Take the lock once, without waiting, raising its generation: Taken, or the
        note of the run that holds it."""

    @abc.abstractmethod
    def release(self, hold: Hold) -> None:
        """Give back the lock this run took (a holder gone meanwhile: nothing to do)."""

    @abc.abstractmethod
    def holder(self) -> Hold | None:
        """The lock's holder as stored, with any sign of life; None when it is free."""

    @abc.abstractmethod
    def break_lock(self, holder: Hold) -> None:
        """Take the lock away from ``holder``, raising the generation (fencing it)."""

    def fence_generation(self) -> int:
        """The lock's generation now (a backend whose lock is no lease)."""
        raise NotImplementedError

    def renew(self, hold: Hold) -> None:
        """Renew the lease ``hold`` holds (a backend whose lock is a lease); raises
        lock.Superseded if it is no longer this run's."""
        raise NotImplementedError

    @abc.abstractmethod
    def workspaces(self) -> list[str]:
        """The workspaces here: those with a state, and those created empty."""

    @abc.abstractmethod
    def create_workspace(self) -> bool:
        """Make this workspace exist, empty (a mark: a state is bound to a merchant, and
        the first apply writes it); False if it already existed."""

    @abc.abstractmethod
    def delete_workspace(self) -> None:
        """Remove this workspace: its state (and any copy of it), journal and mark. Only
        while holding its lock; the lock's generation stays, so a holder fenced before
        stays fenced should the name be used again."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- written once for all --------------------------------------------------------

    def write(self, state: State, as_serial: int | None = None) -> State:
        """Save ``state`` as serial + 1, if the stored serial is still ``state.serial``
        (0: none stored); else raise StaleStateError. Returns the saved state.
        ``as_serial`` (passed only by state push and migrate) saves it as that serial,
        which must be higher than ``state.serial``: a copy keeps its source's serial (never
        lower: a reader of the stored serial must see every write as newer)."""
        serial = state.serial + 1 if as_serial is None else as_serial
        if serial <= state.serial:
            raise ValueError(f"serial {as_serial} is not after {state.serial}")
        saved = dataclasses.replace(state, serial=serial)
        found = self.put_state(saved, state.serial)
        if found is not None:
            raise StaleStateError(
                f"the state in {self.where} changed since it was read (serial {found}, "
                f"expected {state.serial}); nothing was written",
                "another run wrote it: run again")
        return saved

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """The store's ``failures`` in the block become one error (``failed``)."""
        try:
            yield
        except self.failures as exc:
            raise self.failed(doing, exc) from None

    def failed(self, doing: str, exc: Exception) -> PlansyncError:
        """The error for a store that failed (its server, the network): what this run was
        doing, why, and what to check."""
        return PlansyncError(f"cannot {doing} the state in {self.where}: {self.reason(exc)}",
                             f"{self.check}; {SETTLES}")

    def reason(self, exc: Exception) -> str:
        """Why ``exc`` was raised, in its first line (never with a secret in it)."""
        return first_line(exc)

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0,
             warn: Warn | None = None) -> Iterator[LockNote]:
        """Hold the workspace's lock for the block, waiting up to ``timeout`` seconds;
        raise LockError naming the holder if it cannot be had. Taking it raises its
        generation (the note's); while it is held, append, write and clear_journal raise
        LockLostError once a later generation exists."""
        note = LockNote.new(operation, self.lease)
        deadline = time.monotonic() + timeout
        while True:
            started = time.monotonic()
            taken = self.try_lock(note)
            if isinstance(taken, Taken):
                break
            if time.monotonic() >= deadline:
                raise lock.locked(taken)
            time.sleep(lock.POLL_SECONDS)
        if taken.stale is not None and warn is not None:
            warn(f"taking over a stale lock: {lock.describe(taken.stale)}; {taken.gone}")
        hold = taken.hold
        if self.lease is not None:
            hold.lease = lock.Lease(lambda: self.renew(hold), self.lease, started)
        self._hold = hold
        try:
            if taken.rewrite_state:  # the old holder's next compare-and-set fails
                found = self.read()
                if found is not None:
                    self.write(found)
            yield hold.note
        finally:
            self._hold = None
            if hold.lease is not None:
                hold.lease.stop()
            self.release(hold)

    @property
    def generation(self) -> int | None:
        """The lock's generation while this backend holds it; None otherwise (commands
        that store without the lock)."""
        hold = self._hold
        return None if hold is None else hold.note.generation

    def check_lease(self) -> None:
        """While the lock is held: raise LockLostError unless this run provably still
        holds it. Called immediately before every write sent to the gateway."""
        hold = self._hold
        if hold is None:
            return
        if hold.lease is None:
            self.check_generation(self.fence_generation())
            return
        why = hold.lease.check()
        if why is not None:
            raise lock.lost(self.where, why)

    def check_generation(self, found: int) -> None:
        """Raise LockLostError if ``found``, the lock's generation now, is not the one
        this run holds."""
        held = self.generation
        if held is not None and found != held:
            raise lock.lost(self.where, f"the lock was broken or taken over (generation "
                                        f"{found}; this run held {held})")

    def force_unlock(self, lock_id: str, force: bool = False) -> LockNote:
        """Break a lock whose holder cannot release it, after checking its id; refused
        (LockError) while the holder shows signs of life, unless ``force``. Breaking it
        raises the generation: the old holder is fenced."""
        holder = self.holder()
        if holder is None:
            raise LockError(f"the state in {self.where} is not locked")
        note = holder.note
        if note.id != lock_id:
            raise LockError(f"the lock's id is {note.id or 'unreadable'}, not {lock_id}",
                            "copy the id from the error that named the lock")
        if not force and holder.alive:
            raise lock.refuse_live(note, holder.alive, lock_id)
        if not force and lock.alive_here(note):
            raise lock.refuse_live(note, f"pid {note.pid} is running on this host", lock_id)
        self.break_lock(holder)
        return note


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
