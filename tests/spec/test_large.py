"""Large specs load in time linear in their size, and say a bounded number of problems.

No timing is asserted: the work is counted instead, as the Python function calls and
lines loading runs (sys.settrace). Doubling the keys of one mapping, or the plans, should
about double it (linear); quadratic work, such as finding each problem's line by
scanning the mapping's keys again, quadruples it.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from plansync.spec import loader
from tests.helpers import HEAD


def unknown_in_plan(n: int) -> list[str]:
    return [*HEAD.splitlines(), "plans:", "  - id: '1'", *(f"    x{i}: {i}" for i in range(n))]


def unknown_at_top(n: int) -> list[str]:
    return [*HEAD.splitlines(), *(f"x{i}: {i}" for i in range(n)), "plans: []"]


def unknown_in_defaults(n: int) -> list[str]:
    return [*HEAD.splitlines(), "defaults:", *(f"  x{i}: {i}" for i in range(n)), "plans: []"]


def unknown_in_lifecycle(n: int) -> list[str]:
    return [*HEAD.splitlines(), "plans:", "  - id: '1'", "    lifecycle:",
            *(f"      x{i}: {i}" for i in range(n))]


def duplicated_keys(n: int) -> list[str]:
    """Every key twice, the second time after all the others: each duplicate's first
    occurrence is far from it."""
    keys = [f"  x{i}: {i}" for i in range(n // 2)]
    return [*HEAD.splitlines(), "defaults:", *keys, *keys, "plans: []"]


def plans_with_a_problem(n: int) -> list[str]:
    """Each plan's amount fails the schema. (Fewer plans than a chunk: read whole.)"""
    return [*HEAD.splitlines(), "plans:", *(f"  - {{id: '{i}', amount: x}}" for i in range(n))]


def work_to_load(path: Path) -> int:
    steps = 0

    def count(_frame: FrameType, _event: str, _arg: Any) -> Any:
        nonlocal steps
        steps += 1  # a call, a line, a return (one more iteration of a loop is a line)
        return count

    sys.settrace(count)
    try:
        loader.load([path])
    finally:
        sys.settrace(None)
    return steps


@pytest.mark.parametrize("spec", [unknown_in_plan, unknown_at_top, unknown_in_defaults,
                                  unknown_in_lifecycle, duplicated_keys, plans_with_a_problem])
def test_loading_is_linear_in_the_keys_of_one_mapping(
        tmp_path: Path, spec: Callable[[int], list[str]]) -> None:
    work = []
    for n in (600, 1200):
        path = tmp_path / f"{n}.yaml"
        path.write_text("\n".join(spec(n)) + "\n")
        loader.load([path])  # imports and caches, once, outside the count
        work.append(work_to_load(path))
    assert work[1] / work[0] < 2.2, work  # linear: 1.8-2.0; quadratic: 2.4-3.8 here


def test_a_mapping_of_many_unknown_keys_says_twenty_and_how_many_more(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("\n".join(unknown_in_plan(1000)) + "\n")
    plans, problems = loader.load([path])
    assert plans == []
    shown = [f"{p.location.line}: {p.field}: {p.message}" for p in problems]
    assert shown[:2] == ["5: x0: unknown field", "6: x1: unknown field"]
    assert shown[20:] == ["25: x20: unknown field, and 979 more after it in this "
                          "mapping (not listed one by one)"]


def test_a_mapping_of_many_duplicate_keys_says_twenty_and_how_many_more(
        tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("\n".join(duplicated_keys(1000)) + "\n")
    _plans, problems = loader.load([path])
    shown = [f"{p.location.line}: {p.message}" for p in problems
             if p.message.startswith("duplicate")]  # (they are unknown fields too)
    assert shown[0] == "504: duplicate key 'x0' (first at line 4); remove one"
    assert shown[20:] == ["524: duplicate key 'x20' (first at line 24), and 479 more"
                          " after it in this mapping (not listed one by one); remove one"]
    assert len(shown) == 21


@pytest.mark.parametrize(("unknown", "said"), [(21, 21), (22, 21)])
def test_twenty_one_unknown_keys_are_all_said_and_twenty_two_are_not(
        tmp_path: Path, unknown: int, said: int) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("\n".join([*unknown_in_plan(unknown), "    amount: x"]) + "\n")
    _plans, problems = loader.load([path])
    fields = [p.field for p in problems if p.message.startswith("unknown field")]
    assert fields == [f"x{i}" for i in range(said)]
    assert [p.message for p in problems if p.field == f"x{said - 1}"] == [
        "unknown field" if unknown == said else
        "unknown field, and 1 more after it in this mapping (not listed one by one)"]
    assert [p.field for p in problems if "exact decimal" in p.message] == ["amount"]


def test_a_spec_with_thousands_of_problems_prints_the_first_50_and_a_count(
        tmp_path: Path) -> None:
    """Each plan with a bad amount was a line on stderr: 5,000 plans, 5,000 lines.
    --json still lists every problem."""
    import json
    import subprocess

    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n" + "".join(
        f"  - {{id: '{100000 + i}', amount: 'lots'}}\n" for i in range(5000)))
    shown = subprocess.run([sys.executable, "-m", "plansync", "validate", str(spec)],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 1
    lines = shown.stderr.splitlines()
    assert sum(1 for line in lines if "amount" in line) == 50, shown.stderr[-2000:]
    assert "... and 4950 more problem(s); plansync validate --json lists them all" in lines
    listed = subprocess.run([sys.executable, "-m", "plansync", "validate", "--json",
                             str(spec)], capture_output=True, text=True, timeout=120)
    assert len(json.loads(listed.stdout)["problems"]) == 5000
