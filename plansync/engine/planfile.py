"""A Plan as JSON (schemas/plan.schema.json): for --json, --out, and `plansync show`."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from plansync import schema_files
from plansync.engine.diff import Action, Change, Plan
from plansync.errors import PlansyncError
from plansync.fields import from_json, to_json

SCHEMA_NAME = "plan.schema.json"


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
        raise PlansyncError(f"{source} is not a plansync plan: {problem}",
                            "make one with: plansync plan --out FILE")
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


def save(plan: Plan, path: Path) -> None:
    """Write atomically: a reader never sees half a plan."""
    text = json.dumps(dump(plan), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> Plan:
    return read_with_digest(path)[0]


def read_with_digest(path: Path) -> tuple[Plan, str]:
    """The plan and the sha256 of the file's bytes: what "this plan file" means to the
    state's record of plans already applied."""
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise PlansyncError(f"plan file {path} does not exist") from None
    except RecursionError:
        raise PlansyncError(f"plan file {path} is nested too deeply to be a plan") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlansyncError(f"plan file {path} cannot be read: {exc}") from None
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return parse(data, f"plan file {path}"), digest
