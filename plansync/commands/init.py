"""`plansync init`: scaffold a repository that manages plans with plansync."""

from __future__ import annotations

import re
from pathlib import Path

import click

GITIGNORE = [".plansync/", "*.pem", "*.key", "*.p12", "*.pfx", "keys/", "*.db"]
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
"""


_ACTION_REF = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[A-Za-z0-9_./-]+")
_LOCAL_ACTION = "uses: ./.github/actions/plansync"


@click.command()
@click.argument("folder", metavar="[DIR]", default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--action", "action_ref", metavar="OWNER/REPO@SHA",
              help="The repository that holds plansync, pinned by commit SHA: the "
                   "workflows use it as their action (and it installs plansync from there).")
def init(folder: Path, action_ref: str | None) -> int:
    """Scaffold DIR: plansync.yaml, specs/, the schema, .gitignore entries and GitHub
    Actions workflows. Existing files are never overwritten."""
    from plansync.schema_files import shipped

    if action_ref is not None and not _ACTION_REF.fullmatch(action_ref):
        raise click.BadParameter(f"{action_ref!r} is not OWNER/REPO@REF",
                                 param_hint="--action")
    uses = _LOCAL_ACTION if action_ref is None else f"uses: {action_ref}"

    example = shipped("specs.example", "plans.yaml").read_text(encoding="utf-8")
    files: dict[str, str] = {
        "plansync.yaml": CONFIG,
        "specs/plans.yaml": example.replace(
            "# Try it against the built-in emulator (its sample plans have these ids):\n"
            "#   plansync emulator exec -- plansync plan specs.example/\n",
            "# These ids are the built-in emulator's sample plans: replace them with yours\n"
            "# (plansync import ID... writes a spec of your live plans).\n"),
        "schemas/plansync-spec.schema.json":
            shipped("schemas", "plansync-spec.schema.json").read_text(encoding="utf-8"),
        **({} if action_ref else {".github/actions/plansync/action.yml":
                                   shipped("action", "action.yml").read_text(encoding="utf-8")}),
        **{f".github/workflows/{name}": shipped("github-actions", name).read_text(
            encoding="utf-8").replace(_LOCAL_ACTION, uses) for name in WORKFLOWS},
    }
    for name, text in files.items():
        path = folder / name
        if path.exists():
            click.echo(f"left    {path} (it exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"created {path}")
    click.echo(_gitignore(folder / ".gitignore"))
    if action_ref is None:
        click.echo("\nThe workflows use .github/actions/plansync, which needs plansync's "
                   "source: run init again with --action OWNER/REPO@COMMIT-SHA (the "
                   "repository that holds plansync), or see README: CI and GitOps.")
    elif not re.fullmatch(r".*@[0-9a-f]{40}", action_ref):
        click.echo(f"\nwarning: {action_ref} is not pinned by a full commit SHA; a tag or "
                   "branch can be moved to other code", err=True)
    enter = "" if folder.resolve() == Path.cwd().resolve() else f"  cd {folder}\n"
    click.echo("\nNext: put your keys where plansync.yaml says, set merchant_id, then\n"
               f"{enter}  plansync import YOUR-PLAN-IDS --out specs/imported.yaml\n"
               "  plansync plan specs/")
    return 0


def _gitignore(path: Path) -> str:
    """Add the entries that are missing; lines already there are left as they are."""
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [entry for entry in GITIGNORE if entry not in existing]
    if not missing:
        return f"left    {path} (it has every entry)"
    prefix = "\n" if existing and existing[-1] != "" else ""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(prefix + "# plansync: state, and keys that must never be committed\n"
                     + "\n".join(missing) + "\n")
    verb = "updated" if existing else "created"
    return f"{verb} {path} ({', '.join(missing)})"
