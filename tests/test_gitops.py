"""demo, import and drift end to end: real processes, real files, the emulator."""

import json
import random
import shutil
from pathlib import Path

import pytest

from plansync.emulator.server import Emulator
from tests import foreign_client
from tests.helpers import EXAMPLE, HEAD, admin, run


def test_demo_runs_in_one_command_and_reads_well(tmp_path: Path) -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in ("1. A throwaway folder", "2. specs/plans.yaml declares", "3. `apply` makes it so",
                 "4. `plan` again"):
        assert step in out
    assert "will be CANCELLED — this cannot be undone" in out
    assert "Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed." in out
    # The money: tokyo-lite's pause and gold-member-42's new price, per currency.
    assert "Impact, per currency" in out
    assert "JPY: MRR 1500 JPY -> 0 JPY (-1500 JPY, -100.0%); pauses suspend 1500 JPY" in out
    assert "SGD: MRR 99.90 SGD -> 120.00 SGD (+20.10 SGD, +20.1%)" in out
    assert out.count("No changes. Live plans match the specification.") == 1
    assert "Traceback" not in result.stderr and "eyJ" not in out
    assert list(tmp_path.iterdir()) == []  # it cleans up after itself


def test_the_demo_of_two_projects(tmp_path: Path) -> None:
    result = run("demo", "--projects")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "two merchant accounts, SG01 and TH01" in out
    sg, th = out.split("=== project th01 ===", 1)
    assert "=== project sg01 ===" in sg and "(156142)" in sg and "(157142)" in th
    assert out.count("Apply complete: 2 updated, 1 cancelled, 1 unchanged, 0 failed.") == 2
    assert out.count("No changes. Live plans match the specification.") == 2
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_import_round_trips_many_generated_plans(emulator_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    currencies = ["702", "764", "392", "048", "840"]  # SGD THB JPY BHD USD: 2, 2, 0, 3, 2
    lines = ["plans:"]
    for i in range(60):
        numeric = rng.choice(currencies)
        accumulate = rng.choice(["Y", "N"])
        plan = {
            "recurringUniqueID": f"'{900000 + i}'", "merchantID": "JT01",
            "recurringStatus": f"'{rng.choice('YN')}'", "currency": f"'{numeric}'",
            "amount": f"'{rng.randrange(0, 10**7):012d}'", "allowAccumulate": f"'{accumulate}'",
            "recurringInterval": rng.randint(1, 365), "recurringCount": rng.choice([0, 12, 24]),
            "currentCount": rng.randint(0, 12),
            "chargeNextDate": f"'{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}2027'",
        }
        if accumulate == "Y" or rng.random() < 0.5:
            plan["maxAccumulateAmount"] = f"'{rng.randrange(1, 10**6):012d}'"
        if rng.random() < 0.5:
            plan["chargeOnDate"] = f"'{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}'"
        lines.append("  - {" + ", ".join(f"{k}: {v}" for k, v in plan.items()) + "}")
    seed = tmp_path / "seed.yaml"
    seed.write_text("\n".join(lines) + "\n")
    ids = tmp_path / "ids.txt"
    ids.write_text("# every generated plan\n" + "\n".join(str(900000 + i) for i in range(60)))
    out = tmp_path / "specs" / "imported.yaml"
    with Emulator.start(emulator_dir, seed=seed) as emulator:
        env = {"PLANSYNC_CONFIG": str(emulator_dir / "plansync.yaml"),
               "PLANSYNC_ENDPOINT": emulator.url}
        imported = run("import", "--ids-from", str(ids), "--out", str(out), env=env)
        assert imported.returncode == 0, imported.stderr
        assert run("validate", str(out)).returncode == 0
        planned = run("plan", str(out), "--detailed-exitcode", env=env)
        assert (planned.returncode, planned.stdout) == (
            0, "No changes. Live plans match the specification.\n")
        again = run("import", "900001", "--out", str(out), env=env)
        assert again.returncode == 1 and "already exists" in again.stderr


def test_import_to_stdout_and_a_missing_plan(served: dict[str, str]) -> None:
    result = run("import", "156144", "999", env=served)
    assert result.returncode == 1
    assert 'id: "156144"' in result.stdout and 'charge_on_date: "1512"' in result.stdout
    assert result.stderr.startswith("error: plan 999: gateway answered 16")


def test_import_leaves_out_plans_the_specs_already_declare(
        served: dict[str, str], tmp_path: Path) -> None:
    """Importing a plan another spec declares made `validate` fail with "declared twice":
    import reads the specs beside --out (or --specs) and leaves such plans out, saying
    where each is declared ("0156142" is plan 156142)."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "plans.yaml").write_text(HEAD + "plans:\n  - id: '0156142'\n    amount: '1.00'\n")
    out = specs / "imported.yaml"
    imported = run("import", "156142", "156143", "--out", str(out), env=served)
    assert imported.returncode == 0, imported.stderr
    assert f"plan 156142 is already declared at {specs / 'plans.yaml'}:4:5; left out" \
        in imported.stderr
    assert 'id: "156143"' in out.read_text() and "156142" not in out.read_text()
    assert run("validate", str(specs)).returncode == 0
    nothing = run("import", "156142", "156143", "--out", str(specs / "again.yaml"), env=served)
    assert nothing.returncode == 1 and not (specs / "again.yaml").exists()
    assert "every plan given is already declared in the specs" in nothing.stderr
    to_stdout = run("import", "156143", "156144", "--specs", str(specs), env=served)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert 'id: "156144"' in to_stdout.stdout and '"156143"' not in to_stdout.stdout
    missing = run("import", "156144", "--specs", str(tmp_path / "nowhere"), env=served)
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr


@pytest.fixture
def applied(served: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = served | {"PLANSYNC_STATE": str(tmp_path / "state.json")}
    assert run("apply", str(EXAMPLE), "--auto-approve", env=env).returncode == 0
    return env


def portal_change(emulator: Emulator, env: dict[str, str], plan_id: str, **fields: str) -> None:
    """Someone changes a plan in the merchant portal, behind plansync's back."""
    foreign_client.call(emulator.url, {"version": "2.4", "merchantID": "JT01",
                                       "recurringUniqueID": plan_id, "processType": "U",
                                       **fields},
                        *foreign_client.keys_in(Path(env["PLANSYNC_CONFIG"]).parent))


def test_drift_none_after_apply_then_both_kinds(applied: dict[str, str], emulator: Emulator,
                                               tmp_path: Path) -> None:
    clean = run("drift", str(EXAMPLE), env=applied)
    assert clean.returncode == 0
    assert clean.stdout == "No drift: the 4 plan(s) checked match the spec and the state.\n"
    log_before = len(admin(emulator, "GET", "/_emulator/log"))

    portal_change(emulator, applied, "156142", amount="000000013000")
    found = run("drift", str(EXAMPLE), env=applied)
    assert found.returncode == 2
    assert found.stdout.splitlines() == [
        "Live differs from the spec (plansync apply would change it):",
        '  ~ plan "gold-member-42" (156142): amount: spec 120.00, live 130.00',
        "",
        "Changed outside plansync since its last apply:",
        f'  ~ plan "gold-member-42" (156142) (applied {_applied_at(tmp_path, "156142")}): '
        "amount: applied 120.00, live 130.00",
        "",
        "Monthly recurring revenue, live and per the spec:",
        "  SGD: live 130.00 SGD, spec 120.00 SGD (-10.00 SGD if applied)",
        "",
        "Drift in 4 plan(s) checked: 1 differ from the spec, 1 changed outside plansync "
        "since its last apply.",
    ]
    writes = [e for e in admin(emulator, "GET", "/_emulator/log")[log_before:]
              if e["processType"] != "I"]
    assert len(writes) == 1  # only the portal's change: drift never writes


def test_drift_outside_only_when_the_spec_already_agrees(
        applied: dict[str, str], emulator: Emulator, tmp_path: Path) -> None:
    portal_change(emulator, applied, "156143", amount="000000045000")
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLE / "plans.yaml").read_text().replace('amount: "499.00"',
                                                                  'amount: "450.00"'))
    result = run("drift", str(spec), "--json", env=applied)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["spec_drift"] == []
    assert document["outside_changes"][0]["fields"] == [
        {"field": "amount", "applied": "499.00", "live": "450.00"}]
    assert document["mrr"] == []  # live agrees with the spec: no revenue differs
    markdown = run("drift", str(spec), "--markdown", env=applied).stdout
    assert markdown.startswith("#### plansync drift: Drift in 4 plan(s) checked")
    assert "| 156143 weekly-box-thailand | amount | 499.00 | 450.00 |" in markdown


