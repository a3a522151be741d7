"""The apply journal: an intent before every write, an outcome after it.

JSON lines beside the state file, each fsynced before the write it announces is sent.
An intent without an outcome is a write whose fate is unknown (a crash, a kill, a lost
answer); the next apply settles it by inquiry before doing anything else. Outcomes carry
the plan's new state entry, so replaying them rebuilds what a crash kept from the state
file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plansync.engine.state import Entry, now


@dataclass(frozen=True)
class Intent:
    key: str  # unique per write: run id and plan id
    plan: str
    action: str  # "update" | "cancel"
    after: Mapping[str, Any]  # target values, spec names, JSON form
    fingerprint: str  # the live state the write was decided on
    before_status: str  # live status then: tells a cancel's effect from a pause
    at: str


@dataclass(frozen=True)
class Outcome:
    key: str
    plan: str
    result: str  # "applied" | "not-applied" | "failed" | "skipped"
    entry: Entry | None  # the plan's state entry afterwards, if it changed
    at: str


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: Any = None

    def read(self) -> tuple[list[Intent], list[Outcome]]:
        intents: list[Intent] = []
        outcomes: list[Outcome] = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return intents, outcomes
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write: its write was never sent
            kind = record.pop("kind", None)
            if kind == "intent":
                intents.append(Intent(**record))
            elif kind == "outcome":
                entry = record.pop("entry")
                outcomes.append(Outcome(entry=Entry(**entry) if entry else None, **record))
        return intents, outcomes

    def unsettled(self) -> list[Intent]:
        intents, outcomes = self.read()
        settled = {outcome.key for outcome in outcomes}
        return [intent for intent in intents if intent.key not in settled]

    def intend(self, intent: Intent) -> None:
        self._append({"kind": "intent", **dataclasses.asdict(intent)})

    def settle(self, intent: Intent, result: str, entry: Entry | None) -> Outcome:
        outcome = Outcome(intent.key, intent.plan, result, entry, now())
        record = dataclasses.asdict(outcome)
        self._append({"kind": "outcome", **record})
        return outcome

    def clear(self) -> None:
        """After the state file holds every outcome, the journal has nothing left to say."""
        with self._lock:
            self._close()
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
