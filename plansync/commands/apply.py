"""`plansync apply`: make live plans match the spec, safely and exactly once."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from plansync import views
from plansync.commands import options as shared
from plansync.commands.settings import Duration, open_state
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings
from plansync.errors import LockError, PlansyncError


@click.command()
@click.argument("paths", metavar="[PATH...]", nargs=-1, type=click.Path(path_type=Path))
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply exactly this saved plan (from `plansync plan --out`).")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True,
              help="Check everything and show what would be sent; send no update or cancel.")
@views.formats("apply", "The outcome per plan, as JSON on stdout.", markdown=False)
@click.option("--lock-timeout", type=Duration(), default="0s", show_default=True,
              metavar="DURATION", help="How long to wait for the state lock (e.g. 30s, 5m).")
@click.option("--allow-near-charge", is_flag=True, help="Write plans about to charge anyway.")
@click.option("--expect-spec-digest", metavar="SHA256",
              help="Refuse unless the spec is this one (the digest a reviewed plan showed).")
@shared.selecting
@settings_of(guardrails="refuses", settle_window=True, each_project=True)
def apply(paths: Sequence[Path], plan_file: Path | None, auto_approve: bool, dry_run: bool,
          view: views.ApplyView, lock_timeout: float, allow_near_charge: bool,
          expect_spec_digest: str | None, target: Sequence[str], exclude: Sequence[str],
          parallelism: int, rate_limit: float | None, settings: Settings) -> int:
    """Make live plans match the spec (or a saved plan), each write a compare-and-set.

    Exit codes: 0 every plan converged; 1 a plan failed, was skipped or is pending; 3 a
    guardrail refused the plan (nothing sent); 130/143 stopped by SIGINT/SIGTERM.
    """
    from plansync.engine import run

    with view.reporting_errors():  # apply --json: a failure is a document too
        if not paths and plan_file is None:
            raise click.UsageError("name the spec PATHs to apply, or a saved --plan FILE")
        if plan_file is not None and (target or exclude):
            raise click.UsageError("--target and --exclude choose plans when a plan is "
                                   "made; a saved plan holds what was chosen then: make it "
                                   "with them (plansync plan --target ID --out FILE)")
        if not (auto_approve or dry_run or sys.stdin.isatty()):
            raise PlansyncError("apply needs a 'yes' to go on, and there is no terminal to "
                                "ask", "pass --auto-approve (as CI does), or run it in a "
                                "terminal")
        desired = shared.desired(paths, target, exclude) if plan_file is None else None
        store = open_state(settings)
        gateway = settings.gateway
        limits = settings.limits
        request = run.ApplyRequest(
            desired=desired, plan_file=plan_file, spec_paths=paths, dry_run=dry_run,
            lock_wait=lock_timeout, settle_window=timedelta(seconds=settings.settle_window),
            limits=limits, allow_near_charge=allow_near_charge,
            expect_spec_digest=expect_spec_digest, parallelism=parallelism)
        with _hints(settings.project):
            return run.apply(request, store,
                             lambda: shared.gateway_client(gateway, parallelism, rate_limit),
                             view, confirm=lambda: auto_approve or _confirmed(), stop=_Stop(),
                             read_plan=shared.read_plan_file, progress=shared.progress)


_REFUSED_HINTS = {
    "other-settings": "make a new plan with these settings",
    "other-spec": "review a new plan of this spec: plansync plan --out FILE",
    "forged": "apply only a plan file that plansync plan --out wrote, unedited",
}


@contextmanager
def _hints(project: str | None) -> Iterator[None]:
    """What to do, in the commands' words: about a lock another run holds, or a saved
    plan the run refused."""
    from plansync.engine.run import Refused

    try:
        yield
    except LockError as exc:
        if exc.held_by is not None:
            exc.hint = ("wait for that run, retry with --lock-timeout, or if it is gone: "
                        f"plansync force-unlock {exc.held_by}"
                        + (f" --project {project}" if project else ""))
        raise
    except Refused as exc:
        exc.hint = _REFUSED_HINTS[exc.why]
        raise


def _confirmed() -> bool:
    answer = click.prompt("Do you want to perform these actions?\n"
                          "  Only 'yes' will be accepted to approve.\n  Enter a value",
                          default="", show_default=False)
    return bool(answer == "yes")


STOP_GRACE = 3.0  # seconds a stopped run gives the writes in flight to be answered


class _Stop:
    """SIGINT/SIGTERM while writing: send no new write (the applier checks just before
    each send); give those in flight STOP_GRACE seconds to be answered, then cut them
    off (``cut_off``: each becomes an unknown outcome, journalled, that the next apply
    settles by inquiry), and save the state: the run ends within seconds. A further
    signal says what the run waits for. (Before the writes, a signal simply aborts.)"""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.waiting_for: Callable[[], dict[str, str]] = dict
        self.cut_off: Callable[[], None] = lambda: None

    @contextmanager
    def catching(self) -> Iterator[None]:
        def handler(signum: int, _frame: Any) -> None:
            if not self.event.is_set():
                self.signum = signum
                self.event.set()
                click.echo("Stopping: no new writes are sent; waiting up to "
                           f"{STOP_GRACE:g}s for those in flight...", err=True)
                cutting = threading.Timer(STOP_GRACE, self.cut_off)
                cutting.daemon = True
                cutting.start()
                return
            flying = self.waiting_for()
            named = ", ".join(f"plan {plan} ({action})" for plan, action in
                              sorted(flying.items())[:10]) + (", ..." if len(flying) > 10
                                                              else "")
            click.echo(f"Still stopping ({signal.Signals(signum).name}): waiting for "
                       + (f"{len(flying)} write(s) in flight to be answered and checked: "
                          f"{named}. Each is journalled: if this process is killed now, "
                          "the next apply settles them by inquiry."
                          if flying else "the state to be saved."), err=True)

        previous = {s: signal.signal(s, handler) for s in views.text.SIGNAL_EXIT}
        try:
            yield
        finally:
            for signum, old in previous.items():
                # A stopping run has released its lock and is about to exit 130/143: a
                # further signal now changes nothing. Ignored, not left to Python, which
                # restores the default action while it exits (killed by it, the run's
                # exit code and buffered output would be lost).
                signal.signal(signum, old if self.signum is None else signal.SIG_IGN)
