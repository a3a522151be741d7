"""Limits a plan must stay within before anything is sent. Pure.

Payments are one-way doors: a plan that touches too many plans, cancels too many, or
raises an amount too far is refused as a whole, with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the declaration below makes the CLI's flags: it loads with the CLI
    from plansync.engine.plan import Plan

COUNT, PERCENT = 10**9, 1e9  # the highest count and percent a limit may be
# The charge window: at most a year (a plan charges at least once a year: the longest
# interval is 365 days), so dates after it stay within the calendar.
MAX_CHARGE_WINDOW_HOURS = 366 * 24.0


def _limit(kind: type, metavar: str, refuses: str, shows: str) -> dict[str, Any]:
    """A guardrail, declared once: its settings-file key is the field's name, and its
    flag's (plansync.limits.flag_of): ``kind``, ``metavar`` and ``high`` (the highest
    value) make it; ``refuses`` is its help on `apply`, ``shows`` on `plan`."""
    high = {int: COUNT, Decimal: PERCENT, float: MAX_CHARGE_WINDOW_HOURS}[kind]
    return {"kind": kind, "metavar": metavar, "high": high, "refuses": refuses,
            "shows": shows}


@dataclass(frozen=True)
class Guardrails:
    max_changes: int | None = field(default=None, metadata=_limit(
        int, "N", "Refuse plans changing more plans.",
        "Show a breach when the plan changes more plans."))
    max_cancels: int | None = field(default=None, metadata=_limit(
        int, "N", "Refuse plans cancelling more plans.",
        "Show a breach when the plan cancels more plans."))
    max_amount_increase: Decimal | None = field(default=None, metadata=_limit(  # percent
        Decimal, "PERCENT", "Refuse plans raising any amount by more than this.",
        "Show a breach when the plan raises any amount by more."))
    # percent of a currency's monthly recurring revenue
    max_mrr_decrease: Decimal | None = field(default=None, metadata=_limit(
        Decimal, "PERCENT",
        "Refuse plans lowering any currency's monthly recurring revenue by more.",
        "Show a breach when the plan lowers any currency's monthly recurring revenue by "
        "more."))
    # how many changed plans may charge within the charge window
    max_charged_within: int | None = field(default=None, metadata=_limit(
        int, "N",
        "Refuse plans changing more than N plans that charge within the charge window.",
        "Show a breach when the plan changes more than N plans that charge within the "
        "charge window."))
    charge_window_hours: float = field(default=24.0, metadata=_limit(
        float, "HOURS", "Plans charging sooner than this are not written (default 24).",
        "The charge window of the limit on plans charging within it (default 24)."))


LIMITS = fields(Guardrails)  # every guardrail, in the order flags and messages list them


@dataclass(frozen=True)
class Violation:
    limit: str  # which: a field of Guardrails
    message: str  # what, with the numbers
    source: str = ""  # where the limit was set, as the user set it: the caller's word

    def __str__(self) -> str:
        return f"{self.message} ({self.source})" if self.source else self.message


def violations(plan: Plan, limits: Guardrails) -> list[Violation]:
    """Every limit the plan exceeds, each said with its numbers."""
    from plansync.engine.plan import Action

    found = []
    changes = plan.summary["update"] + plan.summary["cancel"]
    if limits.max_changes is not None and changes > limits.max_changes:
        found.append(Violation("max_changes", f"{changes} plans would change, more than "
                                              f"{limits.max_changes}"))
    cancels = plan.summary["cancel"]
    if limits.max_cancels is not None and cancels > limits.max_cancels:
        found.append(Violation("max_cancels", f"{cancels} plans would be cancelled, more "
                                              f"than {limits.max_cancels}"))
    if limits.max_amount_increase is not None:
        for change in plan.changes:
            if change.action is not Action.UPDATE or "amount" not in change.changed_fields:
                continue
            before, after = change.before["amount"], change.after["amount"]
            if after <= before:
                continue
            increase = (after - before) / before * 100 if before else None
            if increase is None or increase > limits.max_amount_increase:
                shown = f"+{increase:.1f}%" if increase is not None else "an increase from 0"
                limit = format(limits.max_amount_increase.normalize(), "f")
                found.append(Violation("max_amount_increase", f"plan {change.id}: amount "
                                       f"{before} -> {after} is {shown}, more than {limit}%"))
    return found + _money(plan, limits)


def _money(plan: Plan, limits: Guardrails) -> list[Violation]:
    """The limits on what the plan does to revenue and to customers about to be charged."""
    from plansync.engine.impact import for_display, places, until
    from plansync.engine.plan import Action

    found = []
    if limits.max_mrr_decrease is not None:
        for each in plan.impact:
            drop = -each.percent if each.percent is not None else Decimal(0)
            if drop > limits.max_mrr_decrease:
                limit = format(limits.max_mrr_decrease.normalize(), "f")
                shown = places(each.currency)
                found.append(Violation("max_mrr_decrease", (
                    f"{each.currency} monthly recurring revenue would fall "
                    f"{for_display(drop, 1)}% ({for_display(each.mrr_before, shown)} -> "
                    f"{for_display(each.mrr_after, shown)}), more than {limit}%")))
    if limits.max_charged_within is not None:
        window = timedelta(hours=limits.charge_window_hours)
        soon = [c.id for c in plan.changes if c.impact and c.impact.kind != "unchanged"
                and c.action in (Action.UPDATE, Action.CANCEL)
                and (due := until(c.impact.after.next_date, plan.created_at)) is not None
                and due < window]
        if len(soon) > limits.max_charged_within:
            found.append(Violation("max_charged_within", (
                f"{len(soon)} changed plans charge within {limits.charge_window_hours:g} hours "
                f"of the plan ({', '.join(soon[:5])}{', …' if len(soon) > 5 else ''}), more "
                f"than {limits.max_charged_within}")))
    return found
