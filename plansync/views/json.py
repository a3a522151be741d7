"""Each command's JSON view: one document on stdout, for a machine. Every JSON document
a command prints is shaped here (the plan's: engine/plan.py ``dump``, for the plan
file too; its schemas are in schemas/). Warnings and narration go to stderr."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from plansync import jsontext
from plansync.views import text

if TYPE_CHECKING:
    from pathlib import Path

    from plansync.engine.applier import Result
    from plansync.engine.drift import Drift, PlanDrift
    from plansync.engine.guardrails import Violation
    from plansync.engine.plan import Change, Plan
    from plansync.engine.state import AppliedPlan, Audit
    from plansync.errors import PlansyncError
    from plansync.fields import LivePlan
    from plansync.spec.model import Problem


def _echo(document: Any) -> None:
    click.echo(jsontext.dumps(document))  # json.dumps(document, indent=2), faster


def error_document(message: str, hint: str | None) -> dict[str, Any]:
    """A run that failed, as apply --json says it: ``ci report`` reads why."""
    return {"error": message, "hint": hint, "results": []}


class PlanView(text.Text):
    def plan(self, made: Plan, breaches: Sequence[Violation] = ()) -> None:
        """The plan (schemas/plan.schema.json), and the guardrails it breaches (only if
        any)."""
        from plansync.engine.plan import dump

        document = dump(made)
        if breaches:
            document["guardrails"] = [{"limit": b.limit, "message": b.message,
                                       "source": b.source} for b in breaches]
        _echo(document)


class DriftView(text.Text):
    def drift(self, found: Drift) -> None:
        from plansync.engine.impact import exact_text, places
        from plansync.fields import to_json

        def plans(items: tuple[PlanDrift, ...], expected: str) -> list[dict[str, Any]]:
            return [{"id": p.id, "name": p.name, "since": p.since, "fields": [
                {"field": f.field, expected: to_json(f.expected), "live": to_json(f.live)}
                for f in p.fields]} for p in items]

        _echo({
            "drift": found.found,
            "spec_drift": plans(found.spec, "spec"),
            "outside_changes": plans(found.outside, "applied"),
            "errors": [{"id": i, "error": e} for i, e in found.errors],
            "mrr": [{"currency": e.currency, "live": exact_text(e.mrr_before, places(
                        e.currency)), "spec": exact_text(e.mrr_after, places(e.currency)),
                     "difference": exact_text(e.mrr_change, places(e.currency))}
                    for e in found.mrr],
            "summary": {"checked": found.checked, "spec_drift": len(found.spec),
                        "outside_changes": len(found.outside), "errors": len(found.errors)},
        })


class ValidateView(text.Text):
    def validated(self, problems: Sequence[Problem], plans: int, files: int) -> int:
        """Every problem, none left out (the text view shows the first 50)."""
        _echo({"valid": not problems, "plans": plans, "files": files, "problems": [
            {"file": p.location.file, "line": p.location.line, "column": p.location.column,
             "plan": p.plan_id, "field": p.field, "message": p.message} for p in problems]})
        return 1 if problems else 0


class InquireView(text.Text):
    def live(self, plans: Sequence[LivePlan]) -> None:
        from plansync.render.live import as_dict

        _echo([as_dict(plan) for plan in plans])


class HistoryView(text.Text):
    def history(self, records: Sequence[Audit], plan_id: str | None,
                currencies: Mapping[str, str]) -> None:
        """Each record with every member (null or empty where an older plansync kept
        none), and how it reads: its changes and the respCode's meaning."""
        import dataclasses

        from plansync.render import history

        _echo([{**dataclasses.asdict(a), "resp_meaning": history.meaning(a.resp_code),
                "changes_text": history.changes(a, currencies.get(a.plan))} for a in records])


class ApplyView(text.ApplyView):
    """The text view's words on stderr; on stdout one document at the end, or, when
    the run fails, the error's (``error_document``)."""

    narration_on_stderr = True

    def error(self, exc: PlansyncError) -> None:
        _echo(error_document(exc.message, exc.hint))

    def already_applied(self, plan_file: Path, done: AppliedPlan) -> int:
        code = super().already_applied(plan_file, done)
        _echo({"dry_run": False,
               "already_applied": {"at": done.at, "by": done.by, "complete": done.complete},
               "results": [], "not_reviewed": [], "summary": _summary(Counter())})
        return code

    def finish(self, results: list[Result], dry_run: bool, signum: int | None,
               not_reviewed: Sequence[Change] = ()) -> int:
        code = super().finish(results, dry_run, signum, not_reviewed)
        _echo({
            "dry_run": dry_run,
            "results": [{"id": r.id, "name": r.name, "action": str(r.action),
                         "result": r.result, "detail": r.detail,
                         "sent": dict(r.sent[1:]), "warning": r.warning} for r in results],
            "not_reviewed": [{"id": c.id, "name": c.name, "action": str(c.action),
                              "changed_fields": list(c.changed_fields)}
                             for c in not_reviewed],
            "summary": _summary(Counter(str(r.result) for r in results)),
        })
        return code


def _summary(counts: Counter[str]) -> dict[str, int]:
    return {"updated": counts["updated"], "cancelled": counts["cancelled"],
            "unchanged": counts["unchanged"], "failed": counts["failed"] + counts["skipped"],
            "pending": counts["pending"], "not_started": counts["not-started"]}


class ProjectsView(text.Text):
    def projects(self, listed: Sequence[dict[str, Any]], declared: bool,
                 settings_file: str) -> None:
        """[{name, specs, workspace}]; [] without projects."""
        _echo(list(listed))


VIEWS: dict[str, Any] = {"plan": PlanView, "drift": DriftView, "validate": ValidateView,
                         "inquire": InquireView, "history": HistoryView, "apply": ApplyView,
                         "projects": ProjectsView}
