"""The state file: what plansync last applied, last saw, cancelled, and may still land.

One JSON document (schemas/state.schema.json) with ``version``, ``serial`` (one more on
every write) and ``lineage`` (fixed at creation), tied to one merchant and endpoint.
Besides each plan's entry it holds the writes whose outcome is not known yet
(``pending``: intents folded in from the journal) and the saved plans already applied
(``applied_plans``), so that the state alone is everything the journal ever said.
Written atomically — temp file, fsync, rename — with the previous version kept as
``<file>.backup``. This module is the only one that touches the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plansync import schema_files
from plansync.errors import PlansyncError

VERSION = 1
SCHEMA_NAME = "state.schema.json"
FILE_MODE = 0o600  # state, backup, journal, lock note and plans can name customers' plans


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
class Intent:
    """A write about to be sent: journalled (fsynced) before it leaves."""

    key: str  # unique per write: run id and plan id
    plan: str
    action: str  # "update" | "cancel"
    after: Mapping[str, Any]  # target values, spec names, JSON form
    fingerprint: str  # the live state the write was decided on
    before_status: str  # live status then: tells a cancel's effect from a pause
    at: str  # when it was journalled, just before it was sent (UTC, ISO 8601)

    @property
    def sent_at(self) -> datetime:
        return parse_time(self.at)

    @classmethod
    def from_dict(cls, data: Any) -> Intent:
        """An intent from its JSON form, every member checked. Raises ValueError."""
        from plansync.engine.diff import from_json  # the engine's codec for field values

        if not isinstance(data, dict) or set(data) != _INTENT_MEMBERS:
            raise ValueError("not an intent")
        intent = cls(**data)
        if not all(isinstance(getattr(intent, name), str) for name in _INTENT_MEMBERS - {"after"}):
            raise ValueError("an intent's members are text")
        if intent.action not in ("update", "cancel") or not isinstance(intent.after, dict):
            raise ValueError("not an update or a cancel")
        try:
            intent.sent_at  # noqa: B018 - refused here, not in the middle of an apply
            for name, value in intent.after.items():
                from_json(name, value)
        except (TypeError, ArithmeticError, AttributeError) as exc:
            raise ValueError(str(exc)) from None
        return intent


_INTENT_MEMBERS = frozenset(("key", "plan", "action", "after", "fingerprint", "before_status",
                             "at"))


@dataclass(frozen=True)
class Outcome:
    key: str
    plan: str
    result: str  # "applied" | "not-applied" | "failed"
    entry: Entry | None  # the plan's state entry afterwards, if it changed
    at: str


@dataclass(frozen=True)
class State:
    merchant_id: str
    endpoint: str
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    plans: Mapping[str, Entry] = field(default_factory=dict)
    pending: Mapping[str, Intent] = field(default_factory=dict)  # by intent key
    applied_plans: Mapping[str, str] = field(default_factory=dict)  # plan digest -> when

    @property
    def cancelled(self) -> frozenset[str]:
        return frozenset(plan_id for plan_id, e in self.plans.items() if e.cancelled)

    def pending_for(self, plan_id: str) -> list[Intent]:
        return [intent for intent in self.pending.values() if intent.plan == plan_id]

    def with_entry(self, plan_id: str, entry: Entry) -> State:
        return dataclasses.replace(self, plans={**self.plans, plan_id: entry})

    def without(self, plan_ids: set[str]) -> State:
        return dataclasses.replace(
            self, plans={k: v for k, v in self.plans.items() if k not in plan_ids})

    def with_intent(self, intent: Intent) -> State:
        return dataclasses.replace(self, pending={**self.pending, intent.key: intent})

    def with_outcome(self, outcome: Outcome) -> State:
        """The outcome's entry recorded and its write no longer pending."""
        pending = {k: v for k, v in self.pending.items() if k != outcome.key}
        plans = self.plans if outcome.entry is None else {**self.plans,
                                                          outcome.plan: outcome.entry}
        return dataclasses.replace(self, plans=plans, pending=pending)

    def with_applied_plan(self, digest: str, at: str) -> State:
        return dataclasses.replace(self, applied_plans={**self.applied_plans, digest: at})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


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
    backup = backup_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if backup.exists():  # never a silent empty state: it would forget cancellations
            raise PlansyncError(
                f"state file {path} is missing, but its backup {backup} exists",
                f"restore it (cp {backup} {path}) after checking it is the latest state, "
                "then run again") from None
        return None
    except RecursionError:
        raise PlansyncError(f"state file {path} is nested too deeply to be a plansync state",
                            f"restore it from {backup}, or move it away") from None
    except IsADirectoryError:
        raise PlansyncError(f"state path {path} is a directory",
                            "point --state (or PLANSYNC_STATE) at a file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlansyncError(f"state file {path} cannot be read: {exc}",
                            f"restore it from {backup}, or move it away") from None
    problem = schema_files.first_problem(SCHEMA_NAME, data)
    if problem is not None:
        raise PlansyncError(f"state file {path} is not a plansync state: {problem}",
                            f"restore it from {backup}")
    return State(
        merchant_id=data["merchant_id"], endpoint=data["endpoint"], lineage=data["lineage"],
        serial=data["serial"],
        plans={plan_id: Entry(**entry) for plan_id, entry in data["plans"].items()},
        pending=_pending(data.get("pending", []), path),
        applied_plans=dict(data.get("applied_plans", {})),
    )


def _pending(items: list[Any], path: Path) -> dict[str, Intent]:
    try:
        return {intent.key: intent for intent in map(Intent.from_dict, items)}
    except ValueError as exc:
        raise PlansyncError(f"state file {path} holds a pending write that cannot be read: "
                            f"{exc}", f"restore it from {backup_path(path)}") from None


def document(state: State) -> dict[str, Any]:
    """The state's JSON form (schemas/state.schema.json)."""
    data: dict[str, Any] = {
        "version": VERSION, "serial": state.serial, "lineage": state.lineage,
        "merchant_id": state.merchant_id, "endpoint": state.endpoint,
        "plans": {plan_id: dataclasses.asdict(entry)
                  for plan_id, entry in sorted(state.plans.items())},
    }
    if state.pending:
        data["pending"] = [dataclasses.asdict(intent) for intent in state.pending.values()]
    if state.applied_plans:
        data["applied_plans"] = dict(sorted(state.applied_plans.items()))
    return data


def write(path: Path, state: State) -> State:
    """Save ``state`` as the next serial; the file it replaces becomes the backup."""
    saved = dataclasses.replace(state, serial=state.serial + 1)
    text = json.dumps(document(saved), indent=2) + "\n"
    with writing(path, "state file"):
        if path.exists():  # a copy, so that a state file exists at every instant
            write_atomically(backup_path(path), path.read_bytes())
        write_atomically(path, text.encode("utf-8"))
    return saved


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file (0600), fsync, rename, fsync the folder: all of ``data`` or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    """OSErrors while writing ``path`` become one clear error naming it (exit 1)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PlansyncError(
            f"cannot write the {what} {path}: {reason}",
            "free disk space or make the folder writable (a directory in the way must be "
            "moved); nothing done is lost: the next apply settles it from the journal"
        ) from None


def _fsync_folder(folder: Path) -> None:
    """Make the renames themselves durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
