"""The GitHub Action's script, run by bash here exactly as a runner would run it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from plansync.emulator.server import Emulator
from tests.gha import action_outputs, github_output, interpolate, runs_if
from tests.helpers import EXAMPLE, ROOT


def action_script() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert "plansync-action-script" in step["run"]
    return str(step["run"])


Ran = tuple[subprocess.CompletedProcess[str], dict[str, str]]


def run_action(tmp_path: Path, emulator_dir: Path, emulator: Emulator, command: str,
               args: str, ok: str = "0 2", state: Path | str | None = None,
               paths: str | None = None, runner_temp: Path | None = None,
               env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
    """The action's `run` step, with ``tmp_path`` as the workspace (or ``cwd``, the
    runner's: the repository's checkout). Returns the process and what the step wrote
    to $GITHUB_OUTPUT (as the runner reads it)."""
    if runner_temp is None:
        runner_temp = tmp_path / "runner"
        runner_temp.mkdir()
    outputs = tmp_path / "github_output"
    outputs.write_text("")
    environ = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
        "INPUT_COMMAND": command, "INPUT_ARGS": args,
        "INPUT_PATHS": str(EXAMPLE) if paths is None else paths,
        "INPUT_MERCHANT_KEY": (emulator_dir / "merchant-private.pem").read_text(),
        "INPUT_MERCHANT_KEY_PASSWORD": "",
        "INPUT_GATEWAY_KEY": (emulator_dir / "gateway-public.pem").read_text(),
        "INPUT_GITHUB_TOKEN": "",
        "INPUT_OK_EXIT_CODES": ok,
        "PLANSYNC_MERCHANT_ID": "JT01", "PLANSYNC_ENDPOINT": emulator.url,
        "PLANSYNC_STATE": str(state or tmp_path / "state.json"),
        "PLANSYNC_REQUIRE_REMOTE_STATE": "false" if state is None or "://" not in str(state)
        else "true",
        **(env or {}),
    }
    result = subprocess.run(["bash", "-c", action_script()], env=environ, text=True,
                            capture_output=True, timeout=120, cwd=cwd or tmp_path,
                            stdin=subprocess.DEVNULL)
    assert list(runner_temp.glob("plansync-keys.*")) == []  # keys removed afterwards
    return result, github_output(str(outputs))


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


HEAD_SHA, MERGE_SHA, BEFORE_SHA = "1a" * 20, "2b" * 20, "3c" * 20
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


class Runner:
    """The example workflows' jobs, step by step, as a runner runs them: ``if:`` evaluated,
    ``with:`` resolved, plansync's steps run by the action's own script (against the
    emulator and a stand-in GitHub), and each step's outputs passed on as the runner
    passes them: only those action.yml declares. Checkouts are the folders the test lays
    out; a saved artifact is kept by name; github-script steps only count as run. The
    runner's GITHUB_* variables are ``github_env``; the token only what a step passes as
    the action's ``github-token``."""

    def __init__(self, tmp_path: Path, emulator_dir: Path, emulator: Emulator,
                 github_env: dict[str, str]) -> None:
        self.tmp_path, self.emulator_dir, self.emulator = tmp_path, emulator_dir, emulator
        self.github_env = github_env
        self.artifacts: dict[str, Path] = {}
        self.needs: dict[str, dict[str, Any]] = {}  # by job id: its result and outputs
        self.log: list[str] = []  # what each plansync step printed, for a failing assert
        self.written: dict[str, dict[str, str]] = {}  # $GITHUB_OUTPUT, by step id
        self.contexts: dict[str, Any] = {
            "github": {"sha": MERGE_SHA, "run_id": "555", "token": "test-token",
                       "event": {"before": BEFORE_SHA,
                                 "pull_request": {"number": 7, "head": {"sha": HEAD_SHA}},
                                 "repository": {"default_branch": "main"}}},
            "vars": {"PLANSYNC_STATE": "postgres://not-s3"}, "secrets": {}}

    def job(self, workflow: str, job_id: str, workspace: Path,
            matrix: dict[str, Any] | None = None) -> tuple[str, list[str]]:
        """Run one job in ``workspace`` (one entry of its ``matrix``, if it has one): (its
        conclusion, the names of the steps that ran). Its outputs are kept for the jobs
        that need it (``needs``), with its result."""
        body = yaml.safe_load((ROOT / "examples" / "github-actions" / workflow)
                              .read_text())["jobs"][job_id]
        steps = body["steps"]
        runner_temp = workspace / "runner-temp"
        runner_temp.mkdir(exist_ok=True, parents=True)
        needs = body.get("needs") or []
        contexts = {**self.contexts, "runner": {"temp": str(runner_temp)}, "steps": {},
                    "matrix": matrix or {},
                    "needs": {n: self.needs[n] for n in ([needs] if isinstance(needs, str)
                                                         else needs)}}
        status, ran = "success", []
        for number, step in enumerate(steps):
            name = step.get("name") or step.get("id") or step.get("uses", "")
            if not runs_if(step.get("if"), contexts, status):
                continue
            ran.append(name)
            uses = str(step.get("uses", ""))
            with_ = {k: interpolate(str(v), contexts) for k, v in step.get("with", {}).items()}
            if uses == "./.github/actions/plansync":
                (workspace / str(number)).mkdir(exist_ok=True)  # a job run again
                result, raw = run_action(
                    workspace / str(number), self.emulator_dir, self.emulator,
                    with_["command"], with_.get("args", ""),
                    ok=with_.get("ok-exit-codes", "0 2"),
                    state=self.tmp_path / "shared" / "state.json",
                    paths=" ".join(str(workspace / path) for path in
                                   with_.get("paths", "specs").split()),
                    runner_temp=runner_temp,
                    env={**self.github_env,
                         "INPUT_GITHUB_TOKEN": with_.get("github-token", ""),
                         "INPUT_PROJECT": with_.get("project", "")},
                    cwd=workspace)
                outputs = action_outputs(ACTION, {"run": raw})
                self.written[step.get("id", name)] = raw
                failed = result.returncode != 0
                self.log.append(f"--- {name}: exit {result.returncode}, outputs {raw}\n"
                                f"{result.stdout}{result.stderr}")
            elif uses.startswith("actions/upload-artifact@"):
                assert with_["name"] not in self.artifacts  # unique in a run
                self.artifacts[with_["name"]] = Path(with_["path"])
                outputs, failed = {}, False
            elif uses.startswith("actions/download-artifact@"):
                outputs, failed = {}, self.download(with_)
            elif "run" in step:  # no ${{ }} in a run: (tests/test_workflows.py)
                written = runner_temp / f"output-{number}"
                written.write_text("")
                environ = {**os.environ, "RUNNER_TEMP": str(runner_temp),
                           "GITHUB_OUTPUT": str(written),
                           **{k: interpolate(str(v), contexts)
                              for k, v in (step.get("env") or {}).items()}}
                script = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace,
                                        capture_output=True, text=True, timeout=60,
                                        env=environ)
                outputs, failed = github_output(str(written)), script.returncode != 0
                self.log.append(f"--- {name}: exit {script.returncode}\n"
                                f"{script.stdout}{script.stderr}")
            else:
                outputs, failed = {}, False
            if "id" in step:
                contexts["steps"][step["id"]] = {"outputs": outputs}
            if failed and not step.get("continue-on-error"):
                status = "failure"
        self.needs[job_id] = {"result": status, "outputs": {
            k: interpolate(str(v), contexts) for k, v in (body.get("outputs") or {}).items()}}
        return status, ran

    def download(self, with_: dict[str, str]) -> bool:
        """download-artifact: by name into the path; by pattern a folder an artifact.
        Whether it failed (a name not saved)."""
        target = Path(with_["path"])
        if "name" in with_:
            if with_["name"] not in self.artifacts:
                return True
            chosen = {"": self.artifacts[with_["name"]]}
        else:
            pattern = re.escape(with_["pattern"]).replace(r"\*", ".*")
            chosen = {n: p for n, p in self.artifacts.items() if re.fullmatch(pattern, n)}
        for name, source in chosen.items():
            into = target / name
            if source.is_dir():
                shutil.copytree(source, into, dirs_exist_ok=True)
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, into / source.name)
        return False


