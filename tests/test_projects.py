"""Projects: several merchant accounts in one repository (plansync.yaml's projects:).

Real plansync processes against a real emulator; the state in real files. The two
projects here are two sets of the emulator's plans: tests/test_projects_merchants.py runs
two merchants.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plansync.emulator import home
from plansync.engine.backends import open_backend
from plansync.errors import ConfigError
from plansync.projects import Selection, choose, parse, touched
from tests.helpers import accepted_writes, run_in, sent_writes

SG_SPEC = """\
apiVersion: plansync/v1
kind: RecurringPlans
plans:
  - id: "156142"
    amount: "120.00"
    currency: SGD
"""
TH_SPEC = """\
apiVersion: plansync/v1
kind: RecurringPlans
plans:
  - id: "156143"
    amount: "555.00"
    currency: THB
"""


def repository(root: Path, emulator_url: str, emulator_dir: Path, sg: str = "",
               th: str = "") -> Path:
    """A repository of two projects, sg and th, on the emulator's merchant; ``sg`` and
    ``th``: more of each project's settings (YAML lines, indented by 4)."""
    (root / "specs" / "sg").mkdir(parents=True)
    (root / "specs" / "th").mkdir(parents=True)
    (root / "specs" / "sg" / "plans.yaml").write_text(SG_SPEC)
    (root / "specs" / "th" / "plans.yaml").write_text(TH_SPEC)
    (root / "plansync.yaml").write_text(
        f"endpoint: {emulator_url}\n"
        "merchant_id: JT01\n"
        f"merchant_key: {emulator_dir / home.MERCHANT_PRIVATE}\n"
        f"gateway_key: {emulator_dir / home.GATEWAY_PUBLIC}\n"
        "state: .plansync/state.json\n"
        "projects:\n"
        f"  sg:\n    specs: [specs/sg]\n{sg}"
        f"  th:\n    specs: [specs/th]\n{th}")
    return root


@pytest.fixture
def repo(tmp_path: Path, emulator, emulator_dir: Path) -> Path:
    return repository(tmp_path / "repo", emulator.url, emulator_dir)


# --- reading projects: ---------------------------------------------------------------


def test_a_project_name_that_cannot_name_a_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="project 'S G' is not a name"):
        parse({"S G": {"specs": ["s"]}}, tmp_path / "plansync.yaml", ["merchant_id"])


def test_a_project_without_specs_or_with_an_unknown_key_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="projects.sg: specs must list"):
        parse({"sg": {"merchant_id": "SG01"}}, tmp_path / "plansync.yaml", ["merchant_id"])
    with pytest.raises(ConfigError, match=r"projects.sg: unknown setting\(s\) 'merchant'"):
        parse({"sg": {"specs": ["s"], "merchant": "SG01"}}, tmp_path / "plansync.yaml",
              ["merchant_id"])


def test_two_projects_may_not_share_specs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="projects sg and th share specs"):
        parse({"sg": {"specs": ["specs"]}, "th": {"specs": ["specs/th"]}},
              tmp_path / "plansync.yaml", [])


def test_the_projects_chosen_by_name_by_paths_and_by_the_folder(tmp_path: Path) -> None:
    projects = parse({"sg": {"specs": ["specs/sg"]}, "th": {"specs": ["specs/th"]}},
                     tmp_path / "plansync.yaml", [])
    names = lambda chosen: [p.name for p, _ in chosen]  # noqa: E731
    assert names(choose(projects, ["th"], (), tmp_path)) == ["th"]
    assert names(choose(projects, [], (), tmp_path)) == ["sg", "th"]
    assert names(choose(projects, [], (), tmp_path / "specs")) == ["sg", "th"]
    assert names(choose(projects, [], (), tmp_path / "specs" / "th")) == ["th"]
    picked = choose(projects, [], [tmp_path / "specs/sg/a.yaml"], tmp_path)
    assert [(p.name, paths) for p, paths in picked] == [("sg", (tmp_path / "specs/sg/a.yaml",))]
    with pytest.raises(Selection, match="in no project's specs"):
        choose(projects, [], [tmp_path / "elsewhere.yaml"], tmp_path)
    with pytest.raises(Selection, match="no project 'my'"):
        choose(projects, ["my"], (), tmp_path)


