"""A Drift report as text (for logs) or Markdown (for an issue); its JSON is
plansync/views/json.py's."""

from __future__ import annotations

from plansync.engine.drift import Drift, PlanDrift
from plansync.engine.impact import CurrencyImpact
from plansync.render import money
from plansync.render.values import cell, label, show


def summary(drift: Drift) -> str:
    if not drift.found and not drift.errors:
        return f"No drift: the {drift.checked} plan(s) checked match the spec and the state."
    parts = [f"{len(drift.spec)} differ from the spec",
             f"{len(drift.outside)} changed outside plansync since its last apply"]
    if drift.errors:
        parts.append(f"{len(drift.errors)} could not be checked")
    return f"Drift in {drift.checked} plan(s) checked: " + ", ".join(parts) + "."


def text(drift: Drift) -> str:
    lines = []
    if drift.spec:
        lines.append("Live differs from the spec (plansync apply would change it):")
        lines += [_line(p, "spec") for p in drift.spec] + [""]
    if drift.outside:
        lines.append("Changed outside plansync since its last apply:")
        lines += [_line(p, "applied") for p in drift.outside] + [""]
    if drift.mrr:
        lines.append("Monthly recurring revenue, live and per the spec:")
        lines += [f"  {_mrr(each)}" for each in drift.mrr] + [""]
    if drift.errors:
        lines.append("Could not be checked:")
        lines += [f"  ! plan {plan_id}: {why}" for plan_id, why in drift.errors] + [""]
    return "\n".join([*lines, summary(drift)])


def _mrr(each: CurrencyImpact) -> str:
    c = each.currency
    return (f"{c}: live {money.money(each.mrr_before, c)}, spec {money.money(each.mrr_after, c)}"
            f" ({money.money(each.mrr_change, c, sign=True)} if applied)")


def _line(plan: PlanDrift, expected: str) -> str:
    named = label(plan.id, plan.name)
    since = f" (applied {plan.since})" if plan.since else ""
    fields = "; ".join(f"{f.field}: {expected} {show(f.expected)}, live {show(f.live)}"
                       for f in plan.fields)
    return f"  ~ plan {named}{since}: {fields}"


def markdown(drift: Drift) -> str:
    lines = [f"#### plansync drift: {summary(drift)}", ""]
    for title, plans, expected in (
            ("Live differs from the spec", drift.spec, "Spec"),
            ("Changed outside plansync since its last apply", drift.outside, "Applied")):
        if not plans:
            continue
        lines += [f"**{title}**", "", f"| Plan | Field | {expected} | Live |", "|---|---|---|---|"]
        for plan in plans:
            for f in plan.fields:
                name = f" {plan.name}" if plan.name else ""
                lines.append(f"| {plan.id}{cell(name)} | {f.field} | {cell(show(f.expected))} "
                             f"| {cell(show(f.live))} |")
        lines.append("")
    if drift.mrr:
        lines += ["**Monthly recurring revenue**", "", "| Currency | Live | Spec | Difference |",
                  "|---|--:|--:|--:|"]
        lines += [f"| {cell(e.currency)} | {money.money(e.mrr_before, e.currency)} | "
                  f"{money.money(e.mrr_after, e.currency)} | "
                  f"{money.money(e.mrr_change, e.currency, sign=True)} |" for e in drift.mrr]
        lines.append("")
    if drift.errors:
        lines += ["**Could not be checked**", ""]
        lines += [f"- {plan_id}: {cell(why)}" for plan_id, why in drift.errors] + [""]
    return "\n".join(lines)
