"""A plan: what would change, plan by plan, and where it was computed; and its JSON
form (schemas/plan.schema.json) for --json, --out and `plansync show`. Pure.

engine/diff.py computes Changes; the renderers, the guardrails, the applier and plan
files read them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from plansync import schema_files
from plansync.errors import PlansyncError
from plansync.fields import from_json, to_json

SCHEMA_NAME = "plan.schema.json"


class Action(StrEnum):
    NO_OP = "no-op"
    UPDATE = "update"
    CANCEL = "cancel"
    ERROR = "error"


@dataclass(frozen=True)
class Change:
    """One plan's part of a Plan. ``before``/``after`` hold the managed fields, by the
    spec's names, as live has them and as the spec wants them."""

    id: str
    name: str | None
    action: Action
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    changed_fields: tuple[str, ...] = ()
    error: str | None = None
    currency: str | None = None  # the live plan's, which decides the wire format
    live_fingerprint: str | None = None

    @property
    def unchanged(self) -> int:
        return len(self.after) - len(self.changed_fields)


@dataclass(frozen=True)
class Plan:
    created_at: datetime
    merchant_id: str
    endpoint: str
    spec_digest: str
    key_fingerprint: str
    tool_version: str
    changes: tuple[Change, ...]
    spec_paths: tuple[str, ...] = ()  # what `apply --plan` re-reads to see the spec is unchanged
    unmanaged: tuple[str, ...] = ()  # in the state, no longer in the spec: to be forgotten
    format_version: int = 1

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
        return {"update": counts[Action.UPDATE], "cancel": counts[Action.CANCEL],
                "no_op": counts[Action.NO_OP], "error": counts[Action.ERROR]}

    @property
    def has_changes(self) -> bool:
        """Anything for apply to do: a write, or a plan to stop managing."""
        return bool(self.unmanaged) or any(
            c.action in (Action.UPDATE, Action.CANCEL) for c in self.changes)


# --- the JSON form ------------------------------------------------------------------

def dump(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": plan.format_version,
        "created_at": plan.created_at.isoformat().replace("+00:00", "Z"),
        "tool_version": plan.tool_version,
        "merchant_id": plan.merchant_id,
        "endpoint": plan.endpoint,
        "spec_digest": plan.spec_digest,
        "key_fingerprint": plan.key_fingerprint,
        "spec_paths": list(plan.spec_paths),
        "changes": [_dump_change(change) for change in plan.changes],
        "unmanaged": list(plan.unmanaged),
        "summary": plan.summary,
    }


def _dump_change(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": change.id,
        "name": change.name,
        "action": str(change.action),
        "before": {k: to_json(v) for k, v in change.before.items()},
        "after": {k: to_json(v) for k, v in change.after.items()},
        "changed_fields": list(change.changed_fields),
        "currency": change.currency,
        "live_fingerprint": change.live_fingerprint,
    }
    if change.error is not None:
        data["error"] = change.error
    return data


def parse(data: Any, source: str) -> Plan:
    """A Plan from its JSON form, refusing anything the schema does not describe."""
    problem = schema_files.first_problem(SCHEMA_NAME, data)
    if problem is not None:
        raise PlansyncError(f"{source} is not a plansync plan: {problem}")
    return Plan(
        format_version=data["format_version"],
        created_at=datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")),
        tool_version=data["tool_version"],
        merchant_id=data["merchant_id"],
        endpoint=data["endpoint"],
        spec_digest=data["spec_digest"],
        key_fingerprint=data["key_fingerprint"],
        changes=tuple(
            Change(id=c["id"], name=c["name"], action=Action(c["action"]),
                   before={k: from_json(k, v) for k, v in c["before"].items()},
                   after={k: from_json(k, v) for k, v in c["after"].items()},
                   changed_fields=tuple(c["changed_fields"]), error=c.get("error"),
                   currency=c["currency"], live_fingerprint=c["live_fingerprint"])
            for c in data["changes"]),
        spec_paths=tuple(data["spec_paths"]),
        unmanaged=tuple(data["unmanaged"]),
    )
