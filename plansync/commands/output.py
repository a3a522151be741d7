"""Output formats, chosen in one place for plan, show, drift and apply: text (the
default, colored on a terminal unless --no-color or NO_COLOR), JSON, or Markdown (a
pull-request comment). The renderers in plansync/render/ are pure; this picks one."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def use_color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


@dataclass(frozen=True)
class Output:
    fmt: str | None  # None (text) | "json" | "markdown"
    no_color: bool = False

    def plan(self, made: Any, as_text: bool = False, breaches: Sequence[Any] = ()) -> str:
        """The plan, and the guardrails it breaches (JSON: ``guardrails``, only if any)."""
        from plansync.engine.plan import dump
        from plansync.render import markdown, text

        if self.fmt == "json" and not as_text:
            document = dump(made)
            if breaches:
                document["guardrails"] = [{"limit": b.limit, "message": b.message,
                                           "source": b.source} for b in breaches]
            return json.dumps(document, indent=2)
        if self.fmt == "markdown" and not as_text:
            return markdown.render(made, breaches=breaches)
        return text.render(made, color=use_color(self.no_color), breaches=breaches)

    def drift(self, found: Any) -> str:
        from plansync.render import drift as report

        if self.fmt == "json":
            return report.as_json(found)
        if self.fmt == "markdown":
            return report.markdown(found)
        return report.text(found)

    def apply_report(self) -> ApplyReport:
        return ApplyReport(self.fmt == "json")


class ApplyReport:
    """What apply tells the user: text on stdout, or (with --json) text on stderr and one
    JSON document on stdout at the end."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, message: str) -> None:
        click.echo(message, err=self.as_json)

    def warning(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def result(self, result: Any) -> None:
        if result.result == "unchanged" and not result.detail:
            return  # planned as unchanged: the plan above already said so
        from plansync.render.values import label

        named = label(result.id, result.name)
        outcome = result.result.replace("-", " ")
        if result.result in ("would-update", "would-cancel") and result.sent[1:]:
            # The very items the write would carry (the cancel's: as the guide's sample).
            outcome += ": " + " ".join(f"{tag}={value}" for tag, value in result.sent[1:])
        elif result.result == "updated":
            outcome += f" ({result.detail})" if result.detail else ""
        elif result.detail:
            outcome += f": {result.detail}"
        if result.cause == "near-charge":
            outcome += " (--allow-near-charge overrides)"
        self.line(f"plan {named}: {outcome}")
        if result.warning:
            self.warning(f"plan {result.id}: {result.warning}")

    def already_applied(self, plan_file: Any, done: Any) -> int:
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
        if self.as_json:
            click.echo(json.dumps({"dry_run": False,
                                   "already_applied": {"at": done.at, "by": done.by,
                                                       "complete": done.complete},
                                   "results": [], "not_reviewed": [],
                                   "summary": _summary(Counter(), 0)}, indent=2))
        return 0 if done.complete else 1

    def finish(self, results: list[Any], dry_run: bool, signum: int | None,
               not_reviewed: Sequence[Any] = ()) -> int:
        counts = Counter(r.result for r in results)
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
        if self.as_json:
            click.echo(json.dumps({
                "dry_run": dry_run,
                "results": [{"id": r.id, "name": r.name, "action": str(r.action),
                             "result": r.result, "detail": r.detail,
                             "sent": dict(r.sent[1:]), "warning": r.warning} for r in results],
                "not_reviewed": [{"id": c.id, "name": c.name, "action": str(c.action),
                                  "changed_fields": list(c.changed_fields)}
                                 for c in not_reviewed],
                "summary": _summary(counts, failed),
            }, indent=2))
        if signum is not None:
            return SIGNAL_EXIT[signal.Signals(signum)]
        return 1 if failed or counts["pending"] or counts["not-started"] else 0


def _summary(counts: Counter[str], failed: int) -> dict[str, int]:
    return {"updated": counts["updated"], "cancelled": counts["cancelled"],
            "unchanged": counts["unchanged"], "failed": failed, "pending": counts["pending"],
            "not_started": counts["not-started"]}
