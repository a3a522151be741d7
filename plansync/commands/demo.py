"""`plansync demo`: the whole loop — plan, apply, plan again — against a local emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from plansync.errors import PlansyncError
from plansync.views import use_color


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's folder (keys, spec, state).")
@click.option("--projects", "two", is_flag=True,
              help="Two merchant accounts (SG01 and TH01) as two projects of one "
                   "repository, against one emulator.")
def demo(keep: bool, two: bool) -> int:
    """Show plansync at work in one command: no settings, no credentials, no network.

    Makes new keys in a throwaway folder, starts the built-in 2C2P emulator with sample
    plans that differ from the example spec, then runs plan, apply and plan again.
    """
    import shutil
    import tempfile

    from plansync.emulator import home
    from plansync.emulator.server import Emulator
    from plansync.schema_files import shipped

    folder = Path(tempfile.mkdtemp(prefix="plansync-demo-"))
    try:
        if two:
            home.init_merchants(folder, ["SG01", "TH01"])
        else:
            home.init(folder)
            (folder / "specs").mkdir()
            shutil.copy(shipped("specs.example", "plans.yaml"),
                        folder / "specs" / "plans.yaml")
        with Emulator.start(folder) as emulator, _inside(folder, {
            "PLANSYNC_CONFIG": str(folder / "plansync.yaml"),
            "PLANSYNC_ENDPOINT": emulator.url,
            "PLANSYNC_STATE": str(folder / ".plansync" / "state.json"),
        }):
            _steps(folder, emulator, two)
        _say("Done. To start on your own plans: plansync init ../my-plans   "
             "(then see README: Walk-through)")
    finally:
        if keep:
            click.echo(f"(kept {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _steps(folder: Path, emulator: Any, two: bool) -> None:
    plans = len(emulator.server.seed_plans)
    held = (f"two merchant accounts, SG01 and TH01,\n   each with its own key; "
            f"{plans} sample plans between them" if two else f"{plans} sample plans")
    _say(f"plansync demo: everything runs on this machine; nothing leaves 127.0.0.1.\n\n"
         f"1. A throwaway folder {folder} now holds new RSA-2048 keys, and a local\n"
         f"   2C2P emulator at {emulator.server.base_url} holds {held}.\n"
         "   It speaks the real envelope: XML in JWE (RSA-OAEP + A256GCM) in JWS (PS256).")
    if two:
        _say("2. plansync.yaml declares a project per merchant (projects: sg01, th01), "
             "each with\n   its specs, key and state. `plan` without PATHs plans each "
             "project on its own specs:")
        paths: list[str] = []
    else:
        _say("2. specs/plans.yaml declares how 4 of those plans should be. `plan` "
             "inquires each\n   one's live state over the encrypted API and shows the "
             "difference:")
        paths = ["specs"]
    _run(["plan", *paths], expect=(0,))
    _say("3. `apply` makes it so. Each write is journalled, checked against live "
         "before it is\n   sent, and verified after" + (
             "; each project under its own lock:" if two else ":"))
    _run(["apply", *paths, "--auto-approve"], expect=(0,))
    _say("4. `plan` again: live now matches the spec, and a second apply would send "
         "nothing.")
    _run(["plan", *paths, "--detailed-exitcode"], expect=(0,))


def _say(text: str) -> None:
    click.echo(click.style(text, bold=True) if use_color(no_color=False) else text)
    click.echo()


def _run(args: Sequence[str], expect: tuple[int, ...]) -> None:
    # The root of the running command line is plansync's own group (no import of cli).
    root = click.get_current_context().find_root().command
    click.echo(f"   $ plansync {' '.join(args)}\n")
    code = root.main(list(args), prog_name="plansync", standalone_mode=False)
    click.echo()
    if code not in expect:
        raise PlansyncError(f"the demo's `plansync {' '.join(args)}` exited {code}, not "
                            f"{' or '.join(map(str, expect))}", "please report this")


@contextmanager
def _inside(folder: Path, environment: dict[str, str]) -> Iterator[None]:
    """Run in the demo folder with its settings, then put everything back."""
    before_cwd = Path.cwd()
    # The user's own PLANSYNC_* settings are not the demo's (a merchant id of theirs
    # would be sent to the emulator's plans).
    names = {*environment, *(name for name in os.environ if name.startswith("PLANSYNC_"))}
    before_env = {name: os.environ.get(name) for name in names}
    for name in names - set(environment):
        del os.environ[name]
    os.environ.update(environment)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before_cwd)
        for name, value in before_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