def default_branch(github: Any) -> None:
    """The stand-in GitHub's default branch holds the shipped plan workflow; its tip is
    the push's ``before``."""
    from tests.fake_github import PLAN_WORKFLOW

    workflow = (ROOT / "examples" / "github-actions" / "plansync-plan.yml").read_text()
    github.commit(BEFORE_SHA, {PLAN_WORKFLOW: workflow}, github.branches["main"])
    github.branches["main"] = BEFORE_SHA


def workspace(tmp_path: Path, name: str, pull_request: bool = False) -> Path:
    """A job's checkout: the default branch's specs, and the PR's as data if it has one
    (a git repository: its base commit without the spec, its head with it)."""
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder / "specs")
    if pull_request:
        pr = folder / ".plansync-pr"
        (pr / "specs").mkdir(parents=True)
        (pr / "specs" / "README.md").write_text("the specs\n")
        git(pr, "init", "-q", "-b", "main")
        git(pr, "add", "-A")
        git(pr, "commit", "-q", "-m", "base")
        shutil.copytree(EXAMPLE, pr / "specs", dirs_exist_ok=True)
        git(pr, "add", "-A")
        git(pr, "commit", "-q", "-m", "the change")
    return folder


def git(folder: Path, *args: str) -> str:
    """git in ``folder``, its commits the same wherever they are made (fixed names and
    dates): two checkouts of one history have the same commit ids."""
    fixed = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
             "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com",
             "GIT_AUTHOR_DATE": "2026-11-27T09:00:00Z",
             "GIT_COMMITTER_DATE": "2026-11-27T09:00:00Z"}
    return subprocess.run(["git", "-C", str(folder), *args], check=True, text=True,
                          capture_output=True, env={**os.environ, **fixed}).stdout.strip()


