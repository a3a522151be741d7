"""The ``plansync`` command: options in, one call, exit code out.

Exit codes: 0 success; 1 an expected error (bad input, a plan that failed); 2 only
changes present (plan --detailed-exitcode) or drift found; 3 a guardrail refused the
plan; 64 wrong usage (EX_USAGE); 70 a bug in plansync; 130/143 SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

import click

from plansync.commands import (
    apply,
    ci,
    demo,
    drift,
    emulator,
    imports,
    init,
    inquire,
    plan,
    state,
)
from plansync.errors import PlansyncError
from plansync.printable import printable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True,
              help="-v: one line per request (plan, type, attempt, HTTP status, respCode, "
                   "duration; never bodies, tokens or keys); -vv: and retry decisions.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              envvar="PLANSYNC_LOG_FORMAT", show_default=True,
              help="json: one JSON object per log line on stderr, for CI log search "
                   "(or PLANSYNC_LOG_FORMAT).")
@click.version_option(package_name="plansync")
def cli(verbose: int, log_format: str) -> None:
    """Manage 2C2P recurring payment plans as code.

    Talks to 2C2P's Recurring Payment Maintenance API (or the built-in emulator) over its
    encrypted envelope. Settings come from flags, then PLANSYNC_* variables, then
    plansync.yaml.
    """
    from plansync import logs

    logs.configure(verbose, log_format)


for _command in (demo.demo, init.init, inquire.inquire, imports.import_, plan.validate,
                 plan.plan, plan.show, apply.apply, drift.drift, state.state,
                 state.workspace, state.force_unlock, emulator.emulator, ci.ci):
    cli.add_command(_command)

# --- the one place exceptions become exit codes ---------------------------------------


BUG_EXIT_CODE = 70  # EX_SOFTWARE: 3 belongs to guardrail refusals
USAGE_EXIT_CODE = 64  # EX_USAGE: 2 means only "changes present" or "drift found"


def _terminated(_signum: int, _frame: object) -> None:
    raise SystemExit(143)  # unwinds like Ctrl-C does: locks released, files closed


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
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


if __name__ == "__main__":
    sys.exit(main())
