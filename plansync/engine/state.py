"""The state file: what plansync last applied, last saw, and cancelled.

One JSON document (schemas/state.schema.json) with ``version``, ``serial`` (one more on
every write) and ``lineage`` (fixed at creation), tied to one merchant and endpoint.
Written atomically — temp file, fsync, rename — with the previous version kept as
``<file>.backup``. This module is the only one that touches the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plansync import schema_files
from plansync.errors import PlansyncError

VERSION = 1
DEFAULT_PATH = Path(".plansync/state.json")
SCHEMA_NAME = "state.schema.json"


@dataclass(frozen=True)
class Entry:
    """One plan's memory. Values use the spec's field names in JSON form ("99.90")."""

    applied: Mapping[str, Any] = field(default_factory=dict)
    applied_at: str | None = None
    seen: Mapping[str, Any] = field(default_factory=dict)
    seen_at: str | None = None
    cancelled: bool = False
    cancelled_at: str | None = None


@dataclass(frozen=True)
class State:
    merchant_id: str
    endpoint: str
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    plans: Mapping[str, Entry] = field(default_factory=dict)

    @property
    def cancelled(self) -> frozenset[str]:
        return frozenset(plan_id for plan_id, e in self.plans.items() if e.cancelled)

    def with_entry(self, plan_id: str, entry: Entry) -> State:
        return dataclasses.replace(self, plans={**self.plans, plan_id: entry})

    def without(self, plan_ids: set[str]) -> State:
        return dataclasses.replace(
            self, plans={k: v for k, v in self.plans.items() if k not in plan_ids})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read(path: Path, merchant_id: str, endpoint: str) -> State:
    """The state at ``path`` (a new, empty one if there is none yet). Refuses a state
    that belongs to another merchant or endpoint: cancellations would be misremembered."""
    found = load(path)
    if found is None:
        return State(merchant_id, endpoint)
    if (found.merchant_id, found.endpoint) != (merchant_id, endpoint):
        raise PlansyncError(
            f"state file {path} belongs to merchant {found.merchant_id} at "
            f"{found.endpoint}, not {merchant_id} at {endpoint}",
            "use a state file per merchant and endpoint (--state or PLANSYNC_STATE)")
    return found


def load(path: Path) -> State | None:
    """The state at ``path`` as it is, or None when there is no state file yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlansyncError(f"state file {path} cannot be read: {exc}",
                            f"restore it from {path}.backup, or move it away") from None
    problem = schema_files.first_problem(SCHEMA_NAME, data)
    if problem is not None:
        raise PlansyncError(f"state file {path} is not a plansync state: {problem}",
                            f"restore it from {path}.backup")
    return State(
        merchant_id=data["merchant_id"], endpoint=data["endpoint"], lineage=data["lineage"],
        serial=data["serial"],
        plans={plan_id: Entry(**entry) for plan_id, entry in data["plans"].items()},
    )


def write(path: Path, state: State) -> State:
    """Save ``state`` as the next serial; the file it replaces becomes the backup."""
    saved = dataclasses.replace(state, serial=state.serial + 1)
    document = {
        "version": VERSION, "serial": saved.serial, "lineage": saved.lineage,
        "merchant_id": saved.merchant_id, "endpoint": saved.endpoint,
        "plans": {plan_id: dataclasses.asdict(entry)
                  for plan_id, entry in sorted(saved.plans.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():  # a copy, so that a state file exists at every instant
            shutil.copyfile(path, path.with_name(path.name + ".backup"))
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return saved


def _fsync_folder(folder: Path) -> None:
    """Make the renames themselves durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
