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


@emulator.command("init")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--merchant", default="JT01", show_default=True,
              help="Merchant id of the seed plans.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True,
              help="Port that DIR/plansync.yaml points at.")
def emulator_init(folder: Path, merchant: str, port: int) -> int:
    """Write keys, seed plans and a client plansync.yaml into DIR."""
    from plansync.emulator import home

    for path in home.init(folder, merchant, port):
        click.echo(f"created {path}")
    click.echo(f"\nNext: plansync emulator serve --dir {folder}\n"
               f"then:  plansync inquire --config {folder / 'plansync.yaml'} 156142")
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
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True,
              help="0 picks a free port.")
def emulator_serve(host: str, port: int, **options: Any) -> int:
    """Serve the emulated gateway until Ctrl-C or SIGTERM.

    The first line on stdout is `plansync emulator listening on http://HOST:PORT`.
    """
    from plansync.emulator import server

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
    PLANSYNC_GATEWAY_KEY pointing at the emulator. Exits with COMMAND's exit code.

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
        env |= {
            "PLANSYNC_ENDPOINT": running.url,
            "PLANSYNC_MERCHANT_KEY": str(folder.resolve() / home.MERCHANT_PRIVATE),
            "PLANSYNC_GATEWAY_KEY": str(folder.resolve() / home.GATEWAY_PUBLIC),
        }
        merchants = sorted(running.server.gateway.merchants)
        if merchants:
            env["PLANSYNC_MERCHANT_ID"] = merchants[0]
        try:
            return subprocess.call(list(command), env=env)
        except OSError as exc:
            raise PlansyncError(f"cannot run {command[0]}: {exc.strerror}") from None

