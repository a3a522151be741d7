"""The ``plansync`` command: options in, one call, exit code out.

Exit codes: 0 success; 1 an expected error (bad input, a plan that failed); 2 wrong
usage; 3 a bug in plansync; 130/143 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import click

from plansync import config
from plansync.errors import GatewayError, PlansyncError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("plansync")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True,
              help="Log each request's progress (never bodies or keys).")
@click.version_option(package_name="plansync")
def cli(verbose: bool) -> None:
    """Manage 2C2P recurring payment plans as code.

    Talks to 2C2P's Recurring Payment Maintenance API (or the built-in emulator) over its
    encrypted envelope. Settings come from flags, then PLANSYNC_* variables, then
    plansync.yaml.
    """
    logging.basicConfig(format="%(levelname)s: %(message)s", stream=sys.stderr,
                        level=logging.DEBUG if verbose else logging.WARNING)
    logging.addLevelName(logging.WARNING, "warning")
    # urllib3 would log connection details at DEBUG; they add noise, not insight.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def gateway_options(command: F) -> F:
    """The settings every command that talks to the gateway accepts."""
    for name, (flag, env) in reversed(config.SETTINGS.items()):
        command = click.option(flag, name, metavar="VALUE" if "key" not in name else "FILE",
                               help=f"{name} (or ${env}).")(command)
    return click.option("--config", "config_file", type=click.Path(path_type=Path),
                        help="Settings file (default: $PLANSYNC_CONFIG or ./plansync.yaml).")(
        command)


def _settings(options: dict[str, Any]) -> config.Settings:
    flags = {name: options.pop(name) for name in config.SETTINGS}
    return config.resolve(flags, os.environ, options.pop("config_file"))


@cli.command()
@click.argument("plan_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Inquiries in flight at once.")
@gateway_options
def inquire(plan_ids: Sequence[str], as_json: bool, parallelism: int, **options: Any) -> int:
    """Show the live state of plans, as the gateway reports it.

    A plan that cannot be inquired prints one line on stderr (plan id, code, reason); the
    others are still shown, and the exit code is then 1.
    """
    from plansync.gateway.client import GatewayClient
    from plansync.render import live

    settings = _settings(options)
    with GatewayClient.from_settings(settings, pool_size=parallelism) as client:

        def one(plan_id: str) -> Any:
            try:
                return client.inquire(plan_id)
            except GatewayError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            results = list(pool.map(one, plan_ids))
    plans = [r for r in results if not isinstance(r, GatewayError)]
    for plan_id, result in zip(plan_ids, results, strict=True):
        if isinstance(result, GatewayError):
            click.echo(f"error: plan {plan_id}: {result}", err=True)
    if plans or as_json:
        click.echo(live.as_json(plans) if as_json else live.as_table(plans))
    return 1 if len(plans) < len(results) else 0


# --- specs and plans ------------------------------------------------------------------


def _load_specs(paths: Sequence[Path]) -> tuple[list[Any], str, int]:
    """Every declared plan, the spec digest and the file count; or every problem, then exit 1."""
    from plansync.spec import loader

    plans, problems = loader.load(paths)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise PlansyncError(f"{len(problems)} problem(s) in the specs; nothing was done",
                            "fix them and run again (plansync validate checks without network)")
    files, _ = loader.discover(paths)
    return plans, loader.digest(plans), len(files)


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


spec_paths = click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                            type=click.Path(path_type=Path))
output_format = [
    click.option("--json", "fmt", flag_value="json",
                 help="One JSON document (schemas/plan.schema.json)."),
    click.option("--markdown", "fmt", flag_value="markdown",
                 help="Markdown for a pull-request comment."),
    click.option("--no-color", is_flag=True, help="No colours (also: the NO_COLOR variable)."),
]


def _formats(command: F) -> F:
    for option in reversed(output_format):
        command = option(command)
    return command


@cli.command()
@spec_paths
def validate(paths: Sequence[Path]) -> int:
    """Check spec files (and folders of them) without touching the network.

    Every problem is printed as FILE:LINE:COLUMN: plan ID: FIELD: MESSAGE.
    """
    plans, _digest, files = _load_specs(paths)
    click.echo(f"Valid: {len(plans)} plan{'s' * (len(plans) != 1)} in {files} "
               f"file{'s' * (files != 1)}.")
    return 0


@cli.command()
@spec_paths
@_formats
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the plan, for `plansync show` and `plansync apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 with no changes, 2 with changes, 1 on error.")
@click.option("--target", multiple=True, metavar="ID", help="Plan only these plans (repeatable).")
@click.option("--exclude", multiple=True, metavar="ID", help="Leave these plans out (repeatable).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Inquiries in flight at once.")
@click.option("--rate-limit", type=click.FloatRange(0, min_open=True), metavar="R",
              help="At most R requests per second (default: no limit).")
@gateway_options
def plan(paths: Sequence[Path], fmt: str | None, no_color: bool, out: Path | None,
         detailed_exitcode: bool, target: Sequence[str], exclude: Sequence[str],
         parallelism: int, rate_limit: float | None, **options: Any) -> int:
    """Show what would change: inquire every declared plan and diff it against the spec.

    Exit codes: 0 success; 1 a spec problem or a plan that cannot be planned; with
    --detailed-exitcode, 2 when there are changes.
    """
    from plansync.engine import planfile
    from plansync.engine.planner import make_plan
    from plansync.gateway.client import GatewayClient

    desired, digest, _files = _load_specs(paths)
    desired = _select(desired, target, exclude)
    settings = _settings(options)
    with GatewayClient.from_settings(settings, pool_size=parallelism,
                                     rate_limit=rate_limit) as client, \
            _progress(len(desired)) as advance:
        made = make_plan(desired, client, spec_digest=digest, parallelism=parallelism,
                         on_progress=advance)
    if out is not None:
        planfile.save(made, out)
    click.echo(_render(made, fmt, no_color))
    if made.summary["error"]:
        return 1
    return 2 if detailed_exitcode and made.has_changes else 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_formats
def show(file: Path, fmt: str | None, no_color: bool) -> int:
    """Show a plan saved by `plansync plan --out FILE`."""
    from plansync.engine import planfile

    click.echo(_render(planfile.read(file), fmt, no_color))
    return 0


def _render(made: Any, fmt: str | None, no_color: bool) -> str:
    from plansync.engine import planfile
    from plansync.render import markdown, text

    if fmt == "json":
        return json.dumps(planfile.dump(made), indent=2)
    if fmt == "markdown":
        return markdown.render(made)
    return text.render(made, color=_color(no_color))


def _select(desired: list[Any], target: Sequence[str], exclude: Sequence[str]) -> list[Any]:
    known = {plan.id for plan in desired}
    unknown = [plan_id for plan_id in (*target, *exclude) if plan_id not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} names no plan in the specs",
                                 param_hint="--target/--exclude")
    return [plan for plan in desired
            if (not target or plan.id in target) and plan.id not in exclude]


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal; silence otherwise."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda: None
        return
    with click.progressbar(length=total, label="Inquiring", file=sys.stderr) as bar:
        yield lambda: bar.update(1)


# --- the emulator ---------------------------------------------------------------------


@cli.group()
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
    from plansync.emulator import workspace

    for path in workspace.init(folder, merchant, port):
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
    for field, text in (
        ("latency_ms", "Milliseconds added before each answer."),
        ("jitter_ms", "Up to this many more milliseconds, at random."),
        ("throttle_rate", "Share of requests answered HTTP 429 unprocessed (0-1)."),
        ("retry_after_s", "Seconds those 429 answers ask clients to wait."),
        ("error_rate", "Share of requests answered HTTP 500 unprocessed (0-1)."),
        ("reset_rate", "Share of connections reset unprocessed (0-1)."),
        ("drop_rate", "Share of updates/cancels committed, then reset (0-1)."),
        ("wrong_key_rate", "Share of answers signed with a wrong key (0-1)."),
        ("malformed_rate", "Share of answers with broken XML (0-1)."),
    ):
        options.append(click.option("--" + field.replace("_", "-"), field, type=float,
                                    default=getattr(Faults, field), help=text))

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _build_server(host: str, port: int, options: dict[str, Any]) -> Any:
    from plansync.emulator import server
    from plansync.emulator.faults import RATES, Faults

    fault_names = (*RATES, "latency_ms", "jitter_ms", "retry_after_s")
    try:
        faults = Faults.from_mapping({name: options[name] for name in fault_names}
                                     | {"seed": options["fault_seed"]})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return server.build(options["folder"], seed=options["seed"], host=host, port=port,
                        db=options["db"], faults=faults)


@emulator.command("serve")
@emulator_options(dir_required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
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
    from plansync.emulator import workspace

    if options["folder"] is not None:
        return _exec(command, options["folder"], options)
    with tempfile.TemporaryDirectory(prefix="plansync-emulator-") as scratch:
        workspace.init(Path(scratch))
        return _exec(command, Path(scratch), options | {"folder": Path(scratch)})


def _exec(command: Sequence[str], folder: Path, options: dict[str, Any]) -> int:
    from plansync.emulator import workspace
    from plansync.emulator.server import Emulator

    with Emulator(_build_server("127.0.0.1", 0, options)) as running:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("PLANSYNC_")}
        env |= {
            "PLANSYNC_ENDPOINT": running.url,
            "PLANSYNC_MERCHANT_KEY": str(folder.resolve() / workspace.MERCHANT_PRIVATE),
            "PLANSYNC_GATEWAY_KEY": str(folder.resolve() / workspace.GATEWAY_PUBLIC),
        }
        merchants = sorted(running.server.gateway.merchants)
        if merchants:
            env["PLANSYNC_MERCHANT_ID"] = merchants[0]
        try:
            return subprocess.call(list(command), env=env)
        except OSError as exc:
            raise PlansyncError(f"cannot run {command[0]}: {exc.strerror}") from None


# --- the one place exceptions become exit codes ---------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="plansync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except PlansyncError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # a bug: say so briefly, keep the details for the report
        click.echo(f"plansync crashed: {type(exc).__name__}: {exc}\n"
                   "This is a bug; please report it with the command you ran "
                   "(run with PLANSYNC_TRACEBACK=1 to see where).", err=True)
        if os.environ.get("PLANSYNC_TRACEBACK"):
            raise
        return 3
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
