"""The local backend: the state, its journal and its lock as files beside each other.

    state.json          the state, written atomically (temp file, fsync, rename)
    state.json.backup   the version before it
    state.json.journal  JSON lines, each fsynced before the write it announces is sent
    state.json.lock     the holder's note, under a kernel flock
    state.json.fence    the lock's generation: raised by every holder that takes the
                        lock and by force-unlock; appends and writes check it under a
                        shared flock, so a fenced holder cannot store anything
    workspaces/NAME/state.json (and its companions)   a workspace other than "default"
    workspaces/NAME/state.json.workspace              its mark, made by workspace new

A kernel flock is released when its holder dies, even by SIGKILL, so the next run reports
the note as stale and takes over; a frozen holder keeps it, so only force-unlock --force
takes its lock away (and fences it). Every file is readable by its owner only, and every
folder plansync creates for them (.plansync/, workspaces/NAME/) is 0700.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from plansync.engine import lock
from plansync.engine.backends import DEFAULT_WORKSPACE
from plansync.engine.backends.base import SETTLES, Hold, StateBackend, Taken
from plansync.engine.journal import Record, decode_all, encode
from plansync.engine.lock import LockNote
from plansync.engine.state import State, document, from_document
from plansync.errors import LockError, PlansyncError
from plansync.folders import cannot, make_private, open_own, read_own, write_all, write_atomically

FENCE_WAIT = 10.0  # seconds a takeover waits for an append or state write to finish


class LocalBackend(StateBackend):
    shared = False

    def __init__(self, path: Path, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.base = path
        self.workspace = workspace
        self.path = path if workspace == DEFAULT_WORKSPACE else \
            path.parent / "workspaces" / workspace / path.name
        self.where = f"state file {self.path}"
        self._journal = self.path.with_name(self.path.name + ".journal")
        self._lock = self.path.with_name(self.path.name + ".lock")
        self._backup = self.path.with_name(self.path.name + ".backup")
        self._fence = self.path.with_name(self.path.name + ".fence")
        self._mark = self.path.with_name(self.path.name + ".workspace")
        self._append_lock = threading.Lock()
        self._fd: int | None = None

    # --- state -------------------------------------------------------------------------

    def read(self) -> State | None:
        path, backup = self.path, self._backup
        hint = f"restore it from {backup}, or move it away"
        try:
            data = json.loads(read_own(path, "state", "point the state setting at a file, "
                                       "or move it away").decode("utf-8"))
        except FileNotFoundError:
            if backup.exists():  # never a silent empty state: it would forget cancellations
                raise PlansyncError(
                    f"state file {path} is missing, but its backup {backup} exists",
                    f"restore it (cp {backup} {path}) after checking it is the latest "
                    "state, then run again") from None
            return None
        except RecursionError:
            raise PlansyncError(f"state file {path} is nested too deeply to be a plansync "
                                "state", hint) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise PlansyncError(f"state file {path} cannot be read: {exc}", hint) from None
        return from_document(data, f"state file {path}", f"restore it from {backup}")

    def put_state(self, state: State, expected: int) -> int | None:
        with self._fenced():
            stored = self.read()
            if (stored.serial if stored else 0) != expected:
                return stored.serial if stored else 0
            text = json.dumps(document(state), indent=2) + "\n"
            with writing(self.path, "state file"):
                if self.path.exists():  # a copy, so that a state file exists at every instant
                    write_atomically(self._backup, read_own(self.path, "state"))
                write_atomically(self.path, text.encode("utf-8"))
        return None

    # --- journal -----------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Durable when it returns: the whole line written and fsynced. Else the error
        names the journal, and the file is as it was: no part of the line is left to
        glue the next record onto, nor a whole line for a write that was never sent."""
        line = (json.dumps(encode(record), separators=(",", ":")) + "\n").encode("utf-8")
        with self._append_lock, writing(self._journal, "journal"):
            if self._fd is None:
                self._fd = self._open_journal()
            fd = self._fd
            size = os.fstat(fd).st_size  # where this line starts: only we append (the lock)
            try:
                with self._fenced():  # only the write: a holder frozen here delays a takeover
                    write_all(fd, line)
                os.fsync(fd)
            except OSError:
                # A full disk (ENOSPC, EDQUOT) or a failing one (EIO). After a failed
                # fsync the kernel may drop the pages and a later fsync succeed without
                # them, so the line is cut off even when all of it was written.
                # If cutting fails too, the next open cuts a torn line (its descriptor is
                # closed here for that); a whole line left is a write never sent, which
                # the next run holds as pending and settles by inquiry.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                self._close_journal()
                raise

    def records(self) -> list[Record]:
        """Every whole record. A last line without its newline was torn by a crash
        mid-write (its write was never sent): left out. Any other line that is not a
        record is an error naming the file and line."""
        try:
            data = read_own(self._journal, "journal")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PlansyncError(f"journal {self._journal} cannot be read: {exc.strerror}",
                                "make it readable and run again") from None
        lines = enumerate(data.split(b"\n")[:-1], 1)
        return decode_all(
            ((f"{self._journal}:{number}", line) for number, line in lines), json.loads,
            "the journal was edited or written by something else; restore it from a copy, "
            "or inquire the plans it names and move it away once you know their state")

    def clear_journal(self) -> None:
        with self._append_lock, self._fenced(), writing(self._journal, "journal"):
            self._close_journal()
            self._journal.unlink(missing_ok=True)

    def _open_journal(self) -> int:
        """Open for appending, first cutting off a torn last line: no record is ever
        glued onto it."""
        make_private(self._journal.parent)
        fd = open_own(self._journal, "journal", os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = os.pread(fd, size, 0)
                os.ftruncate(fd, data.rfind(b"\n") + 1)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _close_journal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- lock --------------------------------------------------------------------------

    def try_lock(self, note: LockNote) -> Taken | LockNote:
        """Make the lock path name our note, flocked, then raise the generation.

        The note is written whole to a private temp file and flocked before the path
        names it (a hard link, or a rename over the note of a holder that is gone): a
        reader never sees a note half written, and whoever opens the path finds it locked."""
        path = self._lock
        with writing(path, "lock file"):
            make_private(path.parent)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
            try:
                os.write(fd, json.dumps(note.stored()).encode())
                os.fsync(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this file yet
                stale: LockNote | None = None
                while True:
                    try:
                        os.link(tmp, path)
                        break
                    except FileExistsError:
                        stale = self._take_over(tmp)
                    if stale is not None:
                        break
                    held = _read_note(path)
                    if path.exists():  # else released between our link and our read: again
                        os.close(fd)
                        return held or LockNote()
            except BaseException:
                os.close(fd)
                raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        hold = Hold(note, fd)
        try:
            with writing(self._fence, "lock's fence file"):
                hold.note = dataclasses.replace(note, generation=self._raise_generation())
        except BaseException:
            self.release(hold)
            raise
        return Taken(hold, stale)

    def _take_over(self, tmp: str) -> LockNote | None:
        """If the note at the lock path belongs to a holder that is gone (its flock
        released), replace it with ours and return it; None while someone holds it."""
        try:
            old = open_own(self._lock, "lock file")
        except FileNotFoundError:
            return None  # released meanwhile: try the link again
        try:
            if not _try_flock(old) or not _same_file(old, self._lock):
                return None  # held, or replaced between our open and our flock
            previous = _read_note(self._lock) or LockNote()
            os.replace(tmp, self._lock)  # still holding the old note's flock: nobody slips in
            return previous
        finally:
            os.close(old)

    def release(self, hold: Hold) -> None:
        if _same_file(hold.token, self._lock):
            self._lock.unlink(missing_ok=True)  # released cleanly: no note left behind
        os.close(hold.token)

    def holder(self) -> Hold | None:
        note = _read_note(self._lock)
        if not self._lock.exists():
            return None
        return Hold(note or LockNote(), alive="its process still holds the file lock"
                    if _flocked(self._lock) else None)

    def break_lock(self, holder: Hold) -> None:
        with writing(self._fence, "lock's fence file"):
            self._raise_generation(holder.note)  # fences the holder before its lock goes
        self._lock.unlink(missing_ok=True)

    # --- fencing -----------------------------------------------------------------------

    def _raise_generation(self, holder: LockNote | None = None) -> int:
        """One more than the fence file's generation, stored: every holder before is
        fenced. Waits (a little) for an append or state write in progress to end."""
        fd = open_own(self._fence, "lock's fence file", os.O_RDWR | os.O_CREAT)
        try:
            deadline = time.monotonic() + FENCE_WAIT
            while not _try_flock(fd):
                if time.monotonic() >= deadline:
                    raise _storing(holder or LockNote())
                time.sleep(lock.POLL_SECONDS)
            generation = _generation_in(fd) + 1
            data = f"{generation}\n".encode()
            # Over the old number, never shorter: no moment shows an empty file.
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.ftruncate(fd, len(data))
            os.fsync(fd)
            return generation
        finally:
            os.close(fd)  # releases the flock

    @contextlib.contextmanager
    def _fenced(self) -> Iterator[None]:
        """While the lock is held, run the block only if no later holder exists, and keep
        any from taking the lock over until it is done (a shared flock on the fence)."""
        if self.generation is None:  # commands that store without the lock
            yield
            return
        try:
            fd = open_own(self._fence, "lock's fence file")
        except FileNotFoundError:
            raise lock.lost(self.where, f"its fence file {self._fence} is gone") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self.check_generation(_generation_in(fd))
            yield
        finally:
            os.close(fd)

    def fence_generation(self) -> int:
        try:
            return int(read_own(self._fence, "lock's fence file").decode("ascii") or 0)
        except (OSError, ValueError):
            raise lock.lost(self.where, f"its fence file {self._fence} cannot be read"
                            ) from None
        except PlansyncError as exc:  # something else was put in its place
            raise lock.lost(self.where, exc.message) from None

    # --- workspaces --------------------------------------------------------------------

    def workspaces(self) -> list[str]:
        names = [DEFAULT_WORKSPACE] if self.base.exists() else []
        folder = self.base.parent / "workspaces"
        marks = (self.base.name, self.base.name + ".workspace")
        if folder.is_dir():
            names += sorted(p.name for p in folder.iterdir()
                            if any((p / mark).exists() for mark in marks))
        return names

    def create_workspace(self) -> bool:
        if self.workspace == DEFAULT_WORKSPACE or self.path.exists():
            return False
        with writing(self._mark, "workspace's mark"):
            make_private(self._mark.parent)
            try:
                os.close(os.open(self._mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                return False
        return True

    def delete_workspace(self) -> None:
        with self._append_lock, self._fenced(), writing(self.path, "state file"):
            self._close_journal()
            for path in (self.path, self._backup, self._journal, self._mark):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._append_lock:
            self._close_journal()


def writing(path: Path, what: str) -> contextlib.AbstractContextManager[None]:
    """OSErrors while writing ``path`` become one clear error naming it (exit 1)."""
    return cannot(f"write the {what} {path}", "free disk space or make the folder writable "
                  f"(a directory in the way must be moved); {SETTLES}")


def _storing(note: LockNote) -> LockError:
    pid = "PID" if note.pid is None else note.pid
    return LockError(
        f"the lock's holder is stopped in the middle of storing a record: {lock.describe(note)}",
        f"resume it (kill -CONT {pid}) or end it (kill {pid}), then run this again")


def _generation_in(fd: int) -> int:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def _flocked(path: Path) -> bool:
    """Whether some process holds the kernel flock of ``path``."""
    try:
        fd = open_own(path, "lock file")
    except FileNotFoundError:
        return False
    try:
        return not _try_flock(fd)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    """Take the kernel flock of ``fd`` if nobody holds it (kept until ``fd`` is closed)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_note(path: Path) -> LockNote | None:
    try:
        return LockNote.read(json.loads(read_own(path, "lock file").decode("utf-8") or "{}"))
    except (OSError, ValueError, RecursionError):
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
