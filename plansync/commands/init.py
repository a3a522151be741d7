"""`plansync init`: scaffold a repository that manages plans with plansync."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

import click

from plansync.errors import PlansyncError
from plansync.folders import make_private

# *.db-wal and *.db-shm: SQLite's write-ahead log beside an emulator's database.
GITIGNORE = [".plansync/", "*.pem", "*.key", "*.p12", "*.pfx", "keys/", "*.db", "*.db-wal",
             "*.db-shm"]
WORKFLOWS = ("plansync-plan.yml", "plansync-apply.yml", "plansync-drift.yml")

CONFIG = """\
# plansync settings. Flags and PLANSYNC_* environment variables override these.
# Paths are relative to this file.

# sandbox (2C2P's demo2 host), production, or a full https URL.
endpoint: sandbox

# Your 2C2P merchant id.
merchant_id: JT01

# Your private key (PEM, DER, or .p12/.pfx) and 2C2P's certificate (.cer) for this
# endpoint. Keep them out of git (.gitignore lists *.pem and keys/). If the private key
# is encrypted, its password comes only from PLANSYNC_MERCHANT_KEY_PASSWORD.
merchant_key: keys/merchant-private.pem
gateway_key: keys/2c2p-sandbox.cer

# Where the state lives: plansync's record of what it applied and cancelled, its
# journal and its lock (README: State backends). A local file is fine on a laptop; CI
# needs a shared, locked backend, and the workflows refuse to run without one. Choose:
#   state: s3://my-bucket/plansync?region=ap-southeast-1     # AWS credentials, OIDC in CI
#   state: postgres://plansync@db.example.com/plansync      # password: PLANSYNC_STATE_PASSWORD
# or set PLANSYNC_STATE (the workflows read the PLANSYNC_STATE repository variable).
state: .plansync/state.json

# Limits a plan must stay within before apply sends anything (flags override).
guardrails:
  max_changes: 50             # refuse plans that change more plans than this
  max_cancels: 5              # ... or cancel more
  max_amount_increase: 25     # ... or raise an amount by more than this many percent
  charge_window_hours: 24     # never write a plan that charges within this window