def test_drift_errors_exit_1(applied: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n  - id: '999'\n")
    result = run("drift", str(spec), env=applied)
    assert result.returncode == 1
    assert "! plan 999: inquiry failed: gateway answered 16" in result.stdout


def _applied_at(tmp_path: Path, plan_id: str) -> str:
    state = json.loads((tmp_path / "state.json").read_text())
    return str(state["plans"][plan_id]["applied_at"])


def test_init_scaffolds_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / ".gitignore").write_text("node_modules/\n*.pem")
    (tmp_path / "repo" / "plansync.yaml").write_text("endpoint: production\n")
    result = run("init", str(tmp_path / "repo"))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "repo"
    assert f"left    {root}/plansync.yaml (it exists)" in result.stdout
    assert (root / "plansync.yaml").read_text() == "endpoint: production\n"
    for name in ("specs/plans.yaml", "schemas/plansync-spec.schema.json",
                 ".github/actions/plansync/action.yml",
                 ".github/workflows/plansync-plan.yml", ".github/workflows/plansync-apply.yml",
                 ".github/workflows/plansync-drift.yml"):
        assert f"created {root}/{name}" in result.stdout
        assert (root / name).read_text()
    assert (root / ".gitignore").read_text() == (
        "node_modules/\n*.pem\n# plansync: state, and keys that must never be committed\n"
        ".plansync/\n*.key\n*.p12\n*.pfx\nkeys/\n*.db\n*.db-wal\n*.db-shm\n")
    assert run("validate", str(root / "specs")).returncode == 0
    again = run("init", str(root))
    assert "created" not in again.stdout and "has every entry" in again.stdout


