"""A Plan as a terraform-style text report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import click

from plansync.engine.guardrails import Violation
from plansync.engine.plan import Action, Change, PendingWrite, Plan
from plansync.printable import printable
from plansync.render import money
from plansync.render.values import label, show

_SYMBOL = {Action.UPDATE: ("~", "yellow"), Action.CANCEL: ("-", "red"),
           Action.ERROR: ("!", "red")}


class _Paint:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, fg: str, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if self.color else text


def render(plan: Plan, color: bool = False, breaches: Sequence[Violation] = ()) -> str:
    """The plan; and last, where a terminal shows it, every guardrail it breaches."""
    paint = _Paint(color)
    shown = [c for c in plan.changes if c.action is not Action.NO_OP]
    lines: list[str] = []
    if plan.has_changes:
        lines += ["plansync will perform the following actions:", ""]
    for change in shown:
        lines += [*_change(change, paint), ""]
    for write in plan.pending:
        lines += [paint(f"  # {pending_line(write, plan)}", "yellow"), ""]
    lines.append(summary_line(plan))
    if plan.has_changes and plan.impact:
        lines += ["", "Impact, per currency (MRR: amount x 30 / interval in days):"]
        lines += [f"  {impact.currency}: {money.summary_line(impact)}"
                  for impact in plan.impact if impact.customers]
    remembered = not_in_spec(plan)
    if remembered:
        lines += ["", remembered]
    if breaches:
        lines += ["", paint(f"{GUARDRAILS}:", "red", bold=True)]
        lines += [paint(f"  ! {printable(str(breach))}", "red") for breach in breaches]
    return "\n".join(lines)


GUARDRAILS = "Guardrails: apply would refuse this plan as a whole and send nothing"


def summary_line(plan: Plan) -> str:
    if not plan.has_changes and not plan.summary["error"]:
        return "No changes. Live plans match the specification."
    return f"Plan: {counts(plan)}."


def counts(plan: Plan) -> str:
    s = plan.summary
    text = f"{s['update']} to update, {s['cancel']} to cancel, {s['no_op']} unchanged"
    return text + (f", {s['error']} cannot be planned" if s["error"] else "")


def pending_line(write: PendingWrite, plan: Plan) -> str:
    """A write an earlier run sent whose outcome is unknown: until when it may land."""
    sent = f"plan {write.id}: {'an' if write.action == 'update' else 'a'} {write.action} " \
           f"sent at {_moment(write.sent_at)}"
    if plan.created_at < write.until:
        return f"{sent} may still land; apply will not write this plan again before " \
               f"{_moment(write.until)}"
    return f"{sent} is not settled (its settle window ended at {_moment(write.until)}); " \
           "apply settles it by inquiry before writing this plan"


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def not_in_spec(plan: Plan, shown: int = 10) -> str | None:
    """A note on the plans the state holds and this spec does not declare: apply does
    nothing to them and their memory (a cancellation above all) is kept."""
    if not plan.unmanaged:
        return None
    ids = ", ".join(plan.unmanaged[:shown])
    more = len(plan.unmanaged) - shown
    if more > 0:
        ids += f" and {more} more"
    return (f"{len(plan.unmanaged)} plan(s) in the state are not in this spec ({ids}): left "
            "as they are live and still remembered; plansync state rm ID forgets one.")


_HEADERS = {
    Action.UPDATE: "plan {} will be updated in-place",
    Action.CANCEL: "plan {} will be CANCELLED — this cannot be undone",
    Action.ERROR: "plan {} cannot be planned",
    Action.NO_OP: "plan {} is unchanged",
}


def header(change: Change) -> str:
    return _HEADERS[change.action].format(label(change.id, change.name))


def _change(change: Change, paint: _Paint) -> list[str]:
    symbol, fg = _SYMBOL[change.action]
    lines = [paint(f"  # {header(change)}", fg, bold=True)]
    if change.action is Action.ERROR:
        return [*lines, paint(f"  {symbol} {change.error}", fg)]
    width = max((len(name) for name in change.changed_fields), default=0)
    for name in change.changed_fields:
        before, after = show(change.before.get(name)), show(change.after.get(name))
        lines.append(paint(f"  {symbol} {name.ljust(width)} = {before} -> {after}", fg))
    if change.unchanged:
        plural = "attribute" if change.unchanged == 1 else "attributes"
        lines.append(f"    ({change.unchanged} unchanged {plural} hidden)")
    if change.impact is not None:
        lines += [f"    {line}" for line in money.plan_lines(change.impact)]
    return lines
