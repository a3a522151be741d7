"""Folders plansync creates: its owner's only (0700); files it reads: regular ones only.

They hold the state, its journal and lock note, plan files, imported specs and an
emulator's private keys: what customers' plans plansync manages is nobody else's
business on a shared machine. A folder that exists already is the user's and is left as
it is.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MODE = 0o700


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


class NotARegularFile(OSError):
    """A path plansync reads as a file names a FIFO, a device or a folder."""

    def __str__(self) -> str:
        return str(self.strerror)


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at ``path``; NotARegularFile for anything else,
    found without blocking (a FIFO's open and read wait for a writer for ever, and
    /dev/zero never ends) and checked on the descriptor itself, so that nothing can be
    put in its place between the check and the read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file (a named pipe, a device "
                                  "or a folder)", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)
