"""`plansync workspace list|show|new|select|delete`, as Terraform's: against local files, a
real PostgreSQL server and a real S3-compatible server (tests/servers.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from plansync.engine.backends import open_backend
from plansync.engine.state import Entry, Intent, State
from tests.helpers import EXAMPLE, run, run_in, state_location

AT = "2026-11-27T10:00:00.000Z"
URL = "http://127.0.0.1:1/action"


@pytest.fixture(params=["local", "postgres", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state of each kind, naming no workspace (PostgreSQL's is one database for
    all tests: their workspaces have names of their own)."""
    return state_location(request.param, request, tmp_path).split("?workspace=")[0]


def test_new_select_show_list_and_delete(location: str, tmp_path: Path) -> None:
    env = {"PLANSYNC_STATE": location}
    blue, green = (f"{colour}-{uuid.uuid4().hex[:8]}" for colour in ("blue", "green"))
    assert run("workspace", "show", env=env).stdout == "default\n"

    created = run("workspace", "new", blue, env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"Created and selected workspace {blue} in ")
    assert (tmp_path / ".plansync" / "workspace").read_text() == f"{blue}\n"
    assert run("workspace", "show", env=env).stdout == f"{blue}\n"
    listed = run("workspace", "list", env=env).stdout.splitlines()
    assert f"* {blue}" in listed and "  default" in listed
    again = run("workspace", "new", blue, env=env)
    assert again.returncode == 1 and f"workspace {blue} already exists" in again.stderr

    unknown = run("workspace", "select", green, env=env)
    assert unknown.returncode == 1 and f"workspace {green} does not exist" in unknown.stderr
    assert "plansync workspace new" in unknown.stderr
    assert run("workspace", "new", green, env=env).returncode == 0
    switched = run("workspace", "select", blue, env=env)
    assert (switched.returncode, switched.stdout) == (0, f"Switched to workspace {blue}.\n")

    current = run("workspace", "delete", blue, env=env)
    assert current.returncode == 1 and f"workspace {blue} is the current" in current.stderr
    default = run("workspace", "delete", "default", env=env)
    assert default.returncode == 1 and "cannot be deleted" in default.stderr
    assert run("workspace", "delete", green, env=env).returncode == 0
    assert f"  {green}" not in run("workspace", "list", env=env).stdout

    # A state that remembers a cancellation (and a write not settled) is kept unless forced.
    assert run("workspace", "select", "default", env=env).returncode == 0
    store = open_backend(location, blue, os.environ)
    store.write(State("JT01", URL).with_entry("156145", Entry(cancelled=True,
                                                              cancelled_at=AT)))
    store.append(Intent("r:1", "156143", "update", {"amount": "1.00"}, "f", "active", AT))
    store.close()
    refused = run("workspace", "delete", blue, env=env)
    assert refused.returncode == 1, refused.stderr
    assert "the cancellation of plan(s) 156145" in refused.stderr
    assert "1 write(s) whose outcome is not known yet; nothing was deleted" in refused.stderr
    assert "* default\n" in run("workspace", "list", env=env).stdout
    assert f"  {blue}" in run("workspace", "list", env=env).stdout
    forced = run("workspace", "delete", blue, "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "forgot the 1 plan(s)" in forced.stdout
    assert f"  {blue}" not in run("workspace", "list", env=env).stdout
    gone = open_backend(location, blue, os.environ)
    assert gone.read() is None and gone.records() == []
    gone.close()


def test_a_selection_that_a_setting_overrides_is_refused(tmp_path: Path) -> None:
    env = {"PLANSYNC_STATE": str(tmp_path / "state" / "state.json")}
    name = "blue"
    assert run("workspace", "new", name, env=env).returncode == 0
    assert run("workspace", "select", "default", env=env).returncode == 0
    pinned = run("workspace", "select", name, env=env | {"PLANSYNC_WORKSPACE": "red"})
    assert pinned.returncode == 1
    assert "$PLANSYNC_WORKSPACE sets workspace red" in pinned.stderr
    assert (tmp_path / ".plansync" / "workspace").read_text() == "default\n"  # put back
    flag = run("workspace", "select", name, "--workspace", "red", env=env)
    assert flag.returncode == 1 and "--workspace sets workspace red" in flag.stderr
    shown = run("workspace", "show", env=env | {"PLANSYNC_WORKSPACE": "red"})
    assert shown.stdout == "red\n"
    config = tmp_path / "conf" / "plansync.yaml"
    config.parent.mkdir()
    config.write_text("workspace: red\n")
    in_file = run("workspace", "new", "green", env=env | {"PLANSYNC_CONFIG": str(config)})
    assert in_file.returncode == 0  # made, but not selected: the file says red
    assert "Created workspace green" in in_file.stderr and "sets workspace red" in in_file.stderr
    assert (tmp_path / ".plansync" / "workspace").read_text() == "default\n"
    bad = tmp_path / ".plansync" / "workspace"
    bad.write_text("../up\n")
    broken = run("workspace", "show", env=env)
    assert broken.returncode == 1 and f"{bad} holds" in broken.stderr


def test_the_selected_workspace_is_the_one_commands_use(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    assert run("workspace", "new", "blue", env=env).returncode == 0
    applied = run("apply", str(EXAMPLE), "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "state" / "workspaces" / "blue" / "state.json").exists()
    assert not (tmp_path / "state" / "state.json").exists()


def test_the_selection_holds_below_the_settings_folder(tmp_path: Path) -> None:
    """A command run in specs/ finds plansync.yaml above it, and the workspace selected
    there: not the default workspace's state."""
    (tmp_path / "plansync.yaml").write_text("state: .plansync/state.json\n")
    (tmp_path / "specs").mkdir()
    assert run_in({}, tmp_path, "workspace", "new", "blue").returncode == 0
    shown = run_in({}, tmp_path / "specs", "workspace", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "blue"


def test_a_selection_is_refused_where_projects_choose_workspaces(tmp_path: Path) -> None:
    (tmp_path / "plansync.yaml").write_text("projects:\n  sg: {specs: [specs/sg]}\n")
    result = run_in({}, tmp_path, "workspace", "select", "default")
    assert result.returncode != 0
    assert "each project's workspace is its name" in result.stderr
    assert not (tmp_path / ".plansync" / "workspace").exists()


def test_a_projects_workspace_and_the_selected_one_are_not_deleted(tmp_path: Path) -> None:
    """Attacks: `workspace delete b --project a` removed project b's state; a workspace
    the folder selected was deleted while a variable overrode the selection."""
    (tmp_path / "plansync.yaml").write_text("projects:\n  a: {specs: [specs/a]}\n"
                                            "  b: {specs: [specs/b]}\n")
    assert run_in({}, tmp_path, "workspace", "new", "b", "--project", "a").returncode == 0
    refused = run_in({}, tmp_path, "workspace", "delete", "b", "--project", "a")
    assert refused.returncode == 1 and "workspace b is project b's" in refused.stderr
    single = tmp_path / "single"
    single.mkdir()
    (single / "plansync.yaml").write_text("state: .plansync/state.json\n")
    assert run_in({}, single, "workspace", "new", "w3").returncode == 0
    kept = run_in({"PLANSYNC_WORKSPACE": "default"}, single, "workspace", "delete", "w3")
    assert kept.returncode == 1 and "the one this folder selected" in kept.stderr
    assert run_in({}, single, "workspace", "show").stdout.strip() == "w3"