def pull_request_jobs(runner: "Runner", tmp_path: Path, name: str) -> list[str]:
    """The plan workflow on a pull request, as GitHub runs its jobs: the projects, a plan
    job an entry of their matrix, the comment. Returns the matrix's projects."""
    import json

    first = workspace(tmp_path, f"{name}-projects", pull_request=True)
    history = first / ".plansync-pr"
    event = runner.contexts["github"]["event"]["pull_request"]
    event["base"] = {"sha": git(history, "rev-parse", "HEAD~1")}
    event["head"] = {"sha": git(history, "rev-parse", "HEAD")}
    status, _ = runner.job("plansync-plan.yml", "projects", first)
    assert status == "success", "\n".join(runner.log)
    entries = json.loads(runner.needs["projects"]["outputs"]["matrix"])["include"]
    for entry in entries:
        status, ran = runner.job("plansync-plan.yml", "plan", workspace(
            tmp_path, f"{name}-plan-{entry['project']}", pull_request=True), entry)
        assert status == "success", "\n".join(runner.log)
        assert ran[-2:] == ["Keep the plan's Markdown and exit code for the comment",
                            "Save them for the comment job"]
    status, _ = runner.job("plansync-plan.yml", "comment",
                           workspace(tmp_path, f"{name}-comment"))
    assert status == "success", "\n".join(runner.log)
    return [entry["project"] for entry in entries]