# Several merchant accounts in this repository (README: Several merchant accounts): each
# project has its own specs, its own settings over the ones above, its own state (this
# state's backend, in a workspace named after it) and, in CI, its own jobs and GitHub
# environments (plansync-plan-NAME, plansync-apply-NAME). Keep the specs under specs/.
# projects:
#   sg:
#     specs: [specs/sg]
#     merchant_id: SG01
#     merchant_key: keys/sg-private.pem
#   th:
#     specs: [specs/th]
#     merchant_id: TH01
#     merchant_key: keys/th-private.pem
#     guardrails:
#       max_cancels: 2
"""


_ACTION_REF = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[A-Za-z0-9_./-]+")
# The vendored action's step, with the reason its zizmor suppression gives; the pinned
# form replaces the whole line (the reason is about ./ only).
_LOCAL_ACTION = re.compile(r"uses: \./\.github/actions/plansync(?: # zizmor: [^\n]*)?")
VENDORED = ".github/actions/plansync/action.yml"
UPGRADE_HINT = "run plansync init --upgrade to update plansync's workflows"


@click.command()
@click.argument("folder", metavar="[DIR]", default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--action", "action_ref", metavar="OWNER/REPO@SHA",
              help="The repository that holds plansync, pinned by commit SHA: the "
                   "workflows use it as their action (and it installs plansync from there).")
@click.option("--upgrade", is_flag=True,
              help="Rewrite plansync's own workflow files (and the vendored action) to "
                   "this version's, showing the diff; nothing else is touched.")
def init(folder: Path, action_ref: str | None, upgrade: bool) -> int:
    """Scaffold DIR: plansync.yaml, specs/, the schema, .gitignore entries and GitHub
    Actions workflows. Existing files are never overwritten, except plansync's own
    workflows with --upgrade."""
    if action_ref is not None and not _ACTION_REF.fullmatch(action_ref):
        raise click.BadParameter(f"{action_ref!r} is not OWNER/REPO@REF",
                                 param_hint="--action")
    own = [f".github/workflows/{name}" for name in WORKFLOWS]
    _refuse_links(folder, own)  # before they are even read
    kept = None
    if upgrade and action_ref is None:  # keep the pinned form a repository already has
        action_ref = kept = _pinned_action(folder)

    # An upgrade touches plansync's own files only: a spec or setting the user removed
    # stays removed.
    files = {**({} if upgrade else _scaffold()), **workflows(action_ref)}
    # Every target is checked before any is written: a refusal leaves the run's files
    # as they were.
    _refuse_links(folder, [*files, *([] if upgrade else [".gitignore"])])
    stale, wrote = _place(folder, files, upgrade)
    if not upgrade:
        click.echo(_gitignore(folder / ".gitignore"))
    if stale:
        click.echo(f"\nplansync's workflows differ from this version's: {UPGRADE_HINT} "
                   "(it shows what changes).")
    if kept is not None:
        click.echo(f"\nKept the workflows' action {kept}: give --action OWNER/REPO@SHA to "
                   "pin another commit.")
    if upgrade and action_ref is not None and (folder / VENDORED).exists():
        click.echo(f"\nThe workflows no longer use {folder / VENDORED}: remove "
                   f"{(folder / VENDORED).parent} when you commit this.")
    if action_ref is None:
        click.echo("\nThe workflows use .github/actions/plansync, which needs plansync's "
                   "source: run init again with --action OWNER/REPO@COMMIT-SHA (the "
                   "repository that holds plansync), or see README: CI and GitOps.")
    elif not re.fullmatch(r".*@[0-9a-f]{40}", action_ref):
        click.echo(f"\nwarning: {action_ref} is not pinned by a full commit SHA; a tag or "
                   "branch can be moved to other code", err=True)
    if upgrade:
        click.echo("\nNext: review the change (git diff), commit it and merge it: the "
                   "workflows run as the default branch defines them." if wrote else
                   "\nplansync's workflows are already this version's: nothing to do.")
        return 0
    enter = "" if folder.resolve() == Path.cwd().resolve() else f"  cd {folder}\n"
    click.echo("\nNext: put your keys where plansync.yaml says, set merchant_id, then\n"
               f"{enter}  plansync import YOUR-PLAN-IDS --out specs/imported.yaml\n"
               "  plansync plan specs/")
    return 0


def _scaffold() -> dict[str, str]:
    from plansync.schema_files import shipped

    example = shipped("specs.example", "plans.yaml").read_text(encoding="utf-8")
    return {
        "plansync.yaml": CONFIG,
        "specs/plans.yaml": example.replace(
            "# Try it against the built-in emulator (its sample plans have these ids):\n"
            "#   plansync emulator exec -- plansync plan specs.example/\n",
            "# These ids are the built-in emulator's sample plans: replace them with yours\n"
            "# (plansync import ID... writes a spec of your live plans).\n"),
        "schemas/plansync-spec.schema.json":
            shipped("schemas", "plansync-spec.schema.json").read_text(encoding="utf-8"),
    }


def _place(folder: Path, files: dict[str, str], upgrade: bool) -> tuple[list[str], bool]:
    """Write each missing file; with ``upgrade`` rewrite those that differ, showing the
    diff. Returns plansync's own files left as they are although they differ, and
    whether anything was written."""
    own = {VENDORED, *(f".github/workflows/{name}" for name in WORKFLOWS)}
    stale = []
    wrote = False
    for name, text in files.items():
        path = folder / name
        if not path.exists():
            make_private(path.parent)
            _write(path, text)
            wrote = True
            click.echo(f"created {path}")
            continue
        old = path.read_text(encoding="utf-8")
        if not upgrade:
            click.echo(f"left    {path} (it exists)")
            if name in own and old != text:
                stale.append(name)
        elif old == text:
            click.echo(f"unchanged {path}")
        else:
            _write(path, text)
            wrote = True
            click.echo(f"upgraded {path}:")
            click.echo(_diff(old, text, name), nl=False)
    return stale, wrote


def _refuse_links(folder: Path, names: Iterable[str]) -> None:
    """Refuse, before anything is written, when a file init would write, or a folder
    inside ``folder`` on its way, is a symbolic link (dangling or not): writing through
    it would write wherever it points, outside the repository too. ``folder`` itself may
    be a link: the user named it."""
    for name in names:
        path = folder
        for part in Path(name).parts:
            path = path / part
            if path.is_symlink():
                raise PlansyncError(f"{path} is a symbolic link: plansync writes only "
                                    "plain files; remove it and run again")
            if not path.exists():
                break  # nothing below a missing folder exists yet


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole: a temporary file beside it, then renamed over it (a rename
    replaces a link that appeared since the check, never writes through it). A
    replaced file keeps its mode; a new one gets the umask's."""
    import secrets

    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists() and not path.is_symlink():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def workflows(action_ref: str | None) -> dict[str, str]:
    """plansync's own files in a repository, by path: the three workflows using the action
    pinned as ``action_ref`` (OWNER/REPO@SHA), or, without one, the vendored action and
    the workflows using it."""
    from plansync.schema_files import shipped

    files = {} if action_ref else {VENDORED: shipped("action", "action.yml").read_text(
        encoding="utf-8")}
    for name in WORKFLOWS:
        text = shipped("github-actions", name).read_text(encoding="utf-8")
        if action_ref:
            text = _LOCAL_ACTION.sub(f"uses: {action_ref}", text)
        files[f".github/workflows/{name}"] = text
    return files


def _pinned_action(folder: Path) -> str | None:
    """The OWNER/REPO@REF the existing workflows run plansync from (the action whose steps
    take a ``command``), or None for the vendored action or no workflows."""
    import yaml

    found = set()
    for name in WORKFLOWS:
        path = folder / ".github" / "workflows" / name
        if not path.exists():
            continue
        try:
            workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
            steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
        except (yaml.YAMLError, TypeError, KeyError, AttributeError):
            continue  # not a workflow we can read: it is rewritten like the others
        found |= {str(step["uses"]) for step in steps if isinstance(step, dict)
                  and "command" in (step.get("with") or {}) and "uses" in step}
    pinned = {ref for ref in found if _ACTION_REF.fullmatch(ref)}
    return next(iter(pinned)) if len(pinned) == 1 else None


def _diff(old: str, new: str, name: str) -> str:
    import difflib

    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _gitignore(path: Path) -> str:
    """Add the entries that are missing; lines already there are left as they are."""
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [entry for entry in GITIGNORE if entry not in existing]
    if not missing:
        return f"left    {path} (it has every entry)"
    old = path.read_bytes().decode("utf-8") if path.exists() else ""  # kept byte for byte
    prefix = "\n" if existing and existing[-1] != "" else ""
    _write(path, old + prefix + "# plansync: state, and keys that must never be committed\n"
           + "\n".join(missing) + "\n")
    verb = "updated" if existing else "created"
    return f"{verb} {path} ({', '.join(missing)})"
