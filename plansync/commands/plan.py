"""`plansync validate`, `plan` and `show`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from plansync import views
from plansync.commands import options as shared
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings


@click.command()
@shared.spec_paths
@views.formats("validate", "The outcome as one JSON document on stdout (valid, plans, "
               "files, problems with file, line, column, plan, field, message).",
               markdown=False, no_color=False)
@settings_of(gateway=False, state=False, each_project=True)
def validate(paths: Sequence[Path], view: views.ValidateView, settings: Settings) -> int:
    """Check spec files (and folders of them) without touching the network.

    Every problem is printed as FILE:LINE:COLUMN: plan ID: FIELD: MESSAGE (and, on
    GitHub Actions, as an annotation on that line).
    """
    from plansync.spec import loader

    plans, problems, files = loader.load_counted(paths)
    return view.validated(problems, len(plans), files)


@click.command()
@shared.spec_paths
@views.plan_formats
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the plan, for `plansync show` and `plansync apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 with no changes, 2 with changes, 3 when the plan breaches a "
                   "guardrail, 1 on error.")
@shared.selecting
@settings_of(guardrails="shows", each_project=True)
def plan(paths: Sequence[Path], view: views.PlanView, out: Path | None,
         detailed_exitcode: bool, target: Sequence[str], exclude: Sequence[str],
         parallelism: int, rate_limit: float | None, settings: Settings) -> int:
    """Show what would change: inquire every declared plan and diff it against the spec;
    and every guardrail (plansync.yaml's, or a flag's) the plan breaches, which apply
    would refuse.

    Exit codes: 0 success; 1 a spec problem or a plan that cannot be planned; with
    --detailed-exitcode, 2 when there are changes, 3 when a guardrail is breached.
    """
    from datetime import timedelta

    from plansync.engine.plan import with_pending

    with view.reporting_errors():  # a pull-request comment then says why, not nothing
        made, known = shared.plan_live(paths, target, exclude, parallelism, rate_limit,
                                       settings)
    # Writes an earlier run left open: the plan says until when apply holds them back.
    made = with_pending(made, known.pending.values(),
                        timedelta(seconds=settings.settle_window))
    breaches = settings.limits.breaches(made)
    if out is not None:
        from plansync.engine import planfile

        planfile.save(made, out)
        project = f" --project {settings.project}" if settings.project else ""
        click.echo(f"Saved the plan to {out}; apply exactly it with: "
                   f"plansync apply --plan {out}{project}", err=True)
    view.plan(made, breaches)
    if made.summary["error"]:
        return 1
    if not detailed_exitcode:
        return 0  # a breach is shown, as a change is: the exit code says so on request
    return 3 if breaches else 2 if made.has_changes else 0


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@views.plan_formats
def show(file: Path, view: views.PlanView) -> int:
    """Show a plan saved by `plansync plan --out FILE`."""
    view.plan(shared.read_plan_file(file)[0])
    return 0