def test_a_merge_through_the_example_workflows_as_a_runner_runs_them(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    """Plan on the pull request (its comment posted, then updated by the next push's
    run), then on merge fetch the reviewed plan, apply it and tell the pull request; a
    re-run of that apply stays green and keeps the comment true; the nightly drift finds
    nothing."""
    from plansync.gitops.report import APPLY_MARKER, PLAN_MARKER
    from tests.fake_github import REPO, FakeGitHub, serving

    with serving(FakeGitHub()) as github:
        default_branch(github)
        env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO,
               "GITHUB_RUN_ID": "555", "GITHUB_SERVER_URL": "https://github.com"}
        runner = Runner(tmp_path, emulator_dir, emulator, env)
        github.comment(7, f"{PLAN_MARKER}\nnot the bot's", {"login": "mallory", "type": "User"})
        for push in (1, 2):  # the second: the plan workflow on the pull request's next push
            runner.artifacts.clear()  # a run's own
            # Without projects: one plan job, no --project, environment plansync-plan.
            assert pull_request_jobs(runner, tmp_path, f"pr-{push}") == [""]
            forged, plan_comment = github.comments[7]  # the bot's own, updated in place
            assert forged["body"] == f"{PLAN_MARKER}\nnot the bot's"
            assert plan_comment["user"]["login"] == "github-actions[bot]"
            assert plan_comment["body"].startswith(
                f"{PLAN_MARKER}\n#### plansync plan: 2 to update, 1 to cancel, 1 unchanged")
        head = runner.contexts["github"]["event"]["pull_request"]["head"]["sha"]
        artifact = runner.artifacts[f"plansync-plan-{head}"]
        # The PR is merged; its plan run (pull_request_target, as the default branch's
        # plan workflow says) saved that artifact.
        github.merge(MERGE_SHA, 7, head, spec=(EXAMPLE / "plans.yaml").read_text())
        github.plan_run(900, head, artifact.read_bytes(), event="pull_request_target")

        for attempt in (1, 2):  # the second: a re-run of the same apply job
            runner.needs["projects"] = {"result": "success", "outputs": {
                "matrix": '{"include":[{"project":"","specs":["specs"]}]}'}}
            status, ran = runner.job("plansync-apply.yml", "apply-reviewed",
                                     workspace(tmp_path, f"merge-{attempt}"),
                                     {"project": "", "specs": ["specs"]})
            assert status == "success", "\n".join(runner.log)
            assert "Tell the pull request what was applied, or why nothing was" in ran
            comment = github.comments[7][-1]["body"]
            assert comment.startswith(APPLY_MARKER), comment
            # The re-run leaves the comment as the first run wrote it: still true.
            assert "### plansync: the reviewed plan was applied\n\n3 written, 0 not " \
                   "written, 1 unchanged." in comment, comment
            assert "| 156142 | updated | amount, recurring_count |" in comment, comment
        assert len(github.comments[7]) == 3  # mallory's, the plan's, the apply's

        status, _ = runner.job("plansync-drift.yml", "drift", workspace(tmp_path, "night"),
                               {"project": "", "specs": ["specs"]})
        assert status == "success", "\n".join(runner.log)
        assert runner.written["drift"]["exit-code"] == "0"  # live is what was applied


def test_a_merge_without_a_reviewed_plan_is_reported_on_the_pull_request(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    """The merged PR is found but no plan run is: the reason reaches the PR (through the
    action's declared `pull` output) and the job fails. Before action.yml declared
    `pull`, the report step never ran."""
    from tests.fake_github import REPO, FakeGitHub, serving

    with serving(FakeGitHub()) as github:
        default_branch(github)
        github.merge(MERGE_SHA, 7, HEAD_SHA)
        env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO,
               "GITHUB_RUN_ID": "555"}
        runner = Runner(tmp_path, emulator_dir, emulator, env)
        runner.needs["projects"] = {"result": "success", "outputs": {"matrix": "{}"}}
        status, ran = runner.job("plansync-apply.yml", "apply-reviewed",
                                 workspace(tmp_path, "merge"), {"project": "", "specs": ["specs"]})
        assert runner.written["reviewed"]["pull"] == "7"  # by the real `ci fetch-plan`
        assert ran == ["The default branch as it is now (what the plan is compared with)",
                       "Fetch the plan the merged pull request's review saw",
                       "Tell the pull request what was applied, or why nothing was",
                       "Fail unless every reviewed change was applied"], ran
        assert status == "failure"  # the check fails, after the PR was told
        assert [c["user"]["login"] for c in github.comments[7]] == ["github-actions[bot]"]
        body = github.comments[7][0]["body"]
        assert "**not applied**" in body and "Nothing was written" in body, body


