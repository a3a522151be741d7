"""Each command's text view: for people and logs. The words are plansync/render/'s."""

from __future__ import annotations

import contextlib
import signal
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from plansync.errors import PlansyncError

if TYPE_CHECKING:
    from pathlib import Path

    from plansync.engine.applier import Result
    from plansync.engine.drift import Drift
    from plansync.engine.guardrails import Violation
    from plansync.engine.plan import Change, Plan
    from plansync.engine.state import AppliedPlan, Audit
    from plansync.fields import LivePlan
    from plansync.spec.model import Problem

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
MAX_PROBLEMS_SHOWN = 50  # on stderr: a spec of 50,000 bad plans is not 50,000 lines


class Text:
    """What every text view does: a failure is cli.py's ``error:`` line alone."""

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def warning(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def project(self, name: str, first: bool) -> None:
        """The heading of a project's part of a run over several projects."""
        click.echo(("" if first else "\n") + click.style(f"=== project {name} ===",
                                                         bold=self.color))

    def error(self, exc: PlansyncError) -> None:
        pass

    @contextlib.contextmanager
    def reporting_errors(self) -> Iterator[None]:
        try:
            yield
        except PlansyncError as exc:
            self.error(exc)
            raise


class PlanView(Text):
    def plan(self, made: Plan, breaches: Sequence[Violation] = ()) -> None:
        from plansync.render import text

        click.echo(text.render(made, color=self.color, breaches=breaches))


class DriftView(Text):
    def drift(self, found: Drift) -> None:
        from plansync.render import drift

        click.echo(drift.text(found))


class ValidateView(Text):
    def validated(self, problems: Sequence[Problem], plans: int, files: int) -> int:
        if problems:
            from plansync.errors import SpecProblemsError

            report_problems(problems)
            raise SpecProblemsError(problems)
        click.echo(f"Valid: {plans} plan{'s' * (plans != 1)} in {files} "
                   f"file{'s' * (files != 1)}.")
        return 0


def report_problems(problems: Sequence[Problem]) -> None:
    """Each problem on stderr (in every format: the specs of plan --json too); on GitHub
    Actions also as an annotation on its spec line."""
    import os

    from plansync.render import problems as render

    annotate = os.environ.get("GITHUB_ACTIONS") == "true"
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(render.text(problem), err=True)
        if annotate:
            click.echo(render.github_annotation(problem), err=True)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more problem(s); "
                   "plansync validate --json lists them all", err=True)


class InquireView(Text):
    def live(self, plans: Sequence[LivePlan]) -> None:
        from plansync.render import live

        if plans:  # none answered: the error lines on stderr say it all
            click.echo(live.as_table(plans))


class HistoryView(Text):
    def history(self, records: Sequence[Audit], plan_id: str | None,
                currencies: Mapping[str, str]) -> None:
        """A line per record: when it was sent, who, what it changed, the answer, and
        where it came from (``currencies``: each plan's as last seen, to read the
        amounts of records that hold only the wire fields)."""
        from plansync.printable import printable
        from plansync.render import history
        from plansync.render.values import label

        for audit in records:
            who = f"{audit.by.get('user')}@{audit.by.get('host')}"
            where = f" (CI run {audit.by['ci_url']})" if audit.by.get("ci_url") else ""
            changed = history.changes(audit, currencies.get(audit.plan))
            source = history.source(audit)
            click.echo(printable(
                f"{audit.at}  {who}{where}  {history.action(audit)} plan "
                f"{label(audit.plan, audit.name)}" + (f": {changed}" if changed else "")
                + f"  respCode {audit.resp_code or '-'} ({history.meaning(audit.resp_code)})"
                + (f"  from {source}" if source else "")))
        if not records:
            click.echo("No write recorded" + (f" for plan {plan_id}." if plan_id else "."))


