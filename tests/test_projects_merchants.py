"""Two projects, two merchant accounts, one emulator: `plansync emulator init --merchants`
scaffolds the folder (a project per merchant), and real plansync processes plan and apply
each merchant's plans with its own key, state and lock. The emulator's request log, which
names each request's merchant, is the witness."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from plansync.emulator import home
from plansync.emulator.server import Emulator
from tests.helpers import admin, run_in


@pytest.fixture
def merchants(tmp_path: Path) -> Iterator[tuple[Path, Emulator, dict[str, str]]]:
    folder = tmp_path / "repo"
    home.init_merchants(folder, ["SG01", "TH01"])
    with Emulator.start(folder) as emulator:
        yield folder, emulator, {"PLANSYNC_ENDPOINT": emulator.url}


def requests_by_merchant(emulator: Emulator, kinds: str = "IUC") -> Counter[tuple[str, str]]:
    """(merchant, plan id's first four digits) → requests of these kinds."""
    return Counter((entry["merchantID"], entry["recurringUniqueID"][:4])
                   for entry in admin(emulator, "GET", "/_emulator/log")
                   if entry["processType"] in kinds)


def test_each_merchant_plans_and_applies_its_own_plans(merchants) -> None:
    folder, emulator, env = merchants
    planned = run_in(env, folder, "plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    sg, th = planned.stdout.split("=== project th01 ===")
    assert "(156142)" in sg and "1571" not in sg
    assert "(157142)" in th and "1561" not in th
    applied = run_in(env, folder, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Projects: sg01 exit 0, th01 exit 0" in applied.stderr
    writes = requests_by_merchant(emulator, "UC")
    assert set(writes) == {("SG01", "1561"), ("TH01", "1571")}  # each its own plans
    assert writes[("SG01", "1561")] == writes[("TH01", "1571")] > 0
    again = run_in(env, folder, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    for name in ("sg01", "th01"):  # each project's state, in its workspace
        assert (folder / ".plansync" / "workspaces" / name / "state.json").exists()


def test_a_change_to_one_project_plans_only_it(merchants) -> None:
    folder, emulator, env = merchants
    (folder / "changed.txt").write_text("specs/th01/plans.yaml\n")
    listed = run_in(env, folder, "projects", "--changed", "changed.txt", "--json")
    assert yaml.safe_load(listed.stdout)[0]["name"] == "th01" and \
        len(yaml.safe_load(listed.stdout)) == 1
    planned = run_in(env, folder, "plan", "--project", "th01")
    assert planned.returncode == 0, planned.stderr
    assert set(requests_by_merchant(emulator)) == {("TH01", "1571")}


def test_one_merchants_guardrail_does_not_stop_the_other(merchants) -> None:
    folder, emulator, env = merchants
    settings = yaml.safe_load((folder / "plansync.yaml").read_text())
    settings["projects"]["sg01"]["guardrails"] = {"max_changes": 0}
    (folder / "plansync.yaml").write_text(yaml.safe_dump(settings))
    applied = run_in(env, folder, "apply", "--auto-approve")
    assert applied.returncode == 3, applied.stdout + applied.stderr
    assert "error: project sg01: the plan exceeds a guardrail" in applied.stderr
    assert set(requests_by_merchant(emulator, "UC")) == {("TH01", "1571")}
