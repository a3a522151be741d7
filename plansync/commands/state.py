"""`plansync state list|show` and `plansync force-unlock`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plansync.commands import options as shared
from plansync.errors import PlansyncError

if TYPE_CHECKING:
    from plansync.engine.state import State


@click.group()
def state() -> None:
    """Read the state file: what plansync applied, saw and cancelled."""


@state.command("list")
@shared.state_option
def state_list(state_path: Path) -> int:
    """One line per managed plan."""
    current = _load(state_path)
    rows = [("PLAN", "CANCELLED", "LAST APPLIED", "LAST SEEN", "MANAGED FIELDS")]
    for plan_id, entry in sorted(current.plans.items()):
        rows.append((plan_id, "yes" if entry.cancelled else "no", entry.applied_at or "-",
                     entry.seen_at or "-", ", ".join(sorted(entry.applied)) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"\n{len(current.plans)} plan(s); merchant {current.merchant_id} at "
               f"{current.endpoint}; serial {current.serial}, lineage {current.lineage}")
    return 0


@state.command("show")
@click.argument("plan_id", metavar="ID")
@shared.state_option
def state_show(plan_id: str, state_path: Path) -> int:
    """Everything the state holds about one plan, as JSON."""
    current = _load(state_path)
    if plan_id not in current.plans:
        raise PlansyncError(f"plan {plan_id} is not in the state file {state_path}",
                            "plansync state list shows the plans it holds")
    click.echo(json.dumps({"id": plan_id, **dataclasses.asdict(current.plans[plan_id])},
                          indent=2))
    return 0


@click.command("force-unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@shared.state_option
def force_unlock(lock_id: str, state_path: Path) -> int:
    """Remove the state lock of a run that cannot release it, after checking its id."""
    from plansync.engine import lock

    note = lock.force_unlock(state_path, lock_id)
    click.echo(f"Removed {lock.describe(note)}.")
    return 0


def _load(state_path: Path) -> State:
    """The state file with its journal folded in: what the next apply starts from."""
    from plansync.engine import journal
    from plansync.engine.state import load

    current = load(state_path)
    records = journal.Journal(journal.path_for(state_path)).read()
    if current is None and not records:
        raise PlansyncError(f"there is no state file at {state_path} yet",
                            "plansync apply creates it")
    if current is None:  # a first apply whose state write failed: its journal is all there is
        raise PlansyncError(f"there is no state file at {state_path} yet, but its journal "
                            "holds writes", "run plansync apply to fold them into a state")
    return journal.fold(current, records)
