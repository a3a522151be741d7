"""A big spec's plans share their equal values (issue 23: a 100,000-plan plan's memory),
and every plan still holds its values as written."""

from pathlib import Path

from plansync.spec import loader
from tests.helpers import HEAD


def test_amounts_written_alike_are_one_object_and_written_differently_stay_apart(
        tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{i}', amount: {amount}, currency: SGD}}\n"
        for i, amount in enumerate(['"10.00"', '"10.00"', "10.00", "10.00", '"10.0"', "10.0",
                                    '"10"', "10"])))
    plans, problems = loader.load([spec])
    assert problems == []
    amounts = [plan.fields.amount for plan in plans]
    assert [str(a) for a in amounts] == ["10.00", "10.00", "10.00", "10.00", "10.0", "10.0",
                                         "10", "10"]
    assert amounts[0] is amounts[1] and amounts[2] is amounts[3]
    assert plans[0].ignore_changes is plans[1].ignore_changes == frozenset()


def test_a_bad_amount_is_said_each_time(tmp_path: Path) -> None:
    """A problem is not cached away: each plan that writes it is told."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "plans:\n" + "".join(
        f"  - {{id: '{i}', amount: '9.999', currency: SGD}}\n" for i in range(2)))
    _plans, problems = loader.load([spec])
    assert [p.plan_id for p in problems] == ["0", "1"]
    assert all("9.999 has more decimals than SGD allows (2)" in p.message for p in problems)