def test_a_fresh_init_has_a_commented_settings_file(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "new")).returncode == 0
    settings = (tmp_path / "new" / "plansync.yaml").read_text()
    for key in ("endpoint: sandbox", "merchant_key:", "gateway_key:", "guardrails:"):
        assert key in settings
    broken = run("plan", str(tmp_path / "new" / "specs"),
                 env={"PLANSYNC_CONFIG": str(tmp_path / "new" / "plansync.yaml")})
    assert broken.returncode == 1
    assert "merchant key file" in broken.stderr and "does not exist" in broken.stderr


def test_the_settings_files_projects_example_works_when_uncommented(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "new")).returncode == 0
    settings = tmp_path / "new" / "plansync.yaml"
    text = settings.read_text()
    start = text.index("# projects:\n")
    example = "".join(line[2:] + "\n" for line in text[start:].splitlines())
    settings.write_text(text[:start] + example)
    listed = run("projects", "--json", env={"PLANSYNC_CONFIG": str(settings)})
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"name": "sg", "specs": ["specs/sg"], "workspace": "sg"},
        {"name": "th", "specs": ["specs/th"], "workspace": "th"}]


def test_validate_of_a_whole_repository_skips_yaml_that_is_not_a_spec(tmp_path: Path) -> None:
    """An emulator folder (seed.yaml, plansync.yaml) and CI files inside the spec repo are
    not specs; a file named on the command line is always read."""
    assert run("init", str(tmp_path / "repo")).returncode == 0
    assert run("emulator", "init", str(tmp_path / "repo" / "emulator")).returncode == 0
    (tmp_path / "repo" / "other-tool.yaml").write_text("steps: [build, test]\n")
    result = run("validate", str(tmp_path / "repo"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Valid: 4 plans in 1 file.\n"
    named = run("validate", str(tmp_path / "repo" / "other-tool.yaml"))
    assert named.returncode == 1


def test_init_ignores_the_emulator_database_and_says_next_steps_from_inside(
        tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "my-plans"))
    ignored = (tmp_path / "my-plans" / ".gitignore").read_text().splitlines()
    assert {"*.db", "*.db-wal", "*.db-shm"} <= set(ignored)  # SQLite's WAL files too
    assert f"  cd {tmp_path / 'my-plans'}\n  plansync import YOUR-PLAN-IDS --out " \
           "specs/imported.yaml\n  plansync plan specs/" in result.stdout


def test_import_declares_a_plan_plansync_cancelled_as_cancelled(
        served: dict[str, str], tmp_path: Path) -> None:
    env = served | {"PLANSYNC_STATE": str(tmp_path / "state.json")}
    spec = tmp_path / "cancel.yaml"
    spec.write_text("apiVersion: plansync/v1\nkind: RecurringPlans\nplans:\n"
                    "  - {id: '156145', status: cancelled}\n")
    assert run("apply", str(spec), "--auto-approve", env=env).returncode == 0
    imported = run("import", "156145", "156142", env=env)
    assert imported.returncode == 0, imported.stderr
    assert '  - id: "156145"\n    status: cancelled' in imported.stdout
    written = tmp_path / "imported.yaml"
    written.write_text(imported.stdout)
    assert run("plan", str(written), "--detailed-exitcode", env=env).returncode == 0


def test_drift_help_describes_its_own_json() -> None:
    result = run("drift", "--help")
    assert "plan.schema.json" not in result.stdout
    assert "drifted plans field by field" in result.stdout


def test_init_pins_the_workflows_action_by_commit(tmp_path: Path) -> None:
    sha = "3f2c9a1b" * 5
    result = run("init", str(tmp_path / "repo"), "--action", f"acme/plansync@{sha}")
    assert result.returncode == 0, result.stderr
    for name in ("plansync-plan.yml", "plansync-apply.yml", "plansync-drift.yml"):
        text = (tmp_path / "repo" / ".github" / "workflows" / name).read_text()
        assert f"uses: acme/plansync@{sha}" in text and "./.github/actions" not in text
    assert not (tmp_path / "repo" / ".github" / "actions").exists()
    tagged = run("init", str(tmp_path / "other"), "--action", "acme/plansync@v1")
    assert "is not pinned by a full commit SHA" in tagged.stderr
    bad = run("init", str(tmp_path / "third"), "--action", "plansync")
    assert bad.returncode == 64


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git/" not in f"{p.relative_to(root)}/"}


def test_init_upgrade_rewrites_only_plansyncs_workflows_showing_the_diff(
        tmp_path: Path) -> None:
    """As a new user would: git init, init --action ...@SHA1, make the repository one's
    own, then a newer plansync pinned at SHA2: init --upgrade. zizmor clean throughout."""
    import subprocess

    from tests.gha import zizmor

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    first, second = "a1" * 20, "b2" * 20
    assert run("init", str(repo), "--action", f"acme/plansync@{first}").returncode == 0
    assert zizmor(str(repo)).returncode == 0
    (repo / "specs" / "plans.yaml").write_text("apiVersion: plansync/v1\n"
                                               "kind: RecurringPlans\nplans: []\n")
    (repo / "plansync.yaml").write_text("endpoint: production\n")
    (repo / ".gitignore").write_text("mine/\n")
    (repo / ".github" / "workflows" / "other.yml").write_text("name: not plansync's\n")
    workflow = repo / ".github" / "workflows" / "plansync-drift.yml"
    workflow.write_text(workflow.read_text().replace('"17 2 * * *"', '"0 5 * * *"'))
    before = _files(repo)

    kept = run("init", str(repo), "--action", f"acme/plansync@{second}")
    assert kept.returncode == 0
    assert "run plansync init --upgrade to update plansync's workflows" in kept.stdout
    assert {k: v for k, v in _files(repo).items() if k != ".gitignore"} == \
        {k: v for k, v in before.items() if k != ".gitignore"}  # .gitignore: entries added

    before = _files(repo)
    upgraded = run("init", str(repo), "--upgrade", "--action", f"acme/plansync@{second}")
    assert upgraded.returncode == 0, upgraded.stderr
    after = _files(repo)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {f".github/workflows/plansync-{n}.yml" for n in ("plan", "apply",
                                                                         "drift")}
    out = upgraded.stdout
    for name in ("plan", "apply", "drift"):
        assert f"upgraded {repo}/.github/workflows/plansync-{name}.yml:\n" \
               f"--- a/.github/workflows/plansync-{name}.yml\n" \
               f"+++ b/.github/workflows/plansync-{name}.yml\n" in out
    assert f"-        uses: acme/plansync@{first}\n+        uses: acme/plansync@{second}\n" \
        in out
    assert '-    - cron: "0 5 * * *"\n+    - cron: "17 2 * * *"\n' in out  # an edit undone
    for name in ("plansync.yaml", "specs/plans.yaml", ".gitignore", "schemas/"):
        # Not even looked at (init names each file it looks at by its path; the
        # workflows' own text may mention plansync.yaml).
        assert f"{repo}/{name}" not in out
    (repo / "specs" / "plans.yaml").unlink()  # the user's choice: upgrade keeps it
    assert run("init", str(repo), "--upgrade").returncode == 0
    assert not (repo / "specs" / "plans.yaml").exists()
    (repo / "specs" / "plans.yaml").write_bytes(after["specs/plans.yaml"])
    assert zizmor(str(repo)).returncode == 0

    again = run("init", str(repo), "--upgrade")  # no --action: keeps the pinned one
    assert again.stdout.count("unchanged ") == 3, again.stdout
    assert f"Kept the workflows' action acme/plansync@{second}" in again.stdout
    assert "already this version's: nothing to do" in again.stdout
    assert "Next: review the change" not in again.stdout
    assert _files(repo) == after


def test_init_upgrade_from_the_vendored_action_to_a_pinned_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert run("init", str(repo)).returncode == 0
    vendored = repo / ".github" / "actions" / "plansync" / "action.yml"
    vendored.write_text(vendored.read_text().replace("3.12", "3.11"))  # an older copy
    refreshed = run("init", str(repo), "--upgrade")
    assert f"upgraded {vendored}:" in refreshed.stdout
    assert '-    default: "3.11"\n+    default: "3.12"\n' in refreshed.stdout
    assert refreshed.stdout.count("unchanged ") == 3
    sha = "c3" * 20
    pinned = run("init", str(repo), "--upgrade", "--action", f"acme/plansync@{sha}")
    assert pinned.returncode == 0
    assert "-        uses: ./.github/actions/plansync # zizmor: ignore[self-repository]" \
        in pinned.stdout
    assert f"+        uses: acme/plansync@{sha}\n" in pinned.stdout
    assert f"The workflows no longer use {vendored}: remove" in pinned.stdout
    assert vendored.exists()  # init never deletes


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: a file's bytes, a link's target (never followed)."""
    return {str(p.relative_to(root)): (f"-> {p.readlink()}" if p.is_symlink()
                                       else p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


LINKED = "is a symbolic link: plansync writes only plain files; remove it and run again"


def test_init_never_writes_through_a_link(tmp_path: Path) -> None:
    """A link in place of a file init would write (dangling or not), or a folder inside
    DIR that is a link: refused before anything is written, whatever the link points at."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("not plansync's\n")
    cases = {  # the link's path inside DIR -> what it points at
        ".github/workflows/plansync-drift.yml": victim,
        "plansync.yaml": outside / "dangling.yaml",            # does not exist yet
        ".gitignore": victim,
        "specs": outside,                                      # a folder inside DIR
    }
    for number, (name, target) in enumerate(cases.items()):
        repo = tmp_path / f"repo{number}"
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).symlink_to(target)
        before, around = _snapshot(repo), _snapshot(outside)
        result = run("init", str(repo))
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert result.stderr == f"error: {repo / name} {LINKED}\n", name
        assert "Traceback" not in result.stdout + result.stderr
        assert "created" not in result.stdout, name  # nothing written in this run
        assert _snapshot(repo) == before and _snapshot(outside) == around, name
        assert not (outside / "dangling.yaml").exists()