def test_the_report_steps_command_line_parses_once_resolved() -> None:
    """`--pull ${{ steps.reviewed.outputs.pull }} --exit-code ...` resolved with the outputs
    the action declares, split as the action splits it, parsed as click parses it."""
    from plansync.commands.ci import ci

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions" / "plansync-apply.yml")
                              .read_text())
    report = next(s for s in workflow["jobs"]["apply-reviewed"]["steps"]
                  if s.get("with", {}).get("command") == "ci report")
    written = {"exit-code": "1", "output-file": "/t/out.txt", "pull": "7",
               "plan-run": "https://github.com/acme/plans/actions/runs/900"}
    for apply in ({}, {"outputs": action_outputs(ACTION, {"run": {
            "exit-code": "0", "output-file": "/t/apply.json"}})}):
        contexts = {"runner": {"temp": "/t"}, "steps": {
            "reviewed": {"outputs": action_outputs(ACTION, {"run": written})},
            **({"apply": apply} if apply else {})}}
        assert runs_if(report["if"], contexts)
        args = interpolate(report["with"]["args"], contexts).split()
        context = ci.commands["report"].make_context("report", args)
        expected = ("/t/apply.json", 0) if apply else ("/t/reviewed-plan.json", 1)
        assert (str(context.params["results"]), context.params["exit_code"]) == expected
        assert context.params["pull"] == 7
    undeclared = {**ACTION, "outputs": {k: v for k, v in ACTION["outputs"].items()
                                        if k != "pull"}}
    contexts = {"steps": {"reviewed": {"outputs": action_outputs(undeclared,
                                                                 {"run": written})}}}
    assert not runs_if(report["if"], contexts)  # the bug: the step never ran


def test_the_plan_comment_steps_command_line_parses_once_resolved() -> None:
    """`--pull ${{ github.event.pull_request.number }} --matrix ... --plans ...` resolved,
    split as the action splits it, parsed as click parses it; the comment job runs after
    the plan jobs whatever they concluded (a failed one is said in the comment), and not
    without the projects job's matrix."""
    from plansync.commands.ci import ci

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions" / "plansync-plan.yml")
                              .read_text())
    job = workflow["jobs"]["comment"]
    step = next(s for s in job["steps"] if s.get("with", {}).get("command") == "ci comment-plan")
    for plans in ("success", "failure", "skipped"):
        needs = {"projects": {"result": "success"}, "plan": {"result": plans}}
        assert runs_if(job["if"], {"needs": needs}, status="failure")
    assert not runs_if(job["if"], {"needs": {"projects": {"result": "failure"}}},
                       status="failure")
    contexts = {"github": {"event": {"pull_request": {"number": 7}}}, "runner": {"temp": "/t"}}
    args = interpolate(step["with"]["args"], contexts).split()
    context = ci.commands["comment-plan"].make_context("comment-plan", args)
    assert context.params == {"pull": 7, "file": None,
                              "matrix": Path("/t/plansync-matrix.json"),
                              "plans": Path("/t/plansync-comments")}


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


def install_script() -> str:
    """The script of the action's step that installs plansync (the one that runs pip)."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    step = next(s for s in steps if "pip install" in s.get("run", ""))
    return str(step["run"]).split("keys=", 1)[0]  # the part before the keys are written


def run_install_only(tmp_path: Path, package: str, action_path: Path,
                     env: dict[str, str] | None = None) -> Any:
    """The action's install, as a runner runs it."""
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "PLANSYNC_ACTION_PATH": str(action_path), "INPUT_PACKAGE": package,
               **(env or {})}
    return subprocess.run(["bash", "-c", install_script()], env=environ, text=True,
                          capture_output=True, timeout=600, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)


def test_the_action_never_installs_an_unpinned_name(tmp_path: Path) -> None:
    unpinned = run_install_only(tmp_path, "plansync", tmp_path)
    assert unpinned.returncode == 1
    assert "::error::package 'plansync' is not pinned" in unpinned.stderr
    no_source = run_install_only(tmp_path, "", tmp_path)
    assert no_source.returncode == 1
    assert "::error::no plansync source at" in no_source.stderr
    assert "pip install --quiet plansync" not in install_script()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    """action-constraints.txt: the exact version of each name."""
    lines = [line for line in (ROOT / "action-constraints.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+!-]+", line) for line in lines)
    return {canonical(name): version
            for name, version in (line.split("==") for line in lines)}


