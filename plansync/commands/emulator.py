"""`plansync emulator init|serve|exec`: a local 2C2P gateway."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync.errors import PlansyncError

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def emulator() -> None:
    """A local 2C2P gateway for tests, demos and first runs (no credentials needed)."""


def _merchant_ids(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> list[str] | None:
    if value is None:
        return None
    from plansync.emulator.home import MERCHANT_ID_RE, project_name

    ids = [part.strip() for part in value.split(",")]
    for merchant_id in ids:
        if not MERCHANT_ID_RE.fullmatch(merchant_id):
            raise click.BadParameter(f"merchant id {merchant_id!r} is not 1-15 letters and "
                                     "digits", ctx, param)
    projects = [project_name(merchant_id) for merchant_id in ids]
    twice = sorted({name for name in projects if projects.count(name) > 1})
    if twice:  # each names a project (its id lowercased) and a folder
        raise click.BadParameter(f"merchant id {', '.join(twice)} given twice (letter case "
                                 "aside)", ctx, param)
    return ids


@emulator.command("init")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--merchant", default="JT01", show_default=True,
              help="Merchant id of the seed plans (one merchant).")
@click.option("--merchants", "merchant_ids", metavar="ID,ID...", callback=_merchant_ids,
              help="Several merchants, each with its own keys, sample plans, project and "
                   "spec (instead of --merchant).")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True,
              help="Port that DIR/plansync.yaml points at (and serve binds).")
def emulator_init(folder: Path, merchant: str, merchant_ids: list[str] | None,
                  port: int) -> int:
    """Write keys, seed plans and a client plansync.yaml into DIR."""
    from plansync.emulator import home

    given = click.get_current_context().get_parameter_source("merchant")
    if merchant_ids is not None and given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("give --merchant or --merchants, not both")
    if merchant_ids is None and not home.MERCHANT_ID_RE.fullmatch(merchant):
        raise click.BadParameter(f"merchant id {merchant!r} is not 1-15 letters and digits",
                                 param_hint="'--merchant'")
    if merchant_ids is None:
        created = home.init(folder, merchant, port)
        then = f"plansync inquire --config {folder / home.CLIENT_CONFIG} 156142"
    else:
        created = home.init_merchants(folder, merchant_ids, port)
        # In the folder: its plansync.yaml is found there, and the state kept beside it.
        then = f"cd {folder} && plansync plan   (every project)"
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"\nNext: plansync emulator serve --dir {folder}\nthen:  {then}")
    return 0


def emulator_options(dir_required: bool) -> Callable[[F], F]:
    """Where the emulator's keys and plans come from, and how it misbehaves."""
    from plansync.emulator.faults import Faults

    options = [
        click.option("--dir", "folder", required=dir_required,
                     type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Folder written by `plansync emulator init`." + (
                         "" if dir_required else
                         "  [default: a throwaway folder with new keys and sample plans]")),
        click.option("--seed", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Seed plans (default: DIR/seed.yaml)."),
        click.option("--db", help="SQLite file to keep plans in (default: memory)."),
        click.option("--fault-seed", type=int, default=0, show_default=True,
                     help="Seed that makes the faults below reproducible."),
    ]
    for knob in dataclasses.fields(Faults):
        if knob.name != "seed":
            options.append(click.option("--" + knob.name.replace("_", "-"), knob.name,
                                        type=float, default=knob.default,
                                        help=knob.metadata["help"]))

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _build_server(host: str, port: int, options: dict[str, Any]) -> Any:
    from plansync.emulator import server
    from plansync.emulator.faults import Faults

    knobs = [knob.name for knob in dataclasses.fields(Faults) if knob.name != "seed"]
    try:
        faults = Faults.from_mapping({name: options[name] for name in knobs}
                                     | {"seed": options["fault_seed"]})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return server.build(options["folder"], seed=options["seed"], host=host, port=port,
                        db=options["db"], faults=faults)


@emulator.command("serve")
@emulator_options(dir_required=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (admin endpoints answer loopback clients only).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="0 picks a free port.  [default: the port of the endpoint in "
                   "DIR/plansync.yaml, else 8700]")
def emulator_serve(host: str, port: int | None, **options: Any) -> int:
    """Serve the emulated gateway until Ctrl-C or SIGTERM.

    The first line on stdout is `plansync emulator listening on http://HOST:PORT`.
    """
    from plansync.emulator import home, server

    if port is None:  # where the folder's client settings will look for it
        port = home.client_port(options["folder"])
        port = home.DEFAULT_PORT if port is None else port
    try:
        built = _build_server(host, port, options)
    except OSError as exc:
        raise PlansyncError(f"cannot listen on {host}:{port}: {exc.strerror}",
                            "pick another --port, or --port 0 for any free one") from None
    server.serve(built)
    return 0


@emulator.command("exec", context_settings={"ignore_unknown_options": True})
@emulator_options(dir_required=False)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def emulator_exec(command: Sequence[str], **options: Any) -> int:
    """Run COMMAND against a fresh emulator on a free port, then stop it.

    COMMAND sees PLANSYNC_ENDPOINT, PLANSYNC_MERCHANT_ID, PLANSYNC_MERCHANT_KEY and
    PLANSYNC_GATEWAY_KEY pointing at the emulator. With a DIR of several merchants it sees
    PLANSYNC_ENDPOINT, PLANSYNC_GATEWAY_KEY and PLANSYNC_CONFIG (DIR/plansync.yaml, whose
    projects name each merchant and its key). Exits with COMMAND's exit code.

        plansync emulator exec -- plansync inquire 156142
    """
    import tempfile

    from plansync.emulator import home

    if options["folder"] is not None:
        return _exec(command, options["folder"], options)
    with tempfile.TemporaryDirectory(prefix="plansync-emulator-") as scratch:
        home.init(Path(scratch))
        return _exec(command, Path(scratch), options | {"folder": Path(scratch)})


def _exec(command: Sequence[str], folder: Path, options: dict[str, Any]) -> int:
    import subprocess

    from plansync.emulator import home
    from plansync.emulator.server import Emulator

    with Emulator(_build_server("127.0.0.1", 0, options)) as running:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("PLANSYNC_")}
        # The endpoint (the emulator's free port, not the one in DIR/plansync.yaml) and the
        # gateway's key are the same for every merchant.
        env |= {
            "PLANSYNC_ENDPOINT": running.url,
            "PLANSYNC_GATEWAY_KEY": str(folder.resolve() / home.GATEWAY_PUBLIC),
        }
        if home.merchants_with_keys(folder):
            # Several merchants: no one of them is the merchant. A merchant id and key in
            # the environment would stand for every project's; the folder's projects name
            # each merchant with its key.
            env["PLANSYNC_CONFIG"] = str(folder.resolve() / home.CLIENT_CONFIG)
        else:
            env["PLANSYNC_MERCHANT_KEY"] = str(folder.resolve() / home.MERCHANT_PRIVATE)
            merchants = sorted(running.server.gateway.merchants)
            if merchants:
                env["PLANSYNC_MERCHANT_ID"] = merchants[0]
        try:
            return subprocess.call(list(command), env=env)
        except OSError as exc:
            raise PlansyncError(f"cannot run {command[0]}: {exc.strerror}") from None

