"""A Plan as Markdown for a pull-request comment, kept under a size budget."""

from __future__ import annotations

from collections.abc import Sequence

from plansync.engine.guardrails import Violation
from plansync.engine.impact import CurrencyImpact
from plansync.engine.plan import Action, Change, Plan
from plansync.printable import printable
from plansync.render import money
from plansync.render.text import GUARDRAILS, counts, header, not_in_spec, pending_line, summary_line
from plansync.render.values import cell, html, show
from plansync.spec.model import Problem

# GitHub refuses comments over 65,536 characters; leave room for a wrapper's own text.
BUDGET = 60_000
_SYMBOL = {Action.UPDATE: "~", Action.CANCEL: "-", Action.ERROR: "!", Action.NO_OP: ""}


def render(plan: Plan, budget: int = BUDGET, breaches: Sequence[Violation] = ()) -> str:
    shown = [c for c in plan.changes if c.action is not Action.NO_OP]
    title = counts(plan) if plan.has_changes or plan.summary["error"] else "no changes"
    head = [f"#### plansync plan: {title}", "",
            f"Merchant `{cell(plan.merchant_id)}` · endpoint `{cell(plan.endpoint)}` · "
            f"made {plan.created_at:%Y-%m-%d %H:%M} UTC · spec `{plan.spec_digest}`", "",
            *_guardrails(breaches, budget // 4), *_pending(plan, budget // 4)]
    remembered = not_in_spec(plan)
    if remembered:
        head += [f"_{cell(remembered)}_", ""]
    if not shown:
        return "\n".join([*head, summary_line(plan)]) + "\n"
    table = ["| | Plan | Name | Action | Fields |", "|---|---|---|---|---|"]
    table += [f"| {_SYMBOL[c.action]} | {c.id} | {cell(c.name or '')} | {_action(c)} | "
              f"{cell(', '.join(c.changed_fields) or (c.error or ''))} |" for c in shown]
    details = [_details(c) for c in shown]
    impacts = [impact for impact in plan.impact if impact.customers]
    if impacts:
        head += [*_impact_table(impacts), ""]
        with_chart, complete = _fit([*head, _chart(impacts)], table, details, budget)
        if complete:
            return with_chart
    return _fit(head, table, details, budget)[0]  # the chart goes first when room runs out


def _guardrails(breaches: Sequence[Violation], room: int) -> list[str]:
    """Before anything else a reviewer reads: what apply would refuse. Within ``room``
    characters (one breach per plan can be thousands), with the rest counted."""
    items = [f"{cell(breach.message.replace(' -> ', ' → '))} ({_source(breach.source)})"
             for breach in breaches]
    return _callout(["> [!CAUTION]", f"> **{GUARDRAILS}:**"], items, room)


def _pending(plan: Plan, room: int) -> list[str]:
    """Writes an earlier run sent whose outcome is unknown (after a crash, thousands:
    within ``room`` characters, with the rest counted)."""
    items = [cell(pending_line(write, plan)) for write in plan.pending]
    return _callout(["> [!NOTE]", "> **Writes still pending** (an earlier run sent them; "
                                  "their outcome is not known yet):"], items, room)


def _callout(head: list[str], items: Sequence[str], room: int) -> list[str]:
    """A callout box of ``items`` within ``room`` characters, the rest counted; nothing
    when there are no items."""
    if not items:
        return []
    lines = list(head)
    used = sum(len(line) + 1 for line in lines)
    for kept, item in enumerate(items):
        line = f"> - {item}"
        if used + len(line) + 1 > room:
            lines.append(f"> - _and {len(items) - kept} more; run `plansync plan` to see "
                         "them all_")
            break
        lines.append(line)
        used += len(line) + 1
    return [*lines, ""]


def _source(source: str) -> str:
    """`--max-cancels` or `guardrails.max_cancels` in the settings: names as code."""
    name, _, rest = source.partition(" ")
    return f"`{cell(name)}`" + (f" {cell(rest)}" if rest else "")


def _impact_table(impacts: Sequence[CurrencyImpact]) -> list[str]:
    """Money first: what the plan does to revenue and customers, per currency."""
    rows = ["**Impact** (MRR: amount x 30 / interval in days; per currency, never summed)", "",
            "| Currency | MRR before | MRR after | Change | Cancels stop | Pauses suspend "
            "| Contract added | Contract removed | Customers | Charged ≤ 24 h | ≤ 7 days |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for i in impacts:
        c = i.currency
        rows.append(
            f"| {cell(c)} | {money.number(i.mrr_before, c)} | {money.number(i.mrr_after, c)} | "
            f"**{money.number(i.mrr_change, c, sign=True)}** ({money.percent(i)}) | "
            f"{money.number(i.stopped_by_cancels, c)} | {money.number(i.paused_by_pauses, c)} | "
            f"{money.number(i.contract_added, c)} | {money.number(i.contract_removed, c)} | "
            f"{i.customers} | "
            f"{i.charging_within_day} | {i.charging_within_week} |")
    return rows


def _chart(impacts: Sequence[CurrencyImpact]) -> str:
    """MRR before and after, one Mermaid bar chart per currency (GitHub renders them)."""
    blocks = []
    for i in impacts:
        c = i.currency
        blocks += ["```mermaid", "xychart-beta", f'    title "MRR {cell(c)}: before, after"',
                   '    x-axis ["before", "after"]', f'    y-axis "{cell(c)}"',
                   f"    bar [{money.number(i.mrr_before, c)}, "
                   f"{money.number(i.mrr_after, c)}]", "```", ""]
    return "\n".join(blocks).rstrip() + "\n"  # one line of head: a blank one follows




def _fit(head: list[str], table: list[str], details: list[str], budget: int
         ) -> tuple[str, bool]:
    """Everything that fits: the table first, then as many plans' details as the budget
    allows, with a note saying what was left out; and whether nothing was."""
    note_room = 200
    text = "\n".join(head) + "\n"
    rows_kept = 0
    for row in table:
        if len(text) + len(row) + 1 > budget - note_room:
            break
        text += row + "\n"
        rows_kept += 1
    left_rows = len(table) - rows_kept
    text += "\n"
    kept = 0
    if not left_rows:
        for block in details:
            if len(text) + len(block) + 1 > budget - note_room:
                break
            text += block + "\n"
            kept += 1
    if left_rows or kept < len(details):
        left = left_rows if left_rows else len(details) - kept
        what = "table rows" if left_rows else "plans' details"
        text += (f"\n_{left} {what} left out to keep this comment under {budget:,} characters;"
                 " run `plansync plan` to see everything._\n")
        return text, False
    return text, True


def _details(change: Change) -> str:
    summary = html(header(change))
    lines = ["<details>", f"<summary>{summary}</summary>", ""]
    if change.action is Action.ERROR:
        lines.append(cell(change.error or ""))
    else:
        lines += ["| Field | Live | Spec |", "|---|---|---|"]
        lines += [f"| {name} | {cell(show(change.before.get(name)))} | "
                  f"**{cell(show(change.after.get(name)))}** |" for name in change.changed_fields]
        if change.unchanged:
            lines += ["", f"{change.unchanged} unchanged managed field(s) not shown."]
        if change.impact is not None:
            lines += ["", *(f"- {cell(' '.join(line.split()).replace(' -> ', ' → '))}"
                            for line in money.plan_lines(change.impact))]
    return "\n".join([*lines, "", "</details>"])


def _action(change: Change) -> str:
    return "**CANCEL**" if change.action is Action.CANCEL else str(change.action)


def failure(error: Exception, problems: Sequence[Problem] = ()) -> str:
    """A run that failed, as a pull-request comment: the error, and every spec problem."""
    lines = ["### plansync could not make a plan", "", "```text",
             *(html(printable(line)) for line in f"error: {error}".splitlines()), "```"]
    if problems:
        lines += ["", "| where | plan | field | problem |", "|---|---|---|---|"]
        lines += [f"| `{cell(f'{p.location.file}:{p.location.line}:{p.location.column}')}` | "
                  f"{cell(p.plan_id or '')} | {cell(p.field or '')} | {cell(p.message)} |"
                  for p in problems]
    return "\n".join([*lines, "", "Nothing was planned or applied. Fix the above and push again."])
