"""Plan files: a Plan's JSON form (engine/plan.py) saved atomically and read back with
the digest that `apply --plan` records."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from pathlib import Path

from plansync import jsontext
from plansync.engine.plan import Plan, dump, parse
from plansync.errors import PlansyncError
from plansync.folders import cannot, read_regular, write_atomically


def save(plan: Plan, path: Path) -> None:
    """Write atomically: a reader never sees half a plan."""
    text = jsontext.dumps(dump(plan)) + "\n"  # json.dumps(..., indent=2)'s text, faster
    # OSError: --out names a folder, a full disk; ValueError: a NUL in the path.
    with cannot(f"save the plan to {path}", "save the plan as a file in a folder you can write",
                (OSError, ValueError)):
        write_atomically(path, text.encode("utf-8"))


def read_with_digest(path: Path) -> tuple[Plan, str]:
    """The plan and the sha256 of the file's bytes: what "this plan file" means to the
    state's record of plans already applied."""
    try:
        raw = read_regular(path)
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise PlansyncError(f"plan file {path} does not exist") from None
    except RecursionError:
        raise PlansyncError(f"plan file {path} is nested too deeply to be a plan") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlansyncError(f"plan file {path} cannot be read: {exc}") from None
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    plan = parse(data, f"plan file {path}")
    for write in plan.pending:
        try:  # shown in UTC: 0001-01-01T00:00:00+14:00 is in year 0 there
            write.sent_at.astimezone(UTC), write.until.astimezone(UTC)
        except OverflowError:
            raise PlansyncError(f"plan file {path} is not a plansync plan: plan {write.id}'s "
                                "pending write: a time out of the calendar in UTC") from None
    return plan, digest
