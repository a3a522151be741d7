"""The apply journal: an intent before every write, an outcome after it.

JSON lines beside the state file, each fsynced before the write it announces is sent.
Every run folds the whole journal into the state (intents become pending writes,
outcomes settle them), writes the state, and only then clears the journal: so the
state alone always holds what the journal said. A line without its newline was torn by
a crash mid-write (its write was never sent): it is dropped, and cut off before the next
record is appended, so no record is ever glued onto it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from plansync.engine.state import FILE_MODE, Entry, Intent, Outcome, State, now, writing
from plansync.engine.state import read as state_read
from plansync.engine.state import write as state_write
from plansync.errors import PlansyncError

Record = Intent | Outcome


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None

    def read(self) -> list[Record]:
        """Every whole record, in order. A torn last line is left out; any other line
        that is not a journal record is an error naming the file and line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except IsADirectoryError:
            raise PlansyncError(f"journal path {self.path} is a directory",
                                "move it away; plansync keeps a file there") from None
        except OSError as exc:
            raise PlansyncError(f"journal {self.path} cannot be read: {exc.strerror}",
                                "make it readable and run again") from None
        lines = data.split(b"\n")[:-1]  # whatever follows the last newline is torn
        return [_record(line, self.path, number) for number, line in enumerate(lines, 1)]

    def intend(self, intent: Intent) -> None:
        self._append({"kind": "intent", **dataclasses.asdict(intent)})

    def settle(self, intent: Intent, result: str, entry: Entry | None) -> Outcome:
        outcome = Outcome(intent.key, intent.plan, result, entry, now())
        self._append({"kind": "outcome", **dataclasses.asdict(outcome)})
        return outcome

    def clear(self) -> None:
        """Only after a state write that holds every record here has succeeded."""
        with self._lock, writing(self.path, "journal"):
            self._close()
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock, writing(self.path, "journal"):
            if self._fd is None:
                self._fd = self._open()
            os.write(self._fd, line)
            os.fsync(self._fd)

    def _open(self) -> int:
        """Open for appending, first cutting off a torn last line (see the docstring)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            if size:
                tail = os.pread(fd, min(size, 1 << 16), max(0, size - (1 << 16)))
                if not tail.endswith(b"\n"):
                    data = self.path.read_bytes()
                    os.ftruncate(fd, data.rfind(b"\n") + 1)
                    os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def path_for(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".journal")


def current(state_path: Path, merchant_id: str, endpoint: str) -> State:
    """The state as the last run left it: the state file with its journal folded in
    (read only; ``apply`` also writes the fold and clears the journal)."""
    return fold(state_read(state_path, merchant_id, endpoint), Journal(path_for(state_path)).read())


def checkpoint(state_path: Path, journal: Journal, state: State) -> State:
    """Write the state (which holds everything journalled), then clear the journal."""
    saved = state_write(state_path, state)
    journal.clear()
    return saved


def fold(state: State, records: Iterable[Record]) -> State:
    """The state with the journal's records applied in order: what a crash kept from it."""
    for record in records:
        state = state.with_intent(record) if isinstance(record, Intent) \
            else state.with_outcome(record)
    return state


_OUTCOME_TYPES = {"key": str, "plan": str, "result": str, "at": str}
_ENTRY_FIELDS = {f.name for f in dataclasses.fields(Entry)}


def _record(line: bytes, path: Path, number: int) -> Record:
    try:
        data = json.loads(line)
        kind = data.pop("kind", None) if isinstance(data, dict) else None
        if kind == "intent":
            return Intent.from_dict(data)
        if kind == "outcome" and _outcome_shape(data):
            entry = data.pop("entry")
            return Outcome(entry=Entry(**entry) if entry else None, **data)
    except (ValueError, TypeError, KeyError, RecursionError):
        pass
    raise PlansyncError(
        f"{path}:{number}: not a plansync journal record",
        "the journal was edited or written by something else; restore it from a copy, or "
        "inquire the plans it names and move it away once you know their state")


def _outcome_shape(data: dict[str, Any]) -> bool:
    entry = data.get("entry")
    return (set(data) == {*_OUTCOME_TYPES, "entry"}
            and all(isinstance(data[k], t) for k, t in _OUTCOME_TYPES.items())
            and (entry is None or (isinstance(entry, dict) and set(entry) == _ENTRY_FIELDS
                                   and isinstance(entry["applied"], dict)
                                   and isinstance(entry["seen"], dict)
                                   and isinstance(entry["cancelled"], bool))))
