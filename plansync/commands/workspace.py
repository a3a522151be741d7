"""`plansync workspace list|show|new|select|delete`: the workspaces of the state backend,
and which one this folder has selected (plansync/workspaces.py), as Terraform's."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import click

from plansync import config, workspaces
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings
from plansync.errors import PlansyncError
from plansync.workspaces import DEFAULT as DEFAULT_WORKSPACE

if TYPE_CHECKING:  # `plansync --help` lists this command without loading the engine
    from plansync.engine.backends import StateBackend


@click.group("workspace")
def workspace() -> None:
    """Workspaces: one state each (one merchant and endpoint), all in one backend."""


@workspace.command("list")
@settings_of(gateway=False)
def workspace_list(settings: Settings) -> int:
    """The workspaces in the backend (default always); the current one is starred."""
    current = current_workspace(settings)
    with contextlib.closing(_open(settings, current)) as store:
        names = sorted({DEFAULT_WORKSPACE, *store.workspaces()})
    for name in names:
        click.echo(f"{'*' if name == current else ' '} {name}")
    return 0


@workspace.command("show")
@settings_of(gateway=False)
def workspace_show(settings: Settings) -> int:
    """The name of the current workspace: --workspace, else $PLANSYNC_WORKSPACE, else
    workspace: in plansync.yaml, else the state URL's ?workspace=, else the one this folder
    selected, else default."""
    click.echo(current_workspace(settings))
    return 0


@workspace.command("new")
@click.argument("name")
@settings_of(gateway=False)
def workspace_new(name: str, settings: Settings) -> int:
    """Create an empty workspace NAME in the backend and select it for this folder. Its
    state is written, bound to its merchant and endpoint, by its first apply."""
    with contextlib.closing(_open(settings, workspaces.check_name(name))) as store:
        if not store.create_workspace():
            raise PlansyncError(f"workspace {name} already exists in {store.where}",
                                f"select it with plansync workspace select {name}")
        where = store.where
    overridden = _select(name)
    if overridden:
        click.echo(f"Created workspace {name} in {where}; it is not selected: {overridden}.",
                   err=True)
        return 0
    click.echo(f"Created and selected workspace {name} in {where}.")
    return 0


@workspace.command("select")
@click.argument("name")
@settings_of(gateway=False)
def workspace_select(name: str, settings: Settings) -> int:
    """Select workspace NAME for the commands run in this folder (kept in
    .plansync/workspace). Refused for a workspace the backend does not hold (default
    excepted), and while --workspace, $PLANSYNC_WORKSPACE, workspace: in plansync.yaml or
    the state URL names another."""
    with contextlib.closing(_open(settings, workspaces.check_name(name))) as store:
        if name != DEFAULT_WORKSPACE and name not in store.workspaces():
            raise PlansyncError(f"workspace {name} does not exist in {store.where}",
                                f"create it with plansync workspace new {name}")
    overridden = _select(name)
    if overridden:
        raise PlansyncError(f"workspace {name} was not selected: {overridden}",
                            None if settings.projects else
                            "remove that setting, or change it, to use the selection")
    click.echo(f"Switched to workspace {name}.")
    return 0


@workspace.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Delete it even though its state remembers plans plansync cancelled, or "
                   "writes whose outcome is not known yet (both are then forgotten).")
@settings_of(gateway=False)
def workspace_delete(name: str, force: bool, settings: Settings) -> int:
    """Delete workspace NAME: its state and journal, under its lock.

    Refused for the default workspace and the current one, and, unless --force, while its
    state remembers plans plansync cancelled (the gateway shows a cancelled plan as
    paused: only the state knows) or holds writes whose outcome is not known yet. The
    live plans are left as they are."""
    from plansync.engine.journal import fold

    workspaces.check_name(name)
    if name == DEFAULT_WORKSPACE:
        raise PlansyncError("the default workspace cannot be deleted",
                            "plansync state rm ID forgets its plans one by one")
    # As the file says: a --workspace or variable would make every project seem its owner.
    owner = next((project for project, theirs in settings.project_workspaces().items()
                  if theirs == name), None)
    if owner is not None:
        raise PlansyncError(f"workspace {name} is project {owner}'s: it holds that "
                            "project's state", f"remove project {owner} from plansync.yaml "
                            "first, if it is done with")
    if name == current_workspace(settings):
        raise PlansyncError(f"workspace {name} is the current workspace",
                            "select another first: plansync workspace select default")
    if name == workspaces.selected_workspace(settings.folder):
        raise PlansyncError(f"workspace {name} is the one this folder selected (a setting "
                            "overrides the selection now, not for ever)",
                            "select another first: plansync workspace select default")
    store = _open(settings, name)
    with contextlib.closing(store):
        if name not in store.workspaces():
            raise PlansyncError(f"workspace {name} does not exist in {store.where}",
                                "plansync workspace list shows the workspaces")
        with store.lock("workspace delete", 0, _warn):
            stored, records = store.read(), store.records()
            state = fold(stored, records) if stored is not None else None
            cancelled = sorted(state.cancelled) if state else []
            pending = len(state.pending) if state else len(records)
            if not force and (cancelled or pending):
                raise PlansyncError(
                    f"workspace {name} in {store.where} holds "
                    + "; ".join(part for part in (
                        f"the cancellation of plan(s) {', '.join(cancelled[:10])}"
                        + (f" and {len(cancelled) - 10} more" if len(cancelled) > 10 else "")
                        + " (the gateway shows a cancelled plan as paused: only the state "
                          "knows)" if cancelled else "",
                        f"{pending} write(s) whose outcome is not known yet" if pending
                        else "") if part) + "; nothing was deleted",
                    "keep it; or copy it first (plansync state pull --workspace "
                    f"{name} > {name}.json) and delete it with --force")
            store.delete_workspace()
    plans = len(state.plans) if state else 0
    click.echo(f"Deleted workspace {name} from {store.where}: plansync forgot the {plans} "
               "plan(s) it held. The live plans are left as they are.")
    return 0


# --- which workspace ---------------------------------------------------------------------


def current_workspace(settings: Settings) -> str:
    """The workspace the commands use here, by the rule of plansync/workspaces.py."""
    return (settings.workspace or workspaces.in_url(settings.state)
            or DEFAULT_WORKSPACE)  # (settings.workspace holds the folder's selection)


def _select(name: str) -> str | None:
    """Select ``name`` for this folder; None if the settings now use it, else (the
    selection put back as it was) what sets another workspace.

    Checked by reading the settings again after the write: whatever takes precedence over
    the selection, here or in config, is then counted as the commands count it."""
    params = click.get_current_context().params
    flags = config.Flags(config_file=params.get("config_file"),
                         state=params.get("state_location"), workspace=params.get("workspace"))
    before = config.load(flags, os.environ)
    if before.projects:
        return ("the settings declare projects: each project's workspace is its name (or "
                "its workspace: in plansync.yaml), which a selection does not override")
    folder = before.folder
    previous = workspaces.selected_workspace(folder)
    workspaces.select(folder, name)
    now = current_workspace(config.load(flags, os.environ))
    if now == name:
        return None
    if previous is None:
        (folder / workspaces.SELECTED).unlink()
    else:
        workspaces.select(folder, previous)
    source = ("--workspace" if params.get("workspace") else
              "$PLANSYNC_WORKSPACE" if os.environ.get("PLANSYNC_WORKSPACE") else
              "workspace: in the settings file, or the state URL's ?workspace=")
    return f"{source} sets workspace {now}, which a selection does not override"


def _open(settings: Settings, name: str) -> StateBackend:
    from plansync.engine.backends import open_backend

    return open_backend(settings.state, name, os.environ)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
