"""Each command's Markdown view: a pull-request (or issue) comment on stdout. A run that
fails says why there too, so that the comment is not empty (``failure``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from plansync.views import text

if TYPE_CHECKING:
    from plansync.engine.drift import Drift
    from plansync.engine.guardrails import Violation
    from plansync.engine.plan import Plan
    from plansync.errors import PlansyncError


class Markdown(text.Text):
    def project(self, name: str, first: bool) -> None:
        click.echo(("" if first else "\n") + f"## Project `{name}`\n")

    def error(self, exc: PlansyncError) -> None:
        from plansync.render.markdown import failure

        click.echo(failure(exc, getattr(exc, "problems", ())))


class PlanView(Markdown):
    def plan(self, made: Plan, breaches: Sequence[Violation] = ()) -> None:
        from plansync.render import markdown

        click.echo(markdown.render(made, breaches=breaches))


class DriftView(Markdown):
    def drift(self, found: Drift) -> None:
        from plansync.render import drift

        click.echo(drift.markdown(found))


VIEWS: dict[str, Any] = {"plan": PlanView, "drift": DriftView}
