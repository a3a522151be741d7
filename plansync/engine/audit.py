"""The audit trail kept in the state (State.history): picking records out of it, and
moving old ones to an archive file.

An archive is JSON Lines: each record's JSON form as the state holds it
(state.audit_document), one per line, appended; `state history --archive-before` writes
it, and any JSON Lines reader (or `jq`) reads it back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from plansync.engine.state import Audit, audit_document, parse_time
from plansync.errors import PlansyncError
from plansync.folders import NotARegularFile, open_regular

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day(text: str) -> date:
    """A UTC day written YYYY-MM-DD. Raises ValueError."""
    if not _DAY.fullmatch(text):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return date.fromisoformat(text)


def sent(audit: Audit) -> datetime:
    """When ``audit``'s write was sent, in UTC. A time that cannot be read (a hand edit)
    is an error naming the record: an audit filter must not drop records silently."""
    try:
        return parse_time(audit.at)
    except (ValueError, OverflowError):
        raise PlansyncError(f"history record {audit.id} (plan {audit.plan}) has a time that "
                            f"cannot be read: {audit.at!r}",
                            "restore the state from a copy (plansync state push)") from None


def select(history: Iterable[Audit], plan_id: str | None = None, since: date | None = None,
           until: date | None = None, user: str | None = None) -> list[Audit]:
    """The records of plan ``plan_id``, sent by ``user``, from day ``since`` to day
    ``until`` (both included, UTC; None: any), oldest first. (The state keeps them in
    the order their outcomes were settled: answers come back in any order.)"""
    picked = [audit for audit in history
              if (plan_id is None or audit.plan == plan_id)
              and (user is None or audit.by.get("user") == user)
              and (since is None or sent(audit).date() >= since)
              and (until is None or sent(audit).date() <= until)]
    return sorted(picked, key=sent)


def split(history: Sequence[Audit], before: date) -> tuple[list[Audit], list[Audit]]:
    """(the records sent before day ``before``, the others), each in order."""
    older = [audit for audit in history if sent(audit).date() < before]
    return older, [audit for audit in history if sent(audit).date() >= before]


def append_archive(path: Path, records: Sequence[Audit]) -> None:
    """Append ``records`` to the archive at ``path`` (created 0600), one JSON line each,
    and fsync it: durable when this returns. A new archive is created 0600 (an audit
    trail is not for every user of the machine). A symlink or anything but a regular file
    there is refused; so is an archive whose last line is torn (ends without a newline),
    rather than gluing a record onto it."""
    lines = b"".join(json.dumps(audit_document(audit), separators=(",", ":"),
                                ensure_ascii=False).encode("utf-8") + b"\n"
                     for audit in records)
    hint = "name a regular file (a new one, or an archive written by plansync)"
    created = not os.path.lexists(path)
    try:
        fd = open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW)
    except NotARegularFile as exc:
        raise PlansyncError(f"archive {path} is {exc.kind}, not a regular file", hint) from None
    except OSError as exc:
        kind = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a directory"}.get(
            exc.errno or 0)
        what = f"is {kind}, not a regular file" if kind else f"cannot be opened: {exc.strerror}"
        raise PlansyncError(f"archive {path} {what}", hint) from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            raise PlansyncError(f"archive {path} does not end with a whole line", hint)
        if size and not _an_archive(os.pread(fd, 1 << 16, 0).split(b"\n", 1)[0]):
            raise PlansyncError(f"archive {path} is not an archive of plansync's (its first "
                                "line is not an audit record); nothing was moved", hint)
        view = memoryview(lines)
        try:
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            # A full disk: the lines written cut off again, or the archive would end in
            # a torn line, which every later archive refuses.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    except OSError as exc:
        raise PlansyncError(f"archive {path} cannot be written: {exc.strerror}; nothing was "
                            "removed from the state", "free space or fix the file, then run "
                            "again (records already written are repeated, never lost)") from None
    finally:
        os.close(fd)
    if created:  # the new name itself made durable, before the state forgets the records
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _an_archive(first_line: bytes) -> bool:
    """Whether a file's first line is an audit record: an archive plansync wrote, not
    some other file (settings, another state) that records would be appended to."""
    try:
        record = json.loads(first_line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"at", "plan", "process_type"} <= set(record)