class ApplyView(Text):
    """apply's narration, on stdout (the JSON view: on stderr)."""

    narration_on_stderr = False

    def line(self, message: str) -> None:
        click.echo(message, err=self.narration_on_stderr)

    def plan(self, made: Plan) -> None:
        from plansync.render import text

        self.line(text.render(made, color=self.color) + "\n")

    def result(self, result: Result) -> None:
        from plansync.engine.applier import ResultKind as Kind
        from plansync.render.values import label

        if result.result == Kind.UNCHANGED and not result.detail:
            return  # planned as unchanged: the plan above already said so
        named = label(result.id, result.name)
        outcome = result.result.replace("-", " ")
        if result.result in (Kind.WOULD_UPDATE, Kind.WOULD_CANCEL) and result.sent[1:]:
            # The very items the write would carry (the cancel's: as the guide's sample).
            outcome += ": " + " ".join(f"{tag}={value}" for tag, value in result.sent[1:])
        elif result.result == Kind.UPDATED:
            outcome += f" ({result.detail})" if result.detail else ""
        elif result.detail:
            outcome += f": {result.detail}"
        if result.cause == "near-charge":
            outcome += " (--allow-near-charge overrides)"
        self.line(f"plan {named}: {outcome}")
        if result.warning:
            self.warning(f"plan {result.id}: {result.warning}")

    def cancelled(self) -> int:
        """Not confirmed: nothing was sent."""
        self.line("Apply cancelled; nothing was sent.")
        return 1

    def already_applied(self, plan_file: Path, done: AppliedPlan) -> int:
        """A saved plan applies once. A second run (a re-run CI job) sends nothing: it
        succeeds when the first run wrote every reviewed change, and otherwise fails,
        saying so, rather than turn a partial apply green."""
        by = f" by {done.by}" if done.by else ""
        if done.complete:
            # (Writes an earlier run left open were settled above; this plan's own
            # changes are not sent again.)
            self.line(f"Plan file {plan_file} was already applied{by} at {done.at}; it is "
                      "not applied again.")
        else:
            how = ("only in part (some reviewed changes were not written)"
                   if done.complete is False else "(whether in full was not recorded)")
            click.echo(f"error: plan file {plan_file} was already applied{by} at "
                       f"{done.at}, {how}; it is not applied again\n"
                       "  hint: review a new plan for what is left: plansync plan --out FILE",
                       err=True)
        return 0 if done.complete else 1

    def finish(self, results: list[Result], dry_run: bool, signum: int | None,
               not_reviewed: Sequence[Change] = ()) -> int:
        counts: Counter[str] = Counter(r.result for r in results)  # a ResultKind is a str
        failed = counts["failed"] + counts["skipped"]
        if dry_run:
            summary = (f"Dry run complete: {counts['would-update']} to update, "
                       f"{counts['would-cancel']} to cancel, {counts['unchanged']} unchanged, "
                       f"{failed} would fail or be skipped. Nothing was sent.")
        else:
            summary = (f"Apply complete: {counts['updated']} updated, {counts['cancelled']} "
                       f"cancelled, {counts['unchanged']} unchanged, {failed} failed"
                       + (f", {counts['pending']} pending" if counts["pending"] else "")
                       + (f", {counts['not-started']} not started" if counts["not-started"]
                          else "") + ".")
        if signum is not None:
            summary = f"Stopped by {signal.Signals(signum).name}; no write was sent after it. " \
                      + summary
        self.line(summary)
        if signum is not None:
            return SIGNAL_EXIT[signal.Signals(signum)]
        return 1 if failed or counts["pending"] or counts["not-started"] else 0


class ProjectsView(Text):
    def projects(self, listed: Sequence[dict[str, Any]], declared: bool,
                 settings_file: str) -> None:
        if not declared:
            click.echo(f"{settings_file} declares no projects: one merchant account "
                       "(README: Several merchant accounts)", err=True)
        for project in listed:
            click.echo(f"{project['name']}\tworkspace {project['workspace']}\t"
                       f"specs {' '.join(project['specs'])}")


VIEWS: dict[str, Any] = {"plan": PlanView, "drift": DriftView, "validate": ValidateView,
                         "inquire": InquireView, "history": HistoryView, "apply": ApplyView,
                         "projects": ProjectsView}
