"""Plan files: a Plan's JSON form (engine/plan.py) saved atomically and read back with
the digest that `apply --plan` records."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from plansync.engine.plan import Plan, dump, parse
from plansync.errors import PlansyncError


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