def test_the_constraints_file_pins_every_runtime_dependency() -> None:
    import tomllib

    pinned = set(constraints())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {canonical(re.split(r"[\[<>=!~ ;]", d)[0]) for d in project["dependencies"]}
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


SECRET_INPUTS = {"merchant-key", "merchant-key-password", "gateway-key", "github-token"}


def test_no_step_that_runs_pip_has_a_secret_in_its_env() -> None:
    """pip runs code from the package index (a build backend, a package's build): the step
    that runs it holds only the action's path and `package`; the keys come in a later
    step, which installs nothing."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    installs = [s for s in steps if re.search(r"\bpip\b", s.get("run", ""))]
    assert installs
    for step in installs:
        env = step.get("env") or {}
        read = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", " ".join(map(str, env.values()))))
        assert not read & SECRET_INPUTS, (step.get("id"), read & SECRET_INPUTS)
        assert "secrets." not in str(env)
        assert set(env) <= {"PLANSYNC_ACTION_PATH", "INPUT_PACKAGE"}, sorted(env)
    keyed = [s for s in steps if set(re.findall(r"inputs\.([A-Za-z0-9_-]+)",
                                                str(s.get("env")))) & SECRET_INPUTS]
    assert [s.get("id") for s in keyed] == ["run"]
    code = "\n".join(line for line in keyed[0]["run"].splitlines()
                     if not line.strip().startswith("#"))
    assert not re.search(r"\bpip\b", code)  # nothing is installed beside the keys
    assert steps.index(installs[-1]) < steps.index(keyed[0])


def test_the_build_backend_is_pinned_like_the_dependencies() -> None:
    import tomllib

    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    pinned = constraints()
    for requirement in build["requires"]:
        name = canonical(re.split(r"[\[<>=!~ ;]", requirement)[0])
        assert name in pinned, f"the build backend {name} is not in action-constraints.txt"
        # ... and it is what the install step puts in place before the build
        backend = re.search(r"pip install [^\n]*--only-binary[^\n]*\\\n\s*([^\n]+)",
                            install_script())
        assert backend is not None and name in backend.group(1).split()
    assert "--no-build-isolation" in install_script()


def _action_source(where: Path) -> Path:
    """The action's checkout: what building plansync from source reads."""
    where.mkdir()
    for name in ("pyproject.toml", "README.md", "action.yml", "action-constraints.txt"):
        shutil.copy2(ROOT / name, where / name)
    for name in ("plansync", "schemas", "specs.example", "examples/github-actions"):
        shutil.copytree(ROOT / name, where / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return where


def test_the_install_runs_only_pinned_versions_even_in_the_build(tmp_path: Path) -> None:
    """The install step for real, into a new Python environment (as setup-python gives
    one): every package pip installs, the build backend and its dependencies too (pip's
    build isolation ignores --constraint), is in action-constraints.txt at that version.
    Uses the package index pip is configured with (the network, or a local mirror)."""
    venv = tmp_path / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    source = _action_source(tmp_path / "action")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PIP_CONSTRAINT", "PIP_BUILD_CONSTRAINT", "PIP_NO_BUILD_ISOLATION",
                          "VIRTUAL_ENV", "PYTHONPATH")}
    # -vv against the step's --quiet: pip shows what each install, the build's too, did.
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", PIP_VERBOSE="2")
    (tmp_path / "work").mkdir()
    result = subprocess.run(["bash", "-c", install_script()], text=True, timeout=900,
                            capture_output=True, cwd=tmp_path / "work",
                            stdin=subprocess.DEVNULL,
                            env={**env, "PLANSYNC_ACTION_PATH": str(source),
                                 "INPUT_PACKAGE": ""})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    pinned = constraints()
    installed = [item.rsplit("-", 1) for line in re.findall(
        r"Successfully installed (.+)", output) for item in line.split()]
    seen = {canonical(name): version for name, version in installed}
    assert "hatchling" in seen, output[-5000:]  # the check saw the build backend
    unpinned = {f"{name} {version}" for name, version in seen.items()
                if name != "plansync" and pinned.get(name) != version}
    assert not unpinned, f"installed at versions action-constraints.txt does not pin: " \
                         f"{sorted(unpinned)}"
    frozen = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                             "--format=freeze"], capture_output=True, text=True,
                            timeout=120, check=True).stdout.split()
    left = {canonical(n): v for n, v in (line.split("==") for line in frozen)}
    assert {n: v for n, v in left.items() if n not in ("pip", "setuptools", "plansync")
            and pinned.get(n) != v} == {}
    assert "plansync" in left


