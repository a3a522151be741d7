"""The GitHub Action's script, run by bash here exactly as a runner would run it."""

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from plansync.emulator.server import Emulator

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "specs.example"


def action_script() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert "plansync-action-script" in step["run"]
    return str(step["run"])


Ran = tuple[subprocess.CompletedProcess[str], dict[str, str]]


def run_action(tmp_path: Path, emulator_dir: Path, emulator: Emulator, command: str,
               args: str, ok: str = "0 2", state: Path | str | None = None,
               paths: str | None = None) -> Ran:
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    outputs = tmp_path / "github_output"
    outputs.touch()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
        "PLANSYNC_ACTION_PATH": str(tmp_path / "no-checkout-here"),
        "INPUT_COMMAND": command, "INPUT_ARGS": args,
        "INPUT_PATHS": str(EXAMPLE) if paths is None else paths,
        "INPUT_MERCHANT_KEY": (emulator_dir / "merchant-private.pem").read_text(),
        "INPUT_MERCHANT_KEY_PASSWORD": "",
        "INPUT_GATEWAY_KEY": (emulator_dir / "gateway-public.pem").read_text(),
        "INPUT_OK_EXIT_CODES": ok,
        # Pinned and already installed: the step's pip install is a no-op.
        "INPUT_PACKAGE": f"click=={version('click')}",
        "PLANSYNC_MERCHANT_ID": "JT01", "PLANSYNC_ENDPOINT": emulator.url,
        "PLANSYNC_STATE": str(state or tmp_path / "state.json"),
        "PLANSYNC_REQUIRE_REMOTE_STATE": "false" if state is None or "://" not in str(state)
        else "true",
    }
    result = subprocess.run(["bash", "-c", action_script()], env=env, text=True,
                            capture_output=True, timeout=120, cwd=tmp_path,
                            stdin=subprocess.DEVNULL)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert list(runner_temp.glob("plansync-keys.*")) == []  # keys removed afterwards
    return result, values