def test_a_change_touches_its_project_and_the_settings_file_every_one(tmp_path: Path) -> None:
    settings = tmp_path / "plansync.yaml"
    projects = parse({"sg": {"specs": ["specs/sg"]}, "th": {"specs": ["specs/th"]}},
                     settings, [])
    assert touched(projects, ["specs/th/plans.yaml", "README.md"], tmp_path, settings) == ["th"]
    assert touched(projects, ["README.md"], tmp_path, settings) == []
    assert touched(projects, ["plansync.yaml"], tmp_path, settings) == ["sg", "th"]


# --- commands over projects -------------------------------------------------------------


def test_plan_without_paths_plans_each_project_on_its_own_specs(repo: Path) -> None:
    result = run_in({}, repo, "plan", "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    sg, th = result.stdout.split("=== project th ===")
    assert sg.startswith("=== project sg ===")
    assert "156142" in sg and "156143" not in sg
    assert "156143" in th and "156142" not in th


def test_plan_in_a_projects_folder_plans_only_it(repo: Path) -> None:
    result = run_in({}, repo / "specs" / "th", "plan")  # plansync.yaml found above
    assert result.returncode == 0, result.stderr
    assert "=== project" not in result.stdout
    assert "156143" in result.stdout and "156142" not in result.stdout


def test_a_project_named_twice_or_unknown(repo: Path) -> None:
    unknown = run_in({}, repo, "plan", "--project", "my")
    assert unknown.returncode == 64
    assert "no project 'my' in the settings; its projects: sg, th" in unknown.stderr
    assert run_in({}, repo, "validate", "--project", "sg").returncode == 0


def test_json_of_several_projects_is_refused_and_of_one_is_its_document(repo: Path) -> None:
    several = run_in({}, repo, "plan", "--json")
    assert several.returncode == 64
    assert "--json: one project's, and this run is of several (sg, th): pass --project " \
        "NAME" in several.stderr
    one = run_in({}, repo, "plan", "--json", "--project", "sg")
    assert one.returncode == 0, one.stderr
    assert [c["id"] for c in json.loads(one.stdout)["changes"]] == ["156142"]


def test_one_projects_guardrail_does_not_stop_the_other(tmp_path: Path, emulator,
                                                        emulator_dir: Path) -> None:
    repo = repository(tmp_path / "repo", emulator.url, emulator_dir,
                      sg="    guardrails: {max_changes: 0}\n")
    result = run_in({}, repo, "apply", "--auto-approve")
    assert result.returncode == 3, result.stderr  # the worst: sg's refusal
    assert sent_writes(emulator) == {("156143", "U"): 1}  # th applied, sg sent nothing


def test_state_and_locks_stay_apart(repo: Path, emulator) -> None:
    assert run_in({}, repo, "apply", "--auto-approve").returncode == 0
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156143", "U"): 1}
    for name, plan in (("sg", "156142"), ("th", "156143")):
        listed = run_in({}, repo, "state", "list", "--project", name)
        assert listed.returncode == 0, listed.stderr
        assert plan in listed.stdout and ({"156142", "156143"} - {plan}).pop() \
            not in listed.stdout
    assert (repo / ".plansync" / "workspaces" / "sg" / "state.json").exists()
    assert (repo / ".plansync" / "workspaces" / "th" / "state.json").exists()
    ambiguous = run_in({}, repo, "state", "list")
    assert ambiguous.returncode == 64 and "pass --project NAME" in ambiguous.stderr

    # sg's lock is held (by this test): sg cannot apply, th can, at the same time.
    (repo / "specs" / "sg" / "plans.yaml").write_text(SG_SPEC.replace("120.00", "130.00"))
    (repo / "specs" / "th" / "plans.yaml").write_text(TH_SPEC.replace("555.00", "556.00"))
    held = open_backend(str(repo / ".plansync" / "state.json"), "sg", os.environ)
    with held.lock("a test holding sg's lock"):
        result = run_in({}, repo, "apply", "--auto-approve")
    assert result.returncode == 1
    assert "error: project sg: " in result.stderr and "lock" in result.stderr
    assert accepted_writes(emulator) == {("156142", "U"): 1, ("156143", "U"): 2}


def test_without_projects_the_project_flag_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plansync.yaml").write_text("merchant_id: JT01\n")
    result = run_in({}, tmp_path, "state", "list", "--project", "sg")
    assert result.returncode == 64
    assert "declare no projects" in result.stderr


def test_projects_lists_those_a_change_touches(repo: Path) -> None:
    (repo / "changed.txt").write_text("specs/th/plans.yaml\ndocs/x.md\n")
    result = run_in({}, repo, "projects", "--changed", "changed.txt", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"name": "th", "specs": ["specs/th"], "workspace": "th"}]
    every = run_in({}, repo, "projects")
    assert every.stdout.splitlines() == ["sg\tworkspace sg\tspecs specs/sg",
                                         "th\tworkspace th\tspecs specs/th"]


