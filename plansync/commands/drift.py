"""`plansync drift`: a read-only check for scheduled jobs."""

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
@views.formats("drift", "One JSON document: drifted plans field by field (spec, live, "
               "last applied), outside changes, errors and a summary.")
@shared.selecting
@settings_of(each_project=True)
def drift(paths: Sequence[Path], view: views.DriftView, target: Sequence[str],
          exclude: Sequence[str], parallelism: int, rate_limit: float | None,
          settings: Settings) -> int:
    """Report plans whose live state differs from the spec, and plans changed outside
    plansync since its last apply, field by field. Read-only: no lock, no writes.

    Exit codes: 0 no drift; 2 drift found; 1 an error (a plan could not be checked).
    """
    from plansync.engine.drift import detect

    with view.reporting_errors():
        made, known = shared.plan_live(paths, target, exclude, parallelism, rate_limit,
                                       settings)
    found = detect(made, known)
    view.drift(found)
    if found.errors:
        return 1
    return 2 if found.found else 0