def test_a_pull_request_touching_one_project_plans_only_it(
        tmp_path: Path, emulator_dir: Path, emulator: Emulator) -> None:
    """The plan workflow's first job, its steps run as the runner runs them: the changed
    paths from the pull request's real history (git diff BASE...HEAD), the projects they
    touch by the real `plansync projects` against the default branch's plansync.yaml;
    then each plan job's environment, paths and artifact for its entry."""
    import json

    runner = Runner(tmp_path, emulator_dir, emulator, {})
    first = workspace(tmp_path, "projects", pull_request=True)
    (first / "plansync.yaml").write_text(
        "projects:\n  sg: {specs: [specs/sg]}\n  th: {specs: [specs/th, specs/th-more]}\n")
    history = first / ".plansync-pr"
    base = git(history, "rev-parse", "HEAD")
    for name in ("sg", "th"):
        (history / "specs" / name).mkdir()
        (history / "specs" / name / "plans.yaml").write_text(f"# {name}\n")
    git(history, "add", "-A")
    git(history, "commit", "-q", "-m", "both projects")
    base = git(history, "rev-parse", "HEAD")
    (history / "specs" / "th" / "plans.yaml").write_text("# th, changed\n")
    git(history, "commit", "-q", "-am", "th only")
    event = runner.contexts["github"]["event"]["pull_request"]
    event["base"], event["head"] = {"sha": base}, {"sha": git(history, "rev-parse", "HEAD")}
    status, _ = runner.job("plansync-plan.yml", "projects", first)
    assert status == "success", "\n".join(runner.log)
    matrix = runner.needs["projects"]["outputs"]["matrix"]
    assert json.loads(matrix) == {"include": [
        {"project": "th", "specs": ["specs/th", "specs/th-more"]}]}
    plan = yaml.safe_load((ROOT / "examples" / "github-actions" / "plansync-plan.yml")
                          .read_text())["jobs"]["plan"]
    contexts = {**runner.contexts, "needs": runner.needs,
                "matrix": json.loads(matrix)["include"][0], "runner": {"temp": "/t"}}
    assert runs_if(plan["if"], contexts)
    assert interpolate(plan["environment"], contexts) == "plansync-plan-th"
    step = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert interpolate(step["with"]["project"], contexts) == "th"
    assert interpolate(step["with"]["paths"], contexts) == \
        ".plansync-pr/specs/th .plansync-pr/specs/th-more"
    saved = next(s for s in plan["steps"] if s.get("name", "").startswith("Save the reviewed"))
    assert interpolate(saved["with"]["name"], contexts) == \
        f"plansync-plan-th-{event['head']['sha']}"  # what ci fetch-plan --project th takes
    # A spec moved from sg to th touches both; a change outside every project, none.
    git(history, "mv", "specs/sg/plans.yaml", "specs/th/moved.yaml")
    git(history, "commit", "-q", "-m", "move")
    event["base"], event["head"] = event["head"], {"sha": git(history, "rev-parse", "HEAD")}
    assert runner.job("plansync-plan.yml", "projects", first)[0] == "success"
    assert [e["project"] for e in json.loads(
        runner.needs["projects"]["outputs"]["matrix"])["include"]] == ["sg", "th"]
    (history / "specs" / "README.md").write_text("not a project's\n")
    git(history, "commit", "-q", "-am", "docs")
    event["base"], event["head"] = event["head"], {"sha": git(history, "rev-parse", "HEAD")}
    assert runner.job("plansync-plan.yml", "projects", first)[0] == "success"
    contexts["needs"] = runner.needs
    assert runner.needs["projects"]["outputs"]["matrix"] == '{"include":[]}'
    assert not runs_if(plan["if"], contexts)  # no plan job; the comment says so
