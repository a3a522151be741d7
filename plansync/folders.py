"""Folders plansync creates: its owner's only (0700); files it reads: regular ones only;
files it writes: whole or not at all.

They hold the state, its journal and lock note, plan files, imported specs and an
emulator's private keys: what customers' plans plansync manages is nobody else's
business on a shared machine. A folder that exists already is the user's and is left as
it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from plansync.errors import PlansyncError

MODE = 0o700
FILE_MODE = 0o600  # state, backup, journal, lock note and plans can name customers' plans
MOVE_AWAY = "move it away (plansync keeps a file of its own there) and run again"


def make_private(folder: Path) -> None:
    """``folder`` and every missing folder above it, each created 0700. (``mkdir -p``, and
    ``Path.mkdir(parents=True)``, give the parents the umask's default, often 0755.)"""
    missing = []
    for path in (folder, *folder.parents):
        if path.is_dir():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            path.mkdir(mode=MODE)
        except FileExistsError:
            # Made meanwhile by another process: its mode is that one's business.
            if not path.is_dir():  # a file in the way: say so, as mkdir -p does
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         str(path)) from None


# --- reading: regular files only ------------------------------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


class NotARegularFile(OSError):
    """A path plansync reads as a file names a FIFO, a device or a folder (``kind``)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(errno.EINVAL, "not a regular file (a named pipe, a device or a "
                         "folder)", str(path))
        self.kind = kind

    def __str__(self) -> str:
        return str(self.strerror)


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int:
    """A descriptor of the regular file at ``path`` (created 0600 with O_CREAT);
    NotARegularFile for anything else. Opened without blocking (a FIFO's open waits for a
    writer for ever, its read too, and /dev/zero never ends), then checked on the
    descriptor itself, so that nothing can be put in its place between the check and
    the use."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, FILE_MODE)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # a FIFO opened to write with no reader, a device
            raise
        raise NotARegularFile(path, "a named pipe (FIFO) or a device") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotARegularFile(path, next((kind for test, kind in _KINDS if test(mode)),
                                         "not a file"))
    os.set_blocking(fd, True)
    return fd


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at ``path``; NotARegularFile for anything else."""
    with os.fdopen(open_regular(path), "rb") as handle:
        return handle.read()


def open_own(path: Path, what: str, flags: int = os.O_RDONLY, hint: str = MOVE_AWAY) -> int:
    """open_regular for a file plansync keeps (``what``: "journal", "lock file"): anything
    else in its place is one error naming the path and what is there."""
    try:
        return open_regular(path, flags)
    except NotARegularFile as exc:
        raise PlansyncError(f"{what} path {path} is {exc.kind}, not a regular file",
                            hint) from None


def read_own(path: Path, what: str, hint: str = MOVE_AWAY) -> bytes:
    with os.fdopen(open_own(path, what, hint=hint), "rb") as handle:
        return handle.read()


# --- writing: all or nothing ----------------------------------------------------------

def write_all(fd: int, data: bytes) -> None:
    """All of ``data``: a write may take only part of it (a disk nearly full)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # no progress and no error: refused all the same
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file (0600) beside ``path`` in a private folder, fsync, rename over it, fsync
    the folder: a reader sees all of ``data`` or the file as it was, even after a crash."""
    make_private(path.parent)
    import tempfile  # only a command that writes a file pays its imports

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def cannot(doing: str, hint: str,
           errors: tuple[type[Exception], ...] = (OSError,)) -> Iterator[None]:
    """``errors`` in the block (a full disk, a folder in the way) become one error:
    "cannot DOING: why", and ``hint``."""
    try:
        yield
    except errors as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise PlansyncError(f"cannot {doing}: {reason}", hint) from None
