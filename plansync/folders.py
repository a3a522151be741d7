"""Folders plansync creates: its owner's only (0700).

They hold the state, its journal and lock note, plan files, imported specs and an
emulator's private keys: what customers' plans plansync manages is nobody else's
business on a shared machine. A folder that exists already is the user's and is left as
it is.
"""

from __future__ import annotations

import errno
import os
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