@pytest.mark.parametrize("projects", [
    "  sg: {specs: [a]}\n  th: {specs: [b], workspace: sg}\n",
    # A state file that is another project's workspace's.
    "  sg: {specs: [a]}\n  th: {specs: [b], state: .plansync/workspaces/sg/state.json}\n",
    # One database, spelled two ways (port, scheme, case, user).
    "  sg: {specs: [a], state: 'postgres://u@db/p', workspace: w}\n"
    "  th: {specs: [b], state: 'postgresql://v@DB:5432/p', workspace: w}\n",
    "  sg: {specs: [a], state: 's3://bkt/state', workspace: w}\n"
    "  th: {specs: [b], state: 's3://bkt/state/', workspace: w}\n",
    # The same file, spelled differently.
    "  sg: {specs: [a], state: s.json}\n  th: {specs: [b], state: a/../s.json}\n",
    "  sg: {specs: [a], state: ./s.json}\n  th: {specs: [b], state: s.json}\n",
    # A project named default, and another in the default state's default workspace.
    "  default: {specs: [a]}\n  th: {specs: [b], state: .plansync/state.json}\n",
    "  sg: {specs: [a], state: s.json, workspace: w}\n  th: {specs: [b], state: s.json,"
    " workspace: w}\n",
])
def test_two_projects_may_not_share_a_state(tmp_path: Path, projects: str) -> None:
    from plansync import config

    (tmp_path / "plansync.yaml").write_text("projects:\n" + projects)
    with pytest.raises(ConfigError, match="share one state"):
        config.load(config.Flags(), {}).projects  # noqa: B018
    # A flag for one project's run is not everybody's.
    (tmp_path / "plansync.yaml").write_text("projects:\n  sg: {specs: [a]}\n"
                                            "  th: {specs: [b]}\n")
    flagged = config.load(config.Flags(workspace="x"), {"PLANSYNC_WORKSPACE": "y"})
    assert list(flagged.projects) == ["sg", "th"]
    with pytest.raises(ConfigError, match="projects must map"):
        (tmp_path / "plansync.yaml").write_text("projects:\n")
        config.load(config.Flags(), {}).projects  # noqa: B018


def test_each_projects_workspace(tmp_path: Path) -> None:
    from plansync import config

    (tmp_path / "plansync.yaml").write_text(
        "state: s3://bucket/plansync\nprojects:\n"
        "  sg: {specs: [a]}\n"
        "  th: {specs: [b], workspace: thailand}\n"
        "  my: {specs: [c], state: my-state.json}\n")
    loaded = config.load(config.Flags(), {})
    where = {name: (loaded.of_project(name).state, loaded.of_project(name).workspace)
             for name in loaded.projects}
    assert where == {"sg": ("s3://bucket/plansync", "sg"),
                     "th": ("s3://bucket/plansync", "thailand"),
                     "my": ("my-state.json", None)}  # the file is ./plansync.yaml
    # A state given as a variable is every project's: each keeps its own workspace.
    moved = config.load(config.Flags(), {"PLANSYNC_STATE": "postgres://h/db"})
    assert moved.of_project("my").workspace == "my"
    with pytest.raises(ConfigError, match="a workspace: beside projects:"):
        (tmp_path / "plansync.yaml").write_text(
            "workspace: w\nprojects:\n  sg: {specs: [a]}\n")
        config.load(config.Flags(), {}).projects  # noqa: B018


