"""A saved plan is a ceiling, not an instruction (DESIGN.md section 4). Pure.

`apply --plan` writes a change only when the reviewed file and a plan recomputed now,
from the spec and the live state, agree on it exactly: same plan, action, fields and
values, made from the same live plan. The file says what a reviewer approved; the spec
says what is allowed; only their intersection is written.

- ``forgeries`` finds what the file asks for that the spec does not imply (an edited
  amount, a cancel the spec forbids, a plan written twice): any of them refuses the
  whole apply, before anything is sent.
- ``intersect`` splits the rest: the changes in both (writes, and no-ops the state
  records as managed), the reviewed writes that live has moved away from since review
  (not written: re-plan), and the writes the spec implies now that nobody reviewed (not
  written, listed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from plansync.engine.plan import Action, Change, Plan
from plansync.fields import to_json
from plansync.spec.model import DesiredPlan

WRITES = (Action.UPDATE, Action.CANCEL)


@dataclass(frozen=True)
class Ceiling:
    # Identical in the file and now (writes and no-ops), as recomputed now: what is sent
    # and recorded comes from the spec and live, never from the file's text (24.0 == 24).
    agreed: tuple[Change, ...]
    moved: tuple[tuple[Change, Change], ...]  # (reviewed, now): live moved since review
    not_reviewed: tuple[Change, ...]  # the spec implies them now; the file lacks them
    # In the state, not declared by the spec, as recomputed now: shown only. Apply never
    # forgets a plan (only `state rm` does), so the file's list asks for nothing.
    unmanaged: tuple[str, ...]


def forgeries(reviewed: Plan, desired: Iterable[DesiredPlan]) -> list[str]:
    """Why the file is not a plan of this spec, change by change (empty when it is)."""
    wanted = {plan.id: plan for plan in desired}
    found = [f"plan {plan_id} appears {count} times in the plan file"
             for plan_id, count in Counter(c.id for c in reviewed.changes).items()
             if count > 1]
    for change in reviewed.changes:
        if change.action in WRITES:
            problem = _not_implied(change, wanted.get(change.id))
            if problem is not None:
                found.append(f"plan {change.id}: {problem}")
    return found


def _not_implied(change: Change, spec: DesiredPlan | None) -> str | None:
    if spec is None:
        return f"the plan file says {change.action}, but the spec does not declare this plan"
    if change.action is Action.CANCEL:
        if not spec.cancel:
            return "the plan file says cancel, the spec does not"
        if spec.prevent_cancel:
            return "the plan file says cancel, the spec forbids it (lifecycle.prevent_cancel)"
        return None
    if spec.cancel:
        return "the plan file says update, the spec says cancelled"
    if set(change.after) != set(spec.managed):
        return (f"the plan file manages {', '.join(sorted(change.after)) or 'nothing'}, the "
                f"spec manages {', '.join(spec.managed) or 'nothing'}")
    for name in spec.managed:
        ours = getattr(spec.fields, name)
        if change.after[name] != ours:
            return (f"the plan file sets {name} to {to_json(change.after[name])}, the spec "
                    f"says {to_json(ours)}")
    really = tuple(n for n in spec.managed if change.before.get(n) != change.after[n])
    if not change.changed_fields or set(change.changed_fields) != set(really):
        return (f"the plan file's changed fields ({', '.join(change.changed_fields) or 'none'})"
                " do not match its own before and after values")
    return None


def intersect(reviewed: Plan, now: Plan) -> Ceiling:
    """Split a reviewed plan (already checked by ``forgeries``) against ``now``."""
    current: Mapping[str, Change] = {c.id: c for c in now.changes}
    agreed: list[Change] = []
    moved: list[tuple[Change, Change]] = []
    for change in reviewed.changes:
        again = current.get(change.id)  # a write's plan is declared: forgeries checked
        if again is not None and same(change, again):
            agreed.append(again)  # the values as the spec and live give them, not as read
        elif again is not None and change.action in WRITES:
            moved.append((change, again))
        # else a no-op or error that no longer holds: nothing to write; what the spec
        # implies now instead was not reviewed, and is listed below.
    asked = {c.id for c in reviewed.changes if c.action in WRITES}
    return Ceiling(
        agreed=tuple(agreed), moved=tuple(moved),
        not_reviewed=tuple(c for c in now.changes
                           if c.action in WRITES and c.id not in asked),
        unmanaged=now.unmanaged)


def same(reviewed: Change, now: Change) -> bool:
    """The same write: plan, action, fields and values, from the same live plan."""
    return (reviewed.id == now.id and reviewed.action is now.action
            and set(reviewed.changed_fields) == set(now.changed_fields)
            and dict(reviewed.after) == dict(now.after)
            and reviewed.live_fingerprint == now.live_fingerprint)
