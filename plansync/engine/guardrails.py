"""Limits a plan must stay within before anything is sent. Pure.

Payments are one-way doors: a plan that touches too many plans, cancels too many, or
raises an amount too far is refused as a whole, with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from plansync.engine.plan import Action, Plan


@dataclass(frozen=True)
class Guardrails:
    max_changes: int | None = None
    max_cancels: int | None = None
    max_amount_increase: Decimal | None = None  # percent


@dataclass(frozen=True)
class Violation:
    limit: str  # which: max_changes | max_cancels | max_amount_increase
    message: str  # what, with the numbers (where the limit was set is the caller's word)


def violations(plan: Plan, limits: Guardrails) -> list[Violation]:
    """Every limit the plan exceeds, each said with its numbers."""
    found = []
    changes = plan.summary["update"] + plan.summary["cancel"]
    if limits.max_changes is not None and changes > limits.max_changes:
        found.append(Violation("max_changes", f"{changes} plans would change, more than "
                                              f"{limits.max_changes}"))
    cancels = plan.summary["cancel"]
    if limits.max_cancels is not None and cancels > limits.max_cancels:
        found.append(Violation("max_cancels", f"{cancels} plans would be cancelled, more "
                                              f"than {limits.max_cancels}"))
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
                found.append(Violation("max_amount_increase", f"plan {change.id}: amount "
                                       f"{before} -> {after} is {shown}, more than {limit}%"))
    return found
