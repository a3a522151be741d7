"""Drift: how live plans differ from the spec, and from what plansync last applied. Pure.

Two different questions for a scheduled job:
- spec drift: live differs from what the spec declares (a pending change, or a change
  someone made that the spec does not agree with);
- outside changes: live differs from the values plansync last applied (someone changed
  the plan in the merchant portal or by another tool since).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plansync.engine.impact import CurrencyImpact
from plansync.engine.plan import Action, Plan
from plansync.engine.state import State
from plansync.fields import from_json


@dataclass(frozen=True)
class FieldDrift:
    field: str
    expected: Any  # the spec's value, or the value plansync last applied
    live: Any


@dataclass(frozen=True)
class PlanDrift:
    id: str
    name: str | None
    fields: tuple[FieldDrift, ...]
    since: str | None = None  # for outside changes: when plansync last applied


@dataclass(frozen=True)
class Drift:
    spec: tuple[PlanDrift, ...]
    outside: tuple[PlanDrift, ...]
    errors: tuple[tuple[str, str], ...]  # (plan id, why it could not be checked)
    checked: int
    # Per currency where live's MRR differs from the spec's: before = live, after = spec.
    mrr: tuple[CurrencyImpact, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.spec or self.outside)


def detect(plan: Plan, state: State) -> Drift:
    spec, outside, errors = [], [], []
    for change in plan.changes:
        if change.action is Action.ERROR:
            errors.append((change.id, change.error or "could not be planned"))
            continue
        if change.action in (Action.UPDATE, Action.CANCEL):
            spec.append(PlanDrift(change.id, change.name, tuple(
                FieldDrift(name, change.after.get(name), change.before.get(name))
                for name in change.changed_fields)))
        entry = state.plans.get(change.id)
        if entry is None or entry.cancelled or change.action is Action.CANCEL:
            continue
        moved = tuple(
            FieldDrift(name, from_json(name, value), change.before[name])
            for name, value in entry.applied.items()
            if name in change.before and from_json(name, value) != change.before[name])
        if moved:
            outside.append(PlanDrift(change.id, change.name, moved, entry.applied_at))
    mrr = tuple(each for each in plan.impact if each.mrr_change)
    return Drift(tuple(spec), tuple(outside), tuple(errors), len(plan.changes), mrr)
