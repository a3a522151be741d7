"""Limits a plan must stay within before anything is sent. Pure.

Payments are one-way doors: a plan that touches too many plans, cancels too many, or
raises an amount too far is refused as a whole, with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from plansync.engine.diff import Action, Plan


@dataclass(frozen=True)
class Guardrails:
    max_changes: int | None = None
    max_cancels: int | None = None
    max_amount_increase: Decimal | None = None  # percent


def violations(plan: Plan, limits: Guardrails) -> list[str]:
    """Every limit the plan exceeds, each said with its numbers."""
    found = []
    changes = plan.summary["update"] + plan.summary["cancel"]
    if limits.max_changes is not None and changes > limits.max_changes:
        found.append(f"{changes} plans would change, more than --max-changes "
                     f"{limits.max_changes}")
    cancels = plan.summary["cancel"]
    if limits.max_cancels is not None and cancels > limits.max_cancels:
        found.append(f"{cancels} plans would be cancelled, more than --max-cancels "
                     f"{limits.max_cancels}")
    if limits.max_amount_increase is not None:
        for change in plan.changes:
            if change.action is not Action.UPDATE or "amount" not in change.changed_fields:
                continue
            before, after = change.before["amount"], change.after["amount"]
            if after <= before:
                continue
            increase = (after - before) / before * 100 if before else None
            if increase is None or increase > limits.max_amount_increase:
                shown = f"+{increase:.1f}%" if increase is not None else "an increase from 0"
                limit = format(limits.max_amount_increase.normalize(), "f")
                found.append(f"plan {change.id}: amount {before} -> {after} is {shown}, more "
                             f"than --max-amount-increase {limit}%")
    return found