def test_plan_step_posts_markdown_and_passes_on_changes(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    result, outputs = run_action(tmp_path, emulator_dir, emulator, "plan",
                                 "--markdown --detailed-exitcode")
    assert result.returncode == 0, result.stderr
    assert outputs["exit-code"] == "2"
    comment = Path(outputs["output-file"]).read_text()
    assert comment.startswith("#### plansync plan: 2 to update, 1 to cancel, 1 unchanged")
    assert "readable by group or others" not in result.stderr  # the key files were 0600
    assert "BEGIN PRIVATE KEY" not in result.stdout + result.stderr


def test_apply_step_fails_the_job_when_a_guardrail_refuses(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    result, outputs = run_action(tmp_path, emulator_dir, emulator, "apply",
                                 "--auto-approve --max-cancels 0", ok="0")
    assert result.returncode == 3
    assert outputs["exit-code"] == "3"


def test_example_workflows_use_the_action_and_keep_secrets_in_secrets() -> None:
    for path in sorted((ROOT / "examples" / "github-actions").glob("*.yml")):
        text = path.read_text()
        workflow = yaml.safe_load(text)
        steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
        uses = [s for s in steps if s.get("uses") == "./.github/actions/plansync"]
        talking = [s for s in uses if s["with"]["command"] in ("plan", "apply", "drift")]
        assert talking, path.name
        for step in talking:  # every step that talks to the gateway: keys from secrets
            assert step["with"]["merchant-key"] == "${{ secrets.PLANSYNC_MERCHANT_KEY }}"
        assert "BEGIN" not in text


def test_workflows_and_action_are_valid_github_actions_yaml() -> None:
    checker = str(Path(sys.executable).parent / "check-jsonschema")
    workflows = [*sorted((ROOT / "examples" / "github-actions").glob("*.yml")),
                 ROOT / ".github" / "workflows" / "ci.yml"]
    for schema, files in (("vendor.github-workflows", workflows),
                          ("vendor.github-actions", [ROOT / "action.yml"])):
        result = subprocess.run([checker, "--builtin-schema", schema, *map(str, files)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_workflows_commands_against_the_emulator(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    """Each example workflow's plansync step, as written, in the order a merge runs them."""
    import shutil

    def step(name: str, command: str) -> dict[str, str]:
        workflow = yaml.safe_load((ROOT / "examples" / "github-actions" / name).read_text())
        steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
        found: dict[str, str] = next(
            s["with"] for s in steps if s.get("uses") == "./.github/actions/plansync"
            and s["with"]["command"] == command)
        return found

    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    expected = [("plansync-plan.yml", "plan", "2"), ("plansync-apply.yml", "apply", "0"),
                ("plansync-drift.yml", "drift", "0")]
    for number, (name, command, code) in enumerate(expected):
        with_ = step(name, command)
        args = with_["args"].replace("${{ runner.temp }}", str(runner_temp))
        assert "${{" not in args
        folder = tmp_path / str(number)
        folder.mkdir()
        result, outputs = run_action(folder, emulator_dir, emulator, with_["command"], args,
                                     ok=with_.get("ok-exit-codes", "0 2"),
                                     state=tmp_path / "shared" / "state.json",
                                     paths=with_.get("paths"))
        assert outputs["exit-code"] == code, (name, result.stdout, result.stderr)
        assert result.returncode == 0, name
        if command == "plan":  # what `ci fetch-plan` brings back from the artifact
            # (tests/test_gitops_flow.py drives that step against a stand-in GitHub)
            shutil.copy(runner_temp / "plan.json", runner_temp / "reviewed-plan.json")


def test_the_action_refuses_runner_local_state_and_runs_on_postgres(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator, postgres_url: str) -> None:
    env_local = dict(os.environ, PLANSYNC_REQUIRE_REMOTE_STATE="true",
                     PLANSYNC_STATE=str(tmp_path / "state.json"),
                     PLANSYNC_CONFIG=str(emulator_dir / "plansync.yaml"),
                     PLANSYNC_ENDPOINT=emulator.url)
    refused = subprocess.run([sys.executable, "-m", "plansync", "plan", str(EXAMPLE)],
                             env=env_local, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    assert refused.returncode == 1
    assert "which this CI runner forgets" in refused.stderr
    assert "PLANSYNC_STATE (or state: in plansync.yaml)" in refused.stderr
    remote = f"{postgres_url}?workspace=action{os.getpid()}"
    result, outputs = run_action(tmp_path, emulator_dir, emulator, "apply",
                                 "--auto-approve", ok="0", state=remote)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs["exit-code"] == "0"


def run_install_only(tmp_path: Path, package: str, action_path: Path) -> Any:
    """The action's script up to and including the install, as a runner runs it."""
    script = action_script().split("keys=", 1)[0]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PLANSYNC_ACTION_PATH": str(action_path), "INPUT_PACKAGE": package}
    return subprocess.run(["bash", "-c", script], env=env, text=True, capture_output=True,
                          timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)


def test_the_action_never_installs_an_unpinned_name(tmp_path: Path) -> None:
    unpinned = run_install_only(tmp_path, "plansync", tmp_path)
    assert unpinned.returncode == 1
    assert "::error::package 'plansync' is not pinned" in unpinned.stderr
    no_source = run_install_only(tmp_path, "", tmp_path)
    assert no_source.returncode == 1
    assert "::error::no plansync source at" in no_source.stderr
    assert "pip install --quiet plansync" not in action_script()


def test_the_constraints_file_pins_every_runtime_dependency() -> None:
    import re
    import tomllib

    pinned = {re.split(r"==", line)[0].lower().replace("_", "-")
              for line in (ROOT / "action-constraints.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    assert all("==" in line for line in (ROOT / "action-constraints.txt").read_text()
               .splitlines() if line and not line.startswith("#"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[\[<>=!~ ]", d)[0].lower().replace("_", "-")
              for d in project["dependencies"]}
    assert wanted <= pinned, wanted - pinned


def test_plan_and_apply_write_the_job_summary(tmp_path: Path, emulator_dir: Path,
                                              emulator: Emulator) -> None:
    (tmp_path / "plan").mkdir()
    run_action(tmp_path / "plan", emulator_dir, emulator, "plan", "--markdown")
    summary = (tmp_path / "plan" / "step_summary.md").read_text()
    assert summary.startswith("### plansync plan (exit code 0)\n\n")
    assert "| 156142 |" in summary or "156142" in summary
    (tmp_path / "apply").mkdir()
    run_action(tmp_path / "apply", emulator_dir, emulator, "apply", "--auto-approve",
               ok="0")
    applied = (tmp_path / "apply" / "step_summary.md").read_text()
    assert applied.startswith("### plansync apply (exit code 0)\n\n```text\n")
    assert "Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed." in applied