@pytest.mark.parametrize(("args", "env", "said"), [
    (["plan", "--out", "plan.json"], {}, "--out FILE"),
    (["plan", "--target", "156142"], {}, "--target/--exclude"),
    (["apply", "--dry-run", "--merchant-id", "SG01"], {}, "--merchant-id"),
    (["drift"], {"PLANSYNC_MERCHANT_KEY": "k.pem"}, "PLANSYNC_MERCHANT_KEY"),
    (["apply", "--plan", "plan.json"], {}, "--plan FILE"),
])
def test_what_is_one_projects_is_refused_for_several(repo: Path, emulator, args: list[str],
                                                     env: dict[str, str], said: str) -> None:
    result = run_in(env, repo, *args)
    assert result.returncode == 64, result.stderr
    assert f"{said}: one project's, and this run is of several" in result.stderr
    assert sent_writes(emulator) == {}


def test_projects_prints_the_workflows_github_matrix(repo: Path, tmp_path: Path) -> None:
    (repo / "changed.txt").write_text("specs/th/plans.yaml\n")
    touched_th = run_in({}, repo, "projects", "--changed", "changed.txt", "--github-matrix")
    assert touched_th.returncode == 0, touched_th.stderr
    assert touched_th.stdout == '{"include":[{"project":"th","specs":["specs/th"]}]}\n'
    (repo / "changed.txt").write_text("README.md\n")
    none = run_in({}, repo, "projects", "--changed", "changed.txt", "--github-matrix")
    assert none.stdout == '{"include":[]}\n'
    every = run_in({}, repo, "projects", "--github-matrix")
    assert [e["project"] for e in json.loads(every.stdout)["include"]] == ["sg", "th"]
    # A repository without projects: one job, no --project, on specs/ (as before projects).
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "plansync.yaml").write_text("merchant_id: JT01\n")
    single = run_in({}, tmp_path / "single", "projects", "--github-matrix")
    assert single.stdout == '{"include":[{"project":"","specs":["specs"]}]}\n'
    both = run_in({}, repo, "projects", "--json", "--github-matrix")
    assert both.returncode == 64 and "give one" in both.stderr


# --- attacks on the projects (each failed before its fix) -------------------------------


