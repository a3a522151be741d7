"""The ``plansync`` command: options in, one call, exit code out.

Exit codes: 0 success; 1 an expected error (bad input, a plan that failed); 2 only
changes present (plan --detailed-exitcode) or drift found; 3 a guardrail refused the
plan; 64 wrong usage (EX_USAGE); 70 a bug in plansync; 130/143 SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Iterator, MutableMapping, Sequence

import click

import plansync
from plansync.errors import PlansyncError
from plansync.printable import printable

# Each command's module, imported when the command is used (run, or listed by --help):
# `plansync plan` loads none of apply's machinery, `plansync --help` none of the engine.
COMMANDS = {
    "demo": "demo:demo", "init": "init:init", "inquire": "inquire:inquire",
    "import": "imports:import_", "validate": "plan:validate", "plan": "plan:plan",
    "show": "plan:show", "apply": "apply:apply", "drift": "drift:drift",
    "state": "state:state", "workspace": "workspace:workspace",
    "force-unlock": "state:force_unlock", "emulator": "emulator:emulator", "ci": "ci:ci",
    "projects": "projects:projects_command",
}


class Commands(MutableMapping[str, click.Command]):
    """click's name -> command mapping, each command imported at its first lookup."""

    def __init__(self, where: dict[str, str]) -> None:
        self._where = where
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, attribute = self._where[name].split(":")  # KeyError: no such command
            command = getattr(importlib.import_module(f"plansync.commands.{module}"),
                              attribute)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._where.setdefault(name, "")

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


@click.group(commands=Commands(dict(COMMANDS)),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True,
              help="-v: one line per request (plan, type, attempt, HTTP status, respCode, "
                   "duration; never bodies, tokens or keys); -vv: and retry decisions.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              envvar="PLANSYNC_LOG_FORMAT", show_default=True,
              help="json: one JSON object per log line on stderr, for CI log search "
                   "(or PLANSYNC_LOG_FORMAT).")
@click.version_option(plansync.__version__, package_name="plansync")
def cli(verbose: int, log_format: str) -> None:
    """Manage 2C2P recurring payment plans as code.

    Talks to 2C2P's Recurring Payment Maintenance API (or the built-in emulator) over its
    encrypted envelope. Settings come from flags, then PLANSYNC_* variables, then
    plansync.yaml.
    """
    from plansync import logs

    logs.configure(verbose, log_format)


# --- the one place exceptions become exit codes ---------------------------------------


BUG_EXIT_CODE = 70  # EX_SOFTWARE: 3 belongs to guardrail refusals
USAGE_EXIT_CODE = 64  # EX_USAGE: 2 means only "changes present" or "drift found"


def _terminated(_signum: int, _frame: object) -> None:
    _end_later(143)
    raise SystemExit(143)  # unwinds like Ctrl-C does: locks released, files closed


def _interrupted(_signum: int, _frame: object) -> None:
    _end_later(130)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _interrupted)
    try:
        result = cli.main(args=argv, prog_name="plansync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.UsageError as exc:  # a mistyped flag is not "changes present" (2)
        exc.show()
        return 0 if isinstance(exc, click.exceptions.NoArgsIsHelpError) else USAGE_EXIT_CODE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except PlansyncError as exc:
        click.echo("\n".join(printable(line) for line in f"error: {exc}".split("\n")),
                   err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # a bug: say so briefly, keep the details for the report
        click.echo(f"plansync crashed: {type(exc).__name__}: {exc}\n"
                   "This is a bug; please report it with the command you ran "
                   "(run with PLANSYNC_TRACEBACK=1 to see where).", err=True)
        if os.environ.get("PLANSYNC_TRACEBACK"):
            raise
        return BUG_EXIT_CODE
    return result if isinstance(result, int) else 0


# A run stopped by SIGINT or SIGTERM unwinds (its lock released, its requests cut off),
# then Python joins every worker thread before the process ends. A thread stuck where no
# cut reaches it, or an unwinding that waits on one, would hold the process (a plan so
# stopped outlived 30 s in loaded CI runs): it ends this long after the signal anyway,
# within the 5 s a signal promises. (apply's writes have their own stop, which saves the
# state first: it replaces these handlers while it writes.)
STUCK_GRACE = 4.0


def _end_later(code: int) -> None:
    import threading

    timer = threading.Timer(STUCK_GRACE, _end, (code,))
    timer.daemon = True  # not itself joined at exit
    timer.start()


def run() -> None:
    """The program (``plansync``, ``python -m plansync``)."""
    sys.exit(main())


def _end(code: int) -> None:
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
