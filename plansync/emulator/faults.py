"""Misbehaviour on purpose, deterministic for a given seed.

Each request rolls the dice in a fixed order under one lock, so a sequential client
sees the same faults on every run with the same --fault-seed. Rates added later
(``LATER_RATES``) are rolled only when set, so the older faults' sequences stay as they
were for a given seed.

``cancelled_write_code`` is no fault but a variant of the gateway, set the same way:
what a write of a cancelled plan answers (gateway/assumptions.py).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

RATES = ("throttle_rate", "error_rate", "reset_rate", "drop_rate", "wrong_key_rate",
         "malformed_rate", "late_commit_rate", "replay_rate")
LATER_RATES = ("commit_error_rate",)
CANCELLED_WRITE_CODES = (12, 16)


def _knob(default: float, help_text: str) -> Any:
    """A fault setting: its default, and the help its flag shows (`emulator serve --help`
    is generated from these)."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Faults:
    latency_ms: float = _knob(0.0, "Response time in milliseconds (the work happens within "
                                   "it).")
    jitter_ms: float = _knob(0.0, "Up to this many more milliseconds, at random.")
    throttle_rate: float = _knob(0.0, "Share of requests answered HTTP 429 unprocessed (0-1).")
    retry_after_s: float = _knob(1.0, "Seconds those 429 answers ask clients to wait (whole "
                                      "seconds, rounded up).")
    error_rate: float = _knob(0.0, "Share of requests answered HTTP 500 unprocessed (0-1).")
    reset_rate: float = _knob(0.0, "Share of connections reset unprocessed (0-1).")
    drop_rate: float = _knob(0.0, "Share of updates/cancels committed, then reset (0-1).")
    wrong_key_rate: float = _knob(0.0, "Share of answers signed with a wrong key (0-1).")
    malformed_rate: float = _knob(0.0, "Share of answers with broken XML (0-1).")
    late_commit_rate: float = _knob(0.0, "Share of updates/cancels left unanswered (reset) "
                                         "and committed later (0-1).")
    late_commit_ms: float = _knob(1000.0, "How long after the request such a late write "
                                          "commits.")
    replay_rate: float = _knob(0.0, "Share of answers replaced by the first answer sent for "
                                    "the same plan and request type (0-1).")
    commit_error_rate: float = _knob(0.0, "Share of updates/cancels committed, then answered "
                                          "HTTP 400 as if refused (0-1).")
    cancelled_write_code: float = _knob(12.0, "What an update or cancel of a cancelled plan "
                                              "answers: 12 (status not valid) or 16 "
                                              "(transaction does not exist).")
    seed: int = 0  # --fault-seed: makes the faults reproducible

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Faults:
        """Validated construction for flags and the admin endpoint. Raises ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(names))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if name in RATES + LATER_RATES and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            if name == "cancelled_write_code" and value not in CANCELLED_WRITE_CODES:
                raise ValueError(f"{name} must be 12 or 16")
            if name != "seed" and value < 0:
                raise ValueError(f"{name} must not be negative")
            values[name] = int(value) if name == "seed" else float(value)
        return cls(**values)

    @property
    def cancelled_code(self) -> str:
        return f"{int(self.cancelled_write_code):02d}"


class Roll(NamedTuple):
    """What happens to one request."""

    delay: float
    throttle: bool
    error: bool
    reset: bool
    drop: bool
    wrong_key: bool
    malformed: bool
    late_commit: bool
    replay: bool
    commit_error: bool = False


class Dice:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def roll(self) -> Roll:
        """Every roll for one request, taken together so the sequence is reproducible."""
        f = self.faults
        with self._lock:
            hits = [self._rng.random() < getattr(f, name) for name in RATES]
            delay = (f.latency_ms + self._rng.uniform(0, f.jitter_ms)) / 1000
            later = [bool(getattr(f, name)) and self._rng.random() < getattr(f, name)
                     for name in LATER_RATES]
        return Roll(delay, *hits, *later)
