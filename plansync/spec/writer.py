"""Live plans → spec YAML text, for `plansync import`. Pure.

Written by hand rather than by a YAML dumper, so that every value is quoted the way a
person would (ids, amounts and ddMM values as strings: exact, and never octal).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from plansync.fields import FIELDS, LivePlan

HEADER = """\
# yaml-language-server: $schema=../schemas/plansync-spec.schema.json
# Imported by `plansync import` from the live gateway: every updatable field, as it is.
# Delete the fields you do not want plansync to manage; it leaves undeclared ones alone.
apiVersion: plansync/v1
kind: RecurringPlans
defaults:
  lifecycle:
    # The next charge date moves with every charge; declared for the record, not managed.
    ignore_changes: [charge_next_date]
plans:
"""


def spec_text(plans: Sequence[LivePlan], cancelled: Collection[str] = ()) -> str:
    """A spec declaring ``plans``; those in ``cancelled`` (which the state knows plansync
    cancelled: the gateway shows them as paused) are declared cancelled."""
    return HEADER + "".join(_cancelled(plan) if plan.id in cancelled else _plan(plan)
                            for plan in plans) if plans else \
        HEADER.replace("plans:\n", "plans: []\n")


def _cancelled(plan: LivePlan) -> str:
    return (f'  - id: "{plan.id}"\n    status: cancelled   # plansync cancelled it: final '
            "(the gateway shows it as paused)\n")


def _plan(plan: LivePlan) -> str:
    """Every field a spec may declare (the updatable ones, and currency as an assertion)."""
    lines = [f'  - id: "{plan.id}"']
    for field in FIELDS:
        value = getattr(plan, field.name)
        if value is None or not (field.updatable or field.name == "currency"):
            continue
        if field.name == "allow_accumulate" and value and not (
                plan.max_accumulate_amount is not None and plan.max_accumulate_amount > 0):
            lines.append("    # allow_accumulate: true  (left out: the live plan has no "
                         "max_accumulate_amount above 0)")
            continue
        lines.append(f"    {field.name}: {field.to_yaml(value)}")
    return "\n".join(lines) + "\n"
