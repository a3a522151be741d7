"""Group commit, for a journal whose every append is a request of its own (S3's)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable


class GroupCommit:
    """Many threads' appends, written together: while one object is being written, the
    appends that arrive wait and go in the next one, so 16 workers journalling at once
    cost a few requests, not 16. Each submit returns when its own data is written (or
    raises what writing it raised). Hand-written: a dozen lines around a Condition, which
    no library we use offers."""

    def __init__(self, write: Callable[[list[bytes]], None]) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False

    def submit(self, data: bytes) -> None:
        ticket = _Ticket(data)
        with self._changed:
            self._queue.append(ticket)
            while self._writing and not ticket.done:
                self._changed.wait()
            if not ticket.done:  # this thread writes the batch, its own data included
                self._writing = True
                batch, self._queue = self._queue, []
        if not ticket.done:
            error: BaseException | None = None
            try:
                self._write([t.data for t in batch])
            except BaseException as exc:  # handed to every waiter below
                error = exc
            with self._changed:
                for waiting in batch:
                    waiting.done, waiting.error = True, error
                self._writing = False
                self._changed.notify_all()
        if ticket.error is not None:
            raise ticket.error


@dataclasses.dataclass
class _Ticket:
    data: bytes
    done: bool = False
    error: BaseException | None = None