def test_init_upgrade_never_writes_through_a_link(tmp_path: Path) -> None:
    """The reported case: `ln -s /tmp/victim.txt .github/workflows/plansync-drift.yml;
    plansync init . --upgrade` overwrote the victim. Now: refused, and the other stale
    workflows are not upgraded either (every target is checked before any is written)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("not plansync's\n")
    for name, target in ((".github/workflows/plansync-drift.yml", victim),
                         (".github/workflows/plansync-drift.yml", outside / "gone.yml"),
                         (".github/actions/plansync/action.yml", victim),
                         (".github/workflows", outside)):
        repo = tmp_path / "repo"
        if repo.exists():
            shutil.rmtree(repo)
        assert run("init", str(repo)).returncode == 0
        plan = repo / ".github" / "workflows" / "plansync-plan.yml"
        plan.write_text(plan.read_text().replace("contents: read", "contents: write"))
        link = repo / name
        if link.is_dir():
            shutil.copytree(link, outside, dirs_exist_ok=True)
            shutil.rmtree(link)
        else:
            link.unlink()
        link.symlink_to(target)
        before, around = _snapshot(repo), _snapshot(outside)
        result = run("init", str(repo), "--upgrade")
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert result.stderr == f"error: {link} {LINKED}\n", (name, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert "upgraded" not in result.stdout, name
        assert _snapshot(repo) == before and _snapshot(outside) == around, name
        assert victim.read_text() == "not plansync's\n"
        assert not (outside / "gone.yml").exists()


def test_init_writes_files_whole_and_keeps_their_mode(tmp_path: Path) -> None:
    """Each file is written to a temporary file beside it, then renamed over it: no
    half-written workflow, no temporary file left, and an upgraded file keeps its mode."""
    import os
    import stat

    repo = tmp_path / "repo"
    assert run("init", str(repo)).returncode == 0
    plan = repo / ".github" / "workflows" / "plansync-plan.yml"
    created_mode = stat.S_IMODE(plan.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert created_mode == 0o666 & ~umask
    plan.write_text("name: edited\n")
    plan.chmod(0o640)
    inode = plan.stat().st_ino
    assert run("init", str(repo), "--upgrade").returncode == 0
    assert plan.read_text() != "name: edited\n"  # upgraded
    assert stat.S_IMODE(plan.stat().st_mode) == 0o640
    assert plan.stat().st_ino != inode  # replaced, not rewritten in place
    assert [p.name for p in repo.rglob("*") if p.name.endswith(".tmp")] == []
