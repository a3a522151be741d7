"""The ceiling, with literal values and generated forgeries: whatever a hand does to a
reviewed plan, what passes is exactly what the spec implies for the live plan it was made
from. (tests/test_plan_ceiling.py attacks the same promise through a real apply.)"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from plansync.engine.ceiling import forgeries, intersect
from plansync.engine.diff import diff
from plansync.engine.plan import Action, Change, Plan
from plansync.fields import LivePlan, PlanFields
from plansync.spec.model import DesiredPlan, Location

LIVE = LivePlan(
    id="156142", status="active", amount=Decimal("99.90"), currency="SGD",
    allow_accumulate=False, max_accumulate_amount=Decimal("10.00"), recurring_interval=30,
    recurring_count=12, current_count=3, charge_next_date=date(2027, 1, 7),
    charge_on_date=None, invoice_prefix="030321135205", masked_card_no="XXXXXXXXXXXX1111")
SPEC = DesiredPlan(id="156142", name="gold",
                   fields=PlanFields(amount=Decimal("120.00"), recurring_count=24),
                   cancel=False, currency=None, prevent_cancel=True,
                   ignore_changes=frozenset(), location=Location("spec.yaml", 4, 5))


def plan_of(*changes: Change, unmanaged: tuple[str, ...] = ()) -> Plan:
    return Plan(datetime(2026, 11, 29, tzinfo=UTC), "JT01", "http://gw", "sha256:s", "k",
                "0", changes, unmanaged=unmanaged)


REVIEWED = diff(SPEC, LIVE)


def test_the_reviewed_change_is_written_when_nothing_moved() -> None:
    within = intersect(plan_of(REVIEWED), plan_of(diff(SPEC, LIVE)))
    assert within.agreed == (REVIEWED,) and within.moved == () and within.not_reviewed == ()


def test_a_moved_live_plan_is_not_written() -> None:
    moved = dataclasses.replace(LIVE, recurring_interval=14)
    within = intersect(plan_of(REVIEWED), plan_of(diff(SPEC, moved)))
    assert within.agreed == () and [r.id for r, _ in within.moved] == ["156142"]


def test_what_the_file_lacks_is_listed_and_unmanaged_is_the_recomputations() -> None:
    other = dataclasses.replace(SPEC, id="156143")
    now = plan_of(diff(SPEC, LIVE), diff(other, dataclasses.replace(LIVE, id="156143")),
                  unmanaged=("156150",))
    within = intersect(plan_of(REVIEWED, unmanaged=("156150", "156143")), now)
    assert [c.id for c in within.not_reviewed] == ["156143"]
    assert within.unmanaged == ("156150",)  # shown only: apply forgets nothing


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "amount": st.decimals(min_value=0, max_value=1000, places=2),
    "recurring_count": st.integers(0, 99999),
    "status": st.sampled_from(["active", "inactive", "cancelled"]),
    "recurring_interval": st.integers(1, 365),
}


@st.composite
def forged(draw: st.DrawFn) -> Change:
    """The reviewed change, with any of its action, values and changed fields edited."""
    after = dict(REVIEWED.after)
    for name in draw(st.lists(st.sampled_from(sorted(VALUES)), unique=True)):
        if draw(st.booleans()):
            after[name] = draw(VALUES[name])
        else:
            after.pop(name, None)
    changed = draw(st.one_of(st.just(REVIEWED.changed_fields),
                             st.lists(st.sampled_from(sorted(VALUES)), unique=True).map(tuple)))
    action = draw(st.sampled_from([Action.UPDATE, Action.CANCEL]))
    return dataclasses.replace(REVIEWED, action=action, after=after, changed_fields=changed)


@given(change=forged(), copies=st.integers(1, 3))
def test_no_forgery_passes_that_the_spec_does_not_imply(change: Change, copies: int) -> None:
    problems = forgeries(plan_of(*[change] * copies), [SPEC])
    implied = (change.action is Action.UPDATE and dict(change.after) == dict(REVIEWED.after)
               and set(change.changed_fields) == set(REVIEWED.changed_fields))
    assert (problems == []) == (implied and copies == 1), problems
