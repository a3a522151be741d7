"""`plansync drift`: a read-only check for scheduled jobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from plansync.commands import options as shared
from plansync.commands.output import Output
from plansync.commands.settings import settings as settings_of
from plansync.config import Settings


@click.command()
@shared.spec_paths
@shared.formats_for("One JSON document: drifted plans field by field (spec, live, last "
                    "applied), outside changes, errors and a summary.")
@shared.selecting
@settings_of()
def drift(paths: Sequence[Path], fmt: str | None, no_color: bool, target: Sequence[str],
          exclude: Sequence[str], parallelism: int, rate_limit: float | None,
          settings: Settings) -> int:
    """Report plans whose live state differs from the spec, and plans changed outside
    plansync since its last apply, field by field. Read-only: no lock, no writes.

    Exit codes: 0 no drift; 2 drift found; 1 an error (a plan could not be checked).
    """
    from plansync.engine.drift import detect

    with shared.errors_in_markdown(fmt):
        made, known = shared.plan_live(paths, target, exclude, parallelism, rate_limit,
                                       settings)
    found = detect(made, known)
    click.echo(Output(fmt, no_color).drift(found))
    if found.errors:
        return 1
    return 2 if found.found else 0