def test_the_default_state_is_beside_the_settings_found_above(tmp_path: Path, emulator,
                                                             emulator_dir: Path) -> None:
    """Run in a project's folder or at the root: one state, one lock, no second write."""
    repo = repository(tmp_path / "repo", emulator.url, emulator_dir)
    settings = repo / "plansync.yaml"
    settings.write_text(settings.read_text().replace("state: .plansync/state.json\n", ""))
    applied = run_in({}, repo / "specs" / "th", "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert (repo / ".plansync" / "workspaces" / "th" / "state.json").exists()
    assert not (repo / "specs" / "th" / ".plansync").exists()
    again = run_in({}, repo, "apply", "--project", "th", "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert accepted_writes(emulator) == {("156143", "U"): 1}


def test_a_saved_plan_of_one_project_is_refused_for_another(repo: Path, emulator) -> None:
    made = run_in({}, repo, "plan", "--project", "sg", "--out", "sg.json")
    assert made.returncode == 0, made.stderr
    applied = run_in({}, repo, "apply", "--plan", "sg.json", "--project", "th",
                     "--auto-approve")
    assert applied.returncode == 1
    assert "is not the one plan file sg.json was made from" in applied.stderr
    assert sent_writes(emulator) == {}


def test_another_projects_paths_are_refused_with_a_project(repo: Path) -> None:
    result = run_in({}, repo, "plan", "--project", "sg", "specs/th")
    assert result.returncode == 64
    assert "specs/th is project th's: pass --project th" in result.stderr


def test_a_link_to_another_projects_spec_is_refused(repo: Path, emulator) -> None:
    (repo / "specs" / "th" / "sg.yaml").symlink_to(repo / "specs" / "sg" / "plans.yaml")
    result = run_in({}, repo, "apply", "--auto-approve")
    assert result.returncode == 1
    assert "error: project th: " in result.stderr and "is a link to project sg's specs" \
        in result.stderr
    assert sent_writes(emulator) == {("156142", "U"): 1}  # sg's own, once: by sg


def test_at_the_root_every_project_runs_even_one_with_specs_elsewhere(
        tmp_path: Path) -> None:
    projects = parse({"sg": {"specs": ["../elsewhere/sg"]}, "th": {"specs": ["specs/th"]}},
                     tmp_path / "repo" / "plansync.yaml", [])
    assert [p.name for p, _ in choose(projects, [], (), tmp_path / "repo")] == ["sg", "th"]
    assert [p.name for p, _ in choose(projects, [], (), tmp_path / "repo" / "specs")] == \
        ["sg", "th"]


def test_projects_changed_refuses_what_is_not_a_text_file(repo: Path) -> None:
    (repo / "bad.txt").write_bytes(b"\xff\n")
    bad = run_in({}, repo, "projects", "--changed", "bad.txt")
    assert bad.returncode == 1 and "is not UTF-8 text" in bad.stderr
    device = run_in({}, repo, "projects", "--changed", "/dev/zero")
    assert device.returncode == 1 and "not a file of paths" in device.stderr


def test_a_leading_zero_id_is_inquired_as_the_plan(repo: Path) -> None:
    result = run_in({}, repo, "inquire", "0156143", "--project", "th")
    assert result.returncode == 0, result.stderr
    assert "156143" in result.stdout


def test_import_with_a_project_leaves_out_what_its_specs_declare(repo: Path) -> None:
    result = run_in({}, repo, "import", "156143", "--project", "th")
    assert result.returncode == 1
    assert "plan 156143 is already declared" in result.stderr


def test_the_demo_is_not_moved_by_the_users_settings() -> None:
    from tests.helpers import run

    result = run("demo", "--projects", env={"PLANSYNC_MERCHANT_ID": "X1",
                                            "PLANSYNC_WORKSPACE": "mine"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_variable_that_contradicts_a_projects_merchant_is_refused(tmp_path: Path) -> None:
    """Review: in CI a repository-wide PLANSYNC_MERCHANT_ID reaches every project's job,
    and ranked above the project's own merchant_id it sent th's run as SG01."""
    from plansync import config

    (tmp_path / "plansync.yaml").write_text(
        "endpoint: sandbox\nmerchant_key: k.pem\ngateway_key: g.pem\nprojects:\n"
        "  th: {specs: [b], merchant_id: TH01, endpoint: production}\n"
        "  sg: {specs: [a]}\n")
    wrong = config.load(config.Flags(), {"PLANSYNC_MERCHANT_ID": "SG01"})
    with pytest.raises(ConfigError, match="PLANSYNC_MERCHANT_ID says merchant_id SG01, "
                                          "but project th"):
        wrong.of_project("th").gateway  # noqa: B018
    assert wrong.of_project("sg").gateway.merchant_id == "SG01"  # sg names none itself
    same = config.load(config.Flags(), {"PLANSYNC_MERCHANT_ID": "TH01",
                                        "PLANSYNC_ENDPOINT": "production"})
    assert same.of_project("th").gateway.merchant_id == "TH01"
    elsewhere = config.load(config.Flags(endpoint="sandbox"), {})
    with pytest.raises(ConfigError, match="--endpoint says endpoint https://demo2"):
        elsewhere.of_project("th").gateway  # noqa: B018


def test_a_path_git_would_quote_still_touches_its_project(repo: Path) -> None:
    """Review: `git diff --name-only` quotes a path holding a quote or a backslash, and the
    quoted path touched no project; the workflows give -z, NUL-ended paths."""
    (repo / "changed").write_bytes(b'specs/th/a"b.yaml\0specs/th/new\nline.yaml\0')
    result = run_in({}, repo, "projects", "--changed", "changed", "--json")
    assert result.returncode == 0, result.stderr
    assert [p["name"] for p in json.loads(result.stdout)] == ["th"]



# --- the second round of attacks (each failed before its fix) ---------------------------


def test_a_state_variable_that_would_put_two_projects_in_one_state(tmp_path: Path) -> None:
    from plansync import config

    (tmp_path / "plansync.yaml").write_text(
        "projects:\n  sg: {specs: [a], state: a.json, workspace: w}\n"
        "  th: {specs: [b], state: b.json, workspace: w}\n")
    assert list(config.load(config.Flags(), {}).projects) == ["sg", "th"]
    with pytest.raises(ConfigError, match="share one state"):
        config.load(config.Flags(), {"PLANSYNC_STATE": "/tmp/shared.json"}).projects  # noqa: B018


def test_a_workspace_given_for_a_project_must_be_its_own(repo: Path, emulator) -> None:
    assert run_in({}, repo, "apply", "--auto-approve").returncode == 0
    for env, args in (({"PLANSYNC_WORKSPACE": "th"}, ["state", "rm", "156143"]),
                      ({}, ["state", "list", "--workspace", "th"]),
                      ({"PLANSYNC_WORKSPACE": "sg"}, ["workspace", "delete", "th", "--force"])):
        project = "th" if args[0] == "workspace" else "sg"
        refused = run_in(env, repo, *args, "--project", project)
        assert refused.returncode == 1, (args, refused.stderr)
        assert ("but project" in refused.stderr and "'s is " in refused.stderr) or \
            "workspace th is project th's" in refused.stderr
    listed = run_in({}, repo, "state", "list", "--project", "th")
    assert "156143" in listed.stdout  # th's state is whole


def test_the_merchant_contradiction_names_both_merchants(tmp_path: Path) -> None:
    from plansync import config

    (tmp_path / "plansync.yaml").write_text(
        "endpoint: sandbox\nmerchant_key: k\ngateway_key: g\nprojects:\n"
        "  sg: {specs: [a], merchant_id: SG01}\n")
    with pytest.raises(ConfigError, match="says merchant_id TH01, but project sg in .* says "
                                          "SG01\n"):
        loaded = config.load(config.Flags(), {"PLANSYNC_MERCHANT_ID": "TH01"})
        loaded.of_project("sg").gateway  # noqa: B018


def test_an_import_into_another_projects_specs_is_refused(repo: Path) -> None:
    result = run_in({}, repo, "import", "156142", "--project", "sg", "--out",
                    "specs/th/imported.yaml")
    assert result.returncode == 1
    assert "is in project th's specs" in result.stderr
    assert not (repo / "specs" / "th" / "imported.yaml").exists()


@pytest.mark.parametrize("settings", [
    'projects:\n  a: {specs: [s], state: "pg\\0x"}\n',
    'projects:\n  a: {specs: ["s\\0t"]}\n',
    "projects:\n  a: {specs: [s], workspace: '../x'}\n",
])
def test_a_projects_path_or_workspace_that_cannot_be_is_one_error(tmp_path: Path,
                                                                  settings: str) -> None:
    (tmp_path / "plansync.yaml").write_text(settings)
    result = run_in({}, tmp_path, "projects")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: config file") and "crashed" not in result.stderr


def test_plan_ids_that_are_not_digits_are_never_sent(repo: Path, emulator) -> None:
    for given in ("+156142", " 156142", "\u0661\u0665\u0666", ""):
        result = run_in({}, repo, "inquire", given, "--project", "sg")
        assert result.returncode == 64, (given, result.stderr)
    assert admin_log(emulator) == []


def admin_log(emulator) -> list:
    from tests.helpers import admin

    return admin(emulator, "GET", "/_emulator/log")


def test_a_saved_plan_with_another_projects_paths_is_refused(repo: Path, emulator) -> None:
    """The PATHs given with --plan are checked like any: sg's, with --project th, would
    have matched sg's plan and applied it in th's state."""
    assert run_in({}, repo, "plan", "--project", "sg", "--out", "sg.json").returncode == 0
    applied = run_in({}, repo, "apply", "--plan", "sg.json", "--project", "th", "specs/sg",
                     "--auto-approve")
    assert applied.returncode == 64
    assert "specs/sg is project sg's: pass --project sg" in applied.stderr
    assert sent_writes(emulator) == {}
    by_path = run_in({}, repo, "apply", "--plan", "sg.json", "specs/sg", "--auto-approve")
    assert by_path.returncode == 0, by_path.stderr  # the PATHs' project: sg's own plan
    assert sent_writes(emulator) == {("156142", "U"): 1}
