"""Misbehaviour on purpose, deterministic for a given seed.

Each request rolls the dice in a fixed order under one lock, so a sequential client
sees the same faults on every run with the same --fault-seed.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

RATES = ("throttle_rate", "error_rate", "reset_rate", "drop_rate", "wrong_key_rate",
         "malformed_rate", "late_commit_rate", "replay_rate")


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0  # the action endpoint's response time (its work happens within)
    jitter_ms: float = 0.0  # plus a uniform 0..jitter_ms
    throttle_rate: float = 0.0  # HTTP 429 with Retry-After, before the request is processed
    retry_after_s: float = 1.0  # what those 429 answers ask the client to wait (rounded up)
    error_rate: float = 0.0  # HTTP 500 before the request is processed
    reset_rate: float = 0.0  # connection reset before the request is processed
    drop_rate: float = 0.0  # update/cancel: commit the write, then reset the connection
    wrong_key_rate: float = 0.0  # answer signed with a key that is not the gateway's
    malformed_rate: float = 0.0  # answer whose XML is broken
    late_commit_rate: float = 0.0  # update/cancel: no answer (reset), committed later
    late_commit_ms: float = 1000.0  # how long after the request such a write commits
    replay_rate: float = 0.0  # answer replaced by the first one sent for this plan and type
    seed: int = 0

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
            if name in RATES and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            if name != "seed" and value < 0:
                raise ValueError(f"{name} must not be negative")
            values[name] = int(value) if name == "seed" else float(value)
        return cls(**values)


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
        return Roll(delay, *hits)
