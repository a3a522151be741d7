"""What each command tells its user, in the format its flags chose: text (the default,
coloured on a terminal unless --no-color or NO_COLOR), JSON, or Markdown (a pull-request
comment). As Terraform's command/views: a command is handed one view and says all its
outcome through it; the view chooses the stream and the shape. Every JSON document a
command prints is built in views/json.py. The renderers in plansync/render/ stay pure
(values in, text out): views print what they return.

``formats`` is the one decorator giving a command its --json, --markdown and --no-color
flags; ``pick`` the one function choosing the view. A new format is a module here with
a view per command (as json.py), its line in ``pick`` and its flag in ``formats``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

if TYPE_CHECKING:  # the engine is imported when a command runs, not when the CLI starts
    from pathlib import Path

    from plansync.engine.applier import Result
    from plansync.engine.drift import Drift
    from plansync.engine.guardrails import Violation
    from plansync.engine.plan import Change, Plan
    from plansync.engine.state import AppliedPlan, Audit
    from plansync.errors import PlansyncError
    from plansync.fields import LivePlan
    from plansync.spec.model import Problem

F = TypeVar("F", bound=Callable[..., Any])


class View(Protocol):
    """What every command's view does, in every format."""

    def warning(self, message: str) -> None:
        """On stderr, whatever the format."""

    def project(self, name: str, first: bool) -> None:
        """The heading of a project's part of a run over several (text and Markdown; a
        JSON run is of one project)."""

    def error(self, exc: PlansyncError) -> None:
        """A failure said in the format on stdout, where it has a way to say one (cli.py
        still prints ``error: ...`` on stderr)."""

    def reporting_errors(self) -> AbstractContextManager[None]:
        """Within it, a PlansyncError is also said by ``error`` (then raised on)."""


class PlanView(View, Protocol):  # plan, show
    def plan(self, made: Plan, breaches: Sequence[Violation] = ()) -> None: ...


class DriftView(View, Protocol):
    def drift(self, found: Drift) -> None: ...


class ValidateView(View, Protocol):
    def validated(self, problems: Sequence[Problem], plans: int, files: int) -> int:
        """The outcome; the exit code (text: the problems, then SpecProblemsError)."""


class InquireView(View, Protocol):
    def live(self, plans: Sequence[LivePlan]) -> None: ...


class ProjectsView(View, Protocol):  # projects
    def projects(self, listed: Sequence[dict[str, Any]], declared: bool,
                 settings_file: str) -> None:
        """The projects listed (name, specs, workspace); ``declared``: whether the
        settings file declares projects at all."""


class HistoryView(View, Protocol):  # state history
    def history(self, records: Sequence[Audit], plan_id: str | None,
                currencies: Mapping[str, str]) -> None:
        """``currencies``: each plan's as the state last saw it (for older records)."""


class ApplyView(View, Protocol):
    """apply: text on stdout; or (JSON) the same text on stderr and one document on
    stdout at the end, also when it fails."""

    def line(self, message: str) -> None: ...

    def plan(self, made: Plan) -> None:
        """The plan about to be applied, as text in every format."""

    def result(self, result: Result) -> None: ...

    def cancelled(self) -> int:
        """Not confirmed: the exit code."""

    def already_applied(self, plan_file: Path, done: AppliedPlan) -> int: ...

    def finish(self, results: list[Result], dry_run: bool, signum: int | None,
               not_reviewed: Sequence[Change] = ()) -> int:
        """The summary; the exit code."""


def use_color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def pick(name: str, fmt: str | None, no_color: bool = False) -> Any:
    """The view ``name`` (plan, drift, validate, inquire, history, apply) in ``fmt``
    (None: text; csv: history alone)."""
    from plansync.views import csv, json, markdown, text

    views = {None: text.VIEWS, "text": text.VIEWS, "json": json.VIEWS,
             "markdown": markdown.VIEWS, "csv": csv.VIEWS}[fmt]
    return views[name](use_color(no_color))


def formats(name: str, json_help: str, markdown: bool = True,
            no_color: bool = True, choices: Sequence[str] = ()) -> Callable[[F], F]:
    """--json (its document described by ``json_help``), and unless told otherwise
    --markdown and --no-color; with ``choices``, also --format CHOICE (--json is then
    --format json). The command gets ``view`` in their place: the view ``name`` in the
    format they chose."""
    options = [click.option("--json", "fmt", flag_value="json", help=json_help)]
    if choices:
        options.append(click.option("--format", "chosen", type=click.Choice(choices),
                                    help=f"{', '.join(choices)} (default {choices[0]}); "
                                         "--json is --format json."))
    if markdown:
        options.append(click.option("--markdown", "fmt", flag_value="markdown",
                                    help="Markdown for a pull-request comment."))
    if no_color:
        options.append(click.option("--no-color", is_flag=True,
                                    help="No colours (also: the NO_COLOR variable)."))

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def with_view(*args: Any, fmt: str | None = None, chosen: str | None = None,
                      no_color: bool = False, **kwargs: Any) -> Any:
            if fmt and chosen and fmt != chosen:
                raise click.UsageError(f"--{fmt} and --format {chosen} disagree: give one")
            return function(*args, view=pick(name, fmt or chosen, no_color), **kwargs)

        decorated: Any = with_view
        for option in reversed(options):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


plan_formats = formats("plan", "One JSON document (schemas/plan.schema.json).")  # plan, show
